package store

import (
	"context"
	"database/sql"
	"time"
)

// Lockout is a user's (or an admin's) sign-in failure state.
type Lockout struct {
	UserID string
	// Failures counts wrong passwords since the last success or lock.
	Failures int
	// Pending counts attempts reserved and still being verified.
	Pending      int
	LockCount    int
	LockedUntil  *time.Time
	LastFailedAt *time.Time
}

// Locked reports whether the account is locked at now.
func (l *Lockout) Locked(now time.Time) bool {
	return l != nil && l.LockedUntil != nil && now.Before(*l.LockedUntil)
}

// ReserveLoginAttempt atomically takes one of the user's password
// attempts before the password is checked (see reserve). It reports false
// when no attempt is left (locked, or threshold attempts in flight).
// Every granted reservation must be settled with FailLoginAttempt or
// ClearLoginFailures; one that is not lapses after AttemptSettleWindow.
func (t *Tx) ReserveLoginAttempt(ctx context.Context, userID string, threshold int, now time.Time) (bool, error) {
	return t.reserve(ctx, userLockouts, userID, threshold, now)
}

// FailLoginAttempt settles a reserved attempt that had a wrong password.
// When the failures reach threshold it locks the account for
// base * 2^(locks so far), at most max, and starts counting afresh.
// It returns the lock's end when this failure locked the account.
func (t *Tx) FailLoginAttempt(ctx context.Context, userID string, threshold int, now time.Time, base, max time.Duration) (*time.Time, error) {
	return t.fail(ctx, userLockouts, userID, threshold, now, base, max)
}

// ClearLoginFailures settles a reserved attempt with the correct password:
// it forgets the user's failures and locks.
func (t *Tx) ClearLoginFailures(ctx context.Context, userID string) error {
	return t.clear(ctx, userLockouts, userID)
}

