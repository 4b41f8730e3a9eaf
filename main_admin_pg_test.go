package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"latchkey/store"
)

// TestAdminCLIOnPostgres runs the operator's commands against a
// PostgreSQL database that a server is running on: each change is seen by
// that server at once (admins, passwords, two-factor, API keys, signing
// keys live in the shared database). Without LATCHKEY_SECRET_KEY a command
// refuses before it writes anything; `backup` points to pg_dump;
// `healthcheck` answers for the server on PostgreSQL.
func TestAdminCLIOnPostgres(t *testing.T) {
	ctx := context.Background()
	pg := startPG(t)
	db := newPGDatabase(t, pg)
	secret := strings.Repeat("p", 40)
	app := startApp(t, map[string]string{"LATCHKEY_DB": db, "LATCHKEY_SECRET_KEY": secret})
	env := map[string]string{"LATCHKEY_DB": db, "LATCHKEY_SECRET_KEY": secret, "LATCHKEY_BCRYPT_COST": "4"}
	run := func(env map[string]string, stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	ok := func(code int, stdout, stderr string) string {
		t.Helper()
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		return stdout
	}

	out := ok(run(env, "", "admin", "list"))
	if !regexp.MustCompile(`admin@example\.com\s+active\s+off\s+`).MatchString(out) {
		t.Fatalf("admin list:\n%s", out)
	}
	out = ok(run(env, "ops admin password\n", "admin", "create", "--email", "ops@example.com", "--password-stdin"))
	if !strings.Contains(out, "Admin ops@example.com created") {
		t.Fatalf("create: %q", out)
	}
	if code, _, stderr := run(env, "ops admin password\n", "admin", "create", "--email", "ops@example.com", "--password-stdin"); code != 1 || !strings.Contains(stderr, "An admin with this email exists.") {
		t.Fatalf("second create: %d %q", code, stderr)
	}
	ops, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password")
	if code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("the CLI's admin on the PostgreSQL server: %d %q", code, loc)
	}

	// disable-2fa: ops enrols on the server, the CLI turns it off.
	_, body, _ := ops.get("/portal/admins/me/2fa")
	m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no TOTP secret on the enrolment page")
	}
	otp, _ := totp.GenerateCode(m[1], time.Now())
	if code, _, _ := ops.post("/portal/admins/me/2fa", url.Values{"code": {otp}}); code != http.StatusOK {
		t.Fatalf("enrol: %d", code)
	}
	if _, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password"); code != http.StatusSeeOther || loc != "/portal/login/2fa" {
		t.Fatalf("sign-in with two-factor on: %d %q", code, loc)
	}
	if out := ok(run(env, "", "admin", "list")); !regexp.MustCompile(`ops@example\.com\s+active\s+on\s`).MatchString(out) {
		t.Fatalf("admin list after enrolment:\n%s", out)
	}
	if out := ok(run(env, "", "admin", "disable-2fa", "--email", "ops@example.com")); !strings.Contains(out, "turned off for ops@example.com") {
		t.Fatalf("disable-2fa: %q", out)
	}
	if _, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password"); code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("sign-in after disable-2fa: %d %q", code, loc)
	}

	// reset-password: the session on the server ends, the new password works.
	if code, _, _ := ops.get("/portal/users"); code != http.StatusOK {
		t.Fatalf("ops session before the reset: %d", code)
	}
	ok(run(env, "the recovered password\n", "admin", "reset-password", "--email", "ops@example.com", "--password-stdin"))
	if code, _, loc := ops.get("/portal/users"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/portal/login") {
		t.Fatalf("ops session after the reset: %d %q", code, loc)
	}
	if _, code, _ := signInAs(t, app.URL, "ops@example.com", "ops admin password"); code == http.StatusSeeOther {
		t.Fatal("the old password still signs in")
	}
	if _, code, loc := signInAs(t, app.URL, "ops@example.com", "the recovered password"); code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("the new password: %d %q", code, loc)
	}

	// apikey create: the server takes the token.
	token := strings.TrimSpace(ok(run(env, "", "apikey", "create", "--name", "ci")))
	if code, n := graphQLUsers(t, app.URL, token); code != http.StatusOK || n != 0 {
		t.Fatalf("GraphQL with the CLI's key: %d, %d users", code, n)
	}

	// keys: the server made the first key; rotate adds an active one.
	out = ok(run(env, "", "keys", "list"))
	if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "RS256\tactive") {
		t.Fatalf("keys list: %q", out)
	}
	first := strings.Fields(out)[0]
	if out := ok(run(env, "", "keys", "rotate", "-alg", "ES256")); !strings.Contains(out, "new ES256 signing key") {
		t.Fatalf("keys rotate: %q", out)
	}
	out = ok(run(env, "", "keys", "list"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "ES256\tactive") || !strings.HasPrefix(lines[1], first+"\tRS256\tretired") {
		t.Fatalf("keys list after rotate: %q", out)
	}

	// Without the instances' secret nothing is written (no secret is
	// generated into the shared database, no admin, no key).
	noSecret := map[string]string{"LATCHKEY_BCRYPT_COST": "4"}
	for _, args := range [][]string{
		{"admin", "create", "--db", db, "--email", "x@example.com", "--password-stdin"},
		{"apikey", "create", "--db", db, "--name", "x"},
		{"keys", "rotate", "--db", db},
	} {
		code, _, stderr := run(noSecret, "x admin password\n", args...)
		if code != 1 || !strings.Contains(stderr, "LATCHKEY_SECRET_KEY is required with a PostgreSQL database") {
			t.Fatalf("%v without the secret: exit %d, %q", args, code, stderr)
		}
	}
	if code, _, stderr := run(map[string]string{"LATCHKEY_DB": db}, "", "admin", "list"); code != 1 || !strings.Contains(stderr, "LATCHKEY_SECRET_KEY is required") {
		t.Fatalf("admin list without the secret: exit %d, %q", code, stderr)
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Setting(ctx, "secret_key"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a secret was stored in PostgreSQL: %v", err)
	}
	if n, err := st.CountAdmins(ctx); err != nil || n != 2 {
		t.Fatalf("admins: %d, %v", n, err)
	}
	if keys, err := st.ListOIDCKeys(ctx); err != nil || len(keys) != 2 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}

	// backup: refused, pointing to pg_dump, nothing written.
	dest := filepath.Join(t.TempDir(), "b.db")
	code, _, stderr := run(env, "", "backup", dest)
	if code != 1 || !strings.Contains(stderr, "back it up with pg_dump") || strings.Contains(stderr, secret) {
		t.Fatalf("backup on PostgreSQL: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("backup wrote %s: %v", dest, err)
	}

	// healthcheck: the server on PostgreSQL is ready.
	addr := strings.TrimPrefix(app.URL, "http://")
	ok(run(env, "", "healthcheck", "-addr", addr, "-ready"))
	app.stop()
	if code, _, _ := run(env, "", "healthcheck", "-addr", addr, "-timeout", "1s"); code != 1 {
		t.Fatalf("healthcheck with the server stopped: exit %d", code)
	}
}
