package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Users created, renamed and deleted at once on two instances: every
// transaction goes through (no deadlock on shared search-index rows, as
// there was with 0014's gram_counts row trigger) and search finds each
// user by its final login ID.
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
	// PostgreSQL searches by pg_trgm since 0022 (no gram tables): every
	// surviving user is found by its login ID as it ended up.
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("w%02d-%02d", w, i)
			term := "someone." + id + "@"
			if i%3 == 1 {
				term = "renamed." + id + "@"
			}
			got := searchIDs(t, stores[w%2], ListUsersParams{Search: term})
			if i%5 == 2 {
				if len(got) != 0 {
					t.Fatalf("deleted %s still found: %v", id, got)
				}
				continue
			}
			if len(got) != 1 || got[0] != id {
				t.Fatalf("search %q = %v, want [%s]", term, got, id)
			}
		}
	}
}
