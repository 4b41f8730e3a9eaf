package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestOutboxClaimLeaseAndFence(t *testing.T) { forEachBackend(t, tOutboxClaimLeaseAndFence) }

func tOutboxClaimLeaseAndFence(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ids []int64
	for i, due := range []time.Time{now.Add(-time.Minute), now, now.Add(-time.Second), now.Add(time.Hour)} {
		m := &OutboxMessage{Kind: "new_user", Recipient: "a@example.com", Subject: "s", Secret: []byte{byte(i)}, NextAttemptAt: due, CreatedAt: now}
		if err := s.InsertOutbox(ctx, m); err != nil {
			t.Fatal(err)
		}
		if m.ID == 0 || (len(ids) > 0 && m.ID <= ids[len(ids)-1]) {
			t.Fatalf("insert %d: id %d after %v", i, m.ID, ids)
		}
		ids = append(ids, m.ID)
	}
	lease := now.Add(time.Minute)
	got, err := s.ClaimOutbox(ctx, now, lease, 2)
	if err != nil || len(got) != 2 || got[0].ID != ids[0] && got[1].ID != ids[0] {
		t.Fatalf("first claim: %+v, %v", got, err)
	}
	for _, m := range got {
		if m.Status != "sending" || m.Attempts != 1 || m.LeaseUntil == nil || !m.LeaseUntil.Equal(lease) {
			t.Fatalf("claimed row: %+v", m)
		}
	}
	rest, err := s.ClaimOutbox(ctx, now, lease, 10)
	if err != nil || len(rest) != 1 {
		t.Fatalf("second claim takes the one due row left: %+v, %v", rest, err)
	}
	if again, err := s.ClaimOutbox(ctx, now.Add(30*time.Second), lease, 10); err != nil || len(again) != 0 {
		t.Fatalf("leased rows claimed again before the lease ended: %+v, %v", again, err)
	}
	// The first claim's worker settles one row; the other lapses and is
	// taken again with a new fencing token, which the old one cannot undo.
	if ok, err := s.MarkOutboxDelivered(ctx, got[0].ID, 1, now); err != nil || !ok {
		t.Fatalf("deliver: %v, %v", ok, err)
	}
	later := lease.Add(time.Second)
	re, err := s.ClaimOutbox(ctx, later, later.Add(time.Minute), 10)
	if err != nil || len(re) != 2 {
		t.Fatalf("after the lease: %+v, %v", re, err)
	}
	for _, m := range re {
		if m.Attempts != 2 {
			t.Fatalf("re-claimed row has attempts %d, want 2", m.Attempts)
		}
	}
	if ok, err := s.MarkOutboxDelivered(ctx, got[1].ID, 1, later); err != nil || ok {
		t.Fatalf("stale claim settled a re-claimed row: %v, %v", ok, err)
	}
	next, err := s.NextOutboxDue(ctx)
	if err != nil || next == nil || !next.Equal(later.Add(time.Minute)) {
		t.Fatalf("next due = %v, %v; want the new lease's end %v", next, err, later.Add(time.Minute))
	}
}

