package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AttemptSettleWindow is how long a reserved sign-in attempt counts
// against an account without being settled. Every attempt is settled as
// soon as its hash check ends (well under a second); one that is not was
// lost with its request or process, and after this window it no longer
// holds the account.
const AttemptSettleWindow = time.Minute

// lockoutTable names a table of sign-in lockouts and its key column; the
// two are fixed strings, never input.
type lockoutTable struct{ table, key string }

var (
	userLockouts  = lockoutTable{"login_lockouts", "user_id"}
	adminLockouts = lockoutTable{"admin_lockouts", "admin_id"}
)

// reserve takes one attempt before the password is checked, in one
// statement: it succeeds only while the account is not locked and its
// settled failures plus its live pending attempts are below threshold, so
// parallel attempts never take more than threshold between them.
//
// Two rules make a stuck account impossible: pending attempts reserved
// longer ago than AttemptSettleWindow are dropped, and settled failures
// are clamped to threshold-1 (a threshold lowered below an account's count
// leaves it one attempt, not none). t.least() is the scalar minimum (MIN
// in SQLite, LEAST in PostgreSQL); the row's columns are named with the
// table because PostgreSQL finds a bare name ambiguous in an upsert.
func (t *Tx) reserve(ctx context.Context, lt lockoutTable, id string, threshold int, now time.Time) (bool, error) {
	stale := ms(now.Add(-AttemptSettleWindow))
	var n int
	r := lt.table + "."
	err := t.q.QueryRowContext(ctx, `INSERT INTO `+lt.table+` (`+lt.key+`, failures, pending, reserved_at) VALUES (?, 0, 1, ?)
		ON CONFLICT(`+lt.key+`) DO UPDATE SET
			failures = `+t.least()+`(`+r+`failures, ? - 1),
			pending = CASE WHEN COALESCE(`+r+`reserved_at, 0) <= ? THEN 1 ELSE `+r+`pending + 1 END,
			reserved_at = ?
		WHERE (`+r+`locked_until IS NULL OR `+r+`locked_until <= ?)
			AND `+t.least()+`(`+r+`failures, ? - 1) + CASE WHEN COALESCE(`+r+`reserved_at, 0) <= ? THEN 0 ELSE `+r+`pending END < ?
		RETURNING `+r+`pending`,
		id, ms(now), threshold, stale, ms(now), ms(now), threshold, stale, threshold).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, mapErr("reserve "+lt.table, err)
	}
	return true, nil
}

// fail settles a reserved attempt as a wrong password. When the settled
// failures reach threshold it locks the account for base * 2^(locks so
// far), at most max, and starts counting afresh. It returns the lock's
// end when this failure locked the account.
func (t *Tx) fail(ctx context.Context, lt lockoutTable, id string, threshold int, now time.Time, base, max time.Duration) (*time.Time, error) {
	var until sql.NullInt64
	var locked bool
	err := t.q.QueryRowContext(ctx, `UPDATE `+lt.table+` SET last_failed_at = ?,
			pending = `+t.greatest()+`(pending - 1, 0),
			locked_until = CASE WHEN failures + 1 >= ? THEN ? + `+t.least()+`(? * (CAST(1 AS BIGINT) << CAST(`+t.least()+`(lock_count, 20) AS INTEGER)), ?) ELSE locked_until END,
			lock_count = CASE WHEN failures + 1 >= ? THEN lock_count + 1 ELSE lock_count END,
			failures = CASE WHEN failures + 1 >= ? THEN 0 ELSE failures + 1 END
		WHERE `+lt.key+` = ? RETURNING locked_until, COALESCE(locked_until, 0) > ?`,
		ms(now), threshold, ms(now), base.Milliseconds(), max.Milliseconds(), threshold, threshold, id, ms(now)).Scan(&until, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr("fail "+lt.table, err)
	}
	if !locked {
		return nil, nil
	}
	return timePtr(until), nil
}

// clear settles a reserved attempt as a success: failures and locks are
// forgotten.
func (t *Tx) clear(ctx context.Context, lt lockoutTable, id string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE `+lt.table+` SET failures = 0, pending = `+t.greatest()+`(pending - 1, 0), lock_count = 0, locked_until = NULL
		WHERE `+lt.key+` = ?`, id)
	return mapErr("clear "+lt.table, err)
}

func (t *Tx) lockout(ctx context.Context, lt lockoutTable, id string) (*Lockout, error) {
	l := Lockout{UserID: id}
	var until, last sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT failures, pending, lock_count, locked_until, last_failed_at FROM `+lt.table+` WHERE `+lt.key+` = ?`, id).
		Scan(&l.Failures, &l.Pending, &l.LockCount, &until, &last)
	if err != nil {
		return nil, mapErr("lockout from "+lt.table, err)
	}
	l.LockedUntil, l.LastFailedAt = timePtr(until), timePtr(last)
	return &l, nil
}

// ReserveAdminAttempt is ReserveLoginAttempt for a portal admin.
func (t *Tx) ReserveAdminAttempt(ctx context.Context, adminID string, threshold int, now time.Time) (bool, error) {
	return t.reserve(ctx, adminLockouts, adminID, threshold, now)
}

// FailAdminAttempt is FailLoginAttempt for a portal admin.
func (t *Tx) FailAdminAttempt(ctx context.Context, adminID string, threshold int, now time.Time, base, max time.Duration) (*time.Time, error) {
	return t.fail(ctx, adminLockouts, adminID, threshold, now, base, max)
}

// ClearAdminFailures is ClearLoginFailures for a portal admin.
func (t *Tx) ClearAdminFailures(ctx context.Context, adminID string) error {
	return t.clear(ctx, adminLockouts, adminID)
}

// AdminLockout returns an admin's sign-in lockout state (UserID holds the
// admin's ID), or ErrNotFound when they have never failed.
func (t *Tx) AdminLockout(ctx context.Context, adminID string) (*Lockout, error) {
	return t.lockout(ctx, adminLockouts, adminID)
}

// DeleteAdminLockout removes an admin's lockout state (the operator's
// command line clears it).
func (t *Tx) DeleteAdminLockout(ctx context.Context, adminID string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM admin_lockouts WHERE admin_id = ?`, adminID)
	return mapErr("delete admin lockout", err)
}
