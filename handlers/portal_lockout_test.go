package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/account"
)

// postFrom posts a form as if from the client address ip (the app trusts
// X-Forwarded-For in this test).
func postFrom(b *testApp, ip, path string, form url.Values) response {
	b.t.Helper()
	form.Set("_csrf", b.csrf)
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	return b.do(req)
}

// TestAdminLockoutAcrossAddresses: 40 guesses from 4 addresses, 10 each
// (under the per-address limit), get AdminLockoutThreshold real tries; the
// right password is refused like a wrong one while the lock lasts; every
// try is audited.
func TestAdminLockoutAcrossAddresses(t *testing.T) {
	a := newAuthAppCost(t, 4, nil, func(c *Config) { c.TrustProxy = true })
	b := a.browser()
	wantStatus(t, b.get("/portal/login"), http.StatusOK)
	for i := 0; i < 40; i++ {
		ip := fmt.Sprintf("198.51.100.%d", i%4+1)
		r := postFrom(b, ip, "/portal/login", url.Values{"email": {testAdminEmail}, "password": {fmt.Sprintf("guess-%d", i)}})
		wantStatus(t, r, http.StatusUnauthorized)
		wantContains(t, r.Body, msgAdminBadCredentials)
	}
	failed := a.events.ofType(account.EventAdminSigninFailed)
	if len(failed) != 40 {
		t.Fatalf("%d admin.signin.failed events, want 40", len(failed))
	}
	reasons := map[string]int{}
	for _, e := range failed {
		var p struct{ Reason, Email string }
		if err := jsonUnmarshal(e.JSON, &p); err != nil {
			t.Fatal(err)
		}
		reasons[p.Reason]++
		if p.Email != testAdminEmail {
			t.Fatalf("event email %q", p.Email)
		}
	}
	if reasons["wrong_password"] != account.AdminLockoutThreshold || reasons["locked"] != 40-account.AdminLockoutThreshold {
		t.Fatalf("reasons %v: want %d password checks, the rest refused", reasons, account.AdminLockoutThreshold)
	}
	// Locked: the right password is refused in the same words.
	r := postFrom(b, "198.51.100.9", "/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.Body, msgAdminBadCredentials)
	unknown := postFrom(b, "198.51.100.9", "/portal/login", url.Values{"email": {"nobody@example.com"}, "password": {testAdminPassword}})
	wantStatus(t, unknown, http.StatusUnauthorized)
	wantContains(t, unknown.Body, msgAdminBadCredentials)
	if len(a.events.ofType(account.EventAdminSigninSucceeded)) != 0 {
		t.Fatal("a locked admin signed in")
	}

	// After the lock, the right password works, and is audited.
	a.clock.Advance(account.AdminLockBase + time.Second)
	r = postFrom(b, "198.51.100.10", "/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusSeeOther)
	ok := a.events.ofType(account.EventAdminSigninSucceeded)
	if len(ok) != 1 || ok[0].Actor.IP != "198.51.100.10" || ok[0].Actor.Kind != "admin" {
		t.Fatalf("admin.signin.succeeded events: %+v", ok)
	}
	admin, _ := a.store.AdminByEmail(context.Background(), testAdminEmail)
	if admin.LastLoginAt == nil {
		t.Fatal("last sign-in not recorded")
	}
	if l, err := a.store.AdminLockout(context.Background(), admin.ID); err != nil || l.Failures != 0 || l.Locked(a.clock.Now()) {
		t.Fatalf("lockout after success: %+v %v", l, err)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