// DeleteLockout removes a user's lockout state (an admin clears it).
// It reports whether there was any.
func (t *Tx) DeleteLockout(ctx context.Context, userID string) (bool, error) {
	res, err := t.q.ExecContext(ctx, `DELETE FROM login_lockouts WHERE user_id = ?`, userID)
	if err != nil {
		return false, mapErr("delete lockout", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// LockoutByUser returns the user's lockout state, or ErrNotFound when the
// user has never failed.
func (t *Tx) LockoutByUser(ctx context.Context, userID string) (*Lockout, error) {
	return t.lockout(ctx, userLockouts, userID)
}

// TouchUserLogin records a user's successful sign-in.
func (t *Tx) TouchUserLogin(ctx context.Context, userID string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE users SET last_login_at = ? WHERE id = ?`, ms(at), userID)
	return mapErr("touch user login", err)
}

// UserSession is an end user's signed-in session; TokenHash is the
// SHA-256 (hex) of the token in the cookie.
type UserSession struct {
	TokenHash  string
	UserID     string
	Restricted bool
	CreatedAt  time.Time
	ExpiresAt  time.Time
	IP         string
	UserAgent  string
	// UserDisabled is filled in by UserSessionByHash.
	UserDisabled bool
	// LastSeenAt is the session's last request (CreatedAt until the first).
	LastSeenAt time.Time
}

// InsertUserSession stores a new session.
func (t *Tx) InsertUserSession(ctx context.Context, s UserSession) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO user_sessions (token_hash, user_id, restricted, created_at, expires_at, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, s.TokenHash, s.UserID, s.Restricted, ms(s.CreatedAt), ms(s.ExpiresAt), s.IP, s.UserAgent)
	return mapErr("insert user session", err)
}

// UserSessionByHash returns the unexpired session with this token hash.
func (t *Tx) UserSessionByHash(ctx context.Context, hash string, now time.Time) (*UserSession, error) {
	var s UserSession
	var created, expires int64
	var seen sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT s.token_hash, s.user_id, s.restricted, s.created_at, s.expires_at, s.ip, s.user_agent, u.is_disabled, s.last_seen_at
		FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?`, hash, ms(now)).
		Scan(&s.TokenHash, &s.UserID, &s.Restricted, &created, &expires, &s.IP, &s.UserAgent, &s.UserDisabled, &seen)
	if err != nil {
		return nil, mapErr("user session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	s.LastSeenAt = s.CreatedAt
	if seen.Valid {
		s.LastSeenAt = fromMS(seen.Int64)
	}
	return &s, nil
}

// DeleteUserSession ends one session.
func (t *Tx) DeleteUserSession(ctx context.Context, hash string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM user_sessions WHERE token_hash = ?`, hash)
	return mapErr("delete user session", err)
}

// DeleteUserSessions ends every session of the user except the one with
// exceptHash ("" ends them all) and reports how many it ended.
func (t *Tx) DeleteUserSessions(ctx context.Context, userID, exceptHash string) (int, error) {
	res, err := t.q.ExecContext(ctx, `DELETE FROM user_sessions WHERE user_id = ? AND token_hash <> ?`, userID, exceptHash)
	if err != nil {
		return 0, mapErr("delete user sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CountUserSessions counts the user's unexpired sessions.
func (t *Tx) CountUserSessions(ctx context.Context, userID string, now time.Time) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_sessions WHERE user_id = ? AND expires_at > ?`, userID, ms(now)).Scan(&n)
	return n, mapErr("count user sessions", err)
}

// DeleteExpiredUserSessions removes the user's sessions that ended
// before now (done at each sign-in, so the table stays small).
func (t *Tx) DeleteExpiredUserSessions(ctx context.Context, userID string, now time.Time) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM user_sessions WHERE user_id = ? AND expires_at <= ?`, userID, ms(now))
	return mapErr("delete expired user sessions", err)
}

// PasswordReset is one forgot-password request: a code and a link, both
// kept only as hashes.
type PasswordReset struct {
	ID            string
	UserID        string
	CodeHash      string
	LinkHash      string
	CreatedAt     time.Time
	CodeExpiresAt time.Time
	LinkExpiresAt time.Time
	CodeFailures  int
	UsedAt        *time.Time
}

// InsertPasswordReset stores a forgot-password request.
func (t *Tx) InsertPasswordReset(ctx context.Context, r PasswordReset) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO password_resets (id, user_id, code_hash, link_hash, created_at, code_expires_at, link_expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, r.UserID, r.CodeHash, r.LinkHash, ms(r.CreatedAt), ms(r.CodeExpiresAt), ms(r.LinkExpiresAt))
	return mapErr("insert password reset", err)
}

// LastPasswordResetAt is when the user last asked for a reset, or ErrNotFound.
func (t *Tx) LastPasswordResetAt(ctx context.Context, userID string) (time.Time, error) {
	var v sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT MAX(created_at) FROM password_resets WHERE user_id = ?`, userID).Scan(&v)
	if err == nil && !v.Valid {
		err = sql.ErrNoRows
	}
	if err != nil {
		return time.Time{}, mapErr("last password reset", err)
	}
	return fromMS(v.Int64), nil
}

const resetCols = `id, user_id, code_hash, link_hash, created_at, code_expires_at, link_expires_at, code_failures, used_at`

func scanReset(row interface{ Scan(...any) error }) (*PasswordReset, error) {
	var r PasswordReset
	var created, codeExp, linkExp int64
	var used sql.NullInt64
	if err := row.Scan(&r.ID, &r.UserID, &r.CodeHash, &r.LinkHash, &created, &codeExp, &linkExp, &r.CodeFailures, &used); err != nil {
		return nil, err
	}
	r.CreatedAt, r.CodeExpiresAt, r.LinkExpiresAt, r.UsedAt = fromMS(created), fromMS(codeExp), fromMS(linkExp), timePtr(used)
	return &r, nil
}

// PasswordResetByLink finds a request by its link hash.
func (t *Tx) PasswordResetByLink(ctx context.Context, linkHash string) (*PasswordReset, error) {
	r, err := scanReset(t.q.QueryRowContext(ctx, `SELECT `+resetCols+` FROM password_resets WHERE link_hash = ?`, linkHash))
	return r, mapErr("password reset by link", err)
}

// LatestPasswordReset returns the user's newest request.
func (t *Tx) LatestPasswordReset(ctx context.Context, userID string) (*PasswordReset, error) {
	r, err := scanReset(t.q.QueryRowContext(ctx, `SELECT `+resetCols+` FROM password_resets WHERE user_id = ?
		ORDER BY created_at DESC, rowid DESC LIMIT 1`, userID))
	return r, mapErr("latest password reset", err)
}

// UsePasswordReset marks the request used; it reports false when it was
// used already, so a code or link works once even under parallel use.
func (t *Tx) UsePasswordReset(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL`, ms(at), id)
	if err != nil {
		return false, mapErr("use password reset", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UseAllPasswordResets marks every open request of the user used (a newer
// request, or a successful reset, supersedes them).
func (t *Tx) UseAllPasswordResets(ctx context.Context, userID string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL`, ms(at), userID)
	return mapErr("use all password resets", err)
}
