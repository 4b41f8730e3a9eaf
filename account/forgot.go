package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/google/uuid"

	"latchkey/store"
)

// Forgot-password limits, as the reference product has them.
const (
	ResetCodeTTL      = 5 * time.Minute
	ResetLinkTTL      = 20 * time.Minute
	ResetCooldown     = time.Minute
	maxCodeFailures   = 5
	ReasonResetFailed = "InvalidResetCode"
	// MaxDailyCodeFailures caps code attempts per account across all its
	// requests of the last ResetCodeWindow: past it, codes are refused
	// (the emailed link still works) until the window moves on or an
	// admin sets a password.
	MaxDailyCodeFailures = 20
	ResetCodeWindow      = 24 * time.Hour
	// ForgotPasswordMinTime is how long every forgot-password request
	// takes at least, known account or not, so the time of the answer
	// does not tell them apart.
	ForgotPasswordMinTime = 100 * time.Millisecond
)

func resetInvalid(link bool) *Error {
	msg := "The code is incorrect or has expired. Check the latest email or text message, or ask for a new code."
	if link {
		msg = "This link has expired or has already been used. Ask for a new one."
	}
	return &Error{Name: "Invalid", Reason: ReasonResetFailed, Message: msg}
}

// ForgotPassword starts a password reset for the account with this login
// ID: it queues an email with a 6-digit code (valid 5 minutes) and a link
// (valid 20 minutes) built on linkBase, storing only their hashes. It
// returns nil whether or not the account exists, has an email, is
// disabled or is in its one-minute cooldown, so the answer reveals
// nothing; only a malformed login ID is an error.
func (s *Service) ForgotPassword(ctx context.Context, actor Actor, loginID, linkBase string) error {
	defer padTime(ctx, time.Now(), ForgotPasswordMinTime)
	id, err := ParseAnyLoginID(loginID, s.cfg.PhoneRegion)
	if err != nil {
		e := err.(*Error)
		e.Field = "login_id"
		return e
	}
	ident, err := s.store.IdentityByNorm(ctx, id.Norm)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if s.mailer == nil {
		return errors.New("account: forgot password: no mailer configured")
	}
	code, err := sixDigits()
	if err != nil {
		return err
	}
	link := NewToken()
	sent := false
	var refused *smsRefusal
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		u, err := loadUser(ctx, tx, ident.UserID)
		if err != nil {
			return err
		}
		to, channel := forgotTarget(u, id)
		if u.IsDisabled {
			return nil
		}
		if to == "" {
			return noRecoveryTarget()
		}
		now := s.Now()
		// The cooldown is checked inside the write transaction, so two
		// parallel requests cannot both pass it.
		last, err := tx.LastPasswordResetAt(ctx, u.ID)
		if err == nil && now.Sub(last) < ResetCooldown {
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Earlier requests stay open until they expire or one is used: a
		// stranger who asks for a reset must not cancel the link the user
		// already has. Only the newest request's code is accepted.
		if channel == store.ChannelSMS {
			r, err := s.reserveSMS(ctx, tx, to, actor.IP)
			if err != nil {
				return err
			}
			if r != nil {
				// Nothing is queued; the refusal is kept (coalesced) so
				// the admin sees on the user page why no code arrived.
				refused = r
				return s.recordSMSRefusal(ctx, tx, u.ID, to, r)
			}
		}
		r := store.PasswordReset{ID: uuid.NewString(), UserID: u.ID, CodeHash: hashCode(u.ID, code), LinkHash: hashToken(link),
			CreatedAt: now, CodeExpiresAt: now.Add(ResetCodeTTL), LinkExpiresAt: now.Add(ResetLinkTTL)}
		if err := tx.InsertPasswordReset(ctx, r); err != nil {
			return err
		}
		sent = true
		m := ForgotPasswordMail{UserID: u.ID, To: to, Code: code, Link: linkBase + "?" + url.Values{"token": {link}}.Encode(),
			CodeTTL: ResetCodeTTL, LinkTTL: ResetLinkTTL, Channel: channel}
		if channel == store.ChannelSMS {
			m.Link, m.LinkTTL = "", 0 // a text carries the code only
		}
		return s.mailer.QueueForgotPassword(ctx, tx, m)
	})
	if err == nil && refused != nil {
		s.log.Warn("forgot-password text refused by an SMS limit", "user_id", ident.UserID, "limit", refused.Limit)
		err = refused.Err
	}
	if err != nil {
		return fmt.Errorf("account: forgot password: %w", err)
	}
	if sent {
		s.log.Info("forgot-password message queued", "user_id", ident.UserID, "login_id_kind", id.Kind)
	}
	return nil
}

