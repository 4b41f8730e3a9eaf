package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Store bugs found by running the handler and end-to-end suites on
// PostgreSQL (LATCHKEY_TEST_DB=postgres), each pinned on both databases.

// TestLatestPasswordResetSameMillisecond: among a user's requests made in
// the same millisecond, the newest is the one inserted last, whatever the
// order of the IDs (PostgreSQL had no rowid to order by and failed the
// query).
func TestLatestPasswordResetSameMillisecond(t *testing.T) {
	forEachBackend(t, tLatestPasswordResetSameMillisecond)
}

func tLatestPasswordResetSameMillisecond(t *testing.T, s *Store) {
	now := lockoutSeed(t, s)
	ctx := context.Background()
	for _, id := range []string{"z", "a", "m"} {
		if err := s.InsertPasswordReset(ctx, PasswordReset{ID: id, UserID: "u1", CodeHash: "c" + id, LinkHash: id,
			CreatedAt: now, CodeExpiresAt: now.Add(time.Hour), LinkExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		r, err := s.LatestPasswordReset(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != id {
			t.Fatalf("latest after inserting %q is %q", id, r.ID)
		}
	}
	// A later created_at wins over insertion order.
	if err := s.InsertPasswordReset(ctx, PasswordReset{ID: "old", UserID: "u1", CodeHash: "c", LinkHash: "old",
		CreatedAt: now.Add(-time.Minute), CodeExpiresAt: now.Add(time.Hour), LinkExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.LatestPasswordReset(ctx, "u1"); err != nil || r.ID != "m" {
		t.Fatalf("latest = %+v, %v; want m", r, err)
	}
}

// TestImportKeepsGramCounts: a bulk import in several multi-row chunks
// (one transaction) keeps the search index and its per-gram user counts
// exact, and so does deleting an imported user. On PostgreSQL the counts
// were bumped row by row, which was quadratic in the import's size (a
// 10,000-user import did not finish); they are now added per statement.
func TestImportKeepsGramCounts(t *testing.T) { forEachBackend(t, tImportKeepsGramCounts) }

func tImportKeepsGramCounts(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 1100
	users := make([]ImportedUser, n)
	for i := range users {
		id := fmt.Sprintf("u%05d", i)
		v := fmt.Sprintf("member%05d@imports.example.com", i)
		users[i] = ImportedUser{User: User{ID: id, CreatedAt: now, UpdatedAt: now},
			Identity: Identity{ID: "i" + id, UserID: id, Kind: "email", Value: v, ValueNorm: v, CreatedAt: now}}
	}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.InsertImportedUsers(ctx, users) }); err != nil {
		t.Fatal(err)
	}
	pg := s.Postgres() // PostgreSQL searches by pg_trgm (0022): no gram tables
	wantCountsMatch := func(when string) {
		t.Helper()
		if pg {
			return
		}
		var bad, grams int
		if err := s.Direct().QueryRow(`SELECT COUNT(*) FROM gram_counts c
			WHERE c.n <> (SELECT COUNT(*) FROM login_id_grams g WHERE g.gram = c.gram)`).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if err := s.Direct().QueryRow(`SELECT COUNT(DISTINCT gram) FROM login_id_grams g
			WHERE NOT EXISTS (SELECT 1 FROM gram_counts c WHERE c.gram = g.gram)`).Scan(&grams); err != nil {
			t.Fatal(err)
		}
		if bad != 0 || grams != 0 {
			t.Fatalf("%s: %d gram counts wrong, %d grams uncounted", when, bad, grams)
		}
	}
	wantCountsMatch("after the import")
	var common int
	if pg {
		common = n
	} else if err := s.Direct().QueryRow(`SELECT n FROM gram_counts WHERE gram = 'mem'`).Scan(&common); err != nil || common != n {
		t.Fatalf("users with 'mem': %d, %v; want %d", common, err, n)
	}
	if got := searchIDs(t, s, ListUsersParams{Search: "member01042@"}); len(got) != 1 || got[0] != "u01042" {
		t.Fatalf("search after import: %v", got)
	}
	if err := s.DeleteUser(ctx, "u01042"); err != nil {
		t.Fatal(err)
	}
	wantCountsMatch("after a delete")
	if pg {
		common = n - 1
	} else if err := s.Direct().QueryRow(`SELECT n FROM gram_counts WHERE gram = 'mem'`).Scan(&common); err != nil || common != n-1 {
		t.Fatalf("users with 'mem' after a delete: %d, %v; want %d", common, err, n-1)
	}
	if got := searchIDs(t, s, ListUsersParams{Search: "member01042@"}); len(got) != 0 {
		t.Fatalf("search after delete: %v", got)
	}
}

// TestPostgresLockWaitIsBusy: on PostgreSQL a write that waits for a lock
// held by another connection gives up after the write budget with ErrBusy
// (HTTP 503), as on SQLite, instead of waiting as long as the lock is held;
// once the lock is gone the same write succeeds.
func TestPostgresLockWaitIsBusy(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	s, err := OpenOptions(ctx, url, Options{WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start := time.Now()
	err = s.InsertUser(ctx, &User{ID: "blocked", CreatedAt: now, UpdatedAt: now})
	if !errors.Is(err, ErrBusy) || !IsBusy(err) {
		t.Fatalf("insert while the table is locked: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %s, want about the 200ms budget", d)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("users while locked: %d, %v (reads must not wait)", n, err)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertUser(ctx, &User{ID: "blocked", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("insert after the lock: %v", err)
	}
}
