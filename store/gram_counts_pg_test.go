package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Users created, renamed and deleted at once on two instances: every
// transaction goes through (no deadlock on the shared gram_counts rows,
// which 0014's row trigger locked in hash order) and the counts still
// match the postings.
func TestPostgresGramCountsConcurrentWriters(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const writers, each = 12, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for i := range each {
				id := fmt.Sprintf("w%02d-%02d", w, i)
				email := fmt.Sprintf("someone.%s@example.com", id)
				now := time.Now()
				err := s.InTx(ctx, func(tx *Tx) error {
					if err := tx.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
					if err := tx.InsertIdentity(ctx, Identity{ID: id, UserID: id, Kind: "email", Value: email, ValueNorm: email, CreatedAt: now}); err != nil {
						return err
					}
					return tx.InsertIdentity(ctx, Identity{ID: id + "u", UserID: id, Kind: "username", Value: "user" + id, ValueNorm: "user" + id, CreatedAt: now})
				})
				if err == nil && i%3 == 1 {
					renamed := fmt.Sprintf("renamed.%s@example.org", id)
					err = s.UpdateIdentity(ctx, id, renamed, renamed)
				}
				if err == nil && i%5 == 2 {
					err = s.DeleteUser(ctx, id)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var diff int
	err := stores[0].db.QueryRow(`SELECT COUNT(*) FROM (
		SELECT * FROM (SELECT gram, n FROM gram_counts WHERE n > 0 EXCEPT SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram) a
		UNION ALL
		SELECT * FROM (SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram EXCEPT SELECT gram, n FROM gram_counts) b) d`).Scan(&diff)
	if err != nil || diff != 0 {
		t.Fatalf("gram counts off: %d %v", diff, err)
	}
	var grams int
	if err := stores[0].db.QueryRow(`SELECT COUNT(*) FROM login_id_grams`).Scan(&grams); err != nil || grams == 0 {
		t.Fatalf("no postings: %d %v", grams, err)
	}
}
