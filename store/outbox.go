package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"
)

// Outbox statuses.
const (
	OutboxQueued    = "queued"
	OutboxSending   = "sending"
	OutboxDelivered = "delivered"
	OutboxFailed    = "failed"
)

// OutboxMessage is one email in the durable outbox. Secret is the sealed
// (encrypted) message parameters; it is nil once the message is delivered
// or abandoned.
type OutboxMessage struct {
	ID            int64
	UserID        string
	Kind          string
	Recipient     string
	Subject       string
	Secret        []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    *time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   *time.Time
	// Channel is ChannelEmail or ChannelSMS (store/sms.go).
	Channel string
}

const outboxCols = `id, COALESCE(user_id, ''), kind, recipient, subject, secret, status, attempts, next_attempt_at,
	lease_until, COALESCE(last_error, ''), created_at, updated_at, delivered_at, channel`

func scanOutbox(row interface{ Scan(...any) error }) (*OutboxMessage, error) {
	var m OutboxMessage
	var next, created, updated int64
	var lease, delivered sql.NullInt64
	if err := row.Scan(&m.ID, &m.UserID, &m.Kind, &m.Recipient, &m.Subject, &m.Secret, &m.Status, &m.Attempts, &next,
		&lease, &m.LastError, &created, &updated, &delivered, &m.Channel); err != nil {
		return nil, err
	}
	m.NextAttemptAt, m.CreatedAt, m.UpdatedAt = fromMS(next), fromMS(created), fromMS(updated)
	m.LeaseUntil, m.DeliveredAt = timePtr(lease), timePtr(delivered)
	return &m, nil
}

func (t *Tx) queryOutbox(ctx context.Context, op, query string, args ...any) ([]OutboxMessage, error) {
	rows, err := t.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, *m)
	}
	return out, mapErr(op, rows.Err())
}

// InsertOutbox queues a message and fills in m.ID. It belongs inside the
// transaction that makes the change the message is about.
func (t *Tx) InsertOutbox(ctx context.Context, m *OutboxMessage) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO mail_outbox (user_id, kind, recipient, subject, secret, status, attempts,
		next_attempt_at, created_at, updated_at, channel) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)`,
		nullString(m.UserID), m.Kind, m.Recipient, m.Subject, m.Secret, ms(m.NextAttemptAt), ms(m.CreatedAt), ms(m.CreatedAt), channelOf(m.Channel))
	if err != nil {
		return mapErr("insert outbox", err)
	}
	m.ID, err = res.LastInsertId()
	m.Status, m.UpdatedAt, m.Channel = OutboxQueued, m.CreatedAt, channelOf(m.Channel)
	return mapErr("insert outbox", err)
}

// ClaimOutbox atomically takes up to limit messages that are due (queued
// with next_attempt_at <= now, or sending with an expired lease), marks them
// sending until leaseUntil and counts the attempt. The new attempts value is
// the claim's fencing token: the Mark* methods only update a row still held
// by the same claim, so a late worker can never undo a delivery.
//
// On PostgreSQL, where several instances claim at once, the rows are picked
// FOR UPDATE SKIP LOCKED (pgClaimOutbox): each due row goes to one claim.
func (t *Tx) ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]OutboxMessage, error) {
	if t.pg() {
		return t.queryOutbox(ctx, "claim outbox", pgClaimOutbox, ms(leaseUntil), ms(now), ms(now), ms(now), limit)
	}
	return t.queryOutbox(ctx, "claim outbox", `UPDATE mail_outbox SET status = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id IN (
			SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= ?
			UNION ALL
			SELECT id FROM mail_outbox WHERE status = 'sending' AND lease_until <= ?
			ORDER BY id LIMIT ?)
		RETURNING `+outboxCols, ms(leaseUntil), ms(now), ms(now), ms(now), limit)
}

// NextOutboxDue is when the next message becomes due (a queued message's
// next attempt or a claim's lease end), or nil when nothing is waiting.
func (t *Tx) NextOutboxDue(ctx context.Context) (*time.Time, error) {
	var v sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT MIN(at) FROM (
		SELECT MIN(next_attempt_at) AS at FROM mail_outbox WHERE status = 'queued'
		UNION ALL SELECT MIN(lease_until) FROM mail_outbox WHERE status = 'sending') AS due`).Scan(&v)
	if err != nil {
		return nil, mapErr("next outbox due", err)
	}
	return timePtr(v), nil
}

