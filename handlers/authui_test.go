package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
)

const (
	userPW  = "first-Passw0rd"
	userPW2 = "second-Passw0rd"
)

func TestAuthSignInSuccessNewSessionID(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("Carol@Example.com", userPW, false)
	b := a.browser()
	wantStatus(t, b.get("/login"), http.StatusOK)
	before := cookieValue(b, userCookie)
	r := signIn(b, "  carol@EXAMPLE.com ", userPW, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/settings" {
		t.Fatalf("redirect to %q, want /settings", r.Location)
	}
	after := cookieValue(b, userCookie)
	if after == "" || after == before {
		t.Fatal("the end-user cookie was not replaced at sign-in")
	}
	if cookieValue(b, portalCookie) != "" {
		t.Error("end-user sign-in set the portal cookie")
	}
	page := b.get("/settings")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Carol@example.com", "Change password", "Sign out", `data-check-url="/password/check"`)
	if got := a.sessions(u.ID); got != 1 {
		t.Fatalf("%d sessions, want 1", got)
	}
	// Signing in again from the same browser (a stale sign-in tab)
	// replaces the session row.
	r = b.get("/login")
	if r.Status != http.StatusSeeOther || r.Location != "/settings" {
		t.Fatalf("GET /login when signed in: %d %q", r.Status, r.Location)
	}
	wantStatus(t, b.post("/login", url.Values{"login_id": {"carol@example.com"}, "password": {userPW}}), http.StatusSeeOther)
	if got := a.sessions(u.ID); got != 1 {
		t.Fatalf("%d sessions after a second sign-in, want 1 (old one ended)", got)
	}
	if a.user(u.ID).LastLoginAt == nil {
		t.Error("last login not recorded")
	}
	evs := a.events.ofType("user.authenticated")
	if len(evs) != 2 || evs[0].Actor.Kind != "user" || evs[0].Actor.ID != u.ID || evs[0].Actor.TriggeredBy != "user" {
		t.Fatalf("user.authenticated events: %+v", evs)
	}
	if strings.Contains(evs[0].JSON, userPW) || strings.Contains(evs[0].JSON, "bcrypt") {
		t.Error("event payload carries the password or its hash")
	}
	// The portal does not accept the end-user session.
	r = b.get("/portal/users")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Location, "/portal/login") {
		t.Errorf("portal with a user session: redirect %q", r.Location)
	}
}

func TestAuthSignInUsername(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("victor_99", userPW, false)
	r := signIn(a.browser(), "  Victor_99 ", userPW, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/settings" {
		t.Fatalf("username sign-in: %q", r.Location)
	}
}

func TestAuthSignInSafeNext(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("dave@example.com", userPW, false)
	for next, want := range map[string]string{"/settings?tab=1": "/settings?tab=1", "//evil.example/": "/settings", "https://evil.example/": "/settings", `/\evil`: "/settings"} {
		b := a.browser()
		r := signIn(b, "dave@example.com", userPW, next)
		wantStatus(t, r, http.StatusSeeOther)
		if r.Location != want {
			t.Errorf("next %q: redirect %q, want %q", next, r.Location, want)
		}
	}
}

func TestAuthSignInWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("erin@example.com", userPW, false)
	b := a.browser()
	wrong := signIn(b, "erin@example.com", "not-the-password", "")
	wantStatus(t, wrong, http.StatusUnauthorized)
	unknown := signIn(b, "nobody@example.com", "not-the-password", "")
	wantStatus(t, unknown, http.StatusUnauthorized)
	malformed := signIn(b, "@@", "x", "")
	wantStatus(t, malformed, http.StatusUnauthorized)
	if loginError(wrong.Body) != msgBadCredentials || loginError(unknown.Body) != loginError(wrong.Body) || loginError(malformed.Body) != loginError(wrong.Body) {
		t.Fatalf("messages differ: %q / %q / %q", loginError(wrong.Body), loginError(unknown.Body), loginError(malformed.Body))
	}
	if strings.Contains(wrong.Body, "not-the-password") {
		t.Error("typed password echoed")
	}
	wantContains(t, wrong.Body, `value="erin@example.com"`)
	if a.sessions(u.ID) != 0 {
		t.Error("a session was started by a wrong password")
	}
	l, _ := a.acct.Lockout(context.Background(), u.ID)
	if l == nil || l.Failures != 1 {
		t.Fatalf("lockout after one failure: %+v", l)
	}
	evs := a.events.ofType("authentication.password.failed")
	if len(evs) != 1 || evs[0].UserID != u.ID || evs[0].Actor.Kind != "user" {
		t.Fatalf("failed events: %+v", evs)
	}
	if len(a.events.ofType("user.authenticated")) != 0 {
		t.Error("user.authenticated recorded for a failure")
	}
	// Without the CSRF token the form is refused outright.
	wantStatus(t, b.postRaw("/login", url.Values{"login_id": {"erin@example.com"}, "password": {userPW}}), http.StatusForbidden)
}

