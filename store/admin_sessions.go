package store

import (
	"context"
	"time"
)

// AdminSession is a portal admin's signed-in session; TokenHash is the
// SHA-256 (hex) of the token in the portal cookie. A session ends at
// ExpiresAt, or earlier when idle for longer than the caller's idle limit.
type AdminSession struct {
	TokenHash  string
	AdminID    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	IP         string
	UserAgent  string
}

// InsertAdminSession stores a new portal session.
func (t *Tx) InsertAdminSession(ctx context.Context, s AdminSession) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at, expires_at, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, s.TokenHash, s.AdminID, ms(s.CreatedAt), ms(s.LastSeenAt), ms(s.ExpiresAt), s.IP, s.UserAgent)
	return mapErr("insert admin session", err)
}

const adminSessionCols = `token_hash, admin_id, created_at, last_seen_at, expires_at, ip, user_agent`

func scanAdminSession(row interface{ Scan(...any) error }) (*AdminSession, error) {
	var s AdminSession
	var created, seen, expires int64
	if err := row.Scan(&s.TokenHash, &s.AdminID, &created, &seen, &expires, &s.IP, &s.UserAgent); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMS(created), fromMS(seen), fromMS(expires)
	return &s, nil
}

// AdminSessionByHash returns the live session with this token hash: not
// past its absolute end, and seen after idleSince. Anything else is
// ErrNotFound.
func (t *Tx) AdminSessionByHash(ctx context.Context, hash string, now, idleSince time.Time) (*AdminSession, error) {
	s, err := scanAdminSession(t.q.QueryRowContext(ctx, `SELECT `+adminSessionCols+` FROM admin_sessions
		WHERE token_hash = ? AND expires_at > ? AND last_seen_at > ?`, hash, ms(now), ms(idleSince)))
	return s, mapErr("admin session", err)
}

// TouchAdminSession records activity on a session, which keeps it from
// idling out.
func (t *Tx) TouchAdminSession(ctx context.Context, hash string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?`, ms(at), hash)
	return mapErr("touch admin session", err)
}

// DeleteAdminSession ends one portal session.
func (t *Tx) DeleteAdminSession(ctx context.Context, hash string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM admin_sessions WHERE token_hash = ?`, hash)
	return mapErr("delete admin session", err)
}

// DeleteAdminSessions ends every session of the admin except the one with
// exceptHash ("" ends them all) and reports how many it ended.
func (t *Tx) DeleteAdminSessions(ctx context.Context, adminID, exceptHash string) (int, error) {
	res, err := t.q.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin_id = ? AND token_hash <> ?`, adminID, exceptHash)
	if err != nil {
		return 0, mapErr("delete admin sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteStaleAdminSessions removes the admin's sessions that have ended,
// absolutely or by idling (done at each sign-in, so the table stays small).
func (t *Tx) DeleteStaleAdminSessions(ctx context.Context, adminID string, now, idleSince time.Time) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin_id = ? AND (expires_at <= ? OR last_seen_at <= ?)`,
		adminID, ms(now), ms(idleSince))
	return mapErr("delete stale admin sessions", err)
}

// AdminSessions lists the admin's live sessions, newest first.
func (t *Tx) AdminSessions(ctx context.Context, adminID string, now, idleSince time.Time) ([]AdminSession, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+adminSessionCols+` FROM admin_sessions
		WHERE admin_id = ? AND expires_at > ? AND last_seen_at > ? ORDER BY created_at DESC, token_hash`, adminID, ms(now), ms(idleSince))
	if err != nil {
		return nil, mapErr("admin sessions", err)
	}
	defer rows.Close()
	var out []AdminSession
	for rows.Next() {
		s, err := scanAdminSession(rows)
		if err != nil {
			return nil, mapErr("admin sessions", err)
		}
		out = append(out, *s)
	}
	return out, mapErr("admin sessions", rows.Err())
}

// CountAdminSessions counts the admin's live sessions.
func (t *Tx) CountAdminSessions(ctx context.Context, adminID string, now, idleSince time.Time) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM admin_sessions WHERE admin_id = ? AND expires_at > ? AND last_seen_at > ?`,
		adminID, ms(now), ms(idleSince)).Scan(&n)
	return n, mapErr("count admin sessions", err)
}
