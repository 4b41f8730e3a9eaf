package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version = '0001_init'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("0001_init recorded %d times (%v)", n, err)
		}
		var fk int
		if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign keys = %d (%v)", fk, err)
		}
		s.Close()
	}
}

func TestTxRollbackAndAfterCommit(t *testing.T) { forEachBackend(t, tTxRollbackAndAfterCommit) }

func tTxRollbackAndAfterCommit(t *testing.T, s *Store) {
	ctx := context.Background()
	ran := 0
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *Tx) error {
		tx.AfterCommit(func() { ran++ })
		if err := tx.InsertUser(ctx, &User{ID: "u1", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || ran != 0 {
		t.Fatalf("err = %v, after-commit ran %d times", err, ran)
	}
	if _, err := s.UserByID(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled-back user exists: %v", err)
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		tx.AfterCommit(func() { ran++ })
		return tx.InsertUser(ctx, &User{ID: "u1", CreatedAt: time.Now(), UpdatedAt: time.Now()})
	})
	if err != nil || ran != 1 {
		t.Fatalf("err = %v, after-commit ran %d times", err, ran)
	}
}

func TestIdentityConflictIsErrConflict(t *testing.T) {
	forEachBackend(t, tIdentityConflictIsErrConflict)
}

func tIdentityConflictIsErrConflict(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertIdentity(ctx, Identity{ID: "i1", UserID: "a", Kind: "email", Value: "A@x.io", ValueNorm: "a@x.io", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	err := s.InsertIdentity(ctx, Identity{ID: "i2", UserID: "b", Kind: "email", Value: "a@X.io", ValueNorm: "a@x.io", CreatedAt: now})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

func TestPrefixUpperBound(t *testing.T) {
	for in, want := range map[string]string{"abc": "abd", "a\xff": "b", "": "\xff\xff\xff\xff"} {
		if got := prefixUpperBound(in); got != want {
			t.Errorf("prefixUpperBound(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := Open(ctx, filepath.Join(dir, "a#1?x%41.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.PutSetting(ctx, "k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, filepath.Join(dir, "a#2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Setting(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("two paths differing after '#' share one database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a#1?x%41.db")); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

// TestSearchListsEachUserOnce: a user with two login IDs matching the
// search appears once, and paging (newest first) sees every user exactly once.
func TestSearchListsEachUserOnce(t *testing.T) { forEachBackend(t, tSearchListsEachUserOnce) }

func tSearchListsEachUserOnce(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Now()
	add := func(user string, ids ...string) {
		t.Helper()
		if err := s.InsertUser(ctx, &User{ID: user, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for i, v := range ids {
			kind := "username"
			if strings.Contains(v, "@") {
				kind = "email"
			}
			if err := s.InsertIdentity(ctx, Identity{ID: user + "-" + v, UserID: user, Kind: kind, Value: v, ValueNorm: v, CreatedAt: now.Add(time.Duration(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("u1", "ann", "ann@example.com")
	add("u2", "anna@example.com")
	add("u3", "bob", "annie@example.com") // matches by its second login ID only
	add("u4", "ann.b", "ann.c@example.com", "zed")
	var seen []string
	after := ""
	for {
		rows, err := s.ListUsers(ctx, ListUsersParams{Search: "ann", After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			seen = append(seen, r.ID)
			after = r.Cursor
		}
		if len(rows) < 2 {
			break
		}
	}
	want := []string{"u4", "u3", "u2", "u1"} // newest first
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("search ann = %v, want %v", seen, want)
	}
}
