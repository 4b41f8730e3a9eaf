package store

import (
	"context"
	"time"
)

// On PostgreSQL several instances send deliveries, and each webhook must
// still get its events one at a time, in order (retries aside), as it
// does from one process, where the worker skips the webhooks it is
// sending to. webhooks.busy_until (migration 0018_b) carries that across
// instances: the claim sets it to the lease's end for each webhook it
// takes a delivery of, and skips webhooks whose busy_until is in the
// future; recording the attempt clears it, unless the same transaction
// claims the webhook's next deliveries (ClaimNextDeliveries), which extends
// it. A crashed instance's webhooks free themselves when the lease ends.
//
// The release is not fenced: an instance whose attempt outlived its lease
// (the lease is the attempt timeout plus 20 s, so the attempt has timed
// out by then) clears a busy_until another instance may have set since,
// and the webhook may then have two attempts at once, once.

// pgClaimDueDeliveries is ClaimDueDeliveries's statement on PostgreSQL.
// Arguments: now, now, the skipped webhooks, now, limit, lease end, lease
// end. The webhooks with a due delivery and no delivery in flight are
// locked FOR NO KEY UPDATE SKIP LOCKED (a lock that the foreign key
// checks of deliveries being inserted do not conflict with), so two
// instances claiming at once never take the same webhook: one the other
// is claiming is skipped, and one it has claimed since this statement's
// snapshot is re-checked against busy_until and dropped. Each webhook's
// oldest due delivery is then taken, and the webhooks marked busy.
func pgClaimDueDeliveries(notIn string) string {
	return `WITH hooks AS (
			SELECT w.id FROM webhooks w
			WHERE (w.busy_until IS NULL OR w.busy_until <= ?)
				AND EXISTS (SELECT 1 FROM webhook_deliveries dd
					WHERE dd.webhook_id = w.id AND dd.status = 'pending' AND dd.next_attempt_at <= ?)` + notIn + `
			FOR NO KEY UPDATE OF w SKIP LOCKED),
		picked AS (
			SELECT d.id, d.webhook_id FROM hooks h
			CROSS JOIN LATERAL (SELECT dd.id, dd.webhook_id FROM webhook_deliveries dd
				WHERE dd.webhook_id = h.id AND dd.status = 'pending' AND dd.next_attempt_at <= ?
				ORDER BY dd.next_attempt_at, dd.id LIMIT 1
				FOR UPDATE SKIP LOCKED) d
			ORDER BY d.id LIMIT ?),
		busy AS (
			UPDATE webhooks SET busy_until = ? WHERE id IN (SELECT webhook_id FROM picked))
		UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id IN (SELECT id FROM picked)
		RETURNING id, webhook_id`
}

// pgClaimArgs orders ClaimDueDeliveries's arguments for pgClaimDueDeliveries.
func pgClaimArgs(now, leaseEnd int64, skipArgs []any, limit int) []any {
	args := append([]any{now, now}, skipArgs...)
	return append(args, now, limit, leaseEnd, leaseEnd)
}

// pgNextDeliveryDue is NextDeliveryDue's statement on PostgreSQL: per
// webhook (one index probe each), its earliest pending delivery, or the
// end of another instance's claim on it if that is later, since until
// then this instance may not send to it. Argument: the skipped webhooks.
func pgNextDeliveryDue(notIn string) string {
	return `SELECT MIN(GREATEST(due, COALESCE(busy_until, 0))) FROM (
			SELECT w.busy_until, (SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d
				WHERE d.webhook_id = w.id AND d.status = 'pending') AS due
			FROM webhooks w WHERE 1 = 1` + notIn + `) AS hooks
		WHERE due IS NOT NULL`
}

// releaseWebhookOf clears the busy mark of delivery id's webhook
// (PostgreSQL; nothing to do on SQLite).
func (t *Tx) releaseWebhookOf(ctx context.Context, id int64) error {
	if !t.pg() {
		return nil
	}
	_, err := t.q.ExecContext(ctx, `UPDATE webhooks SET busy_until = NULL
		WHERE id = (SELECT webhook_id FROM webhook_deliveries WHERE id = ?) AND busy_until IS NOT NULL`, id)
	return err
}

// markWebhookBusy sets (claimed) or clears the busy mark of a webhook
// in ClaimNextDeliveries (PostgreSQL; nothing to do on SQLite).
func (t *Tx) markWebhookBusy(ctx context.Context, webhookID string, claimed bool, leaseEnd time.Time) error {
	if !t.pg() {
		return nil
	}
	var until any
	if claimed {
		until = ms(leaseEnd)
	}
	_, err := t.q.ExecContext(ctx, `UPDATE webhooks SET busy_until = ? WHERE id = ?`, until, webhookID)
	return err
}

// KeepWebhookBusy keeps a webhook marked busy until until: the worker
// calls it when it records some of a batch's outcomes while the batch's
// next attempt is still running (recording an attempt clears the mark).
// Nothing to do on SQLite.
func (t *Tx) KeepWebhookBusy(ctx context.Context, webhookID string, until time.Time) error {
	return mapErr("keep webhook busy", t.markWebhookBusy(ctx, webhookID, true, until))
}
