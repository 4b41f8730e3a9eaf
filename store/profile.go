package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"time"
)

// UpdateIdentity changes a login ID's value; a value another login ID has
// gives ErrConflict, an unknown ID ErrNotFound.
func (t *Tx) UpdateIdentity(ctx context.Context, id, value, valueNorm string) error {
	res, err := t.q.ExecContext(ctx, `UPDATE identities SET value = ?, value_norm = ? WHERE id = ?`, value, valueNorm, id)
	if err != nil {
		return mapErr("update identity", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("update identity", sql.ErrNoRows)
	}
	return nil
}

// DeleteIdentity removes a login ID; ErrNotFound when there is none.
func (t *Tx) DeleteIdentity(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM identities WHERE id = ?`, id)
	if err != nil {
		return mapErr("delete identity", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("delete identity", sql.ErrNoRows)
	}
	return nil
}

// UpdateUserProfile sets the user's name attributes.
func (t *Tx) UpdateUserProfile(ctx context.Context, userID, name, givenName, familyName string, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE users SET name = ?, given_name = ?, family_name = ?, updated_at = ? WHERE id = ?`,
		name, givenName, familyName, ms(at), userID)
	if err != nil {
		return mapErr("update user profile", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("update user profile", sql.ErrNoRows)
	}
	return nil
}

// SessionPublicID is the ID a session is shown and revoked by: derived
// from the stored token hash, so neither the token nor its hash appears
// in pages, URLs or API answers.
func SessionPublicID(tokenHash string) string {
	sum := sha256.Sum256([]byte("latchkey-session-id:" + tokenHash))
	return hex.EncodeToString(sum[:16])
}

// UserSessionsByUser lists the user's unexpired sessions, most recently
// active first.
func (t *Tx) UserSessionsByUser(ctx context.Context, userID string, now time.Time) ([]UserSession, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT token_hash, user_id, restricted, created_at, expires_at, ip, user_agent, last_seen_at
		FROM user_sessions WHERE user_id = ? AND expires_at > ? ORDER BY COALESCE(last_seen_at, created_at) DESC, created_at DESC`, userID, ms(now))
	if err != nil {
		return nil, mapErr("user sessions", err)
	}
	defer rows.Close()
	var out []UserSession
	for rows.Next() {
		var s UserSession
		var created, expires int64
		var seen sql.NullInt64
		if err := rows.Scan(&s.TokenHash, &s.UserID, &s.Restricted, &created, &expires, &s.IP, &s.UserAgent, &seen); err != nil {
			return nil, mapErr("user sessions", err)
		}
		s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
		s.LastSeenAt = s.CreatedAt
		if seen.Valid {
			s.LastSeenAt = fromMS(seen.Int64)
		}
		out = append(out, s)
	}
	return out, mapErr("user sessions", rows.Err())
}

// TouchUserSession records that the session made a request at "at",
// unless it already did so after "since": one write a minute per session
// at most.
func (t *Tx) TouchUserSession(ctx context.Context, tokenHash string, at, since time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE user_sessions SET last_seen_at = ? WHERE token_hash = ? AND (last_seen_at IS NULL OR last_seen_at < ?)`,
		ms(at), tokenHash, ms(since))
	return mapErr("touch user session", err)
}
