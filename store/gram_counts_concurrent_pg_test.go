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
	countsMatch := func() {
		t.Helper()
		var diff int
		err := s.db.QueryRow(`SELECT COUNT(*) FROM (
			SELECT * FROM (SELECT gram, n FROM gram_counts WHERE n > 0 EXCEPT SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram) AS a
			UNION ALL
			SELECT * FROM (SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram EXCEPT SELECT gram, n FROM gram_counts) AS b) AS d`).Scan(&diff)
		if err != nil || diff != 0 {
			t.Fatalf("gram counts off: %d %v", diff, err)
		}
	}
	countsMatch()
	var com int64
	if err := s.db.QueryRow(`SELECT n FROM gram_counts WHERE gram = 'com'`).Scan(&com); err != nil || com != n {
		t.Fatalf("count of 'com': %d, %v (want %d)", com, err, n)
	}
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
	countsMatch()
	if err := s.db.QueryRow(`SELECT n FROM gram_counts WHERE gram = 'com'`).Scan(&com); err != nil || com != n/2 {
		t.Fatalf("count of 'com' after deletions: %d, %v (want %d)", com, err, n/2)
	}
}
