package store

import (
	"context"
	"strings"
	"time"
)

// HeldDelivery is a delivery claimed by ClaimNextDeliveries: Due is its
// next_attempt_at before the claim, which ReleaseDeliveries puts back so
// that a delivery handed back keeps its place in the webhook's order;
// Lease is the next_attempt_at the claim set (when the claim ends).
type HeldDelivery struct {
	ID    int64
	Due   time.Time
	Lease time.Time
}

// ClaimNextDeliveries claims up to limit of one webhook's due deliveries,
// oldest due first, pushing their next_attempt_at to now+lease as
// ClaimDueDeliveries does, and returns them in that order. The worker
// calls it in the transaction that records the webhook's previous
// attempts, so a hook with a queue gets its next events without another
// write transaction. On PostgreSQL the rows are taken FOR UPDATE SKIP
// LOCKED, so that two instances never take the same delivery.
func (t *Tx) ClaimNextDeliveries(ctx context.Context, webhookID string, now time.Time, lease time.Duration, limit int) ([]HeldDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	query := `SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
		WHERE d.webhook_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
		ORDER BY d.next_attempt_at, d.id LIMIT ?`
	if t.pg() {
		query += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := t.q.QueryContext(ctx, query, webhookID, ms(now), limit)
	if err != nil {
		return nil, mapErr("claim next deliveries", err)
	}
	var out []HeldDelivery
	for rows.Next() {
		var h HeldDelivery
		var due int64
		if err := rows.Scan(&h.ID, &due); err != nil {
			rows.Close()
			return nil, mapErr("claim next deliveries", err)
		}
		h.Due = fromMS(due)
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mapErr("claim next deliveries", err)
	}
	// The webhook stays busy for other instances while this one holds its
	// next deliveries, and is free once it holds none (webhooks_busy.go).
	if err := t.markWebhookBusy(ctx, webhookID, len(out) > 0, now.Add(lease)); err != nil || len(out) == 0 {
		return nil, mapErr("claim next deliveries", err)
	}
	list, args := idList(out)
	until := ms(now.Add(lease))
	if _, err := t.q.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN `+list,
		append([]any{until}, args...)...); err != nil {
		return nil, mapErr("claim next deliveries", err)
	}
	for i := range out {
		out[i].Lease = fromMS(until)
	}
	return out, nil
}

// ReleaseDeliveries hands claimed deliveries back, still pending and due
// again at their Due (a zero Due: now), so that they are sent next and in
// their order. One that is no longer pending, or (when its Lease is
// known) whose claim ran out and was taken again, is left alone.
func (t *Tx) ReleaseDeliveries(ctx context.Context, held []HeldDelivery, now time.Time) error {
	for _, h := range held {
		due := h.Due
		if due.IsZero() || due.After(now) {
			due = now
		}
		query, args := `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'`, []any{ms(due), h.ID}
		if !h.Lease.IsZero() {
			query += ` AND next_attempt_at = ?`
			args = append(args, ms(h.Lease))
		}
		res, err := t.q.ExecContext(ctx, query, args...)
		if err != nil {
			return mapErr("release delivery", err)
		}
		// A delivery handed back frees its webhook for other instances
		// (webhooks_busy.go); a claim taken in this transaction after
		// this marks it busy again.
		if n, _ := res.RowsAffected(); n > 0 {
			if err := t.releaseWebhookOf(ctx, h.ID); err != nil {
				return mapErr("release delivery", err)
			}
		}
	}
	return nil
}

// DeliveriesWithEvents loads the given deliveries and their events, in
// two queries however many there are: the worker's batch of one
// webhook's claimed deliveries. Deliveries that no longer exist are
// missing from the maps.
func (t *Tx) DeliveriesWithEvents(ctx context.Context, ids []int64) (map[int64]*Delivery, map[int64]*Event, error) {
	ds, evs := map[int64]*Delivery{}, map[int64]*Event{}
	if len(ids) == 0 {
		return ds, evs, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	list := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := t.q.QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id IN `+list, args...)
	if err != nil {
		return nil, nil, mapErr("deliveries with events", err)
	}
	var seqs []any
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, nil, mapErr("deliveries with events", err)
		}
		if _, seen := ds[d.ID]; !seen {
			seqs = append(seqs, d.EventSeq)
		}
		ds[d.ID] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(seqs) == 0 {
		return ds, evs, mapErr("deliveries with events", err)
	}
	rows, err = t.q.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE seq IN (?`+strings.Repeat(", ?", len(seqs)-1)+`)`, seqs...)
	if err != nil {
		return nil, nil, mapErr("deliveries with events", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, nil, mapErr("deliveries with events", err)
		}
		evs[e.Seq] = e
	}
	return ds, evs, mapErr("deliveries with events", rows.Err())
}

func idList(held []HeldDelivery) (string, []any) {
	args := make([]any, len(held))
	for i, h := range held {
		args[i] = h.ID
	}
	return "(?" + strings.Repeat(", ?", len(held)-1) + ")", args
}