func TestAuthSignInDisabled(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("frank@example.com", userPW, false)
	b := a.browser()
	wantStatus(t, signIn(b, "frank@example.com", userPW, ""), http.StatusSeeOther)
	if _, err := a.acct.SetDisabledStatus(context.Background(), account.Actor{Kind: "admin"}, u.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	// The live session dies with the account.
	r := b.get("/settings")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Location, "/login") {
		t.Fatalf("disabled user's /settings: redirect %q", r.Location)
	}
	r = signIn(b, "frank@example.com", userPW, "")
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, loginError(r.Body), "Your account is disabled")
	// A wrong password on a disabled account says nothing about it.
	r = signIn(b, "frank@example.com", "wrong-password", "")
	wantStatus(t, r, http.StatusUnauthorized)
	if loginError(r.Body) != msgBadCredentials {
		t.Errorf("wrong password on a disabled account: %q", loginError(r.Body))
	}
}

func TestAuthLockoutGrowsAndAdminClears(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.LockoutThreshold = 3 })
	u := a.createUser("gina@example.com", userPW, false)
	ctx := context.Background()
	b := a.browser()
	for i := 0; i < 3; i++ {
		wantStatus(t, signIn(b, "gina@example.com", "wrong", ""), http.StatusUnauthorized)
	}
	r := signIn(b, "gina@example.com", userPW, "")
	// Locked: the same status and words as an unknown account, so the
	// lock does not tell a stranger the account exists.
	wantStatus(t, r, http.StatusUnauthorized)
	unknown := signIn(a.browser(), "nobody-here@example.com", userPW, "")
	wantStatus(t, unknown, http.StatusUnauthorized)
	if loginError(r.Body) != msgBadCredentials || loginError(unknown.Body) != loginError(r.Body) {
		t.Fatalf("locked %q, unknown %q", loginError(r.Body), loginError(unknown.Body))
	}
	wantContains(t, loginError(r.Body), "try again later", "Forgot password")
	if a.sessions(u.ID) != 0 {
		t.Fatal("a locked account signed in")
	}
	l, _ := a.acct.Lockout(ctx, u.ID)
	if l == nil || !l.Locked(a.clock.Now()) || l.LockedUntil.Sub(a.clock.Now()) != account.LockBase {
		t.Fatalf("first lock: %+v", l)
	}
	// After the lock ends, three more failures lock for twice as long.
	a.clock.Advance(account.LockBase + time.Second)
	b = a.browser() // a new browser; the per account+IP limiter is per minute of wall time
	a.testApp.client = newJarClient()
	for i := 0; i < 3; i++ {
		wantStatus(t, signIn(b, "gina@example.com", "wrong", ""), http.StatusUnauthorized)
	}
	l, _ = a.acct.Lockout(ctx, u.ID)
	if l == nil || l.LockedUntil.Sub(a.clock.Now()) != 2*account.LockBase {
		t.Fatalf("second lock should be 2x: %+v", l)
	}

	// The admin sees it on the user page and clears it.
	a.loginAdmin()
	page := a.get("/portal/users/" + u.ID)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `id="locked-until"`, "Clear lockout")
	wantStatus(t, a.postRaw("/portal/users/"+u.ID+"/lockout/clear", url.Values{}), http.StatusForbidden)
	if l, _ := a.acct.Lockout(ctx, u.ID); l == nil {
		t.Fatal("clear without CSRF cleared the lockout")
	}
	wantStatus(t, a.post("/portal/users/no-such-user/lockout/clear", nil), http.StatusNotFound)
	a.get("/portal/users/" + u.ID)
	r = a.post("/portal/users/"+u.ID+"/lockout/clear", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if l, err := a.acct.Lockout(ctx, u.ID); err != nil || l != nil {
		t.Fatalf("lockout not cleared: %+v (%v)", l, err)
	}
	page = a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, "Lockout cleared", "No failed sign-in attempts")
	if len(a.events.ofType("user.lockout.cleared")) != 1 {
		t.Error("no user.lockout.cleared event")
	}
	wantStatus(t, signIn(a.browser(), "gina@example.com", userPW, ""), http.StatusSeeOther)
}

