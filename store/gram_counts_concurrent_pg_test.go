package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Users created at once on PostgreSQL, with login IDs that share search
// grams, do not deadlock (they did while gram counts were bumped row by
// row in any order), and the gram counts still match the postings, after
// the creations and after deletions.
func TestPostgresConcurrentUserCreationNoDeadlock(t *testing.T) {
	s := openPGTest(t)
	ctx := context.Background()
	const n = 80
	errs := make(chan error, n)
	var wg sync.WaitGroup
	now := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("u%03d", i)
			errs <- s.InTx(ctx, func(tx *Tx) error {
				if err := tx.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
				v := fmt.Sprintf("mass%03d@example.com", i)
				return tx.InsertIdentity(ctx, Identity{ID: "i" + id, UserID: id, Kind: "email", Value: v, ValueNorm: v, CreatedAt: now})
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent creation: %v", err)
		}
	}
	deleted := false
	countsMatch := func() {
		t.Helper()
		for i := range n {
			got := searchIDs(t, s, ListUsersParams{Search: fmt.Sprintf("mass%03d@", i)})
			gone := i%2 == 0 && deleted
			if (gone && len(got) != 0) || (!gone && (len(got) != 1 || got[0] != fmt.Sprintf("u%03d", i))) {
				t.Fatalf("search for user %d (deleted: %v) = %v", i, gone, got)
			}
		}
	}
	countsMatch()
	var wg2 sync.WaitGroup
	errs = make(chan error, n/2)
	for i := 0; i < n; i += 2 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			_, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, fmt.Sprintf("u%03d", i))
			errs <- err
		}()
	}
	wg2.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent deletion: %v", err)
		}
	}
	deleted = true
	countsMatch()
}
