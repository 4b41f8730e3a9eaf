package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOIDCUserClaims: one query gives the user's state and login IDs,
// oldest first; a user without login IDs has none; an unknown user is
// ErrNotFound.
func TestOIDCUserClaims(t *testing.T) { forEachBackend(t, tOIDCUserClaims) }

func tOIDCUserClaims(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"u1", "u2"} {
		if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := []Identity{
		{ID: "i2", UserID: "u1", Kind: "username", Value: "ann", ValueNorm: "ann", CreatedAt: now.Add(2 * time.Second)},
		{ID: "i1", UserID: "u1", Kind: "email", Value: "Ann@example.com", ValueNorm: "ann@example.com", CreatedAt: now.Add(time.Second)},
	}
	for _, i := range ids {
		if err := s.InsertIdentity(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE users SET is_disabled = 1 WHERE id = ?`, "u2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c, err := s.OIDCUserClaims(ctx, "u1")
	if err != nil || c.IsDisabled || !c.UpdatedAt.Equal(now.Add(time.Hour)) || len(c.Identities) != 2 ||
		c.Identities[0].Kind != "email" || c.Identities[0].Value != "Ann@example.com" || c.Identities[1].Value != "ann" {
		t.Fatalf("u1: %+v, %v", c, err)
	}
	c, err = s.OIDCUserClaims(ctx, "u2")
	if err != nil || !c.IsDisabled || len(c.Identities) != 0 {
		t.Fatalf("u2: %+v, %v", c, err)
	}
	if _, err := s.OIDCUserClaims(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestOIDCLookupsWithClaims: the code and refresh-token lookups that also
// return the user's claims return the same row as the plain lookups, the
// claims of OIDCUserClaims, one row per token whatever the number of
// login IDs, and ErrNotFound for an unknown code or token.
func TestOIDCLookupsWithClaims(t *testing.T) { forEachBackend(t, tOIDCLookupsWithClaims) }

func tOIDCLookupsWithClaims(t *testing.T, s *Store) {
	ctx := context.Background()
	tOIDCUserClaims(t, s) // users u1 (two login IDs) and u2 (disabled, none)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.InsertOIDCClient(ctx, &OIDCClient{ID: "c1", Name: "App", Confidential: true, SecretHash: "h", RedirectURIs: []string{"https://a/cb"},
		Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u1", "u2"} {
		id := "r-" + u
		if err := s.InsertOIDCAuthRequest(ctx, &OIDCAuthRequest{ID: id, ClientID: "c1", Params: `{"x":1}`, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.CompleteOIDCAuthRequest(ctx, id, u, now, now); !ok || err != nil {
			t.Fatalf("complete: %v %v", ok, err)
		}
		if err := s.SaveOIDCAuthCode(ctx, id, "code-"+u, now.Add(time.Minute), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertOIDCRefreshToken(ctx, &OIDCRefreshToken{ID: "t-" + u, TokenHash: "hash-" + u, ChainID: "ch-" + u, ClientID: "c1", UserID: u,
			AuthRequestID: id, Scopes: []string{"openid", "email"}, AMR: []string{"pwd"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"u1", "u2"} {
		plain, err := s.OIDCAuthRequestByCode(ctx, "code-"+u)
		if err != nil {
			t.Fatal(err)
		}
		r, c, err := s.OIDCAuthRequestByCodeWithClaims(ctx, "code-"+u)
		if err != nil || r.ID != plain.ID || r.UserID != u || r.Params != plain.Params || r.UserDisabled != plain.UserDisabled ||
			r.CodeExpiresAt == nil || !r.CodeExpiresAt.Equal(*plain.CodeExpiresAt) || c == nil || c.UserID != u {
			t.Fatalf("code of %s: %+v %+v %v (plain %+v)", u, r, c, err, plain)
		}
		want, _ := s.OIDCUserClaims(ctx, u)
		if c.IsDisabled != want.IsDisabled || len(c.Identities) != len(want.Identities) || (u == "u1" && c.Identities[0].Value != "Ann@example.com") {
			t.Fatalf("claims with the code of %s: %+v, want %+v", u, c, want)
		}
		pt, err := s.OIDCRefreshTokenByHash(ctx, "hash-"+u)
		if err != nil {
			t.Fatal(err)
		}
		rt, c, err := s.OIDCRefreshTokenByHashWithClaims(ctx, "hash-"+u)
		if err != nil || rt.ID != pt.ID || rt.ChainID != pt.ChainID || rt.UserDisabled != pt.UserDisabled || len(rt.Scopes) != 2 || rt.AMR[0] != "pwd" ||
			!rt.ExpiresAt.Equal(pt.ExpiresAt) || c == nil || c.IsDisabled != want.IsDisabled || len(c.Identities) != len(want.Identities) {
			t.Fatalf("refresh token of %s: %+v %+v %v (plain %+v)", u, rt, c, err, pt)
		}
	}
	if _, _, err := s.OIDCAuthRequestByCodeWithClaims(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	if _, _, err := s.OIDCRefreshTokenByHashWithClaims(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown refresh token: %v", err)
	}
}
