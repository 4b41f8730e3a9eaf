package main

import (
	"strings"
	"testing"
)

// A PostgreSQL database is shared by instances, which must share the
// secret: starting without LATCHKEY_SECRET_KEY is refused with a clear error.
func TestPostgresRequiresSecretKey(t *testing.T) {
	for _, db := range []string{"postgres://u@127.0.0.1:5432/l", "postgresql://u@127.0.0.1/l?sslmode=disable"} {
		_, err := loadConfig(nil, func(k string) string { return map[string]string{"LATCHKEY_DB": db}[k] })
		if err == nil || !strings.Contains(err.Error(), "LATCHKEY_SECRET_KEY is required") {
			t.Fatalf("%s without a secret: err = %v", db, err)
		}
		c, err := loadConfig(nil, func(k string) string {
			return map[string]string{"LATCHKEY_DB": db, "LATCHKEY_SECRET_KEY": strings.Repeat("k", 32)}[k]
		})
		if err != nil || c.DB != db {
			t.Fatalf("%s with a secret: %v, DB = %q", db, err, c.DB)
		}
	}
	// SQLite keeps working without one (the secret is generated and kept).
	if _, err := loadConfig(nil, func(k string) string { return map[string]string{"LATCHKEY_DB": "sqlite:x.db"}[k] }); err != nil {
		t.Fatal(err)
	}
}
