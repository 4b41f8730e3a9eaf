package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// User is an end user's account row.
type User struct {
	Seq           int64
	ID            string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   *time.Time
	IsDisabled    bool
	DisableReason string
}

// Identity is one login ID of a user: an email, phone number or username.
type Identity struct {
	ID        string
	UserID    string
	Kind      string
	Value     string
	ValueNorm string
	CreatedAt time.Time
}

// Password is a user's current password hash and its expiry state.
type Password struct {
	UserID      string
	Hash        string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ExpireAfter *time.Time
	SetByAdmin  bool
}

// InsertUser creates the user row and fills in u.Seq.
func (t *Tx) InsertUser(ctx context.Context, u *User) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at, is_disabled) VALUES (?, ?, ?, 0)`,
		u.ID, ms(u.CreatedAt), ms(u.UpdatedAt))
	if err != nil {
		return mapErr("insert user", err)
	}
	u.Seq, err = res.LastInsertId()
	return mapErr("insert user", err)
}

// InsertIdentity adds a login ID; one that exists in any case gives ErrConflict.
func (t *Tx) InsertIdentity(ctx context.Context, i Identity) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO identities (id, user_id, kind, value, value_norm, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		i.ID, i.UserID, i.Kind, i.Value, i.ValueNorm, ms(i.CreatedAt))
	return mapErr("insert identity", err)
}

const identityCols = `id, user_id, kind, value, value_norm, created_at`

func scanIdentity(row interface{ Scan(...any) error }) (Identity, error) {
	var i Identity
	var created int64
	err := row.Scan(&i.ID, &i.UserID, &i.Kind, &i.Value, &i.ValueNorm, &created)
	i.CreatedAt = fromMS(created)
	return i, err
}

// IdentityByNorm finds the identity with this normalised value.
func (t *Tx) IdentityByNorm(ctx context.Context, norm string) (*Identity, error) {
	i, err := scanIdentity(t.q.QueryRowContext(ctx, `SELECT `+identityCols+` FROM identities WHERE value_norm = ?`, norm))
	if err != nil {
		return nil, mapErr("identity by value", err)
	}
	return &i, nil
}

// IdentitiesByUser lists a user's login IDs, oldest first.
func (t *Tx) IdentitiesByUser(ctx context.Context, userID string) ([]Identity, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+identityCols+` FROM identities WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, mapErr("identities by user", err)
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, mapErr("identities by user", err)
		}
		out = append(out, i)
	}
	return out, mapErr("identities by user", rows.Err())
}

const userCols = `seq, id, created_at, updated_at, last_login_at, is_disabled, COALESCE(disable_reason, '')`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created, updated int64
	var last sql.NullInt64
	if err := row.Scan(&u.Seq, &u.ID, &created, &updated, &last, &u.IsDisabled, &u.DisableReason); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = fromMS(created), fromMS(updated), timePtr(last)
	return &u, nil
}

// UserByID finds a user by ID.
func (t *Tx) UserByID(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(t.q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, mapErr("user by id", err)
}

// TouchUser sets updated_at.
func (t *Tx) TouchUser(ctx context.Context, id string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE users SET updated_at = ? WHERE id = ?`, ms(at), id)
	return mapErr("touch user", err)
}

// PasswordByUser returns the user's password row, or ErrNotFound when the
// user has no password.
func (t *Tx) PasswordByUser(ctx context.Context, userID string) (*Password, error) {
	var p Password
	var created, updated int64
	var exp sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT user_id, hash, created_at, updated_at, expire_after, set_by_admin FROM passwords WHERE user_id = ?`, userID).
		Scan(&p.UserID, &p.Hash, &created, &updated, &exp, &p.SetByAdmin)
	if err != nil {
		return nil, mapErr("password by user", err)
	}
	p.CreatedAt, p.UpdatedAt, p.ExpireAfter = fromMS(created), fromMS(updated), timePtr(exp)
	return &p, nil
}

// PutPassword sets the user's password, replacing any earlier one.
func (t *Tx) PutPassword(ctx context.Context, p Password) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO passwords (user_id, hash, created_at, updated_at, expire_after, set_by_admin)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(user_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at,
			updated_at = excluded.updated_at, expire_after = excluded.expire_after, set_by_admin = excluded.set_by_admin`,
		p.UserID, p.Hash, ms(p.CreatedAt), ms(p.UpdatedAt), nullTime(p.ExpireAfter), p.SetByAdmin)
	return mapErr("put password", err)
}

// SetPasswordExpireAfter changes only the expiry of the user's password.
// It reports ErrNotFound when the user has no password.
func (t *Tx) SetPasswordExpireAfter(ctx context.Context, userID string, expireAfter *time.Time, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE passwords SET expire_after = ?, updated_at = ? WHERE user_id = ?`, nullTime(expireAfter), ms(at), userID)
	if err != nil {
		return mapErr("set password expiry", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("set password expiry", sql.ErrNoRows)
	}
	return nil
}

// InsertPasswordHistory records a hash the user had, for the reuse rule.
func (t *Tx) InsertPasswordHistory(ctx context.Context, userID, hash string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO password_history (user_id, hash, created_at) VALUES (?, ?, ?)`, userID, hash, ms(at))
	return mapErr("insert password history", err)
}

// PasswordHistory returns the user's past hashes, newest first: at most
// limit of them, plus any newer than since.
func (t *Tx) PasswordHistory(ctx context.Context, userID string, limit int, since time.Time) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT hash FROM password_history WHERE user_id = ?
		AND (id IN (SELECT id FROM password_history WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?) OR created_at >= ?)
		ORDER BY created_at DESC, id DESC`, userID, userID, limit, ms(since))
	if err != nil {
		return nil, mapErr("password history", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, mapErr("password history", err)
		}
		out = append(out, h)
	}
	return out, mapErr("password history", rows.Err())
}

