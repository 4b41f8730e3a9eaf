package account

import (
	"context"
	"strings"
	"time"

	"latchkey/store"
)

// SetDisabledStatus disables or re-enables a user. The portal's Disable /
// Enable buttons and the Admin API's setDisabledStatus both call it. It
// records user.disabled or user.reenabled; doing what is already done
// changes nothing and records nothing.
func (s *Service) SetDisabledStatus(ctx context.Context, actor Actor, userID string, disabled bool, reason string) (*User, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > 500 {
		return nil, fieldErr("reason", ReasonValidationFailed, "The reason can be at most 500 characters.", nil)
	}
	var u *User
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		if u.IsDisabled == disabled && (!disabled || u.DisableReason == reason) {
			return nil
		}
		now := s.Now()
		if err := tx.SetUserDisabled(ctx, userID, disabled, reason, now); err != nil {
			return err
		}
		if disabled {
			if _, err := tx.RevokeUserOIDCTokens(ctx, userID, now); err != nil { // apps' tokens end with the account
				return err
			}
		}
		wasDisabled := u.IsDisabled
		u.IsDisabled, u.DisableReason, u.UpdatedAt = disabled, reason, now
		if wasDisabled == disabled {
			return nil // only the reason changed
		}
		typ := EventUserReenabled
		if disabled {
			typ = EventUserDisabled
		}
		return s.events.Record(ctx, tx, actor, Event{Type: typ, UserID: userID, Payload: UserPayload(u)})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPasswordExpired makes the user change their password at next sign-in
// (expired) or cancels that. A user without a password gets a
// ValidationFailed error.
func (s *Service) SetPasswordExpired(ctx context.Context, actor Actor, userID string, expired bool) (*User, error) {
	var u *User
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		if u.Password == nil {
			return fieldErr("expired", ReasonValidationFailed, "This user has no password.", nil)
		}
		return s.setExpired(ctx, tx, actor, u, expired, s.Now(), nil)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// setExpired sets or clears the expiry of u's password (u has one) and
// records password.expired.set and the admin mutation's audit event, with
// extra added to the latter's payload. SetPasswordExpired and the bulk
// RequirePasswordChange both use it.
func (s *Service) setExpired(ctx context.Context, tx *store.Tx, actor Actor, u *User, expired bool, now time.Time, extra map[string]any) error {
	var at *time.Time
	if expired {
		at = &now
	}
	if err := tx.SetPasswordExpireAfter(ctx, u.ID, at, now); err != nil {
		return err
	}
	u.Password.ExpireAfter, u.Password.UpdatedAt = at, now
	user := UserPayload(u)["user"]
	if err := s.events.Record(ctx, tx, actor, Event{Type: EventPasswordExpiredSet, UserID: u.ID,
		Payload: map[string]any{"user": user, "expired": expired}}); err != nil {
		return err
	}
	audit := map[string]any{"user": user, "expired": expired}
	for k, v := range extra {
		audit[k] = v
	}
	return s.events.Record(ctx, tx, actor, Event{Type: EventAdminSetPasswordExp, UserID: u.ID, Payload: audit})
}
