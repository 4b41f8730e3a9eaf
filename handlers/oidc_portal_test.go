package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"latchkey/account"
	"latchkey/oidc"
)

// TestOIDCTokensRevokedWithPassword: changing the password on /settings
// and an admin's reset revoke the user's refresh and access tokens in
// every app; another user's tokens stay.
func TestOIDCTokensRevokedWithPassword(t *testing.T) {
	a := newOIDCApp(t)
	ctx := context.Background()
	b, u := a.signedIn("changer@example.com")
	ob, _ := a.signedIn("bystander@example.com")
	other := a.exchange(a.code(ob, authorizeQuery(a.conf.ID)), testVerifier)

	tr := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	page := b.get("/settings")
	wantStatus(t, page, http.StatusOK)
	r := b.post("/settings/password", url.Values{"current_password": {oidcPW}, "password": {"Changed-Passw0rd-9"}, "confirm": {"Changed-Passw0rd-9"}})
	wantStatus(t, r, http.StatusSeeOther)
	a.wantNothingIssued(a.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if st, _ := a.userinfo(tr.AccessToken); st == http.StatusOK {
		t.Fatal("access token works after a password change")
	}

	tr = a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	pw := "Admin-Set-Passw0rd-1"
	if _, err := a.acct.ResetPassword(ctx, account.SystemActor, account.ResetPasswordInput{UserID: u.ID, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	a.wantNothingIssued(a.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if st, ui := a.userinfo(other.AccessToken); st != http.StatusOK || ui["email"] != "bystander@example.com" {
		t.Fatalf("the other user's token: %d %v", st, ui)
	}
	if fresh := a.refresh(other.RefreshToken); fresh.Status != http.StatusOK {
		t.Fatalf("the other user's refresh: %+v", fresh)
	}
}

// TestOIDCIntrospectAndRevoke: introspection answers the app the token was
// issued to (and needs its secret); /oauth2/revoke revokes a refresh token
// with its chain.
func TestOIDCIntrospectAndRevoke(t *testing.T) {
	a := newOIDCApp(t)
	b, u := a.signedIn("intro@example.com")
	tr := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	introspect := func(token, clientID, secret string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+oidc.IntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		m := map[string]any{"status": float64(res.StatusCode)}
		_ = json.NewDecoder(res.Body).Decode(&m)
		return m
	}
	got := introspect(tr.AccessToken, a.conf.ID, a.conf.Secret)
	if got["active"] != true || got["sub"] != u.ID || got["client_id"] != a.conf.ID || got["email"] != "intro@example.com" {
		t.Fatalf("introspection: %v", got)
	}
	if got := introspect(tr.AccessToken, a.conf.ID, "wrong"); got["status"] != float64(http.StatusUnauthorized) || got["active"] == true {
		t.Fatalf("introspection with a wrong secret: %v", got)
	}
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+oidc.RevokePath, strings.NewReader(url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.conf.ID, a.conf.Secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	a.wantNothingIssued(a.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if got := introspect(tr.AccessToken, a.conf.ID, a.conf.Secret); got["active"] == true {
		t.Fatalf("access token of a revoked grant is active: %v", got)
	}
}

var tokenCodeRE = func(id string) *regexp.Regexp {
	return regexp.MustCompile(`<code class="token" id="` + id + `">([^<]+)</code>`)
}

// TestApplicationsPortal: add an application (the secret shows once,
// after a redirect, and a reload neither shows it nor adds another),
// refuse bad input with 422, edit, rotate the secret (the old one stops
// working), disable, and delete after a confirm step; each change is in
// the audit log's events.
func TestApplicationsPortal(t *testing.T) {
	a := newOIDCApp(t)
	a.loginAdmin()
	wantStatus(t, a.get("/portal/applications"), http.StatusOK)
	wantStatus(t, a.get("/portal/applications/new"), http.StatusOK)
	form := url.Values{"name": {"Billing"}, "client_type": {"confidential"}, "redirect_uris": {"https://billing.example.com/cb\nhttp://localhost:3000/cb"},
		"post_logout_redirect_uris": {"https://billing.example.com/bye"}, "scopes": {"email", "offline_access"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("redirect_uris", "http://billing.example.com/cb")
	r := a.post("/portal/applications", bad)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "only loopback addresses", "billing.example.com/cb")
	bad.Set("name", "")
	bad.Set("redirect_uris", "")
	r = a.post("/portal/applications", bad)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Give the application a name", "Enter at least one redirect URI")
	apps, _ := a.prov.Apps(context.Background())
	if len(apps) != 2 {
		t.Fatalf("apps after refused input: %d", len(apps))
	}

	r = a.post("/portal/applications", form)
	wantStatus(t, r, http.StatusSeeOther)
	show := a.get(r.Location)
	wantStatus(t, show, http.StatusOK)
	idm, secm := tokenCodeRE("client-id").FindStringSubmatch(show.Body), tokenCodeRE("client-secret").FindStringSubmatch(show.Body)
	if idm == nil || secm == nil || r.Location != "/portal/applications/"+idm[1] {
		t.Fatalf("credentials not shown at %s:\n%s", r.Location, show.Body)
	}
	clientID, secret := idm[1], secm[1]
	again := a.get(r.Location)
	if strings.Contains(again.Body, secret) || strings.Contains(again.Body, `id="client-secret"`) {
		t.Fatal("the secret is shown a second time")
	}
	if apps, _ := a.prov.Apps(context.Background()); len(apps) != 3 {
		t.Fatalf("apps: %d", len(apps))
	}
	stored, err := a.prov.App(context.Background(), clientID)
	if err != nil || stored.SecretHash == "" || strings.Contains(stored.SecretHash, secret) {
		t.Fatalf("stored app %+v, %v", stored, err)
	}
	creds := func(secret string) int {
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+oidc.IntrospectPath, strings.NewReader("token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := creds(secret); st != http.StatusOK {
		t.Fatalf("new secret authenticates: %d", st)
	}

	// Edit: a bad URI is refused and changes nothing; a good edit saves.
	edit := url.Values{"name": {"Billing 2"}, "redirect_uris": {"ftp://x"}, "scopes": {"email"}}
	r = a.post("/portal/applications/"+clientID, edit)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	edit.Set("redirect_uris", "https://billing.example.com/cb2")
	wantStatus(t, a.post("/portal/applications/"+clientID, edit), http.StatusSeeOther)
	if got, _ := a.prov.App(context.Background(), clientID); got.Name != "Billing 2" || got.RedirectURIs[0] != "https://billing.example.com/cb2" || !got.Confidential {
		t.Fatalf("after edit: %+v", got)
	}

	// Rotate the secret: shown once; the old one fails, the new one works.
	a.get("/portal/applications/" + clientID)
	r = a.post("/portal/applications/"+clientID+"/secret", nil)
	wantStatus(t, r, http.StatusSeeOther)
	secm = tokenCodeRE("client-secret").FindStringSubmatch(a.get(r.Location).Body)
	if secm == nil || secm[1] == secret {
		t.Fatal("no new secret shown")
	}
	if creds(secret) != http.StatusUnauthorized || creds(secm[1]) != http.StatusOK {
		t.Fatal("old secret still works or new one does not")
	}

	// Disable: its sign-ins stop.
	edit.Set("disabled", "1")
	wantStatus(t, a.post("/portal/applications/"+clientID, edit), http.StatusSeeOther)
	if creds(secm[1]) != http.StatusUnauthorized {
		t.Fatal("a disabled application still authenticates")
	}

	// Delete after the confirm page.
	page := a.get("/portal/applications/" + clientID + "/delete")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Delete Billing 2?")
	wantStatus(t, a.post("/portal/applications/"+clientID+"/delete", nil), http.StatusSeeOther)
	wantStatus(t, a.get("/portal/applications/"+clientID), http.StatusNotFound)

	for typ, want := range map[string]int{oidc.EventApplicationCreated: 3, oidc.EventApplicationUpdated: 3, oidc.EventApplicationDeleted: 1} {
		if got := len(a.events.ofType(typ)); got != want {
			t.Errorf("%s events: %d, want %d", typ, got, want)
		}
	}
	// A stranger (no admin session) cannot reach the pages.
	s := a.browser()
	if r := s.get("/portal/applications"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/portal/login") {
		t.Fatalf("signed out: %d %s", r.Status, r.Location)
	}
}

// TestApplicationsPortalPublicApp: a public app gets no secret (none is
// shown, and rotating one is refused with a message); the form keeps the
// type and refuses a custom scheme.
func TestApplicationsPortalPublicApp(t *testing.T) {
	a := newOIDCApp(t)
	a.loginAdmin()
	a.get("/portal/applications/new")
	r := a.post("/portal/applications", url.Values{"name": {"Notes SPA"}, "client_type": {"public"}, "redirect_uris": {"myapp://callback"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "must start with https://")
	r = a.post("/portal/applications", url.Values{"name": {"Notes SPA"}, "client_type": {"public"}, "redirect_uris": {"http://[::1]:5173/cb"}})
	wantStatus(t, r, http.StatusSeeOther)
	page := a.get(r.Location)
	wantStatus(t, page, http.StatusOK)
	if strings.Contains(page.Body, `id="client-secret"`) || tokenCodeRE("client-id").FindStringSubmatch(page.Body) == nil {
		t.Fatal("public app page: secret shown or no client ID")
	}
	wantContains(t, page.Body, "has no secret: it must use PKCE")
	id := strings.TrimPrefix(r.Location, "/portal/applications/")
	r = a.post("/portal/applications/"+id+"/secret", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "A public application has no secret.")
	if app, _ := a.prov.App(context.Background(), id); app.Confidential || app.SecretHash != "" {
		t.Fatalf("public app stored as %+v", app)
	}
}
