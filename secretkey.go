package main

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// secretKeyPrefix marks a LATCHKEY_SECRET_KEY given as standard base64:
// the form `latchkey migrate-to-postgres` prints for a secret that a
// SQLite deployment generated (64 random bytes, which an environment
// variable cannot hold as they are).
const secretKeyPrefix = "base64:"

// secretKeyBytes turns a LATCHKEY_SECRET_KEY value into the secret's
// bytes: the value itself, or the decoded bytes after "base64:". Either
// way the secret must be at least 32 bytes.
func secretKeyBytes(v string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(v, secretKeyPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_SECRET_KEY: the value after %q is not valid base64: %v", secretKeyPrefix, err)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("LATCHKEY_SECRET_KEY must be at least 32 bytes (%d after base64 decoding)", len(b))
		}
		return b, nil
	}
	if len(v) < 32 {
		return nil, fmt.Errorf("LATCHKEY_SECRET_KEY must be at least 32 characters")
	}
	return []byte(v), nil
}

// secretKeyEnv is the LATCHKEY_SECRET_KEY value that gives secret, in
// the base64 form, which any shell and env file carries unchanged.
func secretKeyEnv(secret []byte) string {
	return secretKeyPrefix + base64.StdEncoding.EncodeToString(secret)
}
