package store

import (
	"context"
	"testing"
	"time"
)

// ClaimNextDeliveries (the worker's "next events of this hook" claim) from
// two instances at once takes each delivery once: at READ COMMITTED its
// subquery would otherwise hand the same row to both, and the multi-
// instance test saw user.created delivered twice.
func TestPostgresClaimNextDeliveriesSharedByInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	var stores []*Store
	for range 2 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	now := time.Now().UTC()
	const n = 120
	err := stores[0].InTx(ctx, func(tx *Tx) error {
		e := &Event{Type: "user.created", CreatedAt: now, Payload: []byte(`{}`), Context: []byte(`{}`)}
		if err := tx.InsertEvent(ctx, e); err != nil {
			return err
		}
		if err := tx.InsertWebhook(ctx, Webhook{ID: "w", URL: "http://127.0.0.1/", Kind: "non_blocking", AllEvents: true, Enabled: true, Secret: []byte{0}, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for range n {
			if _, err := tx.InsertDelivery(ctx, "w", e.Seq, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	claimed := claimConcurrently(t, stores, 8, func(s *Store) ([]int64, error) {
		var ids []int64
		err := s.InTx(ctx, func(tx *Tx) error {
			held, err := tx.ClaimNextDeliveries(ctx, "w", now, time.Hour, 3)
			for _, h := range held {
				ids = append(ids, h.ID)
			}
			return err
		})
		return ids, err
	})
	if len(claimed) != n {
		t.Fatalf("%d of %d deliveries claimed", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("delivery %d claimed %d times", id, c)
		}
	}
}
