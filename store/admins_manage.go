package store

import (
	"context"
	"database/sql"
	"time"
)

// AdminSummary is one row of the portal's Admins list.
type AdminSummary struct {
	Admin
	// Invited: the admin has not yet set a password through their link.
	Invited bool
	// TOTP: two-factor is enrolled and confirmed.
	TOTP bool
}

// ListAdmins lists every admin by email, with their two-factor state.
func (t *Tx) ListAdmins(ctx context.Context) ([]AdminSummary, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT a.id, a.email, a.password_hash, a.created_at, a.last_login_at,
		CASE WHEN tt.confirmed_at IS NULL THEN 0 ELSE 1 END
		FROM admins a LEFT JOIN admin_totp tt ON tt.admin_id = a.id ORDER BY a.email`)
	if err != nil {
		return nil, mapErr("list admins", err)
	}
	defer rows.Close()
	var out []AdminSummary
	for rows.Next() {
		var s AdminSummary
		var created int64
		var last sql.NullInt64
		if err := rows.Scan(&s.ID, &s.Email, &s.PasswordHash, &created, &last, &s.TOTP); err != nil {
			return nil, mapErr("list admins", err)
		}
		s.CreatedAt, s.LastLoginAt = fromMS(created), timePtr(last)
		s.Invited = s.PasswordHash == ""
		s.PasswordHash = ""
		out = append(out, s)
	}
	return out, mapErr("list admins", rows.Err())
}

// CountActiveAdminsExcept counts admins other than id who have a password
// (so can sign in): the guard that keeps the last admin from being removed.
func (t *Tx) CountActiveAdminsExcept(ctx context.Context, id string) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins WHERE id <> ? AND password_hash <> ''`, id).Scan(&n)
	return n, mapErr("count active admins", err)
}

// DeleteAdmin removes an admin; their invites, two-factor state and (by
// foreign key) anything else hanging off the admin go with them.
func (t *Tx) DeleteAdmin(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM admins WHERE id = ?`, id)
	if err != nil {
		return mapErr("delete admin", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetAdminPassword replaces an admin's password hash.
func (t *Tx) SetAdminPassword(ctx context.Context, id, hash string) error {
	res, err := t.q.ExecContext(ctx, `UPDATE admins SET password_hash = ? WHERE id = ?`, hash, id)
	if err != nil {
		return mapErr("set admin password", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AdminInvite is a one-time link for an invited admin to set a password.
type AdminInvite struct {
	TokenHash string
	AdminID   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// InsertAdminInvite stores an invite (its token's hash only).
func (t *Tx) InsertAdminInvite(ctx context.Context, inv AdminInvite) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO admin_invites (token_hash, admin_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		inv.TokenHash, inv.AdminID, ms(inv.CreatedAt), ms(inv.ExpiresAt))
	return mapErr("insert admin invite", err)
}

// AdminInviteByHash finds an invite by its token's hash.
func (t *Tx) AdminInviteByHash(ctx context.Context, hash string) (*AdminInvite, error) {
	var inv AdminInvite
	var created, expires int64
	var used sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT token_hash, admin_id, created_at, expires_at, used_at FROM admin_invites WHERE token_hash = ?`, hash).
		Scan(&inv.TokenHash, &inv.AdminID, &created, &expires, &used)
	if err != nil {
		return nil, mapErr("admin invite", err)
	}
	inv.CreatedAt, inv.ExpiresAt, inv.UsedAt = fromMS(created), fromMS(expires), timePtr(used)
	return &inv, nil
}