// UserSummary is one row of the Users list.
type UserSummary struct {
	User
	LoginIDs    []string
	ExpireAfter *time.Time
	HasPassword bool
	// EmailFailed is set when a password email to the user has failed.
	EmailFailed bool
	// Cursor is the keyset position of this row, for the next page.
	Cursor string
}

// ListUsersParams selects a page of the Users list. With Search empty,
// users come newest first; with Search set, users whose login ID starts
// with it (case-insensitively) come in login-ID order.
type ListUsersParams struct {
	Search string
	After  string // Cursor of the last row of the previous page
	Limit  int
}

const summaryCols = `u.seq, u.id, u.created_at, u.updated_at, u.last_login_at, u.is_disabled, COALESCE(u.disable_reason, ''),
	p.expire_after, p.user_id IS NOT NULL,
	(SELECT group_concat(value, char(10)) FROM (SELECT value FROM identities WHERE user_id = u.id ORDER BY created_at, id)),
	` + emailFailedCol

// ListUsers returns one page of users by keyset pagination, so every page
// costs the same at a million users.
func (t *Tx) ListUsers(ctx context.Context, p ListUsersParams) ([]UserSummary, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	var rows *sql.Rows
	var err error
	if p.Search == "" {
		after := int64(1<<63 - 1)
		if p.After != "" {
			if v, err := strconv.ParseInt(p.After, 10, 64); err == nil {
				after = v
			}
		}
		rows, err = t.q.QueryContext(ctx, `SELECT `+summaryCols+`, '' FROM users u LEFT JOIN passwords p ON p.user_id = u.id
			WHERE u.seq < ? ORDER BY u.seq DESC LIMIT ?`, after, p.Limit)
	} else {
		lo := strings.ToLower(p.Search)
		hi := prefixUpperBound(lo)
		afterNorm, afterUser := "", ""
		if p.After != "" {
			afterNorm, afterUser, _ = strings.Cut(p.After, "\x00")
		}
		rows, err = t.q.QueryContext(ctx, `SELECT `+summaryCols+`, i.value_norm FROM identities i
			JOIN users u ON u.id = i.user_id LEFT JOIN passwords p ON p.user_id = u.id
			WHERE i.value_norm >= ? AND i.value_norm < ? AND (i.value_norm > ? OR (i.value_norm = ? AND i.user_id > ?))
			-- Each user once: at their first matching login ID.
			AND NOT EXISTS (SELECT 1 FROM identities j WHERE j.user_id = i.user_id
				AND j.value_norm >= ? AND j.value_norm < i.value_norm)
			ORDER BY i.value_norm, i.user_id LIMIT ?`, lo, hi, afterNorm, afterNorm, afterUser, lo, p.Limit)
	}
	if err != nil {
		return nil, mapErr("list users", err)
	}
	defer rows.Close()
	var out []UserSummary
	for rows.Next() {
		var s UserSummary
		var created, updated int64
		var last, exp sql.NullInt64
		var ids sql.NullString
		var norm string
		if err := rows.Scan(&s.Seq, &s.ID, &created, &updated, &last, &s.IsDisabled, &s.DisableReason,
			&exp, &s.HasPassword, &ids, &s.EmailFailed, &norm); err != nil {
			return nil, mapErr("list users", err)
		}
		s.CreatedAt, s.UpdatedAt, s.LastLoginAt, s.ExpireAfter = fromMS(created), fromMS(updated), timePtr(last), timePtr(exp)
		if ids.String != "" {
			s.LoginIDs = strings.Split(ids.String, "\n")
		}
		if p.Search == "" {
			s.Cursor = strconv.FormatInt(s.Seq, 10)
		} else {
			s.Cursor = norm + "\x00" + s.ID
		}
		out = append(out, s)
	}
	return out, mapErr("list users", rows.Err())
}

// CountUsers counts all users.
func (t *Tx) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, mapErr("count users", err)
}

// prefixUpperBound returns the smallest string greater than every string
// that starts with prefix, so "value >= prefix AND value < bound" is an
// index range scan.
func prefixUpperBound(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\xff\xff\xff\xff"
}

// SetUserDisabled disables or re-enables a user, with an optional reason.
func (t *Tx) SetUserDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) error {
	var r any
	if disabled && reason != "" {
		r = reason
	}
	res, err := t.q.ExecContext(ctx, `UPDATE users SET is_disabled = ?, disable_reason = ?, updated_at = ? WHERE id = ?`, disabled, r, ms(at), id)
	if err != nil {
		return mapErr("set user disabled", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("set user disabled", sql.ErrNoRows)
	}
	return nil
}

// RehashPassword replaces the user's password hash with a new hash of the
// same password (a newer format or cost), only while the stored hash is
// still oldHash, so a password changed meanwhile is never overwritten.
// Dates and expiry stay: the password is the same.
func (t *Tx) RehashPassword(ctx context.Context, userID, oldHash, newHash string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE passwords SET hash = ? WHERE user_id = ? AND hash = ?`, newHash, userID, oldHash)
	return mapErr("rehash password", err)
}