// TestAuthLockoutParallel fires 50 wrong passwords at once through the
// real router: the account gets at most the threshold of real tries.
func TestAuthLockoutParallel(t *testing.T) {
	const threshold = 5
	// Real bcrypt cost, so that the 50 requests are all in flight while
	// the first hashes are checked: a counter updated only after the
	// check would let every one of them through.
	a := newAuthAppCost(t, 10, func(p *account.Policy) { p.LockoutThreshold = threshold })
	u := a.createUser("hank@example.com", userPW, false)
	b := a.browser()
	wantStatus(t, b.get("/login"), http.StatusOK)
	form := url.Values{"login_id": {"hank@example.com"}, "password": {"wrong"}, "_csrf": {b.csrf}}
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := b.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// A locked account answers 401 like a wrong password, so the checked
	// passwords are counted by their failure events.
	// (the per account and IP limiter answers 429 past 10 a minute).
	if count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != 50 {
		t.Fatalf("statuses %v, want only 401 and 429", count)
	}
	if n := len(a.events.ofType("authentication.password.failed")); n == 0 || n > threshold {
		t.Fatalf("%d wrong passwords were checked, threshold %d", n, threshold)
	}
	l, _ := a.acct.Lockout(context.Background(), u.ID)
	if !l.Locked(a.clock.Now()) {
		t.Fatalf("account not locked after 50 wrong passwords: %+v (statuses %v)", l, count)
	}
	t.Logf("statuses: %v", count)
}

func TestAuthRateLimitPerIP(t *testing.T) {
	a := newAuthApp(t, nil)
	b := a.browser()
	wantStatus(t, b.get("/login"), http.StatusOK)
	var last response
	for i := 0; i < 61; i++ {
		last = b.post("/login", url.Values{"login_id": {fmt.Sprintf("u%d@example.com", i)}, "password": {"x"}})
	}
	wantStatus(t, last, http.StatusTooManyRequests)
	if last.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestAuthRateLimitPerAccountAndIP(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.LockoutThreshold = 0 })
	u := a.createUser("ivy@example.com", userPW, false)
	b := a.browser()
	for i := 0; i < 10; i++ {
		wantStatus(t, signIn(b, "ivy@example.com", "wrong", ""), http.StatusUnauthorized)
	}
	r := signIn(b, "IVY@example.com", userPW, "")
	wantStatus(t, r, http.StatusTooManyRequests)
	if a.sessions(u.ID) != 0 {
		t.Error("signed in past the per-account limit")
	}
	// Another account from the same IP is not affected.
	a.createUser("jack@example.com", userPW, false)
	wantStatus(t, signIn(b, "jack@example.com", userPW, ""), http.StatusSeeOther)
}

