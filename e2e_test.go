package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/account"
	"latchkey/store"
	"latchkey/store/testdb"
)

// e2eApp is Latchkey started through run(), as `go run .` would, on a free
// loopback port with a fresh SQLite file.
type e2eApp struct {
	URL  string
	DB   string
	stop func()
}

const (
	e2eAdminEmail    = "admin@example.com"
	e2eAdminPassword = "e2e-admin-Passw0rd"
)

// pgSecretKey is LATCHKEY_SECRET_KEY for the apps and commands of a
// suite run on PostgreSQL (LATCHKEY_TEST_DB=postgres), which requires one.
const pgSecretKey = "e2e-secret-key-0123456789abcdef0123456789"

// startApp runs Latchkey with the given environment on top of test
// defaults (an admin from the environment, bcrypt cost 4, a temp DB).
func startApp(t testing.TB, env map[string]string) *e2eApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{
		"LATCHKEY_ADDR":           addr,
		"LATCHKEY_PUBLIC_URL":     "http://" + addr,
		"LATCHKEY_ADMIN_EMAIL":    e2eAdminEmail,
		"LATCHKEY_ADMIN_PASSWORD": e2eAdminPassword,
		"LATCHKEY_BCRYPT_COST":    "4",
		"LATCHKEY_LOG_LEVEL":      "warn",
		// Webhook receivers in tests run on loopback.
		"LATCHKEY_HOOKS_ALLOW_PRIVATE": "true",
	}
	// A fresh database unless the test names one (a restart): a SQLite
	// file, or with LATCHKEY_TEST_DB=postgres a PostgreSQL database, which
	// needs the secret key every instance shares.
	if env["LATCHKEY_DB"] == "" {
		vars["LATCHKEY_DB"] = testdb.DB(t, filepath.Join(t.TempDir(), "latchkey.db"))
	}
	if testdb.Postgres() {
		vars["LATCHKEY_SECRET_KEY"] = pgSecretKey
	}
	for k, v := range env {
		vars[k] = v
	}
	return launchApp(t, vars, "run", func(ctx context.Context, getenv func(string) string) error {
		return run(ctx, nil, getenv)
	})
}

// launchApp runs start (run or serve) with vars as the environment until
// the test ends (or app.stop, which may be called more than once), and
// returns once /healthz answers 200. name is start's name, for errors.
func launchApp(t testing.TB, vars map[string]string, name string, start func(ctx context.Context, getenv func(string) string) error) *e2eApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx, func(k string) string { return vars[k] }) }()
	app := &e2eApp{URL: "http://" + vars["LATCHKEY_ADDR"], DB: vars["LATCHKEY_DB"]}
	stopped := false
	app.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s returned: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20s", name)
		}
	}
	t.Cleanup(app.stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(app.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return app
			}
		}
		select {
		case err := <-done:
			t.Fatalf("app exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("app not healthy at %s: %v", app.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findBrowser returns the Chromium binary, or "" when there is none.
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless Chromium for one test. Without a browser the
// test is skipped with a loud message, unless LATCHKEY_E2E=1, where a
// missing browser is a failure.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser()
	if path == "" {
		if os.Getenv("LATCHKEY_E2E") == "1" {
			t.Fatal("LATCHKEY_E2E=1 but no Chromium found (install the Debian package chromium)")
		}
		msg := "!!! SKIPPING BROWSER TEST: no Chromium on PATH. Install it (apt-get install chromium) or set LATCHKEY_E2E=1 to make this a failure !!!"
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(browserDataDir(t)),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 900),
		// Chromium can take longer than chromedp's 20 s default to open
		// its DevTools socket on a busy 2-core machine.
		chromedp.WSURLReadTimeout(90*time.Second),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// browserDataDir is Chromium's profile directory. Chromium's helper
// processes may still write to it for a moment after the browser is
// closed, which makes t.TempDir's cleanup fail ("directory not empty"), so
// it is removed with a few retries instead.
func browserDataDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "latchkey-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove Chromium profile %s: %v", dir, err)
	})
	return dir
}

// portalSignIn signs the e2e admin in through the portal's form.
func portalSignIn(app *e2eApp) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(app.URL + "/portal/users"),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, e2eAdminEmail, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, e2eAdminPassword, chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
	}
}

// textOf reads an element's visible text.
func textOf(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// wantStoredPassword fails the test unless password verifies against the
// stored hash of the user with this (normalised) login ID, read from the
// app's database file: the password a user received is the one that works.
func wantStoredPassword(t *testing.T, app *e2eApp, loginID, password string) {
	t.Helper()
	st, err := store.Open(context.Background(), app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := st.IdentityByNorm(context.Background(), loginID)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := st.PasswordByUser(context.Background(), id.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if !(&account.Hasher{}).Verify(pw.Hash, password) {
		t.Fatalf("the password %q sent to %s does not verify against the stored hash", password, loginID)
	}
}
