package handlers

import (
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"latchkey/account"
	"latchkey/mail/mailtest"
	"latchkey/store"
)

// otherBrowser is a second browser (its own cookie jar) on the same app.
func (a *testApp) otherBrowser() *testApp {
	jar, _ := cookiejar.New(nil)
	b := *a
	b.client = &http.Client{Jar: jar, CheckRedirect: a.client.CheckRedirect}
	b.csrf = ""
	return &b
}

// signIn signs email in with password, expecting the redirect into the portal.
func (a *testApp) signIn(email, password string) response {
	a.t.Helper()
	a.get("/portal/login")
	return a.post("/portal/login", url.Values{"email": {email}, "password": {password}})
}

// movableClock makes the account service's clock one the test moves.
func movableClock(a *testApp) func(time.Duration) time.Time {
	var ns atomic.Int64
	ns.Store(time.Now().UnixNano())
	a.acct.Now = func() time.Time { return time.Unix(0, ns.Load()).UTC() }
	return func(d time.Duration) time.Time { return time.Unix(0, ns.Add(int64(d))).UTC() }
}

var (
	inviteLinkRE   = regexp.MustCompile(`<code class="token" id="invite-link">([^<]+)</code>`)
	totpSecretRE   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryCodeRE = regexp.MustCompile(`<code class="token">([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>`)
)

func adminByEmail(t *testing.T, st *store.Store, email string) *store.Admin {
	t.Helper()
	a, err := st.AdminByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("admin %s: %v", email, err)
	}
	return a
}

func TestAdminsInviteByLinkAcceptAndRemove(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	r := a.get("/portal/admins")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, testAdminEmail, `action="/portal/admins"`, `href="/portal/admins"`)

	// Without the CSRF token: refused, nothing made.
	wantStatus(t, a.postRaw("/portal/admins", url.Values{"email": {"x@example.com"}}), http.StatusForbidden)
	// A bad email: 422 with the field error, nothing made.
	r = a.post("/portal/admins", url.Values{"email": {"not an email"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, `class="field-error"`, "not an email")
	if n, _ := a.store.CountAdmins(context.Background()); n != 1 {
		t.Fatalf("%d admins after refused invitations, want 1", n)
	}
	// Taken email: 422.
	r = a.post("/portal/admins", url.Values{"email": {testAdminEmail}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "An admin with this email exists.")

	// Not emailed: the link is in the answer, once; the list shows "invited".
	r = a.post("/portal/admins", url.Values{"email": {"Second@Example.com"}})
	wantStatus(t, r, http.StatusCreated)
	m := inviteLinkRE.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no invitation link in:\n%s", r.Body)
	}
	link := html.UnescapeString(m[1])
	if !strings.HasPrefix(link, "http://localhost/portal/invite?token=") {
		t.Fatalf("link %q", link)
	}
	if r = a.get("/portal/admins"); strings.Contains(r.Body, link) || !strings.Contains(r.Body, "invited") {
		t.Fatal("the list shows the link again, or does not mark the admin invited")
	}
	// An invited admin cannot sign in before choosing a password.
	b := a.otherBrowser()
	wantStatus(t, b.signIn("second@example.com", ""), http.StatusUnauthorized)

	path := strings.TrimPrefix(link, "http://localhost")
	r = b.get(path)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "second@example.com", `name="token"`)
	token := strings.TrimPrefix(path, "/portal/invite?token=")
	wantStatus(t, b.post("/portal/invite", url.Values{"token": {token}, "password": {"short"}}), http.StatusUnprocessableEntity)
	wantStatus(t, b.post("/portal/invite", url.Values{"token": {"forged"}, "password": {"second admin password"}}), http.StatusForbidden)
	r = b.post("/portal/invite", url.Values{"token": {token}, "password": {"second admin password"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/users" {
		t.Fatalf("after accepting: to %q", r.Location)
	}
	wantStatus(t, b.get("/portal/users"), http.StatusOK)
	// The link is used up.
	wantStatus(t, a.otherBrowser().get(path), http.StatusForbidden)

	// The first admin removes the second: the second's open session ends at once.
	second := adminByEmail(t, a.store, "second@example.com")
	a.get("/portal/admins")
	r = a.post("/portal/admins/"+second.ID+"/remove", nil)
	wantStatus(t, r, http.StatusSeeOther)
	r = b.get("/portal/users")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Location, "/portal/login") {
		t.Fatalf("removed admin's next page goes to %q", r.Location)
	}
	wantStatus(t, b.signIn("second@example.com", "second admin password"), http.StatusUnauthorized)

	// The last admin cannot be removed, not even by themselves.
	me := adminByEmail(t, a.store, testAdminEmail)
	a.get("/portal/admins")
	r = a.post("/portal/admins/"+me.ID+"/remove", nil)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r.Body, "last admin")
	adminByEmail(t, a.store, testAdminEmail)

	evs, err := a.store.ListEvents(context.Background(), store.ListEventsParams{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Type] = true
	}
	for _, typ := range []string{"admin.created", "admin.invited", "admin.invite.accepted", "admin.removed"} {
		if !seen[typ] {
			t.Errorf("no %s event in the audit log", typ)
		}
	}
}