func TestAuthForcedChange(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.HistorySize = 3 })
	u := a.createUser("kim@example.com", userPW, true)
	b := a.browser()
	r := signIn(b, "kim@example.com", userPW, "/settings?from=mail")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/change-password" {
		t.Fatalf("expired password: redirect %q", r.Location)
	}
	restrictedCookie := cookieValue(b, userCookie)
	if len(a.events.ofType("user.authenticated")) != 0 {
		t.Error("user.authenticated before the forced change")
	}
	page := b.get("/change-password")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Password Expired", "Time to change your password.", `name="confirm"`, `data-check-url="/password/check"`)
	// Every other page sends the user back to the step.
	for _, p := range []string{"/settings", "/login", "/forgot-password", "/reset-password/code", "/reset-password?token=x"} {
		r := b.get(p)
		wantStatus(t, r, http.StatusSeeOther)
		if r.Location != "/change-password" {
			t.Errorf("GET %s in a restricted session: redirect %q", p, r.Location)
		}
	}
	b.get("/change-password")
	wantStatus(t, b.post("/settings/password", url.Values{"current_password": {userPW}, "password": {userPW2}, "confirm": {userPW2}}), http.StatusForbidden)
	// The live checklist works from the step.
	chk := b.post("/password/check", url.Values{"password": {"short"}})
	wantStatus(t, chk, http.StatusOK)
	wantContains(t, chk.Body, "PasswordTooShort")

	cases := []struct{ pw, confirm, want string }{
		{userPW, userPW, "Please provide a new password that is different from the previous one."},
		{userPW2, userPW2 + "x", "The passwords do not match."},
		{"short", "short", "at least 8 characters"},
		{"", "", "Enter a new password."},
	}
	for _, c := range cases {
		b.get("/change-password")
		r := b.post("/change-password", url.Values{"password": {c.pw}, "confirm": {c.confirm}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, c.want)
		if !a.user(u.ID).PasswordExpired(a.clock.Now()) {
			t.Fatal("a refused change cleared the expiry")
		}
	}
	b.get("/change-password")
	r = b.post("/change-password", url.Values{"password": {userPW2}, "confirm": {userPW2}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/settings?from=mail" {
		t.Fatalf("after the change: redirect %q, want the page first asked for", r.Location)
	}
	if c := cookieValue(b, userCookie); c == restrictedCookie {
		t.Error("session kept its ID after the change")
	}
	got := a.user(u.ID)
	if got.Password.ExpireAfter != nil || got.Password.SetByAdmin || !a.acct.Hasher().Verify(got.Password.Hash, userPW2) {
		t.Fatalf("password after change: %+v", got.Password)
	}
	if a.sessions(u.ID) != 1 {
		t.Fatalf("%d sessions, want 1", a.sessions(u.ID))
	}
	page = b.get("/settings")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Your new password is set.")
	if len(a.events.ofType("user.password.changed")) != 1 || len(a.events.ofType("user.authenticated")) != 1 {
		t.Error("missing user.password.changed or user.authenticated")
	}
	for _, e := range a.events.ofType("user.password.changed") {
		if strings.Contains(e.JSON, userPW2) {
			t.Error("password in user.password.changed payload")
		}
	}
	// History: the first password cannot come back.
	r = b.post("/settings/password", url.Values{"current_password": {userPW2}, "password": {userPW}, "confirm": {userPW}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "used recently")
	// The old restricted session cannot be replayed.
	if err := a.store.DeleteUserSession(context.Background(), "nothing"); err != nil {
		t.Fatal(err)
	}
	old := a.browser()
	u2, _ := url.Parse(old.srv.URL)
	old.client.Jar.SetCookies(u2, []*http.Cookie{{Name: userCookie, Value: restrictedCookie, Path: "/"}})
	r = old.get("/change-password")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/login" {
		t.Errorf("old restricted cookie: redirect %q", r.Location)
	}
}

func TestAuthMaxAgeForcesChange(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.MaxAgeDays = 30 })
	a.createUser("lee@example.com", userPW, false)
	wantStatus(t, signIn(a.browser(), "lee@example.com", userPW, ""), http.StatusSeeOther)
	a.clock.Advance(31 * 24 * time.Hour)
	r := signIn(a.browser(), "lee@example.com", userPW, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/change-password" {
		t.Fatalf("password older than max age: redirect %q", r.Location)
	}
}

