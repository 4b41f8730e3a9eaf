package handlers

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/mail/mailtest"
)

var (
	tempPasswordRE = regexp.MustCompile(`Your temporary password: (\S+)`)
	resetCodeRE    = regexp.MustCompile(`Your verification code: ([0-9]{6})`)
	resetLinkRE    = regexp.MustCompile(`(http://localhost/reset-password\?token=\S+)`)
)

func browserOf(a *testApp) *testApp {
	return &testApp{t: a.t, srv: a.srv, acct: a.acct, store: a.store, client: newJarClient()}
}

// TestAuthUIWithRealMail runs the Auth UI against the real outbox and a
// real SMTP server: the generated password and the forgot-password code
// and link are read from the delivered messages.
func TestAuthUIWithRealMail(t *testing.T) {
	smtp := mailtest.Start(t)
	a, _ := newMailApp(t, smtpTo(smtp))
	a.loginAdmin()
	const email = "wendy@example.com"
	createViaPortal(t, a, createForm("email", email, "auto", "", false, true))
	msg := smtp.MessageTo(email, 10*time.Second)
	m := tempPasswordRE.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no temporary password in:\n%s", msg.Text)
	}
	preset := m[1]

	// The preset password leads to the forced change only.
	b := browserOf(a)
	r := signIn(b, email, preset, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/change-password" {
		t.Fatalf("preset password: %q", r.Location)
	}
	if r := b.get("/settings"); r.Location != "/change-password" {
		t.Fatalf("/settings in a restricted session: %d %q", r.Status, r.Location)
	}
	b.get("/change-password")
	wantContains(t, b.post("/change-password", url.Values{"password": {preset}, "confirm": {preset}}).Body,
		"Please provide a new password that is different from the previous one.")
	wantStatus(t, b.post("/change-password", url.Values{"password": {userPW}, "confirm": {userPW}}), http.StatusSeeOther)
	wantStatus(t, b.get("/settings"), http.StatusOK)

	// Forgot password: code from the message.
	f := browserOf(a)
	f.get("/forgot-password")
	wantStatus(t, f.post("/forgot-password", url.Values{"login_id": {email}}), http.StatusSeeOther)
	var forgot mailtest.Message
	for _, mm := range smtp.WaitFor(2, 10*time.Second) {
		if strings.Contains(mm.Text, "Your verification code") {
			forgot = mm
		}
	}
	code := resetCodeRE.FindStringSubmatch(forgot.Text)
	link := resetLinkRE.FindStringSubmatch(forgot.Text)
	if code == nil || link == nil {
		t.Fatalf("no code or link in the forgot-password message:\n%s", forgot.Text)
	}
	if strings.Contains(forgot.Text, userPW) {
		t.Fatal("the forgot-password message carries the password")
	}
	// Opening the link consumes nothing; the code still works afterwards.
	wantStatus(t, f.get(strings.TrimPrefix(link[1], "http://localhost")), http.StatusOK)
	f.get("/reset-password/code")
	r = f.post("/reset-password/code", url.Values{"login_id": {email}, "code": {code[1]}, "password": {userPW2}, "confirm": {userPW2}})
	wantStatus(t, r, http.StatusSeeOther)
	// The reset ended the signed-in session, and used the link too.
	if r := b.get("/settings"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Fatalf("session after reset: %d %q", r.Status, r.Location)
	}
	wantStatus(t, f.get(strings.TrimPrefix(link[1], "http://localhost")), http.StatusGone)
	wantStatus(t, signIn(browserOf(a), email, userPW, ""), http.StatusUnauthorized)
	r = signIn(browserOf(a), email, userPW2, "")
	if r.Status != http.StatusSeeOther || r.Location != "/settings" {
		t.Fatalf("new password: %d %q", r.Status, r.Location)
	}
}
