package store

import (
	"context"
	"testing"
	"time"
)

func TestOpsStats(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
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