func TestAuthTemporaryPasswordLapses(t *testing.T) {
	a := newAuthApp(t, nil) // TemporaryExpiryDays defaults to 7
	temp := a.createUser("mia@example.com", userPW, true)
	notTemp := a.createUser("ned@example.com", userPW, false)
	// A password the user chose, later flagged by an admin: not temporary.
	flagged := a.createUser("ola@example.com", userPW, false)
	ob := a.browser()
	wantStatus(t, signIn(ob, "ola@example.com", userPW, ""), http.StatusSeeOther)
	ob.get("/settings")
	wantStatus(t, ob.post("/settings/password", url.Values{"current_password": {userPW}, "password": {userPW2}, "confirm": {userPW2}}), http.StatusSeeOther)
	ctx := context.Background()
	a.clock.Advance(6 * 24 * time.Hour)
	if _, err := a.acct.SetPasswordExpired(ctx, account.Actor{Kind: "admin"}, flagged.ID, true); err != nil {
		t.Fatal(err)
	}
	r := signIn(a.browser(), "mia@example.com", userPW, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/change-password" {
		t.Fatalf("temporary password on day 6: %q", r.Location)
	}
	a.clock.Advance(24 * time.Hour)
	r = signIn(a.browser(), "mia@example.com", userPW, "")
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, loginError(r.Body), "temporary password has expired", `href="/forgot-password"`, "Forgot password")
	if a.sessions(temp.ID) != 0 {
		t.Errorf("%d live sessions after a lapsed temporary password", a.sessions(temp.ID))
	}
	// A password that was never temporary signs in fully, to the
	// settings page, not to the change step.
	r = signIn(a.browser(), "ned@example.com", userPW, "")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/settings" {
		t.Errorf("a non-temporary password on day 7 led to %q, want /settings", r.Location)
	}
	if a.sessions(notTemp.ID) != 1 {
		t.Errorf("%d sessions for the non-temporary user, want 1", a.sessions(notTemp.ID))
	}
	r = signIn(a.browser(), "ola@example.com", userPW2, "")
	if r.Location != "/change-password" {
		t.Errorf("a flagged user-chosen password must lead to the change, got %d %q", r.Status, r.Location)
	}

	// With "0 = never", a temporary password only ever asks for a change.
	b := newAuthApp(t, func(p *account.Policy) { p.TemporaryExpiryDays = 0 })
	b.createUser("pat@example.com", userPW, true)
	b.clock.Advance(400 * 24 * time.Hour)
	r = signIn(b.browser(), "pat@example.com", userPW, "")
	if r.Status != http.StatusSeeOther || r.Location != "/change-password" {
		t.Errorf("TemporaryExpiryDays=0: %d %q", r.Status, r.Location)
	}
}

func TestAuthSettingsChangePassword(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("quinn@example.com", userPW, false)
	b1, b2 := a.browser(), a.browser()
	wantStatus(t, signIn(b1, "quinn@example.com", userPW, ""), http.StatusSeeOther)
	wantStatus(t, signIn(b2, "quinn@example.com", userPW, ""), http.StatusSeeOther)
	if a.sessions(u.ID) != 2 {
		t.Fatalf("%d sessions", a.sessions(u.ID))
	}
	cases := []struct {
		cur, pw, confirm string
		want             string
	}{
		{"wrong", userPW2, userPW2, "The current password is incorrect."},
		{userPW, userPW2, "other", "The passwords do not match."},
		{userPW, "short", "short", "at least 8 characters"},
		{userPW, userPW, userPW, "Please provide a new password that is different from the previous one."},
	}
	for _, c := range cases {
		b1.get("/settings")
		r := b1.post("/settings/password", url.Values{"current_password": {c.cur}, "password": {c.pw}, "confirm": {c.confirm}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, c.want)
	}
	if a.sessions(u.ID) != 2 || !a.acct.Hasher().Verify(a.user(u.ID).Password.Hash, userPW) {
		t.Fatal("a refused change changed something")
	}
	b1.get("/settings")
	r := b1.post("/settings/password", url.Values{"current_password": {userPW}, "password": {userPW2}, "confirm": {userPW2}})
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, b1.get("/settings").Body, "Your password has been changed")
	if a.sessions(u.ID) != 1 {
		t.Fatalf("%d sessions after the change, want 1", a.sessions(u.ID))
	}
	r = b2.get("/settings")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/login?next=%2Fsettings" {
		t.Errorf("other session after the change: redirect %q", r.Location)
	}
	// Sign out.
	b1.get("/settings")
	r = b1.post("/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, b1.get("/login").Body, "You have signed out.")
	if a.sessions(u.ID) != 0 {
		t.Error("sign-out left the session")
	}
	wantStatus(t, b1.get("/settings"), http.StatusSeeOther)
	wantStatus(t, signIn(b1, "quinn@example.com", userPW, ""), http.StatusUnauthorized)
	wantStatus(t, signIn(b1, "quinn@example.com", userPW2, ""), http.StatusSeeOther)
	// Without a session, changing the password is refused.
	wantStatus(t, a.browser().post("/settings/password", url.Values{"_csrf": {"x"}}), http.StatusForbidden)
}

