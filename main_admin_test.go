package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"latchkey/store"
	"latchkey/store/testdb"
)

// buildBinary builds latchkey into a temp dir, as an operator would run it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cliResult is one run of the built binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary with args against db, stdin given (not a terminal).
func runCLI(t *testing.T, bin, db, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LATCHKEY_DB=" + db, "LATCHKEY_BCRYPT_COST=4"}
	if testdb.Postgres() {
		cmd.Env = append(cmd.Env, "LATCHKEY_SECRET_KEY="+pgSecretKey)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

func wantExit(t *testing.T, r cliResult, code int, stderrHas string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, stderrHas) {
		t.Fatalf("exit %d (want %d), stderr %q (want it to contain %q), stdout %q", r.code, code, r.stderr, stderrHas, r.stdout)
	}
}

// signInAs signs in to the running server, returning the client and where
// the sign-in sent it.
func signInAs(t *testing.T, base, email, password string) (*portalClient, int, string) {
	t.Helper()
	p := newPortalClient(t, base)
	p.get("/portal/login")
	code, _, loc := p.post("/portal/login", url.Values{"email": {email}, "password": {password}})
	return p, code, loc
}

// TestAdminCLIAgainstARunningServer builds the binary and runs each
// command against the database of a server that keeps running, checking
// the change through the server's HTTP answers.
func TestAdminCLIAgainstARunningServer(t *testing.T) {
	bin := buildBinary(t)
	app := startApp(t, nil)

	// list
	r := runCLI(t, bin, app.DB, "", "admin", "list")
	wantExit(t, r, 0, "")
	if !regexp.MustCompile(`admin@example\.com\s+active\s+off\s+never\s+0`).MatchString(r.stdout) {
		t.Fatalf("admin list:\n%s", r.stdout)
	}

	// Usage mistakes: exit 2, nothing done.
	wantExit(t, runCLI(t, bin, app.DB, "", "admin"), 2, "needs a subcommand")
	wantExit(t, runCLI(t, bin, app.DB, "", "admin", "frobnicate"), 2, "unknown command")
	wantExit(t, runCLI(t, bin, app.DB, "x\n", "admin", "create", "--password-stdin"), 2, "--email is required")
	wantExit(t, runCLI(t, bin, app.DB, "", "admin", "create", "--email", "ops@example.com"), 2, "--password-stdin")
	wantExit(t, runCLI(t, bin, app.DB, "", "admin", "create", "--email", "ops@example.com", "--password-stdin"), 2, "held no password")
	wantExit(t, runCLI(t, bin, app.DB, "", "apikey", "create"), 2, "--name is required")
	wantExit(t, runCLI(t, bin, app.DB, "", "apikey", "delete"), 2, "\"apikey\" takes: apikey create")

	// create: a password the policy refuses is a failure (exit 1), nothing made.
	wantExit(t, runCLI(t, bin, app.DB, "short\n", "admin", "create", "--email", "ops@example.com", "--password-stdin"), 1, "password")
	if r = runCLI(t, bin, app.DB, "", "admin", "list"); strings.Contains(r.stdout, "ops@example.com") {
		t.Fatalf("refused admin was created:\n%s", r.stdout)
	}
	r = runCLI(t, bin, app.DB, "ops admin password\n", "admin", "create", "--email", "Ops@Example.com", "--password-stdin")
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "Admin ops@example.com created") {
		t.Fatalf("create output %q", r.stdout)
	}
	ops, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password")
	if code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("created admin's sign-in on the running server: %d %q", code, loc)
	}
	wantExit(t, runCLI(t, bin, app.DB, "ops admin password\n", "admin", "create", "--email", "ops@example.com", "--password-stdin"), 1, "An admin with this email exists.")

	// disable-2fa: ops enrols on the running server, then is turned off by the CLI.
	_, body, _ := ops.get("/portal/admins/me/2fa")
	m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no TOTP secret on the enrolment page:\n%s", body)
	}
	otp, _ := totp.GenerateCode(m[1], time.Now())
	if code, _, _ := ops.post("/portal/admins/me/2fa", url.Values{"code": {otp}}); code != http.StatusOK {
		t.Fatalf("enrol: %d", code)
	}
	if _, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password"); code != http.StatusSeeOther || loc != "/portal/login/2fa" {
		t.Fatalf("sign-in with two-factor on: %d %q", code, loc)
	}
	r = runCLI(t, bin, app.DB, "", "admin", "list")
	if !regexp.MustCompile(`ops@example\.com\s+active\s+on\s`).MatchString(r.stdout) {
		t.Fatalf("admin list after enrolment:\n%s", r.stdout)
	}
	r = runCLI(t, bin, app.DB, "", "admin", "disable-2fa", "--email", "ops@example.com")
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "turned off for ops@example.com") {
		t.Fatalf("disable-2fa output %q", r.stdout)
	}
	if _, code, loc := signInAs(t, app.URL, "ops@example.com", "ops admin password"); code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("sign-in after disable-2fa: %d %q", code, loc)
	}
	r = runCLI(t, bin, app.DB, "", "admin", "disable-2fa", "--email", "ops@example.com")
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "did not have two-factor on") {
		t.Fatalf("second disable-2fa output %q", r.stdout)
	}
	wantExit(t, runCLI(t, bin, app.DB, "", "admin", "disable-2fa", "--email", "nobody@example.com"), 1, "No admin has the email nobody@example.com")

	// reset-password: the open session ends at once, a paused sign-in
	// opens again, the new password works.
	if code, _, _ := ops.get("/portal/users"); code != http.StatusOK {
		t.Fatalf("ops session before the reset: %d", code)
	}
	for i := 0; i < 5; i++ {
		signInAs(t, app.URL, "ops@example.com", "a wrong password")
	}
	wantExit(t, runCLI(t, bin, app.DB, "x\n", "admin", "reset-password", "--email", "nobody@example.com", "--password-stdin"), 1, "No admin has the email")
	r = runCLI(t, bin, app.DB, "the recovered password\n", "admin", "reset-password", "--email", "ops@example.com", "--password-stdin")
	wantExit(t, r, 0, "")
	if code, _, loc := ops.get("/portal/users"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/portal/login") {
		t.Fatalf("ops session after the reset: %d %q", code, loc)
	}
	if _, code, _ := signInAs(t, app.URL, "ops@example.com", "the recovered password"); code != http.StatusSeeOther {
		t.Fatalf("new password after the reset: %d", code)
	}

	// apikey create: the token alone on stdout, and the running server takes it.
	r = runCLI(t, bin, app.DB, "", "apikey", "create", "--name", "ci")
	wantExit(t, r, 0, "shown only this once")
	token := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(token, "lk_") || strings.Contains(token, "\n") {
		t.Fatalf("apikey stdout %q", r.stdout)
	}
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/_api/admin/graphql", strings.NewReader(`{"query":"{ users(first: 1) { totalCount } }"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GraphQL with the CLI's key: %d", res.StatusCode)
	}

	// The audit log names the command line for each change.
	st, err := store.Open(context.Background(), app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListEvents(context.Background(), store.ListEventsParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if strings.Contains(string(e.Context), `"triggered_by":"cli"`) {
			seen[e.Type] = true
		}
	}
	for _, typ := range []string{"admin.created", "admin.2fa.disabled", "admin.password.reset", "api_key.created"} {
		if !seen[typ] {
			t.Errorf("no %s event by the command line in the audit log (saw %v)", typ, seen)
		}
	}
}