// UseAdminInvite marks an unused invite used; it reports false when the
// invite was already used (a second submit of the same link).
func (t *Tx) UseAdminInvite(ctx context.Context, hash string, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE admin_invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, ms(at), hash)
	if err != nil {
		return false, mapErr("use admin invite", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DeleteAdminInvites removes every invite of an admin (a new invite
// replaces the old link).
func (t *Tx) DeleteAdminInvites(ctx context.Context, adminID string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM admin_invites WHERE admin_id = ?`, adminID)
	return mapErr("delete admin invites", err)
}

// AdminTOTP is an admin's TOTP enrolment.
type AdminTOTP struct {
	AdminID       string
	Secret        []byte // sealed
	CreatedAt     time.Time
	ConfirmedAt   *time.Time
	LastStep      int64
	Failures      int
	FailuresSince *time.Time
}

// AdminTOTPByID loads an admin's TOTP enrolment; ErrNotFound when none.
func (t *Tx) AdminTOTPByID(ctx context.Context, adminID string) (*AdminTOTP, error) {
	var a AdminTOTP
	var created int64
	var confirmed, since sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT admin_id, secret, created_at, confirmed_at, last_step, failures, failures_since
		FROM admin_totp WHERE admin_id = ?`, adminID).Scan(&a.AdminID, &a.Secret, &created, &confirmed, &a.LastStep, &a.Failures, &since)
	if err != nil {
		return nil, mapErr("admin totp", err)
	}
	a.CreatedAt, a.ConfirmedAt, a.FailuresSince = fromMS(created), timePtr(confirmed), timePtr(since)
	return &a, nil
}

// PutPendingAdminTOTP starts (or restarts) an enrolment with a new sealed
// secret. It never replaces a confirmed enrolment: it reports false then.
func (t *Tx) PutPendingAdminTOTP(ctx context.Context, adminID string, secret []byte, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `INSERT INTO admin_totp (admin_id, secret, created_at) VALUES (?, ?, ?)
		ON CONFLICT (admin_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at,
			last_step = 0, failures = 0, failures_since = NULL
		WHERE admin_totp.confirmed_at IS NULL`, adminID, secret, ms(at))
	if err != nil {
		return false, mapErr("put admin totp", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ConfirmAdminTOTP turns a pending enrolment on.
func (t *Tx) ConfirmAdminTOTP(ctx context.Context, adminID string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE admin_totp SET confirmed_at = ? WHERE admin_id = ? AND confirmed_at IS NULL`, ms(at), adminID)
	return mapErr("confirm admin totp", err)
}

// DeleteAdminTOTP removes an admin's TOTP and recovery codes; it reports
// whether two-factor was on (confirmed).
func (t *Tx) DeleteAdminTOTP(ctx context.Context, adminID string) (bool, error) {
	var confirmed sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT confirmed_at FROM admin_totp WHERE admin_id = ?`, adminID).Scan(&confirmed)
	if err != nil && err != sql.ErrNoRows {
		return false, mapErr("delete admin totp", err)
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM admin_totp WHERE admin_id = ?`, adminID); err != nil {
		return false, mapErr("delete admin totp", err)
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM admin_recovery_codes WHERE admin_id = ?`, adminID); err != nil {
		return false, mapErr("delete admin recovery codes", err)
	}
	return confirmed.Valid, nil
}

// AdvanceAdminTOTPStep records step as the last accepted one, only when it
// is later than the last: it reports false for a code already used (or an
// earlier one), which is how a replayed code is refused even when two
// requests race.
func (t *Tx) AdvanceAdminTOTPStep(ctx context.Context, adminID string, step int64) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE admin_totp SET last_step = ?, failures = 0, failures_since = NULL
		WHERE admin_id = ? AND last_step < ?`, step, adminID, step)
	if err != nil {
		return false, mapErr("advance admin totp", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SetAdminTOTPFailures stores the wrong-code count and its window start.
func (t *Tx) SetAdminTOTPFailures(ctx context.Context, adminID string, failures int, since *time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE admin_totp SET failures = ?, failures_since = ? WHERE admin_id = ?`,
		failures, nullTime(since), adminID)
	return mapErr("admin totp failures", err)
}

// ReplaceAdminRecoveryCodes replaces an admin's recovery codes with hashes.
func (t *Tx) ReplaceAdminRecoveryCodes(ctx context.Context, adminID string, hashes []string, at time.Time) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM admin_recovery_codes WHERE admin_id = ?`, adminID); err != nil {
		return mapErr("replace recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := t.q.ExecContext(ctx, `INSERT INTO admin_recovery_codes (admin_id, code_hash, created_at) VALUES (?, ?, ?)`,
			adminID, h, ms(at)); err != nil {
			return mapErr("replace recovery codes", err)
		}
	}
	return nil
}

// UnusedAdminRecoveryCodes lists the hashes of an admin's unused codes.
func (t *Tx) UnusedAdminRecoveryCodes(ctx context.Context, adminID string) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT code_hash FROM admin_recovery_codes WHERE admin_id = ? AND used_at IS NULL`, adminID)
	if err != nil {
		return nil, mapErr("recovery codes", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, mapErr("recovery codes", err)
		}
		out = append(out, h)
	}
	return out, mapErr("recovery codes", rows.Err())
}

// UseAdminRecoveryCode marks an unused code used; false when it was used
// already (by a racing request).
func (t *Tx) UseAdminRecoveryCode(ctx context.Context, adminID, hash string, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE admin_recovery_codes SET used_at = ? WHERE admin_id = ? AND code_hash = ? AND used_at IS NULL`,
		ms(at), adminID, hash)
	if err != nil {
		return false, mapErr("use recovery code", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
