package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"latchkey/store"
	"latchkey/store/pgtest"
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

// The same binary on PostgreSQL: two instances share one database; the
// admin from the environment is created once, and a portal session made on
// one instance is honoured by the other (sessions live in the database and
// the secret is shared).
func TestPostgresTwoInstancesShareSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) && !pgtest.Required() {
		t.Skip("SKIPPING: no PostgreSQL binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LATCHKEY_DB": url, "LATCHKEY_SECRET_KEY": strings.Repeat("s", 40)}
	a := startApp(t, env)
	b := startApp(t, env)

	p, code, loc := signInAs(t, b.URL, e2eAdminEmail, e2eAdminPassword)
	if code != http.StatusSeeOther || strings.Contains(loc, "login") {
		t.Fatalf("sign-in on instance b: %d to %q", code, loc)
	}
	// The cookie jar sends b's cookie to a (same host, other port).
	p.base = a.URL
	if code, body, loc := p.get("/portal/users"); code != http.StatusOK || !strings.Contains(body, e2eAdminEmail) {
		t.Fatalf("instance a with b's session: %d (to %q)", code, loc)
	}
	// Without the session, a sends the visitor to sign in: the 200 above
	// came from the shared session, not an open page.
	if code, _, loc := newPortalClient(t, a.URL).get("/portal/users"); code == http.StatusOK || !strings.Contains(loc, "login") {
		t.Fatalf("instance a without a session: %d to %q", code, loc)
	}

	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountAdmins(ctx); err != nil || n != 1 {
		t.Fatalf("admins in PostgreSQL: %d, %v (want the bootstrap admin once)", n, err)
	}
}