// RequeueAtStart runs when the worker starts: messages left in sending
// (by a process that crashed or was killed mid-send) go back in the queue,
// and every queued message becomes due now, since a restart often follows
// a fix to the mail settings. Latchkey runs one process per database, so
// no other worker can hold them. It reports how many were in sending.
//
// On PostgreSQL other instances share the database, and a message in
// sending may be another live instance's: only claims whose lease has
// run out are taken back.
func (t *Tx) RequeueAtStart(ctx context.Context, now time.Time) (int, error) {
	held := `status = 'sending'`
	if t.pg() {
		held = `status = 'sending' AND lease_until <= ?`
	}
	args := []any{ms(now), ms(now)}
	if t.pg() {
		args = append(args, ms(now))
	}
	res, err := t.q.ExecContext(ctx, `UPDATE mail_outbox SET status = 'queued', lease_until = NULL, next_attempt_at = ?, updated_at = ?
		WHERE `+held, args...)
	if err != nil {
		return 0, mapErr("requeue outbox", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, mapErr("requeue outbox", err)
	}
	_, err = t.q.ExecContext(ctx, `UPDATE mail_outbox SET next_attempt_at = ? WHERE status = 'queued' AND next_attempt_at > ?`, ms(now), ms(now))
	return int(n), mapErr("requeue outbox", err)
}

// MarkOutboxDelivered records a delivery and wipes the secret. It reports
// false when the claim (id, attempts) no longer holds the row.
func (t *Tx) MarkOutboxDelivered(ctx context.Context, id int64, attempts int, at time.Time) (bool, error) {
	return t.markOutbox(ctx, "mark outbox delivered", `UPDATE mail_outbox SET status = 'delivered', secret = NULL, lease_until = NULL,
		delivered_at = ?, updated_at = ? WHERE id = ? AND status = 'sending' AND attempts = ?`, ms(at), ms(at), id, attempts)
}

// MarkOutboxRetry puts a claimed message back in the queue after a
// temporary failure, keeping the secret for the next attempt.
func (t *Tx) MarkOutboxRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string, at time.Time) (bool, error) {
	return t.markOutbox(ctx, "mark outbox retry", `UPDATE mail_outbox SET status = 'queued', lease_until = NULL, next_attempt_at = ?,
		last_error = ?, updated_at = ? WHERE id = ? AND status = 'sending' AND attempts = ?`, ms(next), lastErr, ms(at), id, attempts)
}

// MarkOutboxFailed fails a claimed message with its reason. The sealed
// secret stays, so that "Retry all" can send the message once the mail
// setup is fixed; WipeFailedOutbox abandons it for good later.
func (t *Tx) MarkOutboxFailed(ctx context.Context, id int64, attempts int, reason string, at time.Time) (bool, error) {
	return t.markOutbox(ctx, "mark outbox failed", `UPDATE mail_outbox SET status = 'failed', lease_until = NULL,
		last_error = ?, updated_at = ? WHERE id = ? AND status = 'sending' AND attempts = ?`, reason, ms(at), id, attempts)
}

// WipeFailedOutbox wipes the secrets of messages that failed before
// olderThan: they can no longer be retried. It returns how many it wiped.
func (t *Tx) WipeFailedOutbox(ctx context.Context, olderThan, now time.Time) (int, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE mail_outbox SET secret = NULL, updated_at = ?
		WHERE status = 'failed' AND secret IS NOT NULL AND updated_at < ?`, ms(now), ms(olderThan))
	if err != nil {
		return 0, mapErr("wipe failed outbox", err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr("wipe failed outbox", err)
}

func (t *Tx) markOutbox(ctx context.Context, op, query string, args ...any) (bool, error) {
	res, err := t.q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, mapErr(op, err)
	}
	n, err := res.RowsAffected()
	return n == 1, mapErr(op, err)
}

// RetryOutboxNow makes a queued message due at once ("Retry now"). It
// reports false when the message is no longer queued (already sending,
// delivered or failed) or belongs to another user.
func (t *Tx) RetryOutboxNow(ctx context.Context, id int64, userID string, now time.Time) (bool, error) {
	return t.markOutbox(ctx, "retry outbox now", `UPDATE mail_outbox SET next_attempt_at = ?, updated_at = ?
		WHERE id = ? AND user_id = ? AND status = 'queued'`, ms(now), ms(now), id, userID)
}

// OutboxByID finds one message.
func (t *Tx) OutboxByID(ctx context.Context, id int64) (*OutboxMessage, error) {
	m, err := scanOutbox(t.q.QueryRowContext(ctx, `SELECT `+outboxCols+` FROM mail_outbox WHERE id = ?`, id))
	return m, mapErr("outbox by id", err)
}

// OutboxByUser lists the latest messages to a user, newest first.
func (t *Tx) OutboxByUser(ctx context.Context, userID string, limit int) ([]OutboxMessage, error) {
	return t.queryOutbox(ctx, "outbox by user", `SELECT `+outboxCols+` FROM mail_outbox WHERE user_id = ? ORDER BY id DESC LIMIT ?`, userID, limit)
}

// ListOutboxParams selects a page of the outbox, newest first. Status
// empty means every status; Before is the ID of the last row of the
// previous page (0 for the first page).
type ListOutboxParams struct {
	Status string
	Before int64
	Limit  int
}

// ListOutbox returns a page of the outbox by keyset pagination.
func (t *Tx) ListOutbox(ctx context.Context, p ListOutboxParams) ([]OutboxMessage, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	before := p.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	if p.Status == "" {
		return t.queryOutbox(ctx, "list outbox", `SELECT `+outboxCols+` FROM mail_outbox WHERE id < ? ORDER BY id DESC LIMIT ?`, before, p.Limit)
	}
	return t.queryOutbox(ctx, "list outbox", `SELECT `+outboxCols+` FROM mail_outbox WHERE status = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		p.Status, before, p.Limit)
}

