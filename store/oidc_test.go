package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOIDCCodesAndTokensAreSingleUse: a code and a refresh token are used
// once only; revoking a user's tokens leaves other users' alone; expired
// rows are cleaned; deleting an application removes its rows.
func TestOIDCCodesAndTokensAreSingleUse(t *testing.T) {
	forEachBackend(t, tOIDCCodesAndTokensAreSingleUse)
}

func tOIDCCodesAndTokensAreSingleUse(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"u1", "u2"} {
		if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	c := &OIDCClient{ID: "c1", Name: "App", Confidential: true, SecretHash: "h", RedirectURIs: []string{"https://a/cb", "http://localhost/cb"},
		Scopes: []string{"openid", "email"}, CreatedAt: now, UpdatedAt: now}
	if err := s.InsertOIDCClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertOIDCClient(ctx, c); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate client: %v", err)
	}
	got, err := s.OIDCClientByID(ctx, "c1")
	if err != nil || len(got.RedirectURIs) != 2 || got.RedirectURIs[1] != "http://localhost/cb" || len(got.PostLogoutRedirectURIs) != 0 || got.Scopes[1] != "email" {
		t.Fatalf("client: %+v, %v", got, err)
	}

	r := &OIDCAuthRequest{ID: "r1", ClientID: "c1", Params: "{}", CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
	if err := s.InsertOIDCAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOIDCAuthCode(ctx, "r1", "code", now.Add(time.Minute), now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("code for a request nobody signed in to: %v", err)
	}
	if ok, err := s.CompleteOIDCAuthRequest(ctx, "r1", "u1", now, now); !ok || err != nil {
		t.Fatalf("complete: %v %v", ok, err)
	}
	if ok, _ := s.CompleteOIDCAuthRequest(ctx, "r1", "u2", now, now); ok {
		t.Fatal("a done request was completed again")
	}
	if err := s.SaveOIDCAuthCode(ctx, "r1", "code", now.Add(time.Minute), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOIDCAuthCode(ctx, "r1", "code2", now.Add(time.Minute), now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second code: %v", err)
	}
	if ok, _ := s.UseOIDCAuthCode(ctx, "r1", now.Add(61*time.Second)); ok {
		t.Fatal("an expired code was used")
	}
	if ok, err := s.UseOIDCAuthCode(ctx, "r1", now); !ok || err != nil {
		t.Fatalf("use code: %v %v", ok, err)
	}
	if ok, _ := s.UseOIDCAuthCode(ctx, "r1", now); ok {
		t.Fatal("a code was used twice")
	}
	byCode, err := s.OIDCAuthRequestByCode(ctx, "code")
	if err != nil || byCode.UserID != "u1" || byCode.CodeUsedAt == nil || byCode.UserDisabled {
		t.Fatalf("by code: %+v, %v", byCode, err)
	}

	tok := func(id, user, chain string) {
		t.Helper()
		if err := s.InsertOIDCRefreshToken(ctx, &OIDCRefreshToken{ID: id, TokenHash: "h" + id, ChainID: chain, ClientID: "c1", UserID: user,
			AuthRequestID: "r1", Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertOIDCAccessToken(ctx, &OIDCAccessToken{ID: "a" + id, ChainID: chain, ClientID: "c1", UserID: user,
			Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	tok("t1", "u1", "ch1")
	tok("t2", "u2", "ch2")
	if ok, err := s.UseOIDCRefreshToken(ctx, "t1", now); !ok || err != nil {
		t.Fatalf("use refresh: %v %v", ok, err)
	}
	if ok, _ := s.UseOIDCRefreshToken(ctx, "t1", now); ok {
		t.Fatal("a refresh token was used twice")
	}
	if n, err := s.RevokeUserOIDCTokens(ctx, "u1", now); n != 1 || err != nil {
		t.Fatalf("revoke user: %d %v", n, err)
	}
	if a, _ := s.OIDCAccessTokenByID(ctx, "at1"); a.RevokedAt == nil {
		t.Fatal("u1's access token is live")
	}
	if a, _ := s.OIDCAccessTokenByID(ctx, "at2"); a.RevokedAt != nil {
		t.Fatal("u2's access token was revoked")
	}
	if err := s.RevokeOIDCAuthRequestTokens(ctx, "r1", now); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.OIDCRefreshTokenByHash(ctx, "ht2"); r.RevokedAt == nil {
		t.Fatal("the chain grown from the code was not revoked")
	}

	if err := s.DeleteExpiredOIDCRows(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"oidc_auth_requests", "oidc_access_tokens", "oidc_refresh_tokens"} {
		var n int
		if err := s.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s after cleanup: %d %v", table, n, err)
		}
	}
	tok("t3", "u1", "ch3")
	if err := s.DeleteOIDCClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OIDCRefreshTokenByHash(ctx, "ht3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token of a deleted app: %v", err)
	}
	if err := s.DeleteOIDCClient(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}
