package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/oidc"
	"latchkey/store"
	"latchkey/store/testdb"
)

// holdWriteLock takes SQLite's write lock on the file at path from another
// connection, as another process would; the returned func releases it.
func holdWriteLock(t *testing.T, path string) func() {
	t.Helper()
	return testdb.HoldSQLiteWriteLock(t, path)
}

// oauthPost posts form to an OAuth endpoint as the confidential app and
// returns the status, the Retry-After header and the JSON body.
func (a *oidcApp) oauthPost(path string, form url.Values) (int, string, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.conf.ID), url.QueryEscape(a.conf.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, res.Header.Get("Retry-After"), m
}

// TestOIDCBusyDatabase: while another connection holds SQLite's write
// lock past the write budget, the OAuth endpoints that write answer 503
// with Retry-After (token and revoke with error temporarily_unavailable),
// issue nothing, burn no code or refresh token, and sign no one out; once
// the lock is gone the same code and refresh token work.
func TestOIDCBusyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	a := newOIDCAppAt(t, path, store.Options{WriteTimeout: 300 * time.Millisecond})
	b, u := a.signedIn("busy@example.com")
	first := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	if first.Status != http.StatusOK || first.RefreshToken == "" || first.IDToken == "" {
		t.Fatalf("exchange: %+v", first)
	}
	code := a.code(b, authorizeQuery(a.conf.ID))
	r := b.get(oidc.AuthorizePath + "?" + authorizeQuery(a.conf.ID).Encode())
	wantStatus(t, r, http.StatusFound)
	cont := r.Location
	access, refresh := a.liveTokens()

	release := holdWriteLock(t, path)
	wantBusy := func(what string, status int, retry string, body map[string]any) {
		t.Helper()
		if status != http.StatusServiceUnavailable || retry == "" || body["error"] != "temporarily_unavailable" {
			t.Fatalf("%s while busy: status %d, Retry-After %q, body %v", what, status, retry, body)
		}
		if body["access_token"] != nil || body["refresh_token"] != nil || body["id_token"] != nil {
			t.Fatalf("%s while busy issued tokens: %v", what, body)
		}
	}
	tokenForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {testVerifier}}
	st, ra, body := a.oauthPost(oidc.TokenPath, tokenForm)
	wantBusy("code exchange", st, ra, body)
	// A browser app can read the 503: the CORS headers stay.
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+oidc.TokenPath, strings.NewReader(tokenForm.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:5173")
	req.SetBasicAuth(url.QueryEscape(a.conf.ID), url.QueryEscape(a.conf.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:5173" {
		t.Fatalf("busy answer to a browser app: %d, headers %v", res.StatusCode, res.Header)
	}
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
	st, ra, body = a.oauthPost(oidc.TokenPath, refreshForm)
	wantBusy("refresh", st, ra, body)
	st, ra, body = a.oauthPost(oidc.RevokePath, url.Values{"token": {first.RefreshToken}, "token_type_hint": {"refresh_token"}})
	wantBusy("revoke", st, ra, body)

	r = b.get(oidc.AuthorizePath + "?" + authorizeQuery(a.conf.ID).Encode())
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.Location != "" || !strings.Contains(r.Body, "busy") {
		t.Fatalf("authorize while busy: %d, Retry-After %q, location %q", r.Status, r.Header.Get("Retry-After"), r.Location)
	}
	r = b.get(cont)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.Location != "" {
		t.Fatalf("continue while busy: %d, Retry-After %q, location %q", r.Status, r.Header.Get("Retry-After"), r.Location)
	}
	r = b.get(oidc.EndSessionPath + "?" + url.Values{"id_token_hint": {first.IDToken}, "post_logout_redirect_uri": {rpLogout}}.Encode())
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.Location != "" {
		t.Fatalf("end_session while busy: %d, Retry-After %q, location %q", r.Status, r.Header.Get("Retry-After"), r.Location)
	}
	release()

	if n, m := a.liveTokens(); n != access || m != refresh {
		t.Fatalf("live tokens %d/%d -> %d/%d while busy", access, refresh, n, m)
	}
	if a.sessions(u.ID) != 1 {
		t.Fatal("end_session signed the user out while busy")
	}
	// Nothing was burned: the same code and refresh token work now.
	if tr := a.exchange(code, testVerifier); tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("code after the lock: %+v", tr)
	}
	if tr := a.refresh(first.RefreshToken); tr.Status != http.StatusOK || tr.RefreshToken == "" {
		t.Fatalf("refresh token after the lock: %+v", tr)
	}
}

// TestOIDCServerErrorHidesInternals: a token request that fails inside
// the store answers 500 server_error without the store's error text
// (table names, SQL) in error_description, and issues nothing.
func TestOIDCServerErrorHidesInternals(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("internal@example.com")
	code := a.code(b, authorizeQuery(a.conf.ID))
	if _, err := a.store.DB().Exec(`ALTER TABLE oidc_access_tokens RENAME TO oidc_access_tokens_gone`); err != nil {
		t.Fatal(err)
	}
	st, _, body := a.oauthPost(oidc.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {rpRedirect}, "code_verifier": {testVerifier}})
	desc, _ := body["error_description"].(string)
	if st != http.StatusInternalServerError || body["error"] != "server_error" || body["access_token"] != nil {
		t.Fatalf("token request with a broken store: %d %v", st, body)
	}
	for _, leak := range []string{"store", "oidc_access_tokens", "no such table"} {
		if strings.Contains(desc, leak) {
			t.Fatalf("error_description shows %q: %q", leak, desc)
		}
	}
}
