package main

import (
	"bytes"
	"strings"
	"testing"
)

// LATCHKEY_SECRET_KEY as text or as base64: (the form migrate-to-postgres
// prints for a generated secret); each gives the bytes the keys derive
// from, and a short or broken value is refused at start.
func TestSecretKeyForms(t *testing.T) {
	raw := bytes.Repeat([]byte{0, 0xff, '\n', 'a'}, 16) // 64 bytes no env var can hold as they are
	env := secretKeyEnv(raw)
	if !strings.HasPrefix(env, "base64:") {
		t.Fatalf("secretKeyEnv = %q", env)
	}
	got, err := secretKeyBytes(env)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("base64 form round trip: %v", err)
	}
	plain := strings.Repeat("k", 32)
	if got, err := secretKeyBytes(plain); err != nil || string(got) != plain {
		t.Fatalf("plain form: %q, %v", got, err)
	}
	for v, want := range map[string]string{
		strings.Repeat("k", 31):        "at least 32 characters",
		"base64:" + "c2hvcnQ=":         "at least 32 bytes",
		"base64:" + "not base64!!!!!!": "not valid base64",
	} {
		if _, err := secretKeyBytes(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("secretKeyBytes(%q) = %v, want %q", v, err, want)
		}
		if _, err := loadConfig(nil, func(k string) string { return map[string]string{"LATCHKEY_SECRET_KEY": v}[k] }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadConfig with %q: %v", v, err)
		}
	}
	if _, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_SECRET_KEY": env, "LATCHKEY_DB": "postgres://u@127.0.0.1/l"}[k]
	}); err != nil {
		t.Fatalf("loadConfig with the base64 form on PostgreSQL: %v", err)
	}
}