var codeRE = regexp.MustCompile(`^[0-9]{6}$`)

func TestAuthForgotPasswordCode(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.LockoutThreshold = 3 })
	u := a.createUser("rose@example.com", userPW, true)
	a.createUser("noemail", userPW, false)
	ctx := context.Background()
	// Lock the account and sign in elsewhere first: the reset must undo both.
	signedIn := a.browser()
	wantStatus(t, signIn(signedIn, "rose@example.com", userPW, ""), http.StatusSeeOther) // restricted session
	for i := 0; i < 3; i++ {
		signIn(a.browser(), "rose@example.com", "wrong", "")
	}

	b := a.browser()
	ask := func(loginID string) response {
		b.get("/forgot-password")
		return b.post("/forgot-password", url.Values{"login_id": {loginID}})
	}
	known := ask("Rose@example.com")
	wantStatus(t, known, http.StatusSeeOther)
	if a.mailer.forgotCount() != 1 {
		t.Fatalf("%d forgot mails", a.mailer.forgotCount())
	}
	m := a.mailer.lastForgot(t)
	if m.To != "rose@example.com" || !codeRE.MatchString(m.Code) || !strings.HasPrefix(m.Link, "http://localhost/reset-password?token=") ||
		m.CodeTTL != 5*time.Minute || m.LinkTTL != 20*time.Minute {
		t.Fatalf("mail: %+v", m)
	}
	// A username-only account is told plainly it has nowhere to get a code.
	nt := ask("noemail")
	wantStatus(t, nt, http.StatusUnprocessableEntity)
	wantContains(t, nt.Body, "no email address or phone number to send a code to", "Contact an administrator")
	// Unknown and cooldown answers look the same and send nothing.
	for _, id := range []string{"nobody@example.com", "rose@example.com"} {
		r := ask(id)
		wantStatus(t, r, http.StatusSeeOther)
		if !strings.HasPrefix(r.Location, "/reset-password/code?") {
			t.Errorf("%s: redirect %q", id, r.Location)
		}
	}
	if a.mailer.forgotCount() != 1 {
		t.Fatalf("%d forgot mails, want 1 (unknown, no email, cooldown)", a.mailer.forgotCount())
	}
	page := b.get(known.Location)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "If an account with this login ID has an email address", `value="Rose@example.com"`)
	wantStatus(t, ask(""), http.StatusUnprocessableEntity)

	// Nothing plaintext at rest.
	var codeHash, linkHash string
	if err := a.store.Direct().QueryRow(`SELECT code_hash, link_hash FROM password_resets WHERE user_id = ?`, u.ID).Scan(&codeHash, &linkHash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(codeHash, m.Code) || strings.Contains(m.Link, linkHash) {
		t.Fatal("code or link stored in the clear")
	}

	submit := func(loginID, code, pw, confirm string) response {
		b.get("/reset-password/code?login_id=" + url.QueryEscape(loginID))
		return b.post("/reset-password/code", url.Values{"login_id": {loginID}, "code": {code}, "password": {pw}, "confirm": {confirm}})
	}
	wrongCode := "000000"
	if m.Code == wrongCode {
		wrongCode = "111111"
	}
	r := submit("rose@example.com", wrongCode, userPW2, userPW2)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The code is incorrect or has expired.")
	r = submit("nobody@example.com", m.Code, userPW2, userPW2)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The code is incorrect or has expired.")
	// A bad new password keeps the code usable.
	wantContains(t, submit("rose@example.com", m.Code, userPW2, "nope").Body, "The passwords do not match.")
	wantContains(t, submit("rose@example.com", m.Code, "short", "short").Body, "at least 8 characters")
	wantContains(t, submit("rose@example.com", m.Code, userPW, userPW).Body, "different from the previous one")

	r = submit("rose@example.com", m.Code, userPW2, userPW2)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/login" {
		t.Fatalf("after reset: %q", r.Location)
	}
	got := a.user(u.ID)
	if got.Password.ExpireAfter != nil || !a.acct.Hasher().Verify(got.Password.Hash, userPW2) {
		t.Fatalf("password after reset: %+v", got.Password)
	}
	if a.sessions(u.ID) != 0 {
		t.Error("the reset left sessions")
	}
	if l, err := a.acct.Lockout(ctx, u.ID); err != nil || l != nil {
		t.Errorf("the reset left the lockout: %+v (%v)", l, err)
	}
	if len(a.events.ofType("user.password.changed")) != 1 {
		t.Error("no user.password.changed")
	}
	// Used once only.
	wantContains(t, submit("rose@example.com", m.Code, "third-Passw0rd", "third-Passw0rd").Body, "The code is incorrect or has expired.")
	wantStatus(t, signIn(a.browser(), "rose@example.com", userPW2, ""), http.StatusSeeOther)
	r = signedIn.get("/change-password")
	if r.Location != "/login" {
		t.Errorf("the old restricted session survived the reset: %d %q", r.Status, r.Location)
	}
}

