package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventsAfterPagesForward(t *testing.T) { forEachBackend(t, tEventsAfterPagesForward) }

func tEventsAfterPagesForward(t *testing.T, s *Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 7 {
		addEvent(t, &s.Tx, "user.created", fmt.Sprintf("u%d", i), at)
	}
	var got []int64
	var last int64
	for {
		page, err := s.EventsAfter(ctx, last, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, seqs(page)...)
		last = page[len(page)-1].Seq
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("paged forward: %v", got)
	}
	if page, err := s.EventsAfter(ctx, 7, 10); err != nil || len(page) != 0 {
		t.Fatalf("after the last: %v, %v", page, err)
	}
}

// Several instances writing events at once while a reader pages forward
// by seq: the reader must see every committed event exactly once, in
// increasing seq order. Without InsertEvent's lock, a transaction that got
// a smaller seq but commits later is skipped by a reader that has already
// moved past it. created_at must not go back along seq either (the audit
// log's date filters rely on it).
func TestPostgresEventSeqIsCommitOrder(t *testing.T) {
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
	const writers, perWriter = 8, 40
	var committed sync.Map // seq -> true
	var wg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writing.Add(-1)
			s := stores[w%2]
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perWriter {
				var seq int64
				err := s.InTx(ctx, func(tx *Tx) error {
					e := Event{Type: "user.created", UserID: fmt.Sprintf("w%d-%d", w, i), CreatedAt: time.Now(),
						Payload: json.RawMessage(`{}`), Context: json.RawMessage(`{}`)}
					if err := tx.InsertEvent(ctx, &e); err != nil {
						return err
					}
					seq = e.Seq
					// Work after the event (outbox rows, deliveries) takes a
					// while: a later seq may commit first.
					time.Sleep(time.Duration(r.IntN(1500)) * time.Microsecond)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				committed.Store(seq, true)
			}
		}()
	}
	seen := map[int64]bool{}
	var last, lastAt int64
	reader := stores[1]
	for {
		done := writing.Load() == 0 // read before the page: a final page after the last commit
		page, err := reader.EventsAfter(ctx, last, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Seq <= last {
				t.Fatalf("seq %d after %d: not increasing", e.Seq, last)
			}
			if seen[e.Seq] {
				t.Fatalf("seq %d seen twice", e.Seq)
			}
			if ms(e.CreatedAt) < lastAt {
				t.Fatalf("seq %d created at %d, before its predecessor's %d", e.Seq, ms(e.CreatedAt), lastAt)
			}
			seen[e.Seq], last, lastAt = true, e.Seq, ms(e.CreatedAt)
		}
		if done && len(page) == 0 {
			break
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	committed.Range(func(k, _ any) bool {
		n++
		if !seen[k.(int64)] {
			t.Errorf("the reader skipped committed event seq %d", k.(int64))
		}
		return true
	})
	if n != writers*perWriter || len(seen) != n {
		t.Fatalf("%d events committed, %d seen; want %d", n, len(seen), writers*perWriter)
	}
}
