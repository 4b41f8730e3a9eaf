package store

import (
	"context"
	"time"
)

// SMSRefusal is an abuse limit refusing texts to a user's phone within one
// UTC hour: what the admin sees on the user page. Attempts counts the
// refused requests of that hour, so a stranger hammering forgot password
// adds to a count instead of adding rows.
type SMSRefusal struct {
	UserID string
	// Limit names the limit ("phone_hour", "phone_day", "ip_hour",
	// "country_day", "daily_total").
	Limit string
	Phone string
	// Reason is the admin's wording, like "3 texts an hour limit for this
	// number reached".
	Reason   string
	Attempts int
	FirstAt  time.Time
	LastAt   time.Time
}

// smsRefusalKeep is how long refusal rows are kept.
const smsRefusalKeep = 30 * 24 * time.Hour

// RecordSMSRefusal counts one refused text: it adds a row for the user,
// limit and UTC hour of r.LastAt, or adds one to that row's attempts (the
// latest phone and reason win). Rows older than 30 days are pruned.
func (t *Tx) RecordSMSRefusal(ctx context.Context, r SMSRefusal) error {
	at := r.LastAt
	hour := at.UTC().Truncate(time.Hour)
	if _, err := t.q.ExecContext(ctx, `DELETE FROM sms_refusals WHERE hour_start < ?`, ms(at.Add(-smsRefusalKeep))); err != nil {
		return mapErr("prune sms refusals", err)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO sms_refusals (user_id, limit_name, hour_start, phone, reason, attempts, first_at, last_at)
		VALUES (?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (user_id, limit_name, hour_start) DO UPDATE SET attempts = sms_refusals.attempts + 1,
			phone = excluded.phone, reason = excluded.reason, last_at = excluded.last_at`,
		r.UserID, r.Limit, ms(hour), r.Phone, r.Reason, ms(at), ms(at))
	return mapErr("record sms refusal", err)
}

// SMSRefusalsByUser lists a user's refusals last seen at or after since, newest first, at
// most limit rows.
func (t *Tx) SMSRefusalsByUser(ctx context.Context, userID string, since time.Time, limit int) ([]SMSRefusal, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT user_id, limit_name, phone, reason, attempts, first_at, last_at FROM sms_refusals
		WHERE user_id = ? AND last_at >= ? ORDER BY last_at DESC LIMIT ?`, userID, ms(since), limit)
	if err != nil {
		return nil, mapErr("sms refusals by user", err)
	}
	defer rows.Close()
	var out []SMSRefusal
	for rows.Next() {
		var r SMSRefusal
		var first, last int64
		if err := rows.Scan(&r.UserID, &r.Limit, &r.Phone, &r.Reason, &r.Attempts, &first, &last); err != nil {
			return nil, mapErr("sms refusals by user", err)
		}
		r.FirstAt, r.LastAt = fromMS(first), fromMS(last)
		out = append(out, r)
	}
	return out, mapErr("sms refusals by user", rows.Err())
}