// padTime waits until min has passed since start (or ctx ends).
func padTime(ctx context.Context, start time.Time, min time.Duration) {
	left := min - time.Since(start)
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func sixDigits() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// hashCode binds a code to its user, so one table of 10^6 hashes does not
// open every account's code.
func hashCode(userID, code string) string { return hashToken("reset-code:" + userID + ":" + code) }

// CheckResetLink reports whether a reset link token is still good,
// without using it: the link's page shows a form, and only submitting it
// changes anything, so a mail scanner that opens links consumes nothing.
func (s *Service) CheckResetLink(ctx context.Context, token string) error {
	_, err := s.resetByLink(ctx, &s.store.Tx, token)
	return err
}

func (s *Service) resetByLink(ctx context.Context, tx *store.Tx, token string) (*store.PasswordReset, error) {
	if token == "" {
		return nil, resetInvalid(true)
	}
	r, err := tx.PasswordResetByLink(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, resetInvalid(true)
	} else if err != nil {
		return nil, err
	}
	if r.UsedAt != nil || !s.Now().Before(r.LinkExpiresAt) {
		return nil, resetInvalid(true)
	}
	return r, nil
}

// ResetPasswordWithLink sets a new password with the token of a reset link.
func (s *Service) ResetPasswordWithLink(ctx context.Context, actor Actor, token string, in ChangePasswordInput) error {
	r, err := s.resetByLink(ctx, &s.store.Tx, token)
	if err != nil {
		return err
	}
	return s.finishReset(ctx, actor, r, true, in)
}

// ResetPasswordWithCode sets a new password with the login ID and the
// 6-digit code from the email. Five wrong codes burn the request, and
// MaxDailyCodeFailures across the account's requests of the last day stop
// codes altogether. An unknown login ID gets the same answer as a wrong code.
func (s *Service) ResetPasswordWithCode(ctx context.Context, actor Actor, loginID, code string, in ChangePasswordInput) error {
	id, err := ParseAnyLoginID(loginID, s.cfg.PhoneRegion)
	if err != nil {
		return resetInvalid(false)
	}
	ident, err := s.store.IdentityByNorm(ctx, id.Norm)
	if errors.Is(err, store.ErrNotFound) {
		return resetInvalid(false)
	} else if err != nil {
		return err
	}
	r, err := s.store.LatestPasswordReset(ctx, ident.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return resetInvalid(false)
	} else if err != nil {
		return err
	}
	if r.UsedAt != nil || !s.Now().Before(r.CodeExpiresAt) || r.CodeFailures >= maxCodeFailures {
		return resetInvalid(false)
	}
	ok, err := s.store.ReserveResetCodeAttemptCapped(ctx, r.ID, r.UserID, maxCodeFailures, MaxDailyCodeFailures, s.Now().Add(-ResetCodeWindow))
	if err != nil {
		return err
	} else if !ok {
		return resetInvalid(false)
	}
	if !equalSecret(hashCode(r.UserID, code), r.CodeHash) {
		return resetInvalid(false)
	}
	return s.finishReset(ctx, actor, r, false, in)
}

// finishReset checks the new password and, in one transaction, uses the
// request (once only), sets the password with no expiry, clears any
// lockout and ends every session of the user.
func (s *Service) finishReset(ctx context.Context, actor Actor, r *store.PasswordReset, link bool, in ChangePasswordInput) error {
	u, err := loadUser(ctx, &s.store.Tx, r.UserID)
	if err != nil {
		return err
	}
	if u.IsDisabled {
		return resetInvalid(link)
	}
	// The new password must differ from the current one too, or a reset
	// would be a way around the forced change of a preset password.
	hash, err := s.checkNewPassword(ctx, u, in.New, in.Confirm)
	if err != nil {
		return err
	}
	actor = userActor(actor, u.ID)
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		now := s.Now()
		ok, err := tx.UsePasswordReset(ctx, r.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return resetInvalid(link)
		}
		if err := tx.UseAllPasswordResets(ctx, u.ID, now); err != nil {
			return err
		}
		if err := s.putUserPassword(ctx, tx, actor, u, hash, now); err != nil {
			return err
		}
		if _, err := tx.DeleteLockout(ctx, u.ID); err != nil {
			return err
		}
		if _, err = tx.DeleteUserSessions(ctx, u.ID, ""); err != nil {
			return err
		}
		_, err = tx.RevokeUserOIDCTokens(ctx, u.ID, now) // apps' refresh tokens too
		return err
	})
}
