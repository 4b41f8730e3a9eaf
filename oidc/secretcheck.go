package oidc

import (
	"latchkey/account"
	"latchkey/store"
)

// OpensKeys reports whether secret opens every sealed signing key in keys:
// the server secret those keys were made with. `latchkey
// migrate-to-postgres` asks it to tell which secret a SQLite deployment
// ran with before it moves the keys.
func OpensKeys(secret []byte, keys []store.OIDCKey) bool {
	sealer, err := account.NewSealer(secret, "oidc-signing-keys")
	if err != nil {
		return false
	}
	for _, k := range keys {
		if _, err := sealer.Open(k.PrivateKey, []byte(k.ID)); err != nil {
			return false
		}
	}
	return true
}