func TestAdminInviteByEmail(t *testing.T) {
	smtp := mailtest.Start(t)
	a, _ := newMailApp(t, smtpTo(smtp))
	a.loginAdmin()
	a.get("/portal/admins")
	r := a.post("/portal/admins", url.Values{"email": {"mailed@example.com"}, "send_email": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r = a.get("/portal/admins"); !strings.Contains(r.Body, "Invitation sent to mailed@example.com") {
		t.Fatal("no flash after an emailed invitation")
	}
	msgs := smtp.WaitFor(1, 10*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "mailed@example.com" {
		t.Fatalf("messages: %+v", msgs)
	}
	m := regexp.MustCompile(`http://localhost(/portal/invite\?token=[A-Za-z0-9_-]+)`).FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no link in the email:\n%s", msgs[0].Text)
	}
	b := a.otherBrowser()
	wantStatus(t, b.get(m[1]), http.StatusOK)
	token := strings.TrimPrefix(m[1], "/portal/invite?token=")
	wantStatus(t, b.post("/portal/invite", url.Values{"token": {token}, "password": {"mailed admin password"}}), http.StatusSeeOther)
	wantStatus(t, a.otherBrowser().signIn("mailed@example.com", "mailed admin password"), http.StatusSeeOther)
}

func TestAdminInviteByEmailWithoutMailIsRefused(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/admins")
	r := a.post("/portal/admins", url.Values{"email": {"x@example.com"}, "send_email": {"1"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Email is not available here")
	if n, _ := a.store.CountAdmins(context.Background()); n != 1 {
		t.Fatalf("%d admins, want 1", n)
	}
}

func TestAdminChangeOwnPassword(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/admins")
	r := a.post("/portal/admins/me/password", url.Values{"current_password": {"wrong"}, "new_password": {"a brand new password"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The current password is not correct.")
	wantStatus(t, a.otherBrowser().signIn(testAdminEmail, testAdminPassword), http.StatusSeeOther)

	r = a.post("/portal/admins/me/password", url.Values{"current_password": {testAdminPassword}, "new_password": {"short"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	r = a.post("/portal/admins/me/password", url.Values{"current_password": {testAdminPassword}, "new_password": {"a brand new password"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, a.otherBrowser().signIn(testAdminEmail, testAdminPassword), http.StatusUnauthorized)
	wantStatus(t, a.otherBrowser().signIn(testAdminEmail, "a brand new password"), http.StatusSeeOther)
}

// enrolTOTP enrols the signed-in admin through the pages and returns the
// TOTP secret and the recovery codes.
func enrolTOTP(t *testing.T, a *testApp, now func(time.Duration) time.Time) (string, []string) {
	t.Helper()
	r := a.get("/portal/admins/me/2fa")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, `src="data:image/png;base64,`)
	m := totpSecretRE.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no TOTP secret on the page:\n%s", r.Body)
	}
	secret := m[1]
	// A wrong code leaves two-factor off.
	r = a.post("/portal/admins/me/2fa", url.Values{"code": {"000000"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "That code is not correct.", secret)
	code, _ := totp.GenerateCode(secret, now(0))
	r = a.post("/portal/admins/me/2fa", url.Values{"code": {code}})
	wantStatus(t, r, http.StatusOK)
	var codes []string
	for _, c := range recoveryCodeRE.FindAllStringSubmatch(r.Body, -1) {
		codes = append(codes, c[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	// They are shown once: the page no longer has them.
	if r = a.get("/portal/admins/me/2fa"); strings.Contains(r.Body, codes[0]) || !strings.Contains(r.Body, "is <strong>on</strong>") {
		t.Fatal("recovery codes shown again, or two-factor not on")
	}
	return secret, codes
}

func TestAdminTOTPSignIn(t *testing.T) {
	a := newTestApp(t)
	now := movableClock(a)
	a.loginAdmin()
	secret, codes := enrolTOTP(t, a, now)

	b := a.otherBrowser()
	r := b.signIn(testAdminEmail, testAdminPassword)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/login/2fa" {
		t.Fatalf("after the password: to %q", r.Location)
	}
	// The password alone does not sign in.
	if r = b.get("/portal/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
		t.Fatalf("portal after the password only: %d %q", r.Status, r.Location)
	}
	wantStatus(t, b.get("/portal/login/2fa"), http.StatusOK)
	r = b.post("/portal/login/2fa", url.Values{"code": {"123456"}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.Body, "That code is not correct.")
	// The code used to enrol is refused: each code works once.
	used, _ := totp.GenerateCode(secret, now(0))
	r = b.post("/portal/login/2fa", url.Values{"code": {used}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.Body, "already been used")
	fresh, _ := totp.GenerateCode(secret, now(30*time.Second))
	r = b.post("/portal/login/2fa", url.Values{"code": {fresh}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/users" {
		t.Fatalf("after the code: to %q", r.Location)
	}
	wantStatus(t, b.get("/portal/users"), http.StatusOK)

	// A recovery code signs in once.
	c := a.otherBrowser()
	c.signIn(testAdminEmail, testAdminPassword)
	c.get("/portal/login/2fa")
	wantStatus(t, c.post("/portal/login/2fa", url.Values{"code": {strings.ToUpper(codes[0])}}), http.StatusSeeOther)
	d := a.otherBrowser()
	d.signIn(testAdminEmail, testAdminPassword)
	d.get("/portal/login/2fa")
	wantStatus(t, d.post("/portal/login/2fa", url.Values{"code": {codes[0]}}), http.StatusUnauthorized)

}

func TestAdminTOTPWrongCodesThrottled(t *testing.T) {
	a := newTestApp(t)
	now := movableClock(a)
	a.loginAdmin()
	secret, _ := enrolTOTP(t, a, now)
	// Wrong codes are throttled per admin: after 5 even the right code is refused.
	e := a.otherBrowser()
	e.signIn(testAdminEmail, testAdminPassword)
	e.get("/portal/login/2fa")
	for i := 0; i < 5; i++ {
		wantStatus(t, e.post("/portal/login/2fa", url.Values{"code": {"000000"}}), http.StatusUnauthorized)
	}
	good, _ := totp.GenerateCode(secret, now(30*time.Second))
	r := e.post("/portal/login/2fa", url.Values{"code": {good}})
	wantStatus(t, r, http.StatusTooManyRequests)
	wantContains(t, r.Body, "Too many wrong codes")
	// The sign-in is dropped: the code page sends back to the password.
	if r = e.get("/portal/login/2fa"); r.Status != http.StatusSeeOther || r.Location != "/portal/login" {
		t.Fatalf("code page after the throttle: %d %q", r.Status, r.Location)
	}
}

func TestAdminTOTPDisableAndRenew(t *testing.T) {
	a := newTestApp(t)
	now := movableClock(a)
	a.loginAdmin()
	_, codes := enrolTOTP(t, a, now)

	r := a.post("/portal/admins/me/2fa/recovery-codes", url.Values{"password": {"wrong"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	r = a.post("/portal/admins/me/2fa/recovery-codes", url.Values{"password": {testAdminPassword}})
	wantStatus(t, r, http.StatusOK)
	renewed := recoveryCodeRE.FindAllStringSubmatch(r.Body, -1)
	if len(renewed) != 10 || renewed[0][1] == codes[0] {
		t.Fatalf("renewed codes: %v", renewed)
	}
	b := a.otherBrowser()
	b.signIn(testAdminEmail, testAdminPassword)
	b.get("/portal/login/2fa")
	wantStatus(t, b.post("/portal/login/2fa", url.Values{"code": {codes[1]}}), http.StatusUnauthorized)

	r = a.post("/portal/admins/me/2fa/disable", url.Values{"password": {"wrong"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The password is not correct.")
	r = a.post("/portal/admins/me/2fa/disable", url.Values{"password": {testAdminPassword}})
	wantStatus(t, r, http.StatusSeeOther)
	r = a.otherBrowser().signIn(testAdminEmail, testAdminPassword)
	if r.Status != http.StatusSeeOther || r.Location != "/portal/users" {
		t.Fatalf("sign-in after turning two-factor off: %d %q", r.Status, r.Location)
	}
}

func TestRequire2FASendsAdminsToEnrol(t *testing.T) {
	a := newTestApp(t)
	now := movableClock(a)
	a.loginAdmin()
	a.get("/portal/admins")
	wantStatus(t, a.post("/portal/admins/settings", url.Values{"require_2fa": {"1"}}), http.StatusSeeOther)
	r := a.get("/portal/users")
	if r.Status != http.StatusSeeOther || r.Location != "/portal/admins/me/2fa" {
		t.Fatalf("portal page without two-factor: %d %q", r.Status, r.Location)
	}
	r = a.get("/portal/admins/me/2fa")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "required for every admin")
	wantStatus(t, a.post("/portal/users", url.Values{"email": {"u@example.com"}}), http.StatusForbidden)
	if n := a.countUsers(); n != 0 {
		t.Fatalf("%d users created while enrolment was required", n)
	}
	enrolTOTP(t, a, now)
	wantStatus(t, a.get("/portal/users"), http.StatusOK)

	// Turned off again: an admin without two-factor uses the portal.
	a.get("/portal/admins")
	wantStatus(t, a.post("/portal/admins/settings", url.Values{}), http.StatusSeeOther)
	if on, err := a.acct.Require2FA(context.Background()); err != nil || on {
		t.Fatalf("require 2FA after turning it off: %v %v", on, err)
	}
	if _, err := a.acct.DisableAdmin2FA(context.Background(), account.SystemActor, testAdminEmail); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, a.get("/portal/users"), http.StatusOK)
}

func TestAdminRemovesThemselvesWhenOthersExist(t *testing.T) {
	a := newTestApp(t)
	if _, err := a.acct.CreateAdmin(context.Background(), account.SystemActor, "other@example.com", "other admin password"); err != nil {
		t.Fatal(err)
	}
	a.loginAdmin()
	me := adminByEmail(t, a.store, testAdminEmail)
	a.get("/portal/admins")
	r := a.post("/portal/admins/"+me.ID+"/remove", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/portal/login" {
		t.Fatalf("removing oneself: %d %q", r.Status, r.Location)
	}
	if r = a.get("/portal/users"); r.Status != http.StatusSeeOther {
		t.Fatalf("still signed in after removing oneself: %d", r.Status)
	}
	if _, err := a.store.AdminByEmail(context.Background(), testAdminEmail); err == nil {
		t.Fatal("admin still exists")
	}
	// The other admin is now the last one and cannot be removed.
	o := a.otherBrowser()
	wantStatus(t, o.signIn("other@example.com", "other admin password"), http.StatusSeeOther)
	other := adminByEmail(t, a.store, "other@example.com")
	o.get("/portal/admins")
	wantStatus(t, o.post("/portal/admins/"+other.ID+"/remove", nil), http.StatusConflict)
}

func TestAdminsPagesNeedSignIn(t *testing.T) {
	a := newTestApp(t)
	for _, p := range []string{"/portal/admins", "/portal/admins/me/2fa"} {
		r := a.get(p)
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
			t.Errorf("GET %s signed out: %d %q", p, r.Status, r.Location)
		}
	}
	a.get("/portal/login")
	for _, p := range []string{"/portal/admins", "/portal/admins/settings", "/portal/admins/me/password", "/portal/admins/me/2fa"} {
		if r := a.post(p, url.Values{}); r.Status != http.StatusUnauthorized {
			t.Errorf("POST %s signed out: %d", p, r.Status)
		}
	}
	// The code page without a password step goes back to the sign-in.
	if r := a.get("/portal/login/2fa"); r.Status != http.StatusSeeOther || r.Location != "/portal/login" {
		t.Errorf("code page without a pending sign-in: %d %q", r.Status, r.Location)
	}
	wantStatus(t, a.get("/portal/invite?token=nope"), http.StatusForbidden)
}

func TestSignOutAllSessionsAndPasswordChangeEndOtherSessions(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	b := a.otherBrowser()
	wantStatus(t, b.signIn(testAdminEmail, testAdminPassword), http.StatusSeeOther)
	c := a.otherBrowser()
	wantStatus(t, c.signIn(testAdminEmail, testAdminPassword), http.StatusSeeOther)
	r := a.get("/portal/admins")
	if !regexp.MustCompile(`<td class="admin-sessions">3</td>`).MatchString(r.Body) {
		t.Fatalf("sessions column does not show 3:\n%s", r.Body)
	}

	// A password change keeps this session and ends the others.
	wantStatus(t, a.post("/portal/admins/me/password", url.Values{"current_password": {testAdminPassword}, "new_password": {"a brand new password"}}), http.StatusSeeOther)
	wantStatus(t, a.get("/portal/users"), http.StatusOK)
	if r = b.get("/portal/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
		t.Fatalf("other session after a password change: %d %q", r.Status, r.Location)
	}

	// "Sign out all sessions" ends every one, this one included.
	wantStatus(t, c.signIn(testAdminEmail, "a brand new password"), http.StatusSeeOther)
	a.get("/portal/admins")
	r = a.post("/portal/admins/me/sessions/revoke", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/login" {
		t.Fatalf("after sign out all: to %q", r.Location)
	}
	for name, x := range map[string]*testApp{"this": a, "other": c} {
		if r = x.get("/portal/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
			t.Errorf("%s session after sign out all: %d %q", name, r.Status, r.Location)
		}
	}
	n, err := a.acct.CountAdminSessions(context.Background(), adminByEmail(t, a.store, testAdminEmail).ID)
	if err != nil || n != 0 {
		t.Fatalf("%d sessions left (%v), want 0", n, err)
	}
}

func TestAdminTwoFactorEventsInTheAuditLog(t *testing.T) {
	a, _ := newEventsApp(t)
	if err := a.acct.SetSecret([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	now := movableClock(a)
	a.loginAdmin()
	secret, _ := enrolTOTP(t, a, now)
	b := a.otherBrowser()
	b.signIn(testAdminEmail, testAdminPassword)
	b.get("/portal/login/2fa")
	wantStatus(t, b.post("/portal/login/2fa", url.Values{"code": {"000000"}}), http.StatusUnauthorized)
	code, _ := totp.GenerateCode(secret, now(30*time.Second))
	wantStatus(t, b.post("/portal/login/2fa", url.Values{"code": {code}}), http.StatusSeeOther)

	evs, err := a.store.ListEvents(context.Background(), store.ListEventsParams{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	failedWrongCode := false
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Type == "admin.signin.failed" && strings.Contains(string(e.Payload), `"reason":"wrong_code"`) {
			failedWrongCode = true
		}
	}
	if !failedWrongCode {
		t.Errorf("no admin.signin.failed with reason wrong_code; events: %v", types)
	}
	// Newest first: the sign-in that ended with the good code is the latest.
	if len(types) == 0 || types[0] != "admin.signin.succeeded" {
		t.Errorf("latest event is not admin.signin.succeeded: %v", types)
	}
	if !strings.Contains(strings.Join(types, " "), "admin.2fa.enabled") {
		t.Errorf("no admin.2fa.enabled event: %v", types)
	}
}

func TestAdminReinviteReplacesTheLink(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/admins")
	r := a.post("/portal/admins", url.Values{"email": {"late@example.com"}})
	wantStatus(t, r, http.StatusCreated)
	first := html.UnescapeString(inviteLinkRE.FindStringSubmatch(r.Body)[1])
	late := adminByEmail(t, a.store, "late@example.com")
	wantContains(t, r.Body, `action="/portal/admins/`+late.ID+`/invite"`)

	r = a.post("/portal/admins/"+late.ID+"/invite", url.Values{"send_email": {"0"}})
	wantStatus(t, r, http.StatusCreated)
	second := html.UnescapeString(inviteLinkRE.FindStringSubmatch(r.Body)[1])
	if second == first {
		t.Fatal("the new link is the old one")
	}
	b := a.otherBrowser()
	wantStatus(t, b.get(strings.TrimPrefix(first, "http://localhost")), http.StatusForbidden)
	wantStatus(t, b.get(strings.TrimPrefix(second, "http://localhost")), http.StatusOK)
	token := strings.TrimPrefix(second, "http://localhost/portal/invite?token=")
	wantStatus(t, b.post("/portal/invite", url.Values{"token": {token}, "password": {"late admin password"}}), http.StatusSeeOther)

	// Once they have a password there is nothing to re-send.
	a.get("/portal/admins")
	r = a.post("/portal/admins/"+late.ID+"/invite", url.Values{"send_email": {"0"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "has already chosen a password")
	wantStatus(t, a.post("/portal/admins/nope/invite", url.Values{"send_email": {"0"}}), http.StatusNotFound)
}

func TestAdminCodeAttemptsLimitedPerAddress(t *testing.T) {
	a := newTestApp(t)
	ctx := context.Background()
	b := a.otherBrowser()
	attempts := 0
	for i := 0; i < 3; i++ {
		email := []string{"one@example.com", "two@example.com", "three@example.com"}[i]
		adm, err := a.acct.CreateAdmin(ctx, account.SystemActor, email, "an admin password")
		if err != nil {
			t.Fatal(err)
		}
		e, err := a.acct.BeginTOTPEnrolment(ctx, adm.ID, "Latchkey")
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(e.Secret, time.Now())
		if _, err := a.acct.ConfirmTOTPEnrolment(ctx, account.SystemActor, adm.ID, code); err != nil {
			t.Fatal(err)
		}
		if r := b.signIn(email, "an admin password"); r.Location != "/portal/login/2fa" {
			t.Fatalf("%s: sign-in to %q", email, r.Location)
		}
		b.get("/portal/login/2fa")
		// 4 wrong codes each: under the per-admin limit of 5.
		for j := 0; j < 4 && attempts < adminCodesPerMinute; j++ {
			wantStatus(t, b.post("/portal/login/2fa", url.Values{"code": {"000000"}}), http.StatusUnauthorized)
			attempts++
		}
	}
	r := b.post("/portal/login/2fa", url.Values{"code": {"000000"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	wantContains(t, r.Body, "Too many attempts. Wait a minute")
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on the limited answer")
	}
}

func TestAdminCodeStepAfterTwoFactorTurnedOffStartsAgain(t *testing.T) {
	a := newTestApp(t)
	now := movableClock(a)
	a.loginAdmin()
	enrolTOTP(t, a, now)
	b := a.otherBrowser()
	b.signIn(testAdminEmail, testAdminPassword)
	b.get("/portal/login/2fa")
	// The operator turns two-factor off while the code page is open.
	if was, err := a.acct.DisableAdmin2FA(context.Background(), account.SystemActor, testAdminEmail); err != nil || !was {
		t.Fatalf("disable: %v %v", was, err)
	}
	r := b.post("/portal/login/2fa", url.Values{"code": {"123456"}})
	if r.Status != http.StatusSeeOther || r.Location != "/portal/login" {
		t.Fatalf("code after two-factor was turned off: %d %q", r.Status, r.Location)
	}
	if r = b.get("/portal/users"); r.Status != http.StatusSeeOther {
		t.Fatalf("signed in without a password after the code step: %d", r.Status)
	}
	r = b.signIn(testAdminEmail, testAdminPassword)
	if r.Location != "/portal/users" {
		t.Fatalf("sign-in with two-factor off: to %q", r.Location)
	}
}