// TestAdminCLIWithoutADatabase fails clearly instead of creating an empty one.
func TestAdminCLIWithoutADatabase(t *testing.T) {
	var out, errb bytes.Buffer
	db := filepath.Join(t.TempDir(), "missing.db")
	code := cli(context.Background(), []string{"admin", "list", "--db", db}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no database at "+db) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if _, statErr := os.Stat(db); !os.IsNotExist(statErr) {
		t.Fatal("the command created a database file")
	}
}

// TestEnvAdminIgnoredWhenAdminsExistIsLogged: a second server started on a
// database that has admins, with LATCHKEY_ADMIN_EMAIL/PASSWORD set, says in
// its log that they are ignored (and creates no admin).
func TestEnvAdminIgnoredWhenAdminsExistIsLogged(t *testing.T) {
	bin := buildBinary(t)
	app := startApp(t, nil)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LATCHKEY_DB=" + app.DB, "LATCHKEY_ADDR=127.0.0.1:0",
		"LATCHKEY_ADMIN_EMAIL=other@example.com", "LATCHKEY_ADMIN_PASSWORD=other admin password", "LATCHKEY_BCRYPT_COST=4"}
	if testdb.Postgres() {
		cmd.Env = append(cmd.Env, "LATCHKEY_SECRET_KEY="+pgSecretKey)
	}
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "latchkey listening") {
		if time.Now().After(deadline) {
			t.Fatalf("second server never listened; stderr:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(errb.String(), "LATCHKEY_ADMIN_EMAIL and LATCHKEY_ADMIN_PASSWORD are ignored: admins exist already") {
		t.Fatalf("no 'ignored' line in the log:\n%s", errb.String())
	}
	r := runCLI(t, bin, app.DB, "", "admin", "list")
	if strings.Contains(r.stdout, "other@example.com") {
		t.Fatalf("the ignored admin was created:\n%s", r.stdout)
	}
}