// CountOutbox counts messages by status.
func (t *Tx) CountOutbox(ctx context.Context) (map[string]int, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT status, COUNT(*) FROM mail_outbox GROUP BY status`)
	if err != nil {
		return nil, mapErr("count outbox", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, mapErr("count outbox", err)
		}
		out[s] = n
	}
	return out, mapErr("count outbox", rows.Err())
}

// ScrubWAL moves the write-ahead log into the database file and
// truncates it to zero bytes, so pages that held a wiped secret do not
// linger in old WAL frames. It never waits: a PASSIVE checkpoint copies
// what no reader still needs, and only when that was everything does a
// TRUNCATE run, with the busy timeout off, so an open read transaction (a
// backup, an export, a sqlite3 shell) makes it give up at once instead of
// holding every writer for the busy timeout. It reports false when
// readers kept it from finishing; the caller tries again later.
//
// On PostgreSQL there is no WAL file of Latchkey's to scrub: it reports true.
func (s *Store) ScrubWAL(ctx context.Context) (bool, error) {
	if s.pg {
		return true, nil
	}
	release, err := s.acquireWrite(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, mapErr("scrub wal", err)
	}
	defer conn.Close()
	var busy, logFrames, checkpointed int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return false, mapErr("scrub wal", err)
	}
	if busy != 0 || checkpointed < logFrames {
		return false, nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		return false, mapErr("scrub wal", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA busy_timeout = `+strconv.FormatInt(s.writeTimeout.Milliseconds(), 10))
	}()
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
	if IsBusy(err) {
		return false, nil
	}
	if err != nil {
		return false, mapErr("scrub wal", err)
	}
	return busy == 0, nil
}

// ExtendOutboxLease pushes a claim's lease to until while its outcome
// waits to be recorded. It reports false when the claim no longer holds.
func (t *Tx) ExtendOutboxLease(ctx context.Context, id int64, attempts int, until time.Time) (bool, error) {
	return t.markOutbox(ctx, "extend outbox lease", `UPDATE mail_outbox SET lease_until = ?
		WHERE id = ? AND status = 'sending' AND attempts = ?`, ms(until), id, attempts)
}

// ReleaseOutboxBackoff makes every queued message of the channel that waits after a
// failed attempt due at now: the server has just accepted a message, so
// what kept them back is over. It returns how many it released.
func (t *Tx) ReleaseOutboxBackoff(ctx context.Context, channel string, now time.Time) (int, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE mail_outbox SET next_attempt_at = ?, updated_at = ?
		WHERE status = 'queued' AND attempts > 0 AND next_attempt_at > ? AND channel = ?`, ms(now), ms(now), ms(now), channelOf(channel))
	if err != nil {
		return 0, mapErr("release outbox backoff", err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr("release outbox backoff", err)
}

// RetryAllOutbox makes every queued message due at now, and puts failed
// messages that still hold their sealed secret back in the queue
// ("Retry all"). It returns how many it touched.
func (t *Tx) RetryAllOutbox(ctx context.Context, now time.Time) (int, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE mail_outbox SET status = 'queued', next_attempt_at = ?, updated_at = ?, lease_until = NULL
		WHERE (status = 'queued' AND next_attempt_at > ?) OR (status = 'failed' AND secret IS NOT NULL)`, ms(now), ms(now), ms(now))
	if err != nil {
		return 0, mapErr("retry all outbox", err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr("retry all outbox", err)
}

// emailFailedCol is the Users list's EmailFailed column: the user's latest
// password email failed. Most users have no failed row, so this is one
// probe into the partial index mail_outbox_failed; the inner NOT EXISTS
// (a newer password email supersedes the failure) runs only for the few
// that do.
const emailFailedCol = `EXISTS (SELECT 1 FROM mail_outbox f WHERE f.user_id = u.id AND f.status = 'failed'
		AND f.kind IN ('new_user', 'password_reset')
		AND NOT EXISTS (SELECT 1 FROM mail_outbox n WHERE n.user_id = u.id AND n.id > f.id AND n.kind IN ('new_user', 'password_reset')))`

// failedChannelCol is the Users list's FailedChannel column: the channel
// ("email" or "sms") of the user's latest password message when it
// failed, empty otherwise. The same probe as emailFailedCol, so the list
// tells a failed text from a failed email without a query per row.
const failedChannelCol = `COALESCE((SELECT f.channel FROM mail_outbox f WHERE f.user_id = u.id AND f.status = 'failed'
		AND f.kind IN ('new_user', 'password_reset')
		AND NOT EXISTS (SELECT 1 FROM mail_outbox n WHERE n.user_id = u.id AND n.id > f.id AND n.kind IN ('new_user', 'password_reset'))
		ORDER BY f.id DESC LIMIT 1), '')`
