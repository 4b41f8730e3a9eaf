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
	query := `UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id = (SELECT d.id FROM webhook_deliveries d
			WHERE d.webhook_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
			ORDER BY d.next_attempt_at, d.id LIMIT 1)
		RETURNING id`
	if t.pg() {
		// At READ COMMITTED the subquery above picks its row from the
		// statement's snapshot, and an UPDATE that waited for another
		// instance's claim of that row re-checks only "id = X": both
		// would claim it, and the event would go out twice. Locked FOR
		// UPDATE SKIP LOCKED, a row being claimed is skipped and one
		// claimed since is re-checked against the condition and dropped.
		query = `UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id = (SELECT d.id FROM webhook_deliveries d
			WHERE d.webhook_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
			ORDER BY d.next_attempt_at, d.id LIMIT 1
			FOR UPDATE SKIP LOCKED)
		RETURNING id`
	}
	err := t.q.QueryRowContext(ctx, query, ms(now.Add(lease)), webhookID, ms(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, mapErr("claim next delivery", err)
}
