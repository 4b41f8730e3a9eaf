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
