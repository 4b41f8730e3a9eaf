package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/oidc"
	"latchkey/store"
	"latchkey/store/testdb"
)

const (
	rpRedirect = "http://127.0.0.1:9/callback"
	rpLogout   = "http://127.0.0.1:9/signed-out"
	oidcPW     = "Apps-Passw0rd-123"
)

// oidcApp is an authApp whose OpenID Connect provider shares its clock,
// with one confidential and one public application registered.
type oidcApp struct {
	*authApp
	prov   *oidc.Provider
	conf   *oidc.App // confidential
	public *oidc.App
}

func newOIDCApp(t *testing.T) *oidcApp {
	t.Helper()
	return newOIDCAppAt(t, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")), store.Options{})
}

// newOIDCAppAt is newOIDCApp over the database at path (a SQLite file, or
// a PostgreSQL URL), opened with opts.
func newOIDCAppAt(t *testing.T, path string, opts store.Options) *oidcApp {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenOptions(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	m, ev := &authMailer{}, &authEvents{}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, m, ev, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &authClock{now: time.Now().UTC()}
	acct.Now = clock.Now
	if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	prov, err := oidc.New(ctx, acct, oidc.Config{Issuer: "http://localhost", Secret: secret, KeyAlg: oidc.AlgES256, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	prov.SetNow(clock.Now)
	cfg := Config{PublicURL: "http://localhost", SessionKey: secret, Log: log, OIDC: prov}
	srv := httptest.NewServer(New(cfg, acct))
	t.Cleanup(srv.Close)
	a := &oidcApp{authApp: &authApp{testApp: &testApp{t: t, srv: srv, acct: acct, store: st}, clock: clock, mailer: m, events: ev}, prov: prov}
	a.client = newJarClient()
	admin := account.Actor{Kind: "admin", TriggeredBy: "admin_api"}
	a.conf, err = prov.CreateApp(ctx, admin, oidc.AppInput{Name: "Acme Notes", Confidential: true, RedirectURIs: rpRedirect,
		PostLogoutRedirectURIs: rpLogout, Scopes: []string{"email", "phone", "profile", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	a.public, err = prov.CreateApp(ctx, admin, oidc.AppInput{Name: "Acme SPA", RedirectURIs: rpRedirect, Scopes: []string{"email", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pkce(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeQuery is a valid code request for client, with PKCE.
func authorizeQuery(clientID string, extra ...string) url.Values {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid email offline_access"}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {pkce("the-verifier-the-verifier-the-verifier-43")}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

const testVerifier = "the-verifier-the-verifier-the-verifier-43"

// code runs the browser part of the flow for a signed-in browser b and
// returns the code from the redirect to the app.
func (a *oidcApp) code(b *testApp, q url.Values) string {
	a.t.Helper()
	r := b.get(oidc.AuthorizePath + "?" + q.Encode())
	wantStatus(a.t, r, http.StatusFound)
	if !strings.HasPrefix(r.Location, oidc.ContinuePath+"?") {
		a.t.Fatalf("authorize went to %q", r.Location)
	}
	r = b.get(r.Location)
	wantStatus(a.t, r, http.StatusFound)
	u := parseURL(a.t, r.Location)
	if !strings.HasPrefix(r.Location, rpRedirect+"?") || u.Query().Get("code") == "" || u.Query().Get("state") != q.Get("state") {
		a.t.Fatalf("continue went to %q", r.Location)
	}
	return u.Query().Get("code")
}

func parseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	Status       int
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
}

func (a *oidcApp) token(form url.Values, clientID, secret string) tokenResponse {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+oidc.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var tr tokenResponse
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &tr)
	tr.Status = res.StatusCode
	return tr
}

func (a *oidcApp) exchange(code, verifier string) tokenResponse {
	return a.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}},
		a.conf.ID, a.conf.Secret)
}

func (a *oidcApp) refresh(rt string) tokenResponse {
	return a.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, a.conf.ID, a.conf.Secret)
}

// userinfo calls /oauth2/userinfo with an access token.
func (a *oidcApp) userinfo(at string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+oidc.UserinfoPath, nil)
	req.Header.Set("Authorization", "Bearer "+at)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// liveTokens counts unrevoked access and refresh tokens.
func (a *oidcApp) liveTokens() (access, refresh int) {
	a.t.Helper()
	db := a.store.Direct()
	if err := db.QueryRow(`SELECT COUNT(*) FROM oidc_access_tokens WHERE revoked_at IS NULL`).Scan(&access); err != nil {
		a.t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM oidc_refresh_tokens WHERE revoked_at IS NULL`).Scan(&refresh); err != nil {
		a.t.Fatal(err)
	}
	return
}

func (a *oidcApp) wantNothingIssued(tr tokenResponse, status int, wantErr string) {
	a.t.Helper()
	if tr.Status != status || tr.Error != wantErr || tr.AccessToken != "" || tr.RefreshToken != "" || tr.IDToken != "" {
		a.t.Fatalf("token answer %+v, want status %d error %q and no tokens", tr, status, wantErr)
	}
}

// signedIn returns a browser signed in to the Auth UI as a new user.
func (a *oidcApp) signedIn(email string) (*testApp, *account.User) {
	a.t.Helper()
	u := a.createUser(email, oidcPW, false)
	b := a.browser()
	wantStatus(a.t, signIn(b, email, oidcPW, ""), http.StatusSeeOther)
	return b, u
}

// TestOIDCAuthorizeErrorPages: an unknown client, an unregistered redirect
// URI, a disabled app, and a request too broken to read show an error
// page and never redirect anywhere.
func TestOIDCAuthorizeErrorPages(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("pages@example.com")
	// The public app has a token before it is disabled; disabling revokes it.
	tr := a.token(url.Values{"grant_type": {"authorization_code"}, "code": {a.code(b, authorizeQuery(a.public.ID))}, "redirect_uri": {rpRedirect},
		"code_verifier": {testVerifier}, "client_id": {a.public.ID}}, "", "")
	if st, _ := a.userinfo(tr.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo before disable: %d", st)
	}
	if _, err := a.prov.UpdateApp(context.Background(), account.SystemActor, a.public.ID,
		oidc.AppInput{Name: "Acme SPA", RedirectURIs: rpRedirect, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]url.Values{
		"unknown client":           authorizeQuery("no-such-client"),
		"missing client":           authorizeQuery(a.conf.ID, "client_id", ""),
		"unregistered redirect":    authorizeQuery(a.conf.ID, "redirect_uri", "http://127.0.0.1:9/other"),
		"redirect with extra path": authorizeQuery(a.conf.ID, "redirect_uri", rpRedirect+"/x"),
		"missing redirect":         authorizeQuery(a.conf.ID, "redirect_uri", ""),
		"disabled application":     authorizeQuery(a.public.ID),
		"unparseable max_age":      authorizeQuery(a.conf.ID, "max_age", "soon"),
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			r := b.get(oidc.AuthorizePath + "?" + q.Encode())
			wantStatus(t, r, http.StatusBadRequest)
			if r.Location != "" {
				t.Fatalf("redirected to %q", r.Location)
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("content type %q", r.Header.Get("Content-Type"))
			}
			wantContains(t, r.Body, "Sign-in request not valid", "This sign-in request cannot be completed")
		})
	}
	var n int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM oidc_auth_requests WHERE code_hash IS NULL`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("auth requests stored: %d, %v", n, err)
	}
	if st, _ := a.userinfo(tr.AccessToken); st == http.StatusOK {
		t.Fatal("a disabled app's access token still works")
	}
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("live tokens of the disabled app: %d access, %d refresh", n, m)
	}
}

// TestOIDCAuthorizeErrorsGoBackToApp: once the client and redirect URI are
// known good, errors go back to the app with error, error_description and
// state, and no code.
func TestOIDCAuthorizeErrorsGoBackToApp(t *testing.T) {
	a := newOIDCApp(t)
	cases := []struct {
		name, err string
		q         url.Values
	}{
		{"implicit flow", "unauthorized_client", authorizeQuery(a.conf.ID, "response_type", "token")},
		{"missing response_type", "invalid_request", authorizeQuery(a.conf.ID, "response_type", "")},
		{"no openid scope", "invalid_scope", authorizeQuery(a.conf.ID, "scope", "email")},
		{"no scope", "invalid_request", authorizeQuery(a.conf.ID, "scope", "")},
		{"public client without PKCE", "invalid_request", authorizeQuery(a.public.ID, "code_challenge", "", "code_challenge_method", "")},
		{"plain PKCE", "invalid_request", authorizeQuery(a.conf.ID, "code_challenge_method", "plain")},
		{"prompt none signed out", "login_required", authorizeQuery(a.conf.ID, "prompt", "none")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := a.browser()
			r := b.get(oidc.AuthorizePath + "?" + c.q.Encode())
			if r.Status == http.StatusFound && strings.HasPrefix(r.Location, oidc.ContinuePath) {
				r = b.get(r.Location)
			}
			wantStatus(t, r, http.StatusFound)
			u := parseURL(t, r.Location)
			q := u.Query()
			if !strings.HasPrefix(r.Location, rpRedirect+"?") || q.Get("error") != c.err || q.Get("error_description") == "" ||
				q.Get("state") != "st-123" || q.Get("code") != "" {
				t.Fatalf("redirect %q, want error %q with state and no code", r.Location, c.err)
			}
		})
	}
}

// TestOIDCSingleSignOnAndPrompt: a signed-in user gets a code without
// signing in again; prompt=login and an exceeded max_age show the sign-in
// form with the app's name (and login_hint); signing in there finishes.
func TestOIDCSingleSignOnAndPrompt(t *testing.T) {
	a := newOIDCApp(t)
	b, u := a.signedIn("sso@example.com")
	code := a.code(b, authorizeQuery(a.conf.ID))
	if tr := a.exchange(code, testVerifier); tr.Status != http.StatusOK || tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("exchange: %+v", tr)
	}
	if got := a.events.ofType(account.EventUserAuthenticated); len(got) < 2 || !strings.Contains(got[len(got)-1].JSON, `"client_id":"`+a.conf.ID+`"`) {
		t.Fatalf("user.authenticated for the app: %+v", got)
	}
	a.clock.Advance(2 * time.Minute)
	for name, q := range map[string]url.Values{
		"prompt=login": authorizeQuery(a.conf.ID, "prompt", "login", "login_hint", "sso@example.com"),
		"max_age":      authorizeQuery(a.conf.ID, "max_age", "60", "login_hint", "sso@example.com"),
	} {
		t.Run(name, func(t *testing.T) {
			a.clock.Advance(2 * time.Minute) // the last sign-in is older than max_age
			r := b.get(oidc.AuthorizePath + "?" + q.Encode())
			r = b.get(r.Location)
			wantStatus(t, r, http.StatusSeeOther)
			if !strings.HasPrefix(r.Location, "/login?next=") {
				t.Fatalf("continue went to %q", r.Location)
			}
			next := parseURL(t, r.Location).Query().Get("next")
			page := b.get(r.Location)
			wantStatus(t, page, http.StatusOK)
			wantContains(t, page.Body, "Sign in to continue to Acme Notes", `value="sso@example.com"`)
			r = b.post("/login", url.Values{"login_id": {"sso@example.com"}, "password": {oidcPW}, "next": {next}})
			wantStatus(t, r, http.StatusSeeOther)
			if r.Location != next {
				t.Fatalf("sign-in went to %q", r.Location)
			}
			r = b.get(r.Location)
			if !strings.HasPrefix(r.Location, rpRedirect+"?code=") {
				t.Fatalf("after sign-in: %q", r.Location)
			}
		})
	}
	// prompt=none with a session: straight back with a code.
	r := b.get(oidc.AuthorizePath + "?" + authorizeQuery(a.conf.ID, "prompt", "none").Encode())
	r = b.get(r.Location)
	if !strings.HasPrefix(r.Location, rpRedirect+"?code=") {
		t.Fatalf("prompt=none with a session: %q", r.Location)
	}
	_ = u
}

// TestOIDCPKCEMismatch: a wrong code_verifier gets invalid_grant and nothing.
func TestOIDCPKCEMismatch(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("pkce@example.com")
	code := a.code(b, authorizeQuery(a.public.ID))
	tr := a.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect},
		"code_verifier": {"a-different-verifier-a-different-verifier-1"}, "client_id": {a.public.ID}}, "", "")
	a.wantNothingIssued(tr, http.StatusBadRequest, "invalid_grant")
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("tokens stored: %d access, %d refresh", n, m)
	}
	// No verifier at all for a public client: refused too.
	tr = a.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "client_id": {a.public.ID}}, "", "")
	a.wantNothingIssued(tr, http.StatusBadRequest, "invalid_request")
	// The right verifier works (public client, no secret).
	tr = a.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect},
		"code_verifier": {testVerifier}, "client_id": {a.public.ID}}, "", "")
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("right verifier: %+v", tr)
	}
}

