package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// Webhook kinds.
const (
	WebhookNonBlocking = "non_blocking"
	WebhookBlocking    = "blocking"
)

// Webhook is an endpoint events are POSTed to. Secret is the signing key
// as stored: encrypted by the hooks package, never shown again.
type Webhook struct {
	ID        string
	URL       string
	Kind      string
	AllEvents bool
	Events    []string
	Enabled   bool
	Secret    []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

const webhookCols = `id, url, kind, all_events, events, enabled, secret, created_at, updated_at`

func scanWebhook(row interface{ Scan(...any) error }) (*Webhook, error) {
	var w Webhook
	var events string
	var created, updated int64
	if err := row.Scan(&w.ID, &w.URL, &w.Kind, &w.AllEvents, &events, &w.Enabled, &w.Secret, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, err
	}
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return &w, nil
}

// InsertWebhook adds a webhook.
func (t *Tx) InsertWebhook(ctx context.Context, w Webhook) error {
	events, err := json.Marshal(append([]string{}, w.Events...))
	if err != nil {
		return mapErr("insert webhook", err)
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.URL, w.Kind, w.AllEvents, string(events), w.Enabled, w.Secret, ms(w.CreatedAt), ms(w.UpdatedAt))
	return mapErr("insert webhook", err)
}

// WebhookByID finds a webhook.
func (t *Tx) WebhookByID(ctx context.Context, id string) (*Webhook, error) {
	w, err := scanWebhook(t.q.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, id))
	return w, mapErr("webhook by id", err)
}

// ListWebhooks lists every webhook, oldest first (there are few).
func (t *Tx) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	return t.webhooks(ctx, `SELECT `+webhookCols+` FROM webhooks ORDER BY created_at, id`)
}

// EnabledWebhooks lists the enabled webhooks of one kind.
func (t *Tx) EnabledWebhooks(ctx context.Context, kind string) ([]Webhook, error) {
	return t.webhooks(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE enabled = 1 AND kind = ? ORDER BY created_at, id`, kind)
}

func (t *Tx) webhooks(ctx context.Context, q string, args ...any) ([]Webhook, error) {
	rows, err := t.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr("list webhooks", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, mapErr("list webhooks", err)
		}
		out = append(out, *w)
	}
	return out, mapErr("list webhooks", rows.Err())
}

// SetWebhookEnabled enables or disables a webhook.
func (t *Tx) SetWebhookEnabled(ctx context.Context, id string, enabled bool, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE webhooks SET enabled = ?, updated_at = ? WHERE id = ?`, enabled, ms(at), id)
	if err != nil {
		return mapErr("set webhook enabled", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("set webhook enabled", sql.ErrNoRows)
	}
	return nil
}

// DeleteWebhook removes a webhook and its delivery log.
func (t *Tx) DeleteWebhook(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return mapErr("delete webhook", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("delete webhook", sql.ErrNoRows)
	}
	return nil
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Delivery is one event's delivery to one webhook, with the outcome of its
// last attempt.
type Delivery struct {
	ID             int64
	WebhookID      string
	EventSeq       int64
	EventType      string
	Status         string
	Attempts       int
	NextAttemptAt  *time.Time
	LastStatusCode int
	LastLatency    time.Duration
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const deliveryCols = `d.id, d.webhook_id, d.event_seq, e.type, d.status, d.attempts, d.next_attempt_at,
	COALESCE(d.last_status_code, 0), COALESCE(d.last_latency_ms, 0), COALESCE(d.last_error, ''), d.created_at, d.updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (*Delivery, error) {
	var d Delivery
	var next sql.NullInt64
	var latency, created, updated int64
	if err := row.Scan(&d.ID, &d.WebhookID, &d.EventSeq, &d.EventType, &d.Status, &d.Attempts, &next,
		&d.LastStatusCode, &latency, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.LastLatency = timePtr(next), time.Duration(latency)*time.Millisecond
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return &d, nil
}

// InsertDelivery queues an event for a webhook, due at once.
func (t *Tx) InsertDelivery(ctx context.Context, webhookID string, eventSeq int64, at time.Time) (int64, error) {
	res, err := t.q.ExecContext(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, 'pending', 0, ?, ?, ?)`, webhookID, eventSeq, ms(at), ms(at), ms(at))
	if err != nil {
		return 0, mapErr("insert delivery", err)
	}
	id, err := res.LastInsertId()
	return id, mapErr("insert delivery", err)
}

// ClaimedDelivery is a delivery the worker has taken.
type ClaimedDelivery struct {
	ID        int64
	WebhookID string
}

// ClaimDueDeliveries takes up to limit pending deliveries due at now, at
// most one per webhook (its oldest due) and none for the webhooks in skip
// (those already being sent to), and pushes their next_attempt_at to
// now+lease, in one statement: a crash mid-send leaves them due again once
// the lease runs out.
func (t *Tx) ClaimDueDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ClaimedDelivery, error) {
	notIn, skipArgs := notInClause("w.id", skip)
	args := append([]any{ms(now.Add(lease)), ms(now)}, skipArgs...)
	args = append(args, limit)
	// One index probe per webhook (there are few), never a scan of the
	// queue, however long it is.
	query := `UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE id IN (SELECT did FROM (
			SELECT (SELECT d.id FROM webhook_deliveries d
				WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= ?
				ORDER BY d.next_attempt_at, d.id LIMIT 1) AS did
			FROM webhooks w WHERE 1 = 1` + notIn + `) AS due
			WHERE did IS NOT NULL ORDER BY did LIMIT ?)
		RETURNING id, webhook_id`
	if t.pg() {
		query, args = pgClaimDueDeliveries(notIn), pgClaimArgs(ms(now), ms(now.Add(lease)), skipArgs, limit)
	}
	rows, err := t.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr("claim deliveries", err)
	}
	defer rows.Close()
	var out []ClaimedDelivery
	for rows.Next() {
		var c ClaimedDelivery
		if err := rows.Scan(&c.ID, &c.WebhookID); err != nil {
			return nil, mapErr("claim deliveries", err)
		}
		out = append(out, c)
	}
	return out, mapErr("claim deliveries", rows.Err())
}