// Two instances on one PostgreSQL database claiming at once: every
// message is claimed exactly once.
func TestPostgresOutboxClaimSharedByInstances(t *testing.T) {
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
	const n = 300
	err := stores[0].InTx(ctx, func(tx *Tx) error {
		for range n {
			if err := tx.InsertOutbox(ctx, &OutboxMessage{Kind: "new_user", Recipient: "a@example.com", Subject: "s", NextAttemptAt: now, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	claimed := claimConcurrently(t, stores, 8, func(s *Store) ([]int64, error) {
		got, err := s.ClaimOutbox(ctx, now, now.Add(time.Hour), 7)
		ids := make([]int64, len(got))
		for i, m := range got {
			ids[i] = m.ID
		}
		return ids, err
	})
	if len(claimed) != n {
		t.Fatalf("%d of %d messages claimed", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("message %d claimed %d times", id, c)
		}
	}
}

// A starting instance takes back only claims whose lease has run out: on
// PostgreSQL another live instance may hold the rest. (SQLite, one process
// per database, takes back every claim.)
func TestPostgresRequeueAtStartLeavesLiveClaims(t *testing.T) {
	s := openPGTest(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 2 {
		if err := s.InsertOutbox(ctx, &OutboxMessage{Kind: "new_user", Recipient: "a@example.com", Subject: "s", NextAttemptAt: now, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	short, err := s.ClaimOutbox(ctx, now, now.Add(time.Minute), 1)
	if err != nil || len(short) != 1 {
		t.Fatalf("claim: %+v, %v", short, err)
	}
	long, err := s.ClaimOutbox(ctx, now, now.Add(time.Hour), 1)
	if err != nil || len(long) != 1 {
		t.Fatalf("claim: %+v, %v", long, err)
	}
	n, err := s.RequeueAtStart(ctx, now.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want only the lapsed claim", n, err)
	}
	if m, err := s.OutboxByID(ctx, long[0].ID); err != nil || m.Status != "sending" {
		t.Fatalf("live claim taken back: %+v, %v", m, err)
	}
	if m, err := s.OutboxByID(ctx, short[0].ID); err != nil || m.Status != "queued" {
		t.Fatalf("lapsed claim: %+v, %v", m, err)
	}
}

// Two instances claiming webhook deliveries at once: every delivery is
// claimed exactly once.
func TestPostgresDeliveryClaimSharedByInstances(t *testing.T) {
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
	const hooks, perHook = 4, 40
	err := stores[0].InTx(ctx, func(tx *Tx) error {
		e := &Event{Type: "user.created", CreatedAt: now, Payload: []byte(`{}`), Context: []byte(`{}`)}
		if err := tx.InsertEvent(ctx, e); err != nil {
			return err
		}
		for h := range hooks {
			id := fmt.Sprintf("w%d", h)
			if err := tx.InsertWebhook(ctx, Webhook{ID: id, URL: "http://127.0.0.1/", Kind: "non_blocking", AllEvents: true, Enabled: true, Secret: []byte{0}, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			for range perHook {
				if _, err := tx.InsertDelivery(ctx, id, e.Seq, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each claim is sent and recorded at once. At no time may a webhook
	// have two deliveries in flight (across instances too), and each
	// webhook's deliveries go out in order.
	var mu sync.Mutex
	inFlight := map[string]bool{}
	lastID := map[string]int64{}
	claimed := claimConcurrently(t, stores, 6, func(s *Store) ([]int64, error) {
		got, err := s.ClaimDueDeliveries(ctx, now, time.Hour, 3, nil)
		ids := make([]int64, len(got))
		mu.Lock()
		for i, c := range got {
			ids[i] = c.ID
			if inFlight[c.WebhookID] {
				t.Errorf("webhook %s: delivery %d claimed while another is in flight", c.WebhookID, c.ID)
			}
			if c.ID <= lastID[c.WebhookID] {
				t.Errorf("webhook %s: delivery %d claimed after %d", c.WebhookID, c.ID, lastID[c.WebhookID])
			}
			inFlight[c.WebhookID], lastID[c.WebhookID] = true, c.ID
		}
		mu.Unlock()
		for _, c := range got {
			mu.Lock()
			inFlight[c.WebhookID] = false
			mu.Unlock()
			if err := s.FinishDeliveryAttempt(ctx, c.ID, DeliveryResult{Status: DeliverySucceeded, Attempts: 1, At: now}); err != nil {
				return nil, err
			}
		}
		return ids, err
	})
	if len(claimed) != hooks*perHook {
		t.Fatalf("%d of %d deliveries claimed", len(claimed), hooks*perHook)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("delivery %d claimed %d times", id, c)
		}
	}
}

// On PostgreSQL a webhook with a delivery in flight on one instance is
// skipped by the others' claims until that attempt is recorded (then the
// next is claimable) or its lease ends; NextDeliveryDue on the other
// instance reports the lease's end, not "now", so its worker does not spin.
func TestPostgresDeliveryBusyAcrossInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	a := openURL(t, url)
	b := openURL(t, url)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ids []int64
	err := a.InTx(ctx, func(tx *Tx) error {
		e := &Event{Type: "user.created", CreatedAt: now, Payload: []byte(`{}`), Context: []byte(`{}`)}
		if err := tx.InsertEvent(ctx, e); err != nil {
			return err
		}
		if err := tx.InsertWebhook(ctx, Webhook{ID: "w", URL: "http://127.0.0.1/", Kind: "non_blocking", AllEvents: true, Enabled: true, Secret: []byte{0}, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for range 3 {
			id, err := tx.InsertDelivery(ctx, "w", e.Seq, now)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lease := time.Minute
	got, err := a.ClaimDueDeliveries(ctx, now, lease, 10, nil)
	if err != nil || len(got) != 1 || got[0].ID != ids[0] {
		t.Fatalf("A's claim: %+v, %v; want delivery %d", got, err, ids[0])
	}
	if got, err := b.ClaimDueDeliveries(ctx, now, lease, 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("B claimed %+v (%v) while A has the webhook's delivery in flight", got, err)
	}
	next, err := b.NextDeliveryDue(ctx, nil)
	if err != nil || next == nil || !next.Equal(now.Add(lease)) {
		t.Fatalf("B's next due = %v, %v; want the end of A's lease %v", next, err, now.Add(lease))
	}
	// A records the attempt and chains to the next delivery: still busy.
	var chained int64
	err = a.InTx(ctx, func(tx *Tx) error {
		if err := tx.FinishDeliveryAttempt(ctx, ids[0], DeliveryResult{Status: DeliverySucceeded, Attempts: 1, At: now}); err != nil {
			return err
		}
		held, err := tx.ClaimNextDeliveries(ctx, "w", now, lease, 1)
		if len(held) == 1 {
			chained = held[0].ID
		}
		return err
	})
	if err != nil || chained != ids[1] {
		t.Fatalf("chain: %d, %v; want %d", chained, err, ids[1])
	}
	if got, err := b.ClaimDueDeliveries(ctx, now, lease, 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("B claimed %+v (%v) while A's chained delivery is in flight", got, err)
	}
	// A records without chaining: B may take the last one.
	if err := a.FinishDeliveryAttempt(ctx, ids[1], DeliveryResult{Status: DeliverySucceeded, Attempts: 1, At: now}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.ClaimDueDeliveries(ctx, now, lease, 10, nil); err != nil || len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("B's claim after A finished: %+v, %v; want %d", got, err, ids[2])
	}
	// B crashes: after its lease A may claim again (the delivery itself
	// is due again then too).
	later := now.Add(lease + time.Second)
	if got, err := a.ClaimDueDeliveries(ctx, now.Add(lease-time.Second), lease, 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("A claimed %+v (%v) before B's lease ended", got, err)
	}
	if got, err := a.ClaimDueDeliveries(ctx, later, lease, 10, nil); err != nil || len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("A's claim after B's lease: %+v, %v; want %d", got, err, ids[2])
	}
}

func openURL(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// claimConcurrently runs workers goroutines, spread over stores in turn,
// each calling claim until it takes nothing (or fails, which fails t), and
// counts how often each ID was claimed.
func claimConcurrently(t *testing.T, stores []*Store, workers int, claim func(*Store) ([]int64, error)) map[int64]int {
	t.Helper()
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for {
				got, err := claim(s)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, id := range got {
					claimed[id]++
				}
				mu.Unlock()
			}
		}(stores[w%len(stores)])
	}
	wg.Wait()
	return claimed
}
