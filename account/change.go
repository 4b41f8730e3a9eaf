package account

import (
	"context"
	"errors"
	"time"

	"latchkey/store"
)

// Messages of the change-password forms, in the reference product's words
// where it has them.
const (
	msgSameAsCurrent = "Please provide a new password that is different from the previous one."
	msgMismatch      = "The passwords do not match."
	msgWrongCurrent  = "The current password is incorrect."
)

// ChangePasswordInput is the "Change password" form of the account page.
// Current is empty on the forced-change step, where the user has just
// proved it.
type ChangePasswordInput struct {
	Current string
	New     string
	Confirm string
}

// checkNewPassword validates a new password for u: confirm, different from
// the current one, policy and history. It does the slow work (hashing) and
// returns the new hash.
func (s *Service) checkNewPassword(ctx context.Context, u *User, newPW, confirm string) (string, error) {
	policy := s.Policy()
	if newPW == "" {
		return "", fieldErr("password", ReasonValidationFailed, "Enter a new password.", nil)
	}
	if newPW != confirm {
		return "", fieldErr("confirm", ReasonValidationFailed, msgMismatch, nil)
	}
	if causes := policy.Check(newPW); len(causes) > 0 {
		return "", policyErr("password", causes)
	}
	if u.Password != nil && s.hasher.Verify(u.Password.Hash, newPW) {
		return "", &Error{Name: "Invalid", Reason: ReasonPasswordPolicyViolated, Field: "password", Message: msgSameAsCurrent,
			Info: map[string]any{"causes": []Cause{{Kind: CausePasswordReused}}}}
	}
	if reused, err := s.checkHistory(ctx, &s.store.Tx, u.ID, newPW, policy); err != nil {
		return "", err
	} else if reused {
		return "", policyErr("password", []Cause{{Kind: CausePasswordReused}})
	}
	return s.hasher.Hash(newPW)
}

// checkHistory reports whether password is among the user's last
// HistorySize passwords or those of the last HistoryDays days. The user's
// own changes and an admin's reset both use it; tx is the transaction to
// read in (or &s.store.Tx outside one).
func (s *Service) checkHistory(ctx context.Context, tx *store.Tx, userID, password string, p Policy) (bool, error) {
	if p.HistorySize <= 0 && p.HistoryDays <= 0 {
		return false, nil
	}
	since := s.Now().Add(time.Hour) // no time window
	if p.HistoryDays > 0 {
		since = s.Now().Add(-time.Duration(p.HistoryDays) * 24 * time.Hour)
	}
	hashes, err := tx.PasswordHistory(ctx, userID, p.HistorySize, since)
	if err != nil {
		return false, err
	}
	for _, h := range hashes {
		if s.hasher.Verify(h, password) {
			return true, nil
		}
	}
	return false, nil
}

// putUserPassword stores a password the user chose: not set by an admin,
// no expiry, in the history; then records user.password.changed.
func (s *Service) putUserPassword(ctx context.Context, tx *store.Tx, actor Actor, u *User, hash string, now time.Time) error {
	p := store.Password{UserID: u.ID, Hash: hash, CreatedAt: now, UpdatedAt: now}
	if err := setPassword(ctx, tx, p); err != nil {
		return err
	}
	if err := tx.TouchUser(ctx, u.ID, now); err != nil {
		return err
	}
	u.Password, u.UpdatedAt = &p, now
	return s.events.Record(ctx, tx, actor, Event{Type: EventUserPasswordChanged, UserID: u.ID, Payload: UserPayload(u)})
}

// ChangePassword is the account page's "Change password": the current
// password, then a new one. It ends the user's other sessions and keeps
// this one.
func (s *Service) ChangePassword(ctx context.Context, actor Actor, sess *Session, in ChangePasswordInput) error {
	if sess == nil || sess.Restricted {
		return sessionEnded()
	}
	u, err := loadUser(ctx, &s.store.Tx, sess.UserID)
	if err != nil {
		return err
	}
	if u.Password == nil || !s.hasher.Verify(u.Password.Hash, in.Current) {
		return fieldErr("current_password", ReasonValidationFailed, msgWrongCurrent, nil)
	}
	hash, err := s.checkNewPassword(ctx, u, in.New, in.Confirm)
	if err != nil {
		return err
	}
	actor = userActor(actor, u.ID)
	ended := 0
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		now := s.Now()
		if err := s.putUserPassword(ctx, tx, actor, u, hash, now); err != nil {
			return err
		}
		if ended, err = tx.DeleteUserSessions(ctx, u.ID, sess.tokenHash); err != nil {
			return err
		}
		_, err = tx.RevokeUserOIDCTokens(ctx, u.ID, now) // apps' refresh tokens too
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("user changed password", "user_id", u.ID, "other_sessions_ended", ended)
	return nil
}

// ChangeExpiredPassword is the forced-change step: a restricted session
// sets a new password (it must differ from the expired one and pass the
// policy and history). The expiry clears, every session of the user ends,
// and a new full session starts; its token is returned.
func (s *Service) ChangeExpiredPassword(ctx context.Context, actor Actor, sess *Session, in ChangePasswordInput) (string, error) {
	if sess == nil || !sess.Restricted {
		return "", sessionEnded()
	}
	u, err := loadUser(ctx, &s.store.Tx, sess.UserID)
	if err != nil {
		return "", err
	}
	hash, err := s.checkNewPassword(ctx, u, in.New, in.Confirm)
	if err != nil {
		return "", err
	}
	actor = userActor(actor, u.ID)
	var token string
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		// The restricted session must still exist: a reset or sign-out
		// since the page was shown ends the step.
		if _, err := tx.UserSessionByHash(ctx, sess.tokenHash, s.Now()); errors.Is(err, store.ErrNotFound) {
			return sessionEnded()
		} else if err != nil {
			return err
		}
		now := s.Now()
		if err := s.putUserPassword(ctx, tx, actor, u, hash, now); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, u.ID, ""); err != nil {
			return err
		}
		if _, err := tx.RevokeUserOIDCTokens(ctx, u.ID, now); err != nil {
			return err
		}
		if token, err = s.startSession(ctx, tx, actor, u.ID, false, now); err != nil {
			return err
		}
		return s.authenticated(ctx, tx, actor, u, now)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// setPassword makes p the user's password and adds its hash to the
// history. Every path that sets a password (create, admin reset, change,
// forgot password, import upsert) goes through it, so none escapes the
// reuse rule.
func setPassword(ctx context.Context, tx *store.Tx, p store.Password) error {
	if err := tx.PutPassword(ctx, p); err != nil {
		return err
	}
	return tx.InsertPasswordHistory(ctx, p.UserID, p.Hash, p.UpdatedAt)
}