func TestAuthForgotPasswordCodeExpiresAndBurns(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("sam@example.com", userPW, false)
	b := a.browser()
	ask := func() account.ForgotPasswordMail {
		b.get("/forgot-password")
		wantStatus(t, b.post("/forgot-password", url.Values{"login_id": {"sam@example.com"}}), http.StatusSeeOther)
		return a.mailer.lastForgot(t)
	}
	submit := func(code string) response {
		b.get("/reset-password/code")
		return b.post("/reset-password/code", url.Values{"login_id": {"sam@example.com"}, "code": {code}, "password": {userPW2}, "confirm": {userPW2}})
	}
	m := ask()
	a.clock.Advance(5*time.Minute + time.Second)
	wantContains(t, submit(m.Code).Body, "The code is incorrect or has expired.")
	// A new request after the cooldown supersedes the old one.
	m2 := ask()
	if m2.Code == m.Code && m2.Link == m.Link {
		t.Fatal("no new mail after the cooldown")
	}
	if m2.Code != m.Code {
		wantContains(t, submit(m.Code).Body, "The code is incorrect or has expired.")
	}
	// Five wrong codes burn the request, even for the right code after.
	wrong := "000000"
	if m2.Code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 5; i++ {
		submit(wrong)
	}
	r := submit(m2.Code)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The code is incorrect or has expired.")
	if !a.acct.Hasher().Verify(a.user(u.ID).Password.Hash, userPW) {
		t.Error("password changed by a burnt code")
	}
}

