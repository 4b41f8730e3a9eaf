package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestScrubWALDoesNotHoldWritersBehindReaders: while a reader keeps an
// older snapshot (as latchkey backup does), ScrubWAL gives up at once
// instead of holding the write lock for the busy timeout, and a write
// made meanwhile goes through; once the reader is done it scrubs.
func TestScrubWALDoesNotHoldWritersBehindReaders(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('a', x'00')`); err != nil {
		t.Fatal(err)
	}
	reader, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('b', x'01')`); err != nil {
		t.Fatal(err)
	}

	scrubbed := make(chan bool, 1)
	go func() {
		ok, err := s.ScrubWAL(ctx)
		if err != nil {
			t.Error(err)
		}
		scrubbed <- ok
	}()
	wrote := make(chan error, 1)
	go func() {
		_, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('c', x'02')`)
		wrote <- err
	}()
	select {
	case ok := <-scrubbed:
		if ok {
			t.Error("ScrubWAL reported a full scrub while a reader held an older snapshot")
		}
	case <-time.After(3 * time.Second): // the pool's busy timeout is 10 s
		t.Fatal("ScrubWAL waited for the reader")
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a write waited behind ScrubWAL")
	}

	if _, err := reader.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	ok, err := s.ScrubWAL(ctx)
	if err != nil || !ok {
		t.Fatalf("scrub with no reader: %v %v", ok, err)
	}
	// The pool still has its busy timeout: connections that ran the
	// scrub were dropped.
	var timeout int
	for i := 0; i < 4; i++ {
		if err := s.db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != 10000 {
			t.Fatalf("pool busy_timeout = %d, %v", timeout, err)
		}
	}
}

func TestOpsStats(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	st, err := s.OpsStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Queues) != 5 || st.EventsWritten != 0 {
		t.Fatalf("empty database: %+v", st)
	}
	for _, q := range st.Queues {
		if q.Count != 0 || !q.Oldest.IsZero() {
			t.Errorf("empty %s/%s: %+v", q.Channel, q.State, q)
		}
	}
	old := time.Now().Add(-time.Hour)
	for i := 0; i < 3; i++ {
		m := &OutboxMessage{Kind: "new_user", Recipient: "a@example.com", Subject: "s", NextAttemptAt: old, CreatedAt: old.Add(time.Duration(i) * time.Minute)}
		if err := s.InsertOutbox(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	st, err = s.OpsStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := st.Queues[0]
	if q.Channel != "email" || q.State != OutboxQueued || q.Count != 3 || !q.Oldest.Equal(old.Truncate(time.Millisecond).UTC()) {
		t.Fatalf("queued email: %+v (oldest want %v)", q, old)
	}
}

// BenchmarkOpsStats is one /metrics scrape's database work on a database
// with a long history: 200,000 delivered emails and 200,000 webhook
// deliveries (nearly all succeeded), and a small backlog and failed set.
// Every query must stay an index lookup, so the cost does not grow with
// the history.
func BenchmarkOpsStats(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 200000
	now := time.Now().UnixMilli()
	err = s.InTx(ctx, func(tx *Tx) error {
		q := tx.q
		if _, err := q.ExecContext(ctx, `INSERT INTO webhooks (id, url, kind, secret, created_at, updated_at) VALUES ('w', 'http://x', 'non_blocking', x'00', ?, ?)`, now, now); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			status := "delivered"
			dstatus := "succeeded"
			switch {
			case i%10000 == 1:
				status, dstatus = "failed", "failed"
			case i%10000 == 2:
				status, dstatus = "queued", "pending"
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO mail_outbox (kind, recipient, subject, status, attempts, next_attempt_at, created_at, updated_at)
				VALUES ('new_user', 'a@example.com', 's', ?, 1, ?, ?, ?)`, status, now, now+int64(i), now); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO events (seq, type, created_at, payload, context) VALUES (?, 'user.created', ?, '{}', '{}')`, i+1, now); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, next_attempt_at, created_at, updated_at)
				VALUES ('w', ?, ?, 1, ?, ?, ?)`, i+1, dstatus, now, now+int64(i), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := s.OpsStats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.EventsWritten != n || st.Queues[0].Count != 20 || st.Queues[4].Count != 20 {
			b.Fatalf("stats %+v", st)
		}
	}
}
