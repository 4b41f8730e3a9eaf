package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSignedOutAdminIsSentToLogin(t *testing.T) {
	a := newTestApp(t)
	for _, path := range []string{"/portal/users", "/portal/users/new", "/portal/settings/password-policy"} {
		r := a.get(path)
		wantStatus(t, r, http.StatusSeeOther)
		if r.Location != "/portal/login?next="+url.QueryEscape(path) {
			t.Errorf("%s redirects to %q", path, r.Location)
		}
	}
	// A signed-out POST creates nothing.
	a.get("/portal/login")
	r := a.post("/portal/users", createForm("email", "x@example.com", "manual", "abcdefgh1", false, false))
	wantStatus(t, r, http.StatusUnauthorized)
	if n := a.countUsers(); n != 0 {
		t.Fatalf("%d users created by a signed-out POST", n)
	}
}

func TestPortalLogin(t *testing.T) {
	a := newTestApp(t)
	a.get("/portal/login")
	r := a.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {"wrong password"}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.Body, "Incorrect email or password.")
	r = a.post("/portal/login", url.Values{"email": {"nobody@example.com"}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.Body, "Incorrect email or password.")

	before := a.csrf
	cookieBefore := a.client.Jar.Cookies(mustURL(a.srv.URL))
	r = a.post("/portal/login", url.Values{"email": {"ADMIN@example.com"}, "password": {testAdminPassword}, "next": {"/portal/users/new"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/users/new" {
		t.Errorf("next: redirected to %q", r.Location)
	}
	set := r.Header.Get("Set-Cookie")
	for _, want := range []string{"latchkey_portal=", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %q", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Error("Secure cookie over http")
	}
	page := a.get("/portal/users")
	wantStatus(t, page, http.StatusOK)
	if a.csrf == before {
		t.Error("CSRF token kept across sign-in: the session was not renewed")
	}
	if c := a.client.Jar.Cookies(mustURL(a.srv.URL)); len(cookieBefore) > 0 && len(c) > 0 && c[0].Value == cookieBefore[0].Value {
		t.Error("session cookie unchanged by sign-in")
	}

	// An off-site next is ignored.
	a2 := newTestApp(t)
	a2.get("/portal/login")
	r = a2.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}, "next": {"//evil.example/x"}})
	if r.Location != "/portal/users" {
		t.Errorf("open redirect: %q", r.Location)
	}

	// Sign out ends the session.
	a.get("/portal/users")
	wantStatus(t, a.post("/portal/logout", nil), http.StatusSeeOther)
	wantStatus(t, a.get("/portal/users"), http.StatusSeeOther)
}

func TestSecureCookieOverHTTPS(t *testing.T) {
	a := newTestApp(t, func(c *Config) { c.PublicURL = "https://latchkey.example" })
	r := a.get("/portal/login")
	if !strings.Contains(r.Header.Get("Set-Cookie"), "Secure") {
		t.Fatalf("Set-Cookie %q is not Secure with an https public URL", r.Header.Get("Set-Cookie"))
	}
}

func TestPortalLoginRateLimited(t *testing.T) {
	a := newTestApp(t)
	a.get("/portal/login")
	var last response
	for i := 0; i < 11; i++ {
		last = a.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {"wrong"}})
	}
	wantStatus(t, last, http.StatusTooManyRequests)
	wantContains(t, last.Body, "Too many sign-in attempts")
	if last.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Even the right password is refused while limited.
	r := a.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusTooManyRequests)
}

func TestCSRFRequired(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/users/new")
	form := createForm("email", "csrf@example.com", "manual", "abcdefgh1", false, false)
	wantStatus(t, a.postRaw("/portal/users", form), http.StatusForbidden)
	form.Set("_csrf", "forged-token")
	r := a.postRaw("/portal/users", form)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r.Body, "did not come from this site")
	if n := a.countUsers(); n != 0 {
		t.Fatalf("%d users created without a valid CSRF token", n)
	}
	// Sign-out needs it too.
	wantStatus(t, a.postRaw("/portal/logout", url.Values{}), http.StatusForbidden)
	wantStatus(t, a.get("/portal/users"), http.StatusOK)
}

// newSetupApp is an app with no admin yet, as after a first `go run .`.
func newSetupApp(t *testing.T) (*testApp, string) {
	t.Helper()
	a := startTestApp(t, false)
	token, err := a.acct.NewSetupToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a, token
}

func TestSetupCreatesFirstAdminOnce(t *testing.T) {
	a, token := newSetupApp(t)
	wantStatus(t, a.get("/portal/setup?token=wrong"), http.StatusForbidden)
	wantStatus(t, a.get("/portal/setup"), http.StatusForbidden)
	wantStatus(t, a.get("/portal/setup?token="+token), http.StatusOK)

	r := a.post("/portal/setup", url.Values{"token": {token}, "email": {"bad"}, "password": {"short"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Enter a valid email address", "at least 8 characters")
	if has, _ := a.acct.HasAdmin(context.Background()); has {
		t.Fatal("an invalid setup created an admin")
	}

	r = a.post("/portal/setup", url.Values{"token": {token}, "email": {"First@Example.com"}, "password": {"first-admin-pw"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, a.get("/portal/users"), http.StatusOK)

	// Once an admin exists, setup refuses whatever the token.
	wantStatus(t, a.get("/portal/setup?token="+token), http.StatusNotFound)
	r = a.post("/portal/setup", url.Values{"token": {token}, "email": {"second@example.com"}, "password": {"second-admin-pw"}})
	wantStatus(t, r, http.StatusNotFound)
	if _, err := a.store.AdminByEmail(context.Background(), "second@example.com"); err == nil {
		t.Fatal("setup created a second admin")
	}
}

func TestHealthzAndRoot(t *testing.T) {
	a := newTestApp(t)
	r := a.get("/healthz")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, `"ok"`)
	// A stranger (an end user) goes to the users' sign-in, an admin to the portal.
	r = a.get("/")
	if r.Status != http.StatusFound || r.Location != "/login" {
		t.Fatalf("/ for a stranger -> %d %q", r.Status, r.Location)
	}
	a.loginAdmin()
	r = a.get("/")
	if r.Status != http.StatusFound || r.Location != "/portal/users" {
		t.Fatalf("/ for an admin -> %d %q", r.Status, r.Location)
	}
}

// TestExpiredFormLinksEndUsersToLogin: the expired-form page of an Auth
// UI form sends the user back to /login; a portal one to the portal.
func TestExpiredFormLinksEndUsersToLogin(t *testing.T) {
	a := newTestApp(t)
	a.get("/login")
	r := a.postRaw("/login", url.Values{"login_id": {"x"}, "password": {"y"}})
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r.Body, "This form has expired", `href="/login"`)
	a.get("/portal/login")
	r = a.postRaw("/portal/login", url.Values{"email": {"x"}, "password": {"y"}})
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r.Body, `href="/portal/users"`)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
