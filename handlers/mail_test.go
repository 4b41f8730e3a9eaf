package handlers

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/mail/mailtest"
	"latchkey/store"
	"latchkey/store/testdb"
)

// newMailApp is newTestApp with the email outbox wired in, delivering
// through sender (an SMTP sender or the dev mailbox); its worker runs.
func newMailApp(t *testing.T, sender mail.Sender, configure ...func(*mail.Config)) (*testApp, *mail.Outbox) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	mc := mail.Config{AppName: "Acme", PublicURL: "http://localhost", Secret: secret, Log: log,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond, SendTimeout: 3 * time.Second}
	for _, f := range configure {
		f(&mc)
	}
	ob, err := mail.New(st, sender, mc)
	if err != nil {
		t.Fatal(err)
	}
	acct.SetMailer(ob)
	if err := ob.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, dev := sender.(*mail.DevMailbox)
	srv := httptest.NewServer(New(Config{AppName: "Acme", PublicURL: "http://localhost", SessionKey: secret, Log: log, DevMailbox: dev, Mail: ob}, acct))
	t.Cleanup(func() {
		srv.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ob.Stop(stopCtx)
		st.Close()
	})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testApp{t: t, srv: srv, acct: acct, store: st, client: client}, ob
}

func smtpTo(srv *mailtest.Server) *mail.SMTPSender {
	c, err := mail.ParseSMTPURL(srv.URL())
	if err != nil {
		panic(err)
	}
	c.Timeout = 3 * time.Second
	return mail.NewSMTPSender(c)
}

// createViaPortal submits the Create User form and returns the user page path.
func createViaPortal(t *testing.T, a *testApp, form url.Values) string {
	t.Helper()
	a.get("/portal/users/new")
	r := a.post("/portal/users", form)
	wantStatus(t, r, http.StatusSeeOther)
	return r.Location
}

// waitPage fetches path until it contains want.
func waitPage(t *testing.T, a *testApp, path, want string) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := a.get(path)
		if strings.Contains(r.Body, want) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q; last body:\n%s", path, want, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var retryActionRE = regexp.MustCompile(`action="(/portal/users/[^"]+/mail/\d+/retry)"`)

func TestUserPageShowsRetryingThenDelivered(t *testing.T) {
	smtp := mailtest.Reserve(t)
	a, _ := newMailApp(t, smtpTo(smtp), func(c *mail.Config) { c.RetryBase, c.RetryMax = time.Hour, time.Hour })
	a.loginAdmin()
	userPage := createViaPortal(t, a, createForm("email", "rae@example.com", "auto", "", false, true))
	page := a.get(userPage)
	wantContains(t, page.Body, "The password is on its way to rae@example.com", `id="mail"`, "Get Started With Acme")

	page = waitPage(t, a, userPage, "Retrying")
	wantContains(t, page.Body, "connection refused", "Retry now")
	m := retryActionRE.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatal("no Retry now form")
	}
	// Without the CSRF token the retry is refused.
	wantStatus(t, a.postRaw(m[1], url.Values{}), http.StatusForbidden)

	smtp.Up()
	r := a.post(m[1], nil)
	wantStatus(t, r, http.StatusSeeOther)
	page = a.get(r.Location)
	wantContains(t, page.Body, "The message will be sent again now.")
	msg := smtp.MessageTo("rae@example.com", 5*time.Second)
	page = waitPage(t, a, userPage, "Delivered")
	if strings.Contains(page.Body, "Retry now") {
		t.Error("Retry now still offered for a delivered message")
	}
	pw := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
	if pw == nil || strings.Contains(page.Body, pw[1]) || strings.Contains(page.Body, html.EscapeString(pw[1])) {
		t.Error("password missing from the message, or shown on the user page")
	}
	// Retrying a delivered message changes nothing.
	a.get(userPage)
	r = a.post(m[1], nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "This message is no longer waiting to be sent.")
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestFailedPasswordEmailIsShownAndMarkedInUsersList(t *testing.T) {
	smtp := mailtest.Start(t)
	smtp.RejectRecipients(550, "5.1.1 Mailbox unavailable")
	a, _ := newMailApp(t, smtpTo(smtp))
	a.loginAdmin()
	userPage := createViaPortal(t, a, createForm("email", "sam@example.com", "manual", "Passw0rd-sam", true, true))
	page := waitPage(t, a, userPage, "Failed")
	wantContains(t, page.Body, "550 5.0.0 5.1.1 Mailbox unavailable", "Reset the password to send a new one.")
	// The user page's status shows the badge as the list does (issue 14).
	wantContains(t, page.Body, `badge-danger">Password email failed`)
	if strings.Contains(page.Body, "Retry now") {
		t.Error("Retry now offered for a failed message whose password was discarded")
	}
	list := a.get("/portal/users")
	wantStatus(t, list, http.StatusOK)
	wantContains(t, list.Body, "Password email failed")
	// The outbox list shows it too, without any body.
	out := a.get("/portal/mail?status=failed")
	wantStatus(t, out, http.StatusOK)
	wantContains(t, out.Body, "sam@example.com", "Mailbox unavailable", "Failed")
	if strings.Contains(out.Body, "Passw0rd-sam") || strings.Contains(out.Body, "Dev mailbox") {
		t.Error("outbox list shows a body or the dev mailbox while SMTP is configured")
	}
	wantStatus(t, a.get("/portal/mail?status=bogus"), http.StatusBadRequest)
	wantStatus(t, a.get("/portal/mail/dev/1"), http.StatusNotFound)
}

func TestSendPasswordNoTargetThroughPortal(t *testing.T) {
	box := mail.NewDevMailbox(0)
	a, _ := newMailApp(t, box)
	a.loginAdmin()
	for _, tc := range []struct{ kind, value string }{{"username", "tina"}} {
		a.get("/portal/users/new")
		r := a.post("/portal/users", createForm(tc.kind, tc.value, "manual", "Passw0rd-tina", true, true))
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, "The password can only be sent to an email address")
	}
	if n := a.countUsers(); n != 0 {
		t.Fatalf("%d users created", n)
	}
	if c, err := a.store.CountOutbox(context.Background()); err != nil || len(c) != 0 {
		t.Fatalf("outbox: %v (%v)", c, err)
	}
	if len(box.List()) != 0 {
		t.Fatal("a message went out")
	}
}

