package account

import (
	"context"
	"errors"
	"strings"
	"time"

	"latchkey/store"
)

// Admin sign-in events, in the audit log only (hooks keeps admin.* out of
// webhooks).
const (
	EventAdminSigninSucceeded = "admin.signin.succeeded"
	EventAdminSigninFailed    = "admin.signin.failed"
)

// Admin sign-in lockout, per admin whatever the address: after
// AdminLockoutThreshold wrong passwords in a row the admin's sign-in
// pauses for AdminLockBase, doubling with each lock up to AdminLockMax. A
// right password clears it; so does the operator's command line.
const (
	AdminLockoutThreshold = 5
	AdminLockBase         = time.Minute
	AdminLockMax          = time.Hour
)

// ErrAdminLocked is returned while an admin's sign-in is paused. The
// portal answers it exactly as ErrBadCredentials.
var ErrAdminLocked = errors.New("account: admin sign-in paused after too many failures")

// AdminSignIn checks an admin's email and password, the first step of a
// portal sign-in; StartAdminSession completes it (and records
// admin.signin.succeeded), so that a second step can come in between.
//
// An unknown email, a wrong password and a locked admin give
// ErrBadCredentials or ErrAdminLocked after the same hashing work, and each
// records admin.signin.failed with a reason. The attempt is reserved
// before the hash is checked, so parallel guesses from any number of
// addresses get at most AdminLockoutThreshold tries, and it is settled on
// a context the request cannot cancel.
func (s *Service) AdminSignIn(ctx context.Context, actor Actor, email, password string) (*store.Admin, error) {
	norm := strings.ToLower(strings.TrimSpace(email))
	if id, err := NormalizeLoginID(KindEmail, email, s.cfg.PhoneRegion); err == nil {
		norm = id.Norm
	}
	a, err := s.store.AdminByEmail(ctx, norm)
	if errors.Is(err, store.ErrNotFound) {
		s.hasher.VerifyDummy(password)
		if len(norm) > 254 {
			norm = norm[:254]
		}
		return nil, s.adminSigninFailed(ctx, actor, nil, norm, "unknown_email", nil, ErrBadCredentials)
	} else if err != nil {
		return nil, err
	}
	actor.Kind, actor.ID, actor.Name = "admin", a.ID, a.Email
	// Not cancellable, as in Login: a reservation must be known to be
	// settled.
	ok, err := s.store.ReserveAdminAttempt(context.WithoutCancel(ctx), a.ID, AdminLockoutThreshold, s.Now())
	if err != nil {
		return nil, err
	}
	if !ok {
		s.hasher.VerifyDummy(password)
		return nil, s.adminSigninFailed(ctx, actor, a, a.Email, "locked", nil, ErrAdminLocked)
	}
	ctx = context.WithoutCancel(ctx)
	if !s.hasher.Verify(a.PasswordHash, password) {
		now := s.Now()
		var until *time.Time
		fail := func(ctx context.Context) error {
			return s.store.InTx(ctx, func(tx *store.Tx) error {
				var err error
				until, err = tx.FailAdminAttempt(ctx, a.ID, AdminLockoutThreshold, now, AdminLockBase, AdminLockMax)
				return err
			})
		}
		if err := fail(ctx); err != nil {
			// Retried with its event once the request has answered.
			s.settleLater("admin failure", a.ID, err, func(ctx context.Context) error {
				if err := fail(ctx); err != nil {
					return err
				}
				if err := s.adminSigninFailed(ctx, actor, a, a.Email, "wrong_password", until, nil); err != nil {
					s.log.Error("record admin.signin.failed", "admin_id", a.ID, "err", err)
				}
				return nil
			})
			return nil, err
		}
		if until != nil {
			s.log.Warn("admin sign-in locked", "admin_id", a.ID, "until", until, "ip", actor.IP)
		}
		return nil, s.adminSigninFailed(ctx, actor, a, a.Email, "wrong_password", until, ErrBadCredentials)
	}
	clear := func(ctx context.Context) error { return s.store.ClearAdminFailures(ctx, a.ID) }
	if err := s.settle(ctx, "admin success", a.ID, clear); err != nil {
		return nil, err
	}
	s.rehash(a.PasswordHash, password, func(h string) error {
		return s.store.RehashAdminPassword(ctx, a.ID, a.PasswordHash, h)
	})
	return a, nil
}

// adminSigninFailed records admin.signin.failed and returns ret.
func (s *Service) adminSigninFailed(ctx context.Context, actor Actor, a *store.Admin, email, reason string, lockedUntil *time.Time, ret error) error {
	payload := map[string]any{"email": email, "reason": reason}
	if a != nil {
		payload["admin_id"] = a.ID
	}
	if lockedUntil != nil {
		payload["locked_until"] = lockedUntil.UTC().Format(time.RFC3339)
	}
	ctx = context.WithoutCancel(ctx)
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminSigninFailed, Payload: payload})
	})
	if err != nil {
		return err
	}
	return ret
}

// ClearAdminLockout lets an admin whose sign-in is paused try again at
// once (the operator's command line).
func (s *Service) ClearAdminLockout(ctx context.Context, adminID string) error {
	return s.store.DeleteAdminLockout(ctx, adminID)
}