// NextDeliveryDue reports when the earliest pending delivery is due, or
// nil when none is pending.
//
// Webhooks in skip (those with an attempt running) are left out: their
// deliveries cannot be claimed until that attempt ends, which wakes the
// worker anyway, so counting them would only make it spin.
func (t *Tx) NextDeliveryDue(ctx context.Context, skip []string) (*time.Time, error) {
	var v sql.NullInt64
	notIn, args := notInClause("webhook_id", skip)
	query := `SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'` + notIn
	if t.pg() {
		// Webhooks busy on another instance count from when they are free.
		notIn, _ = notInClause("w.id", skip)
		query = pgNextDeliveryDue(notIn)
	}
	err := t.q.QueryRowContext(ctx, query, args...).Scan(&v)
	return timePtr(v), mapErr("next delivery due", err)
}

// notInClause builds " AND col NOT IN (?, ...)" and its arguments; empty
// for no values.
func notInClause(col string, values []string) (string, []any) {
	if len(values) == 0 {
		return "", nil
	}
	list, args := inList(values)
	return ` AND ` + col + ` NOT IN ` + list, args
}

// DeliveryByID finds a delivery.
func (t *Tx) DeliveryByID(ctx context.Context, id int64) (*Delivery, error) {
	d, err := scanDelivery(t.q.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?`, id))
	return d, mapErr("delivery by id", err)
}

// DeliveryResult is the outcome of one attempt.
type DeliveryResult struct {
	Status     string
	Attempts   int
	NextAt     *time.Time
	StatusCode int
	Latency    time.Duration
	Error      string
	At         time.Time
}

// FinishDeliveryAttempt records an attempt's outcome.
func (t *Tx) FinishDeliveryAttempt(ctx context.Context, id int64, r DeliveryResult) error {
	var code any
	if r.StatusCode != 0 {
		code = r.StatusCode
	}
	_, err := t.q.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,
		last_status_code = ?, last_latency_ms = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		r.Status, r.Attempts, nullTime(r.NextAt), code, r.Latency.Milliseconds(), nullString(r.Error), ms(r.At), id)
	if err == nil {
		err = t.releaseWebhookOf(ctx, id) // see webhooks_busy.go
	}
	return mapErr("finish delivery", err)
}

// ListDeliveries returns a webhook's deliveries, newest first, by keyset
// on id (before = the id of the last row of the previous page, 0 = first page).
func (t *Tx) ListDeliveries(ctx context.Context, webhookID string, before int64, limit int) ([]Delivery, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 50
	}
	rows, err := t.q.QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
		WHERE d.webhook_id = ? AND d.id < ? ORDER BY d.id DESC LIMIT ?`, webhookID, before, limit)
	if err != nil {
		return nil, mapErr("list deliveries", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, mapErr("list deliveries", err)
		}
		out = append(out, *d)
	}
	return out, mapErr("list deliveries", rows.Err())
}