func TestDevMailboxPage(t *testing.T) {
	box := mail.NewDevMailbox(0)
	a, _ := newMailApp(t, box)
	a.loginAdmin()
	userPage := createViaPortal(t, a, createForm("email", "uma@example.com", "manual", "Passw0rd<&>uma", true, true))
	waitPage(t, a, userPage, "Delivered")

	idx := a.get("/portal/mail")
	wantStatus(t, idx, http.StatusOK)
	wantContains(t, idx.Body, "Email is not configured: messages go to the dev mailbox", "uma@example.com", "Get Started With Acme", "/portal/mail/dev/1")
	show := a.get("/portal/mail/dev/1")
	wantStatus(t, show, http.StatusOK)
	wantContains(t, show.Body, html.EscapeString("Your temporary password: Passw0rd<&>uma"), `<iframe class="mail-frame" sandbox=""`, `src="/portal/mail/dev/1/html"`)
	if csp := show.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("portal page CSP loosened: %s", csp)
	}
	body := a.get("/portal/mail/dev/1/html")
	wantStatus(t, body, http.StatusOK)
	csp := body.Header.Get("Content-Security-Policy")
	for _, want := range []string{"sandbox", "default-src 'none'", "frame-ancestors 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("HTML body CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || body.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Errorf("HTML body headers: CSP %q, XFO %q", csp, body.Header.Get("X-Frame-Options"))
	}
	wantContains(t, body.Body, "Passw0rd&lt;&amp;&gt;uma", "Get Started With Acme")
	wantStatus(t, a.get("/portal/mail/dev/99"), http.StatusNotFound)
	wantStatus(t, a.get("/portal/mail/dev/99/html"), http.StatusNotFound)
	out := a.get("/portal/mail?tab=outbox")
	wantContains(t, out.Body, "uma@example.com", "Delivered")

	// Signed out, none of it is readable.
	a.post("/portal/logout", nil)
	for _, p := range []string{"/portal/mail", "/portal/mail/dev/1", "/portal/mail/dev/1/html"} {
		r := a.get(p)
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
			t.Errorf("%s signed out: status %d, location %q", p, r.Status, r.Location)
		}
	}
}
