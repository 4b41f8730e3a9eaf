package store

import (
	"context"
	"testing"
	"time"
)

// TestNextDeliveryDueSkipsBusyWebhooks: a webhook with an attempt running
// does not count for when the worker should next wake, or it would spin
// on deliveries it cannot claim.
func TestNextDeliveryDueSkipsBusyWebhooks(t *testing.T) {
	forEachBackend(t, tNextDeliveryDueSkipsBusyWebhooks)
}

func tNextDeliveryDueSkipsBusyWebhooks(t *testing.T, s *Store) {
	ctx := context.Background()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.q.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO events (seq, type, created_at, payload, context) VALUES (1, 'user.created', 0, '{}', '{}')`)
	for _, id := range []string{"busy", "idle"} {
		mustExec(`INSERT INTO webhooks (id, url, kind, secret, created_at, updated_at) VALUES (?, 'http://127.0.0.1/', 'non_blocking', ?, 0, 0)`, id, []byte{0})
	}
	early, late := int64(1_000), int64(5_000)
	mustExec(`INSERT INTO webhook_deliveries (webhook_id, event_seq, status, next_attempt_at, created_at, updated_at) VALUES ('busy', 1, 'pending', ?, 0, 0)`, early)
	mustExec(`INSERT INTO webhook_deliveries (webhook_id, event_seq, status, next_attempt_at, created_at, updated_at) VALUES ('idle', 1, 'pending', ?, 0, 0)`, late)

	next, err := s.NextDeliveryDue(ctx, nil)
	if err != nil || next == nil || !next.Equal(time.UnixMilli(early).UTC()) {
		t.Fatalf("no skip: %v, %v; want %v", next, err, time.UnixMilli(early).UTC())
	}
	next, err = s.NextDeliveryDue(ctx, []string{"busy"})
	if err != nil || next == nil || !next.Equal(time.UnixMilli(late).UTC()) {
		t.Fatalf("busy skipped: %v, %v; want %v", next, err, time.UnixMilli(late).UTC())
	}
	next, err = s.NextDeliveryDue(ctx, []string{"busy", "idle"})
	if err != nil || next != nil {
		t.Fatalf("all busy: %v, %v; want nothing due", next, err)
	}
}