// TestOIDCWrongClientSecret: basic and post with a wrong secret, and a
// secret for a public client, get invalid_client and nothing.
func TestOIDCWrongClientSecret(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("secret@example.com")
	code := a.code(b, authorizeQuery(a.conf.ID))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {testVerifier}}
	a.wantNothingIssued(a.token(form, a.conf.ID, a.conf.Secret+"x"), http.StatusUnauthorized, "invalid_client")
	post := url.Values{"client_id": {a.conf.ID}, "client_secret": {"wrong"}}
	for k, v := range form {
		post[k] = v
	}
	tr := a.token(post, "", "")
	if tr.AccessToken != "" || tr.Status < 400 {
		t.Fatalf("client_secret_post with a wrong secret: %+v", tr)
	}
	post.Del("client_secret")
	tr = a.token(post, "", "")
	if tr.AccessToken != "" || tr.Status < 400 {
		t.Fatalf("no secret: %+v", tr)
	}
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("tokens stored: %d access, %d refresh", n, m)
	}
	// client_secret_post with the right secret works.
	post.Set("client_secret", a.conf.Secret)
	if tr := a.token(post, "", ""); tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("client_secret_post: %+v", tr)
	}
}

// TestOIDCDisabledUser: a disabled user gets no code (even with a session
// from before), a code issued before the disable gets no token, and the
// refresh token from before stops working.
func TestOIDCDisabledUser(t *testing.T) {
	a := newOIDCApp(t)
	ctx := context.Background()
	b, u := a.signedIn("disabled@example.com")
	first := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	if first.RefreshToken == "" {
		t.Fatalf("first exchange: %+v", first)
	}
	code := a.code(b, authorizeQuery(a.conf.ID))
	if _, err := a.acct.SetDisabledStatus(ctx, account.SystemActor, u.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	a.wantNothingIssued(a.exchange(code, testVerifier), http.StatusBadRequest, "invalid_grant")
	a.wantNothingIssued(a.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if st, _ := a.userinfo(first.AccessToken); st != http.StatusUnauthorized && st != http.StatusForbidden {
		t.Fatalf("userinfo for a disabled user: %d", st)
	}
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("live tokens after disable: %d access, %d refresh", n, m)
	}
	// The browser's session ended with the disable: the app's sign-in
	// leads to /login, where the right password is refused.
	r := b.get(oidc.AuthorizePath + "?" + authorizeQuery(a.conf.ID).Encode())
	r = b.get(r.Location)
	if !strings.HasPrefix(r.Location, "/login?next=") {
		t.Fatalf("disabled user's session: %q", r.Location)
	}
	next := parseURL(t, r.Location).Query().Get("next")
	r = signIn(b, "disabled@example.com", oidcPW, next)
	wantStatus(t, r, http.StatusForbidden)
	if r.Location != "" {
		t.Fatalf("redirected to %q", r.Location)
	}
}

// TestOIDCSignOutAllSessionsRevokesAppTokens: an admin's "Sign out all
// sessions" (account.RevokeAllSessions, used by the user page and the
// Admin API's revokeAllSessions) ends the user's refresh tokens too.
func TestOIDCSignOutAllSessionsRevokesAppTokens(t *testing.T) {
	a := newOIDCApp(t)
	ctx := context.Background()
	b, u := a.signedIn("signout-all@example.com")
	first := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	if first.RefreshToken == "" {
		t.Fatalf("first exchange: %+v", first)
	}
	if _, m := a.liveTokens(); m == 0 {
		t.Fatal("no live refresh token before the sign-out")
	}
	n, err := a.acct.RevokeAllSessions(ctx, account.SystemActor, u.ID)
	if err != nil || n < 2 {
		t.Fatalf("revoke all: %d %v (want the browser session and the refresh token)", n, err)
	}
	a.wantNothingIssued(a.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if _, m := a.liveTokens(); m != 0 {
		t.Fatalf("%d live refresh tokens after sign out everywhere", m)
	}
}

// TestOIDCReusedCode: a code works once; its second use is refused and
// revokes the tokens the first use got.
func TestOIDCReusedCode(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("reuse@example.com")
	code := a.code(b, authorizeQuery(a.conf.ID))
	first := a.exchange(code, testVerifier)
	if first.Status != http.StatusOK || first.AccessToken == "" || first.RefreshToken == "" {
		t.Fatalf("first exchange: %+v", first)
	}
	if st, ui := a.userinfo(first.AccessToken); st != http.StatusOK || ui["email"] != "reuse@example.com" {
		t.Fatalf("userinfo before reuse: %d %v", st, ui)
	}
	a.wantNothingIssued(a.exchange(code, testVerifier), http.StatusBadRequest, "invalid_grant")
	if st, _ := a.userinfo(first.AccessToken); st == http.StatusOK {
		t.Fatal("access token from the first use still works")
	}
	a.wantNothingIssued(a.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("live tokens after reuse: %d access, %d refresh", n, m)
	}
}

// TestOIDCCodeExpires: a code is good for 60 seconds.
func TestOIDCCodeExpires(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("late@example.com")
	code := a.code(b, authorizeQuery(a.conf.ID))
	a.clock.Advance(61 * time.Second)
	a.wantNothingIssued(a.exchange(code, testVerifier), http.StatusBadRequest, "invalid_grant")
}

// TestOIDCReusedRefreshToken: refresh tokens rotate; presenting a used one
// revokes the whole chain, including the newest token.
func TestOIDCReusedRefreshToken(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("rotate@example.com")
	first := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	second := a.refresh(first.RefreshToken)
	if second.Status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.IDToken == "" {
		t.Fatalf("refresh: %+v", second)
	}
	a.wantNothingIssued(a.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	a.wantNothingIssued(a.refresh(second.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if st, _ := a.userinfo(second.AccessToken); st == http.StatusOK {
		t.Fatal("access token of the revoked chain still works")
	}
	if n, m := a.liveTokens(); n != 0 || m != 0 {
		t.Fatalf("live tokens after reuse: %d access, %d refresh", n, m)
	}
}

// TestOIDCEndSession: end_session signs the browser out and redirects
// only to a registered post-logout URI; anything else shows a page,
// redirects nowhere and signs no one out. Without an id_token_hint the
// user confirms on a CSRF-protected page first.
func TestOIDCEndSession(t *testing.T) {
	a := newOIDCApp(t)
	b, u := a.signedIn("bye@example.com")
	params := url.Values{"client_id": {a.conf.ID}, "post_logout_redirect_uri": {rpLogout}, "state": {"s1"}}
	page := b.get(oidc.EndSessionPath + "?" + params.Encode())
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Sign out?", rpLogout)
	if a.sessions(u.ID) != 1 {
		t.Fatal("a GET without id_token_hint signed the user out")
	}
	confirm := func(v url.Values, csrf string) response {
		f := url.Values{"confirm": {"1"}, "_csrf": {csrf}}
		for k, x := range v {
			f[k] = x
		}
		return b.postRaw(oidc.EndSessionPath, f)
	}
	wantStatus(t, confirm(params, "forged"), http.StatusForbidden)
	bad := url.Values{"client_id": {a.conf.ID}, "post_logout_redirect_uri": {"https://evil.example/"}}
	r := confirm(bad, b.csrf)
	wantStatus(t, r, http.StatusBadRequest)
	if r.Location != "" || a.sessions(u.ID) != 1 {
		t.Fatalf("bad end_session: location %q, sessions %d", r.Location, a.sessions(u.ID))
	}
	r = confirm(params, b.csrf)
	wantStatus(t, r, http.StatusFound)
	if r.Location != rpLogout+"?state=s1" || a.sessions(u.ID) != 0 {
		t.Fatalf("end_session: location %q, sessions %d", r.Location, a.sessions(u.ID))
	}

	// With the app's ID token as the hint, no confirmation is needed.
	wantStatus(t, signIn(b, "bye@example.com", oidcPW, ""), http.StatusSeeOther)
	tr := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	r = b.get(oidc.EndSessionPath + "?" + url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {rpLogout}}.Encode())
	wantStatus(t, r, http.StatusFound)
	if r.Location != rpLogout || a.sessions(u.ID) != 0 {
		t.Fatalf("end_session with hint: location %q, sessions %d", r.Location, a.sessions(u.ID))
	}
	// A forged hint signs no one out.
	wantStatus(t, signIn(b, "bye@example.com", oidcPW, ""), http.StatusSeeOther)
	r = b.get(oidc.EndSessionPath + "?" + url.Values{"id_token_hint": {tr.IDToken + "x"}, "post_logout_redirect_uri": {rpLogout}}.Encode())
	wantStatus(t, r, http.StatusBadRequest)
	if r.Location != "" || a.sessions(u.ID) != 1 {
		t.Fatalf("forged hint: location %q, sessions %d", r.Location, a.sessions(u.ID))
	}
}

// TestOIDCDiscoveryAndJWKS: discovery names the endpoints under the
// public URL; JWKS publishes the key with its kid, and after a rotation
// the previous key too.
func TestOIDCDiscoveryAndJWKS(t *testing.T) {
	a := newOIDCApp(t)
	r := a.get(oidc.DiscoveryPath)
	wantStatus(t, r, http.StatusOK)
	var d map[string]any
	if err := json.Unmarshal([]byte(r.Body), &d); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"issuer": "http://localhost", "authorization_endpoint": "http://localhost/oauth2/authorize",
		"token_endpoint": "http://localhost/oauth2/token", "userinfo_endpoint": "http://localhost/oauth2/userinfo",
		"jwks_uri": "http://localhost/oauth2/jwks", "end_session_endpoint": "http://localhost/oauth2/end_session",
		"revocation_endpoint": "http://localhost/oauth2/revoke", "introspection_endpoint": "http://localhost/oauth2/introspect"} {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	kids := func() []string {
		var jwks struct {
			Keys []struct {
				Kid string `json:"kid"`
				Alg string `json:"alg"`
			} `json:"keys"`
		}
		r := a.get(oidc.JWKSPath)
		wantStatus(t, r, http.StatusOK)
		if err := json.Unmarshal([]byte(r.Body), &jwks); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range jwks.Keys {
			out = append(out, k.Kid+"/"+k.Alg)
		}
		return out
	}
	before := kids()
	if len(before) != 1 || !strings.HasSuffix(before[0], "/ES256") {
		t.Fatalf("JWKS: %v", before)
	}
	kid, err := a.prov.RotateKey(context.Background(), account.SystemActor, oidc.AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.events.ofType(oidc.EventSigningKeyRotated); len(got) != 1 || !strings.Contains(got[0].JSON, kid) {
		t.Fatalf("rotation events: %+v", got)
	}
	after := kids()
	if len(after) != 2 || after[0] != kid+"/RS256" || after[1] != before[0] {
		t.Fatalf("JWKS after rotation: %v (was %v, new %s)", after, before, kid)
	}
	// Once the old key's tokens have expired it is no longer published.
	a.clock.Advance(oidc.KeyKeep + time.Minute)
	if _, err := a.prov.RotateKey(context.Background(), account.SystemActor, oidc.AlgRS256); err != nil {
		t.Fatal(err)
	}
	if got := kids(); len(got) != 2 || got[1] != kid+"/RS256" {
		t.Fatalf("JWKS after the old key's tokens expired: %v", got)
	}
}

// TestOIDCAuthorizeRateLimit: a stranger cannot make authorization
// requests (stored rows) without bound.
func TestOIDCAuthorizeRateLimit(t *testing.T) {
	a := newOIDCApp(t)
	q := oidc.AuthorizePath + "?" + authorizeQuery(a.conf.ID).Encode()
	for i := 0; i < authorizePerMinute; i++ {
		if r := a.get(q); r.Status != http.StatusFound {
			t.Fatalf("request %d: %d", i+1, r.Status)
		}
	}
	r := a.get(q)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.Location != "" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("limited answer: location %q, Retry-After %q", r.Location, r.Header.Get("Retry-After"))
	}
	wantContains(t, r.Body, "Too many sign-in requests")
}

// TestOIDCCORS: a browser app on another origin may call the token
// endpoint (preflight allowed), never with credentials.
func TestOIDCCORS(t *testing.T) {
	a := newOIDCApp(t)
	req, _ := http.NewRequest(http.MethodOptions, a.srv.URL+oidc.TokenPath, nil)
	req.Header.Set("Origin", "http://127.0.0.1:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:5173" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
}

// TestOIDCClaimsFollowScopes: userinfo returns what the granted scopes
// name, and an app asking for a scope it is not allowed gets it dropped.
func TestOIDCClaimsFollowScopes(t *testing.T) {
	a := newOIDCApp(t)
	b, u := a.signedIn("claims@example.com")
	tr := a.exchange(a.code(b, authorizeQuery(a.conf.ID, "scope", "openid email profile")), testVerifier)
	st, ui := a.userinfo(tr.AccessToken)
	if st != http.StatusOK || ui["sub"] != u.ID || ui["email"] != "claims@example.com" || ui["email_verified"] != false || ui["updated_at"] == nil {
		t.Fatalf("userinfo: %d %v", st, ui)
	}
	if _, ok := ui["phone_number"]; ok {
		t.Fatalf("phone claims without the phone scope: %v", ui)
	}
	if tr.RefreshToken != "" {
		t.Fatal("a refresh token without offline_access")
	}
	// The public app is not allowed "profile": it is dropped.
	tr = a.token(url.Values{"grant_type": {"authorization_code"}, "code": {a.code(b, authorizeQuery(a.public.ID, "scope", "openid profile"))},
		"redirect_uri": {rpRedirect}, "code_verifier": {testVerifier}, "client_id": {a.public.ID}}, "", "")
	st, ui = a.userinfo(tr.AccessToken)
	if st != http.StatusOK || ui["sub"] != u.ID || ui["updated_at"] != nil || ui["email"] != nil {
		t.Fatalf("userinfo with a dropped scope: %d %v", st, ui)
	}
}
