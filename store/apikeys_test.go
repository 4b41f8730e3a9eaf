package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAPIKeysStoreOnlyAHash(t *testing.T) { forEachBackend(t, tAPIKeysStoreOnlyAHash) }

func tAPIKeysStoreOnlyAHash(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	k := APIKey{ID: "k1", Name: "ci", SecretHash: "abc", CreatedAt: now, CreatedBy: "admin@example.com"}
	if err := s.InsertAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertAPIKey(ctx, k); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := s.TouchAPIKey(ctx, "k1", now, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "k1", now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "k1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKeyByID(ctx, "k1")
	if err != nil || got.LastUsedAt == nil || !got.RevokedAt.Equal(now) || got.LastUsedIP != "10.0.0.1" {
		t.Fatalf("key %+v, %v (revoking twice must keep the first time)", got, err)
	}
	if err := s.RevokeAPIKey(ctx, "nope", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := s.ListAPIKeys(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestDeleteUserCascadesAndCountMatching(t *testing.T) {
	forEachBackend(t, tDeleteUserCascadesAndCountMatching)
}

func tDeleteUserCascadesAndCountMatching(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now()
	mk := func(id string, logins ...string) {
		if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for _, l := range logins {
			if err := s.InsertIdentity(ctx, Identity{ID: id + l, UserID: id, Kind: "username", Value: l, ValueNorm: l, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutPassword(ctx, Password{UserID: id, Hash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertPasswordHistory(ctx, id, "h", now); err != nil {
			t.Fatal(err)
		}
	}
	mk("u1", "ann", "anne")
	mk("u2", "annie")
	mk("u3", "bob")
	for search, want := range map[string]int{"": 3, "ann": 2, "ANNE": 1, "b": 1, "z": 0} {
		if n, err := s.CountUsersMatching(ctx, search); err != nil || n != want {
			t.Errorf("count %q = %d, want %d (%v)", search, n, want, err)
		}
	}
	ids, err := s.IdentitiesByUsers(ctx, []string{"u1", "u3", "missing"})
	if err != nil || len(ids["u1"]) != 2 || len(ids["u3"]) != 1 || len(ids["missing"]) != 0 || len(ids["u2"]) != 0 {
		t.Fatalf("identities by users %v %v", ids, err)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.IdentityByNorm(ctx, "anne"); !errors.Is(err, ErrNotFound) {
		t.Error("identity survived")
	}
	if _, err := s.PasswordByUser(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Error("password survived")
	}
	if h, _ := s.PasswordHistory(ctx, "u1", 10, time.Time{}); len(h) != 0 {
		t.Error("history survived")
	}
}
