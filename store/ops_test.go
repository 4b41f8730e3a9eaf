package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestOpsStats(t *testing.T) {
	forEachBackend(t, tOpsStats)
}

func tOpsStats(t *testing.T, s *Store) {
	ctx := context.Background()
	st, err := s.OpsStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Queues) != 8 || st.EventsWritten != 0 {
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
	// A text counts on its own channel, not as email.
	if err := s.InsertOutbox(ctx, &OutboxMessage{Kind: "new_user", Recipient: "+14155550100", Subject: "s", NextAttemptAt: old, CreatedAt: old, Channel: ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	if st, err = s.OpsStats(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range st.Queues {
		want := int64(0)
		switch {
		case q.Channel == "email" && q.State == OutboxQueued:
			want = 3
		case q.Channel == "sms" && q.State == OutboxQueued:
			want = 1
		}
		if q.Count != want {
			t.Errorf("%s/%s: %d, want %d", q.Channel, q.State, q.Count, want)
		}
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
