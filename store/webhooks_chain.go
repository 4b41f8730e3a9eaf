package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ClaimNextDelivery claims one webhook's oldest due delivery, pushing its
// next_attempt_at to now+lease as ClaimDueDeliveries does, and returns its
// ID (0 when none is due). The worker calls it in the transaction that
// records the webhook's previous attempt, so a hook with a queue gets its
// next event without another write transaction and without waiting for
// the worker's loop, one at a time and in order.
func (t *Tx) ClaimNextDelivery(ctx context.Context, webhookID string, now time.Time, lease time.Duration) (int64, error) {
	var id int64
	err := t.q.QueryRowContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id = (SELECT d.id FROM webhook_deliveries d
			WHERE d.webhook_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
			ORDER BY d.next_attempt_at, d.id LIMIT 1)
		RETURNING id`, ms(now.Add(lease)), webhookID, ms(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err, id = nil, 0
	}
	if err == nil {
		err = t.markWebhookBusy(ctx, webhookID, id != 0, now.Add(lease)) // see webhooks_busy.go
	}
	if err != nil {
		return 0, mapErr("claim next delivery", err)
	}
	return id, nil
}
