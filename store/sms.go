package store

import (
	"context"
	"time"
)

// Outbox channels: how a mail_outbox row is delivered.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

func channelOf(c string) string {
	if c == "" {
		return ChannelEmail
	}
	return c
}

// InsertRefusedOutbox records a message that was never queued (an SMS
// abuse limit refused it): a failed row with its reason and no secret, so
// the admin sees on the user page why nothing arrived. It fills in m.ID.
func (t *Tx) InsertRefusedOutbox(ctx context.Context, m *OutboxMessage) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO mail_outbox (user_id, kind, recipient, subject, secret, status, attempts,
		next_attempt_at, last_error, created_at, updated_at, channel) VALUES (?, ?, ?, ?, NULL, 'failed', 0, ?, ?, ?, ?, ?)`,
		nullString(m.UserID), m.Kind, m.Recipient, m.Subject, ms(m.CreatedAt), m.LastError, ms(m.CreatedAt), ms(m.CreatedAt),
		channelOf(m.Channel))
	if err != nil {
		return mapErr("insert refused outbox", err)
	}
	m.ID, err = res.LastInsertId()
	m.Status, m.UpdatedAt = OutboxFailed, m.CreatedAt
	return mapErr("insert refused outbox", err)
}

// SMSSend is one text message counted by the abuse limits.
type SMSSend struct {
	Phone       string
	CallingCode string
	// IP is the client that asked for it; empty for an admin or the API.
	IP string
	At time.Time
}

// SMSCounts is how many texts were queued in the windows the limits use.
type SMSCounts struct {
	PhoneHour, PhoneDay int
	IPHour              int
	CountryDay          int
	GlobalDay           int
}

// CountSMSSends counts the texts queued in the 24 hours before now: to
// phone (in the last hour and the last day), for ip (last hour; skipped
// when ip is empty), to callingCode and in all. Call it in the write
// transaction that will record the next send, so parallel requests cannot
// both pass a limit.
func (t *Tx) CountSMSSends(ctx context.Context, phone, ip, callingCode string, now time.Time) (SMSCounts, error) {
	var c SMSCounts
	if t.pg() {
		// PostgreSQL runs transactions side by side (from every
		// instance), each counting from its own snapshot: two could both
		// pass a limit. A transaction-scoped advisory lock makes them
		// count and insert one after another; the count below, a
		// statement of its own, then sees every earlier commit.
		if _, err := t.q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, pgSMSLimitLock); err != nil {
			return c, mapErr("lock sms limits", err)
		}
	}
	hour, day := ms(now.Add(-time.Hour)), ms(now.Add(-24*time.Hour))
	err := t.q.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN phone = ? AND created_at > ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN phone = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN ip = ? AND created_at > ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN calling_code = ? THEN 1 ELSE 0 END), 0),
		COUNT(*)
		FROM sms_sends WHERE created_at > ?`, phone, hour, phone, ip, hour, callingCode, day).
		Scan(&c.PhoneHour, &c.PhoneDay, &c.IPHour, &c.CountryDay, &c.GlobalDay)
	if ip == "" {
		c.IPHour = 0
	}
	return c, mapErr("count sms sends", err)
}

// pgSMSLimitLock is the pg_advisory_xact_lock key that serialises the SMS
// abuse-limit checks on PostgreSQL ("smslim").
const pgSMSLimitLock int64 = 0x736d736c696d

// InsertSMSSend counts one queued text, and prunes rows older than two
// days (no limit looks further back).
func (t *Tx) InsertSMSSend(ctx context.Context, s SMSSend) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM sms_sends WHERE created_at < ?`, ms(s.At.Add(-48*time.Hour))); err != nil {
		return mapErr("prune sms sends", err)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO sms_sends (phone, calling_code, ip, created_at) VALUES (?, ?, ?, ?)`,
		s.Phone, s.CallingCode, nullString(s.IP), ms(s.At))
	return mapErr("insert sms send", err)
}
