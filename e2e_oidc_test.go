package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"latchkey/mail/mailtest"
)

// testRP is a relying party built the way a Go app would connect to
// Latchkey: coreos/go-oidc for discovery and ID token verification,
// x/oauth2 for the code flow with PKCE. It runs on loopback in the test
// process.
type testRP struct {
	srv      *httptest.Server
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider

	mu       sync.Mutex
	pending  map[string][2]string // state -> nonce, PKCE verifier
	token    *oauth2.Token
	email    string
	subject  string
	idErrors []string
}

func newTestRP(t *testing.T) *testRP {
	rp := &testRP{pending: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		state, nonce, verifier := randHex(), randHex(), oauth2.GenerateVerifier()
		rp.mu.Lock()
		rp.pending[state] = [2]string{nonce, verifier}
		rp.mu.Unlock()
		http.Redirect(w, r, rp.conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rp.mu.Lock()
		p, ok := rp.pending[r.URL.Query().Get("state")]
		delete(rp.pending, r.URL.Query().Get("state"))
		rp.mu.Unlock()
		fail := func(msg string) {
			rp.mu.Lock()
			rp.idErrors = append(rp.idErrors, msg)
			rp.mu.Unlock()
			http.Error(w, msg, http.StatusBadRequest)
		}
		if !ok {
			fail("unknown state")
			return
		}
		if e := r.URL.Query().Get("error"); e != "" {
			fail("error from provider: " + e + ": " + r.URL.Query().Get("error_description"))
			return
		}
		tok, err := rp.conf.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(p[1]))
		if err != nil {
			fail("exchange: " + err.Error())
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(ctx, raw)
		if err != nil {
			fail("verify id token: " + err.Error())
			return
		}
		if idt.Nonce != p[0] {
			fail("nonce mismatch")
			return
		}
		var claims struct {
			Email string `json:"email"`
		}
		if err := idt.Claims(&claims); err != nil {
			fail("claims: " + err.Error())
			return
		}
		rp.mu.Lock()
		rp.token, rp.email, rp.subject = tok, claims.Email, idt.Subject
		rp.mu.Unlock()
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><h1 id="rp-signed-in">Signed in as %s</h1></body></html>`, html.EscapeString(claims.Email))
	})
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	return rp
}

// connect discovers the provider and sets the client credentials.
func (rp *testRP) connect(t *testing.T, issuer, clientID, secret string) {
	t.Helper()
	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp.provider = p
	rp.verifier = p.Verifier(&gooidc.Config{ClientID: clientID})
	rp.conf = &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
		RedirectURL: rp.srv.URL + "/callback", Scopes: []string{gooidc.ScopeOpenID, "email", gooidc.ScopeOfflineAccess}}
}

func randHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestE2EOIDCRelyingParty is issue 9's story: an admin creates a user
// with "Ask user to change password on login" and registers an app; the
// app (a real RP) starts a login with PKCE; the user signs in on the Auth
// UI ("Sign in to continue to …"), is forced through "Password Expired",
// sets a new password and lands back at the app with a code; the app
// verifies the ID token against JWKS and reads email; it refreshes the
// token, and the old refresh token then fails.
func TestE2EOIDCRelyingParty(t *testing.T) {
	ctx := newBrowser(t)
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	rp := newTestRP(t)
	const email = "oidc.user@example.com"
	const newPW = "Fresh-Passw0rd-For-Apps"
	preset := createUserInPortal(ctx, t, app, smtp, email)

	// Register the application in the portal.
	var clientID, secret, loc string
	err := chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/portal/applications"),
		chromedp.Click(`//a[text()="Add application"]`),
		chromedp.WaitVisible(`//h1[text()="Add application"]`),
		chromedp.SendKeys(`#name`, "Acme Notes", chromedp.ByQuery),
		chromedp.SendKeys(`#redirect_uris`, rp.srv.URL+"/callback", chromedp.ByQuery),
		chromedp.Click(`input[name=scopes][value=offline_access]`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add application"]`),
		chromedp.WaitVisible(`#client-secret`, chromedp.ByQuery),
		chromedp.Text(`#client-id`, &clientID, chromedp.ByQuery),
		chromedp.Text(`#client-secret`, &secret, chromedp.ByQuery),
		// A reload shows no secret and makes no second application.
		chromedp.Reload(),
		chromedp.WaitVisible(`#client-id`, chromedp.ByQuery),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	var secretAfterReload int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#client-secret").length`, &secretAfterReload)); err != nil {
		t.Fatal(err)
	}
	if clientID == "" || secret == "" || secretAfterReload != 0 {
		t.Fatalf("client id %q, secret %q, secret shown after reload: %d", clientID, secret, secretAfterReload)
	}
	rp.connect(t, app.URL, strings.TrimSpace(clientID), strings.TrimSpace(secret))

	// The user starts at the app.
	var lead, landed string
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = chromedp.Run(step,
		chromedp.Navigate(rp.srv.URL+"/login"),
		chromedp.WaitVisible(`#login-app`, chromedp.ByQuery),
		chromedp.Text(`#login-app`, &lead, chromedp.ByQuery),
		chromedp.SendKeys(`#login_id`, email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, preset, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Sign in"]`),
		chromedp.Location(&loc),
		chromedp.WaitVisible(`//h1[text()="Password Expired"]`),
		chromedp.Location(&loc),
		chromedp.SendKeys(`#password`, newPW, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, newPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Continue"]`),
		chromedp.WaitVisible(`#rp-signed-in`, chromedp.ByQuery),
		chromedp.Text(`#rp-signed-in`, &landed, chromedp.ByQuery),
		chromedp.Location(&loc),
	)
	if err != nil {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		t.Fatalf("%v (RP errors: %v; at %s)", err, rp.idErrors, loc)
	}
	if lead != "Sign in to continue to Acme Notes" {
		t.Fatalf("sign-in page lead: %q", lead)
	}
	if landed != "Signed in as "+email || !strings.HasPrefix(loc, rp.srv.URL+"/callback?") {
		t.Fatalf("landed at %s with %q", loc, landed)
	}
	wantStoredPassword(t, app, email, newPW)
	rp.mu.Lock()
	tok, sub := rp.token, rp.subject
	rp.mu.Unlock()
	if tok.RefreshToken == "" || sub == "" {
		t.Fatalf("no refresh token (%q) or subject (%q)", tok.RefreshToken, sub)
	}

	// The app refreshes; the old refresh token then fails.
	bg := context.Background()
	expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	fresh, err := rp.conf.TokenSource(bg, expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == "" || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh gave access %q refresh %q", fresh.AccessToken, fresh.RefreshToken)
	}
	if raw, _ := fresh.Extra("id_token").(string); raw != "" {
		if _, err := rp.verifier.Verify(bg, raw); err != nil {
			t.Fatalf("refreshed ID token: %v", err)
		}
	}
	ui, err := rp.provider.UserInfo(bg, oauth2.StaticTokenSource(fresh))
	if err != nil || ui.Email != email || ui.Subject != sub {
		t.Fatalf("userinfo with the refreshed token: %+v, %v", ui, err)
	}
	if _, err := rp.conf.TokenSource(bg, expired).Token(); err == nil {
		t.Fatal("the old refresh token worked a second time")
	}
	// Reuse revoked the chain: the new refresh token is dead too.
	if _, err := rp.conf.TokenSource(bg, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Fatal("after reuse of the old refresh token, the new one still works")
	}
}
