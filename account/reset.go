package account

import (
	"context"
	"errors"
	"fmt"

	"latchkey/store"
)

// ResetPasswordInput is what an admin gives to reset a user's password.
// Password nil or "" means generate one; anything else is the password.
type ResetPasswordInput struct {
	UserID             string
	Password           *string
	SendPassword       bool
	SetPasswordExpired bool
	// SendTo picks where a sent password goes: "" for the user's email,
	// or their phone when they have no email; "email" or "sms" insist.
	SendTo string
}

// ResetPassword sets a new password for a user on an admin's behalf: the
// portal's Reset Password screen and the Admin API's resetPassword both call
// it. The password is checked against the policy and the history, stored as
// set by an admin, optionally expired at once, and optionally emailed; the
// write, the history row, the queued email and the events are one
// transaction, so on any error nothing is written and nothing is sent.
func (s *Service) ResetPassword(ctx context.Context, actor Actor, in ResetPasswordInput) (*User, error) {
	u, err := s.GetUser(ctx, in.UserID)
	if err != nil {
		return nil, err
	}
	policy := s.Policy()
	var errs []*Error
	password, generated := "", false
	if in.Password == nil || *in.Password == "" {
		generated = true
		if password, err = GeneratePassword(policy); err != nil {
			return nil, err
		}
	} else {
		password = *in.Password
		if causes := policy.Check(password); len(causes) > 0 {
			errs = append(errs, policyErr("password", causes))
		}
	}
	if _, _, ok := passwordTarget(u, in.SendTo); in.SendPassword && !ok {
		errs = append(errs, noEmailTarget())
	}
	if err := JoinErrors(errs); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return nil, err
	}

	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if u, err = loadUser(ctx, tx, in.UserID); err != nil {
			return err
		}
		channel, to, ok := passwordTarget(u, in.SendTo)
		if in.SendPassword && !ok {
			return noEmailTarget() // the email or phone went away since the check above
		}
		if !generated {
			reused, err := s.checkHistory(ctx, tx, u.ID, password, policy)
			if err != nil {
				return err
			}
			if reused {
				return policyErr("password", []Cause{{Kind: CausePasswordReused,
					Info: map[string]any{"history_size": policy.HistorySize, "history_days": policy.HistoryDays}}})
			}
		}
		now := s.Now()
		p := store.Password{UserID: u.ID, Hash: hash, CreatedAt: now, UpdatedAt: now, SetByAdmin: true}
		if in.SetPasswordExpired {
			p.ExpireAfter = &now
		}
		if err := setPassword(ctx, tx, p); err != nil {
			return err
		}
		// Whoever held the old password is signed out everywhere.
		if _, err := tx.DeleteUserSessions(ctx, u.ID, ""); err != nil {
			return err
		}
		if _, err := tx.RevokeUserOIDCTokens(ctx, u.ID, now); err != nil {
			return err
		}
		if err := tx.TouchUser(ctx, u.ID, now); err != nil {
			return err
		}
		u.Password, u.UpdatedAt = &p, now
		if in.SendPassword {
			if s.mailer == nil {
				return errors.New("account: no mailer configured")
			}
			m := PasswordMail{Kind: MailPasswordReset, UserID: u.ID, To: to, LoginID: to, Password: password, MustChange: in.SetPasswordExpired}
			if channel == store.ChannelSMS {
				if err := s.queuePasswordText(ctx, tx, m); err != nil {
					return err
				}
			} else if err := s.queuePassword(ctx, tx, m); err != nil {
				return err
			}
		}
		payload := UserPayload(u)
		if err := s.events.Record(ctx, tx, actor, Event{Type: EventUserPasswordChanged, UserID: u.ID,
			Payload: map[string]any{"user": payload["user"], "set_by_admin": true}}); err != nil {
			return err
		}
		if in.SetPasswordExpired {
			if err := s.events.Record(ctx, tx, actor, Event{Type: EventPasswordExpiredSet, UserID: u.ID,
				Payload: map[string]any{"user": payload["user"], "expired": true}}); err != nil {
				return err
			}
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminResetPassword, UserID: u.ID,
			Payload: map[string]any{"user": payload["user"], "password_generated": generated, "send_password": in.SendPassword,
				"set_password_expired": in.SetPasswordExpired}})
	})
	if err != nil {
		if e, ok := AsError(err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("account: reset password: %w", err)
	}
	s.log.Info("password reset by admin", "user_id", u.ID, "actor", actor.Kind, "actor_id", actor.ID,
		"generated", generated, "send_password", in.SendPassword, "expired", in.SetPasswordExpired)
	return u, nil
}

func noEmailTarget() *Error {
	return &Error{Name: "Invalid", Reason: ReasonSendPasswordNoTarget, Field: "sendPassword",
		Message: "The password can only be sent to an email address or a phone number; this user has neither."}
}
