package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestClaimNextDeliveriesBatch: a webhook's due deliveries are claimed in
// batches in (next_attempt_at, id) order, hidden until the lease ends,
// loaded with their events in two queries, and handed back in their
// place; a hand-back whose claim was taken again meanwhile changes
// nothing.
func TestClaimNextDeliveriesBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		var ids []int64
		err := s.InTx(ctx, func(tx *Tx) error {
			for _, w := range []string{"w1", "w2"} {
				if err := tx.InsertWebhook(ctx, Webhook{ID: w, URL: "http://127.0.0.1/", Kind: "non_blocking", AllEvents: true, Enabled: true,
					Secret: []byte{0}, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
			}
			for i := range 8 {
				e := &Event{Type: "user.created", UserID: fmt.Sprint(i), CreatedAt: now, Payload: []byte(`{"n":` + fmt.Sprint(i) + `}`), Context: []byte(`{}`)}
				if err := tx.InsertEvent(ctx, e); err != nil {
					return err
				}
				id, err := tx.InsertDelivery(ctx, "w1", e.Seq, now.Add(-time.Duration(8-i)*time.Minute))
				if err != nil {
					return err
				}
				ids = append(ids, id)
				if _, err := tx.InsertDelivery(ctx, "w2", e.Seq, now); err != nil {
					return err
				}
			}
			// The third is a retry due later than the others: it comes last.
			_, err := tx.q.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?`, ms(now.Add(-30*time.Second)), ids[2])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{ids[0], ids[1], ids[3], ids[4], ids[5], ids[6], ids[7], ids[2]}
		claim := func(limit int) []HeldDelivery {
			t.Helper()
			var got []HeldDelivery
			if err := s.InTx(ctx, func(tx *Tx) error {
				var err error
				got, err = tx.ClaimNextDeliveries(ctx, "w1", now, time.Minute, limit)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return got
		}
		idsOf := func(hs []HeldDelivery) []int64 {
			out := []int64{}
			for _, h := range hs {
				out = append(out, h.ID)
			}
			return out
		}
		first := claim(3)
		if got := idsOf(first); !slices.Equal(got, want[:3]) {
			t.Fatalf("first batch %v, want %v", got, want[:3])
		}
		if !first[0].Due.Equal(now.Add(-8*time.Minute)) || !first[0].Lease.Equal(now.Add(time.Minute)) {
			t.Fatalf("held %+v: due and lease wrong", first[0])
		}
		second := claim(10)
		if got := idsOf(second); !slices.Equal(got, want[3:]) {
			t.Fatalf("second batch %v, want %v", got, want[3:])
		}
		if rest := claim(10); len(rest) != 0 {
			t.Fatalf("claimed again under a lease: %v", idsOf(rest))
		}

		ds, evs, err := s.DeliveriesWithEvents(ctx, idsOf(first))
		if err != nil || len(ds) != 3 || len(evs) != 3 {
			t.Fatalf("loaded %d deliveries, %d events: %v", len(ds), len(evs), err)
		}
		if d := ds[ids[1]]; d == nil || d.WebhookID != "w1" || string(evs[d.EventSeq].Payload) != `{"n":1}` {
			t.Fatalf("delivery %d loaded as %+v", ids[1], d)
		}

		// Handed back: due again at once, in their old place.
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.ReleaseDeliveries(ctx, first[1:], now) }); err != nil {
			t.Fatal(err)
		}
		if got := idsOf(claim(10)); !slices.Equal(got, want[1:3]) {
			t.Fatalf("after hand-back %v, want %v", got, want[1:3])
		}
		// A hand-back of a claim that lapsed and was taken again is ignored.
		if _, err := s.q.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?`, ms(now.Add(time.Hour)), ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.ReleaseDeliveries(ctx, first[:1], now) }); err != nil {
			t.Fatal(err)
		}
		var next int64
		if err := s.q.QueryRowContext(ctx, `SELECT next_attempt_at FROM webhook_deliveries WHERE id = ?`, ids[0]).Scan(&next); err != nil || next != ms(now.Add(time.Hour)) {
			t.Fatalf("a stale hand-back moved the new claim: %d %v", next, err)
		}
	})
}

// Two instances claiming one webhook's deliveries in batches at once:
// every delivery is claimed exactly once (FOR UPDATE SKIP LOCKED).
func TestPostgresNextDeliveriesSharedByInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	var stores []*Store
	for range 2 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	now := time.Now().UTC()
	const n = 200
	err := stores[0].InTx(ctx, func(tx *Tx) error {
		e := &Event{Type: "user.created", CreatedAt: now, Payload: []byte(`{}`), Context: []byte(`{}`)}
		if err := tx.InsertEvent(ctx, e); err != nil {
			return err
		}
		if err := tx.InsertWebhook(ctx, Webhook{ID: "wb", URL: "http://127.0.0.1/", Kind: "non_blocking", AllEvents: true, Enabled: true, Secret: []byte{0}, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for range n {
			if _, err := tx.InsertDelivery(ctx, "wb", e.Seq, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	claimed := claimConcurrently(t, stores, 6, func(s *Store) ([]int64, error) {
		var ids []int64
		err := s.InTx(ctx, func(tx *Tx) error {
			got, err := tx.ClaimNextDeliveries(ctx, "wb", now, time.Hour, 7)
			for _, h := range got {
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
