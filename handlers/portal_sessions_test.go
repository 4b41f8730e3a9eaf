package handlers

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"latchkey/account"
)

// signInAdmin signs the test admin in on browser b.
func signInAdmin(t *testing.T, b *testApp) {
	t.Helper()
	wantStatus(t, b.get("/portal/login"), http.StatusOK)
	r := b.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusSeeOther)
}

// copyCookies gives browser to the cookies of browser from, as an
// attacker who copied them would have.
func copyCookies(from, to *testApp) {
	u := mustURL(from.srv.URL)
	to.client.Jar.SetCookies(u, from.client.Jar.Cookies(u))
}

func wantSignedIn(t *testing.T, b *testApp, want bool) {
	t.Helper()
	r := b.get("/portal/users")
	if want && r.Status != http.StatusOK {
		t.Fatalf("want signed in: GET /portal/users = %d (Location %q)", r.Status, r.Location)
	}
	if !want && (r.Status != http.StatusSeeOther || r.Location != "/portal/login?next=%2Fportal%2Fusers") {
		t.Fatalf("want signed out: GET /portal/users = %d (Location %q)", r.Status, r.Location)
	}
}

func TestPortalSignOutEndsCopiedCookie(t *testing.T) {
	a := newAuthApp(t, nil)
	owner := a.browser()
	signInAdmin(t, owner)
	thief := a.browser()
	copyCookies(owner, thief)
	wantSignedIn(t, thief, true)

	wantSignedIn(t, owner, true) // the page with the sign-out form
	wantStatus(t, owner.post("/portal/logout", nil), http.StatusSeeOther)
	wantSignedIn(t, owner, false)
	// The copied cookie was signed and sealed by the server and is still
	// well-formed; only the server-side session can refuse it.
	wantSignedIn(t, thief, false)
	admin, _ := a.store.AdminByEmail(context.Background(), testAdminEmail)
	if n, err := a.acct.CountAdminSessions(context.Background(), admin.ID); err != nil || n != 0 {
		t.Fatalf("sessions after sign-out: %d, %v", n, err)
	}
}

func TestPortalSessionIdleAndAbsoluteTimeouts(t *testing.T) {
	a := newAuthApp(t, nil)
	b := a.browser()
	signInAdmin(t, b)
	a.clock.Advance(account.AdminSessionIdle - time.Minute)
	wantSignedIn(t, b, true)
	// Activity kept it alive: another almost-idle period is fine...
	a.clock.Advance(account.AdminSessionIdle - time.Minute)
	wantSignedIn(t, b, true)
	// ...but a full idle period ends it.
	a.clock.Advance(account.AdminSessionIdle + time.Second)
	wantSignedIn(t, b, false)

	// A session in constant use still ends at the absolute limit.
	b = a.browser()
	signInAdmin(t, b)
	step := account.AdminSessionIdle / 2
	for used := time.Duration(0); used+step < account.AdminSessionTTL; used += step {
		a.clock.Advance(step)
		wantSignedIn(t, b, true)
	}
	a.clock.Advance(step)
	wantSignedIn(t, b, false)
}

func TestRevokeAdminSessionsEndsEveryBrowserAtOnce(t *testing.T) {
	a := newAuthApp(t, nil)
	ctx := context.Background()
	b1, b2 := a.browser(), a.browser()
	signInAdmin(t, b1)
	signInAdmin(t, b2)
	admin, err := a.store.AdminByEmail(ctx, testAdminEmail)
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.acct.AdminSessions(ctx, admin.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("AdminSessions = %d, %v; want 2", len(list), err)
	}
	n, err := a.acct.RevokeAdminSessions(ctx, admin.ID)
	if err != nil || n != 2 {
		t.Fatalf("RevokeAdminSessions = %d, %v; want 2", n, err)
	}
	wantSignedIn(t, b1, false)
	wantSignedIn(t, b2, false)
}

func TestRemovedAdminSessionEnds(t *testing.T) {
	a := newAuthApp(t, nil)
	ctx := context.Background()
	if _, err := a.acct.BootstrapAdmin(ctx, "x@example.com", "another long password"); err != nil {
		t.Fatal(err)
	}
	b := a.browser()
	signInAdmin(t, b)
	admin, _ := a.store.AdminByEmail(ctx, testAdminEmail)
	if _, err := a.store.Direct().ExecContext(ctx, `DELETE FROM admins WHERE id = ?`, admin.ID); err != nil {
		t.Fatal(err)
	}
	wantSignedIn(t, b, false)
	var n int
	if err := a.store.Direct().QueryRowContext(ctx, `SELECT COUNT(*) FROM admin_sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("admin_sessions rows after removal: %d, %v", n, err)
	}
}

func TestPortalSignInGivesNewSessionAndEndsOld(t *testing.T) {
	a := newAuthApp(t, nil)
	b := a.browser()
	signInAdmin(t, b)
	copyOfFirst := a.browser()
	copyCookies(b, copyOfFirst)
	// Signing in again on the same browser ends the session it had.
	wantStatus(t, b.get("/portal/login?next=/portal/users"), http.StatusSeeOther)
	wantSignedIn(t, b, true) // for the CSRF token
	signInAgain := b.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, signInAgain, http.StatusSeeOther)
	wantSignedIn(t, b, true)
	wantSignedIn(t, copyOfFirst, false)
}