func TestAuthForgotPasswordLink(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("tia@example.com", userPW, false)
	b := a.browser()
	b.get("/forgot-password")
	b.post("/forgot-password", url.Values{"login_id": {"tia@example.com"}})
	m := a.mailer.lastForgot(t)
	path := strings.TrimPrefix(m.Link, "http://localhost")
	// Opening the link (a mail scanner does) uses nothing.
	for i := 0; i < 3; i++ {
		page := a.browser().get(path)
		wantStatus(t, page, http.StatusOK)
		wantContains(t, page.Body, `action="/reset-password"`, "Set new password")
	}
	// The link outlives the code (20 minutes, not 5).
	a.clock.Advance(10 * time.Minute)
	token := strings.TrimPrefix(path, "/reset-password?token=")
	token, _ = url.QueryUnescape(token)
	b.get(path)
	r := b.post("/reset-password", url.Values{"token": {token}, "password": {userPW2}, "confirm": {"x"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The passwords do not match.")
	r = b.post("/reset-password", url.Values{"token": {token}, "password": {userPW2}, "confirm": {userPW2}})
	wantStatus(t, r, http.StatusSeeOther)
	if !a.acct.Hasher().Verify(a.user(u.ID).Password.Hash, userPW2) {
		t.Fatal("link reset did not set the password")
	}
	r = b.get(path)
	wantStatus(t, r, http.StatusGone)
	wantContains(t, r.Body, "already been used")
	b.get("/login")
	wantStatus(t, b.post("/reset-password", url.Values{"token": {token}, "password": {"third-Passw0rd"}, "confirm": {"third-Passw0rd"}}), http.StatusGone)
	wantStatus(t, b.get("/reset-password?token=made-up"), http.StatusGone)

	// An unused link dies after 20 minutes.
	a.clock.Advance(time.Minute)
	b.get("/forgot-password")
	b.post("/forgot-password", url.Values{"login_id": {"tia@example.com"}})
	m2 := a.mailer.lastForgot(t)
	a.clock.Advance(20*time.Minute + time.Second)
	wantStatus(t, b.get(strings.TrimPrefix(m2.Link, "http://localhost")), http.StatusGone)
}

func TestAuthPasswordCheckEndpoint(t *testing.T) {
	a := newAuthApp(t, nil)
	b := a.browser()
	wantStatus(t, b.get("/forgot-password"), http.StatusOK)
	wantStatus(t, b.postRaw("/password/check", url.Values{"password": {"x"}}), http.StatusForbidden)
	r := b.post("/password/check", url.Values{"password": {"short"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, `"failing":["PasswordTooShort"]`)
	for i := 0; i < 119; i++ {
		b.post("/password/check", url.Values{"password": {"long-enough"}})
	}
	wantStatus(t, b.post("/password/check", url.Values{"password": {"long-enough"}}), http.StatusTooManyRequests)
}

func TestPortalDisableEnable(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("uma@example.com", userPW, false)
	// Not an admin: refused.
	anon := a.browser()
	anon.get("/portal/login")
	wantStatus(t, anon.post("/portal/users/"+u.ID+"/disable", nil), http.StatusUnauthorized)
	a.loginAdmin()
	page := a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, `action="/portal/users/`+u.ID+`/disable"`, "No failed sign-in attempts")
	wantStatus(t, a.postRaw("/portal/users/"+u.ID+"/disable", url.Values{}), http.StatusForbidden)
	if a.user(u.ID).IsDisabled {
		t.Fatal("disabled without CSRF")
	}
	r := a.post("/portal/users/"+u.ID+"/disable", url.Values{"reason": {strings.Repeat("x", 501)}, "confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	if a.user(u.ID).IsDisabled {
		t.Fatal("disabled with a too-long reason")
	}
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "at most 500 characters")
	// Without confirm=yes (no JS), a confirm page asks first and nothing changes.
	r = a.post("/portal/users/"+u.ID+"/disable", url.Values{"reason": {"left the company"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "Disable "+u.Email()+"?", `name="confirm" value="yes"`, `name="reason" value="left the company"`)
	if a.user(u.ID).IsDisabled {
		t.Fatal("disabled before the confirm")
	}
	r = a.post("/portal/users/"+u.ID+"/disable", url.Values{"reason": {"left the company"}, "confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	page = a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, "User disabled", "left the company", `action="/portal/users/`+u.ID+`/enable"`)
	wantStatus(t, signIn(a.browser(), "uma@example.com", userPW, ""), http.StatusForbidden)
	wantStatus(t, a.post("/portal/users/"+u.ID+"/enable", nil), http.StatusSeeOther)
	if a.user(u.ID).IsDisabled {
		t.Fatal("still disabled")
	}
	wantStatus(t, signIn(a.browser(), "uma@example.com", userPW, ""), http.StatusSeeOther)
	a.get("/portal/users")
	wantStatus(t, a.post("/portal/users/nope/enable", nil), http.StatusNotFound)
}
