package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"latchkey/account"
)

// forgotFlow drives the forgot-password pages of one browser.
type forgotFlow struct {
	a *authApp
	b *testApp
}

func (f forgotFlow) ask(loginID string) account.ForgotPasswordMail {
	f.a.t.Helper()
	f.b.get("/forgot-password")
	wantStatus(f.a.t, f.b.post("/forgot-password", url.Values{"login_id": {loginID}}), http.StatusSeeOther)
	return f.a.mailer.lastForgot(f.a.t)
}

func (f forgotFlow) code(loginID, code, pw string) response {
	f.b.get("/reset-password/code")
	return f.b.post("/reset-password/code", url.Values{"login_id": {loginID}, "code": {code}, "password": {pw}, "confirm": {pw}})
}

func (f forgotFlow) link(link, pw string) response {
	u, _ := url.Parse(link)
	f.b.get("/reset-password?" + u.RawQuery)
	return f.b.post("/reset-password", url.Values{"token": {u.Query().Get("token")}, "password": {pw}, "confirm": {pw}})
}

func otherCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

// TestResetCodesCappedPerDay: five wrong codes burn a request, but a new
// request every minute bought five more; now an account gets
// MaxDailyCodeFailures wrong codes a day across requests, then no code
// works (the link still does) until the day has passed.
func TestResetCodesCappedPerDay(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("tess@example.com", userPW, false)
	f := forgotFlow{a, a.browser()}
	for round := 0; round < account.MaxDailyCodeFailures/5; round++ {
		m := f.ask("tess@example.com")
		for i := 0; i < 5; i++ {
			wantStatus(t, f.code("tess@example.com", otherCode(m.Code), userPW2), http.StatusUnprocessableEntity)
		}
		a.clock.Advance(account.ResetCooldown + time.Second)
	}
	m := f.ask("tess@example.com")
	r := f.code("tess@example.com", m.Code, userPW2)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The code is incorrect or has expired.")
	if !a.acct.Hasher().Verify(a.user(a.userID("tess@example.com")).Password.Hash, userPW) {
		t.Fatal("a code past the daily cap changed the password")
	}
	// The emailed link is not a guessable secret and still works.
	wantStatus(t, f.link(m.Link, userPW2), http.StatusSeeOther)

	// A day later, codes work again.
	a.clock.Advance(account.ResetCodeWindow)
	m = f.ask("tess@example.com")
	wantStatus(t, f.code("tess@example.com", m.Code, "third-Passw0rd"), http.StatusSeeOther)
}

// TestStrangersRequestKeepsUsersLink: anyone may ask for a reset of any
// login ID; that must not cancel the link the user already has.
func TestStrangersRequestKeepsUsersLink(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("uma@example.com", userPW, false)
	user := forgotFlow{a, a.browser()}
	mine := user.ask("uma@example.com")
	a.clock.Advance(account.ResetCooldown + time.Second)
	stranger := forgotFlow{a, a.browser()}
	theirs := stranger.ask("uma@example.com")
	if theirs.Link == mine.Link {
		t.Fatal("the stranger's request sent no new mail")
	}
	wantStatus(t, user.link(mine.Link, userPW2), http.StatusSeeOther)
	if !a.acct.Hasher().Verify(a.user(a.userID("uma@example.com")).Password.Hash, userPW2) {
		t.Fatal("password not reset through the first link")
	}
	// A reset burns every open request, the stranger's too.
	r := stranger.link(theirs.Link, "third-Passw0rd")
	wantStatus(t, r, http.StatusGone)
}

// TestForgotPasswordAnswersAlike: a known account, an unknown one and one
// in its cooldown get the same status, the same redirect and no sooner
// than ForgotPasswordMinTime, so neither words nor time tell them apart.
func TestForgotPasswordAnswersAlike(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("vera@example.com", userPW, false)
	b := a.browser()
	b.get("/forgot-password")
	for _, id := range []string{"vera@example.com", "nobody@example.com", "vera@example.com"} {
		start := time.Now()
		r := b.post("/forgot-password", url.Values{"login_id": {id}})
		took := time.Since(start)
		wantStatus(t, r, http.StatusSeeOther)
		want := "/reset-password/code?" + url.Values{"login_id": {id}}.Encode()
		if r.Location != want {
			t.Fatalf("%s: redirect %q", id, r.Location)
		}
		if took < account.ForgotPasswordMinTime {
			t.Fatalf("%s answered in %v, before the %v floor", id, took, account.ForgotPasswordMinTime)
		}
	}
	if a.mailer.forgotCount() != 1 {
		t.Fatalf("%d mails", a.mailer.forgotCount())
	}
}

// userID finds a user's ID by login ID.
func (a *authApp) userID(loginID string) string {
	a.t.Helper()
	id, err := account.ParseAnyLoginID(loginID, "US")
	if err != nil {
		a.t.Fatal(err)
	}
	ident, err := a.store.IdentityByNorm(context.Background(), id.Norm)
	if err != nil {
		a.t.Fatal(err)
	}
	return ident.UserID
}
