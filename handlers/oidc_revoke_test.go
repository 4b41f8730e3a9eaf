package handlers

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"latchkey/account"
	"latchkey/oidc"
)

// TestOIDCRevokedAccessTokenRejected: the sealed access token the app
// holds is checked against the database on every use. Revoked at
// /oauth2/revoke (the access token itself), userinfo refuses it and
// introspection says inactive, while the grant's refresh token still
// works (RFC 7009 leaves it); disabling the app, with its client read
// into memory by the requests before, stops its tokens and its token
// requests at once.
func TestOIDCRevokedAccessTokenRejected(t *testing.T) {
	a := newOIDCApp(t)
	b, _ := a.signedIn("revoked@example.com")
	tr := a.exchange(a.code(b, authorizeQuery(a.conf.ID)), testVerifier)
	if st, _ := a.userinfo(tr.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo before revoke: %d", st)
	}
	st, _, body := a.oauthPost(oidc.RevokePath, url.Values{"token": {tr.AccessToken}, "token_type_hint": {"access_token"}})
	if st != http.StatusOK {
		t.Fatalf("revoke access token: %d %v", st, body)
	}
	if st, _ := a.userinfo(tr.AccessToken); st == http.StatusOK {
		t.Fatal("userinfo accepts a revoked access token")
	}
	if _, _, got := a.oauthPost(oidc.IntrospectPath, url.Values{"token": {tr.AccessToken}}); got["active"] == true {
		t.Fatalf("introspection: revoked access token active: %v", got)
	}
	next := a.refresh(tr.RefreshToken)
	if next.Status != http.StatusOK || next.AccessToken == "" {
		t.Fatalf("refresh after revoking only the access token: %+v", next)
	}
	if _, _, got := a.oauthPost(oidc.IntrospectPath, url.Values{"token": {next.AccessToken}}); got["active"] != true {
		t.Fatalf("introspection of the new access token: %v", got)
	}

	code := a.code(b, authorizeQuery(a.conf.ID))
	admin := account.Actor{Kind: "admin", TriggeredBy: "admin_api"}
	if _, err := a.prov.UpdateApp(context.Background(), admin, a.conf.ID, oidc.AppInput{Name: "Acme Notes", RedirectURIs: rpRedirect,
		PostLogoutRedirectURIs: rpLogout, Scopes: []string{"email", "phone", "profile", "offline_access"}, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.userinfo(next.AccessToken); st == http.StatusOK {
		t.Fatal("userinfo accepts an access token of a disabled app")
	}
	a.wantNothingIssued(a.exchange(code, testVerifier), http.StatusUnauthorized, "invalid_client")
	a.wantNothingIssued(a.refresh(next.RefreshToken), http.StatusUnauthorized, "invalid_client")
}
