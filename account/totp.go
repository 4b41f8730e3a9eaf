package account

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"latchkey/store"
)

// TOTP settings: the common authenticator-app defaults (SHA-1, 6 digits,
// 30 seconds), one step of clock skew either way.
const (
	totpPeriod = 30
	totpSkew   = 1
	// TOTPMaxFailures wrong codes within TOTPFailureWindow stop code
	// checks for that admin until the window has passed.
	TOTPMaxFailures   = 5
	TOTPFailureWindow = 15 * time.Minute
	// RecoveryCodeCount recovery codes are made at enrolment.
	RecoveryCodeCount = 10
	// totpPendingReuse: a started enrolment shows the same secret for this
	// long, so reloading the page does not invalidate a scanned QR code.
	totpPendingReuse = time.Hour
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Second-factor errors.
var (
	ErrTOTPCode = &Error{Name: "Invalid", Reason: "InvalidCode", Field: "code",
		Message: "That code is not correct. Enter the current 6-digit code from your authenticator app, or one of your recovery codes."}
	ErrTOTPReused = &Error{Name: "Invalid", Reason: "CodeAlreadyUsed", Field: "code",
		Message: "That code has already been used. Wait for the next one (codes change every 30 seconds)."}
	ErrTOTPTooMany = &Error{Name: "TooManyRequest", Reason: "TooManyCodes", Field: "code",
		Message: "Too many wrong codes. Wait 15 minutes and sign in again. An operator can turn two-factor off with `latchkey admin disable-2fa`."}
	ErrTOTPNotEnrolled = &Error{Name: "Invalid", Reason: "TwoFactorNotEnrolled",
		Message: "Two-factor is not set up for this admin."}
	ErrTOTPAlreadyOn = &Error{Name: "Invalid", Reason: "TwoFactorAlreadyOn",
		Message: "Two-factor is already on. Turn it off first to enrol a new authenticator."}
)

// SetSecret gives the service the server secret, from which the key that
// seals TOTP secrets at rest is derived. Without it, TOTP enrolment and
// checks fail (turning two-factor off does not need it).
func (s *Service) SetSecret(secret []byte) error {
	sealer, err := NewSealer(secret, "admin-totp")
	if err != nil {
		return fmt.Errorf("account: totp key: %w", err)
	}
	s.totpSealer = sealer
	return nil
}

func totpAAD(adminID string) []byte { return []byte("latchkey-admin-totp\x00" + adminID) }

func (s *Service) openTOTPSecret(row *store.AdminTOTP) ([]byte, error) {
	if s.totpSealer == nil {
		return nil, errors.New("account: totp: no server secret")
	}
	raw, err := s.totpSealer.Open(row.Secret, totpAAD(row.AdminID))
	if err != nil {
		return nil, errors.New("account: totp: the secret cannot be decrypted (was the server secret changed? `latchkey admin disable-2fa` turns two-factor off)")
	}
	return raw, nil
}

// AdminHasTOTP reports whether the admin has confirmed two-factor, so a
// code is required at sign-in.
func (s *Service) AdminHasTOTP(ctx context.Context, adminID string) (bool, error) {
	row, err := s.store.AdminTOTPByID(ctx, adminID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return row.ConfirmedAt != nil, nil
}

// TOTPEnrolment is what the enrolment page shows: the secret (for typing
// into an app by hand), the otpauth:// URL and its QR code as a PNG.
type TOTPEnrolment struct {
	Secret string
	URL    string
	QRPNG  []byte
}

// BeginTOTPEnrolment starts (or continues) an admin's TOTP enrolment: a new
// secret, sealed at rest, not required at sign-in until confirmed with a
// code. issuer names the product in the authenticator app.
func (s *Service) BeginTOTPEnrolment(ctx context.Context, adminID, issuer string) (*TOTPEnrolment, error) {
	if s.totpSealer == nil {
		return nil, errors.New("account: totp: no server secret")
	}
	a, err := s.store.AdminByID(ctx, adminID)
	if err != nil {
		return nil, err
	}
	var raw []byte
	row, err := s.store.AdminTOTPByID(ctx, adminID)
	switch {
	case err == nil && row.ConfirmedAt != nil:
		return nil, ErrTOTPAlreadyOn
	case err == nil && s.Now().Sub(row.CreatedAt) < totpPendingReuse:
		if raw, err = s.openTOTPSecret(row); err != nil {
			raw = nil
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if raw == nil {
		raw = make([]byte, 20)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		sealed, err := s.totpSealer.Seal(raw, totpAAD(adminID))
		if err != nil {
			return nil, err
		}
		ok, err := s.store.PutPendingAdminTOTP(ctx, adminID, sealed, s.Now())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrTOTPAlreadyOn
		}
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: a.Email, Secret: raw, Period: totpPeriod})
	if err != nil {
		return nil, fmt.Errorf("account: totp key: %w", err)
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("account: totp qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("account: totp qr: %w", err)
	}
	return &TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// ConfirmTOTPEnrolment turns two-factor on once the admin types a good code
// from their app, and returns RecoveryCodeCount recovery codes, shown this
// once: only their hashes are stored.
func (s *Service) ConfirmTOTPEnrolment(ctx context.Context, actor Actor, adminID, code string) ([]string, error) {
	codes, hashes, err := newRecoveryCodes(adminID)
	if err != nil {
		return nil, err
	}
	err = s.checkSecondFactor(ctx, actor, adminID, code, false, func(tx *store.Tx, _ bool) error {
		now := s.Now()
		if err := tx.ConfirmAdminTOTP(ctx, adminID, now); err != nil {
			return err
		}
		if err := tx.ReplaceAdminRecoveryCodes(ctx, adminID, hashes, now); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdmin2FAEnabled, Payload: map[string]any{"admin_id": adminID}})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// VerifyAdminSecondFactor checks a sign-in's second step: a TOTP code (each
// accepted once) or an unused recovery code (then used up). Wrong codes are
// counted per admin: TOTPMaxFailures within TOTPFailureWindow stop checks.
// It reports whether a recovery code was used. StartAdminSession then
// records the sign-in.
func (s *Service) VerifyAdminSecondFactor(ctx context.Context, actor Actor, adminID, code string) (bool, error) {
	var recovery bool
	err := s.checkSecondFactor(ctx, actor, adminID, code, true, func(tx *store.Tx, rec bool) error {
		recovery = rec
		if rec {
			return s.events.Record(ctx, tx, actor, Event{Type: EventAdminRecoveryUsed, Payload: map[string]any{"admin_id": adminID}})
		}
		return nil
	})
	return recovery, err
}

// checkSecondFactor checks code against the admin's TOTP (pending when
// confirmed is false, i.e. at enrolment; confirmed at sign-in, where
// recovery codes are allowed too) in one transaction, and runs onOK in it
// when the code is good. A wrong code is counted and committed (on a
// context the request cannot cancel, so aborting a request does not save
// a guess), and at sign-in recorded as admin.signin.failed.
func (s *Service) checkSecondFactor(ctx context.Context, actor Actor, adminID, code string, confirmed bool, onOK func(tx *store.Tx, recovery bool) error) error {
	ctx = context.WithoutCancel(ctx)
	var result error
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		row, err := tx.AdminTOTPByID(ctx, adminID)
		if errors.Is(err, store.ErrNotFound) {
			result = ErrTOTPNotEnrolled
			return nil
		} else if err != nil {
			return err
		}
		if (row.ConfirmedAt != nil) != confirmed {
			if confirmed {
				result = ErrTOTPNotEnrolled
			} else {
				result = ErrTOTPAlreadyOn
			}
			return nil
		}
		now := s.Now()
		failures, since := row.Failures, row.FailuresSince
		if since == nil || now.Sub(*since) >= TOTPFailureWindow {
			failures, since = 0, nil
		}
		if failures >= TOTPMaxFailures {
			result = ErrTOTPTooMany
			return s.codeFailed(ctx, tx, actor, adminID, confirmed, "too_many_codes")
		}
		norm := normalizeCode(code)
		fail := ErrTOTPCode
		switch {
		case len(norm) == 6 && strings.Trim(norm, "0123456789") == "":
			raw, err := s.openTOTPSecret(row)
			if err != nil {
				return err
			}
			if step, ok := matchTOTP(raw, norm, now); ok {
				fresh, err := tx.AdvanceAdminTOTPStep(ctx, adminID, step)
				if err != nil {
					return err
				}
				if fresh {
					return onOK(tx, false)
				}
				fail = ErrTOTPReused
			}
		case confirmed && len(norm) == 16:
			want := hashRecoveryCode(adminID, norm)
			hashes, err := tx.UnusedAdminRecoveryCodes(ctx, adminID)
			if err != nil {
				return err
			}
			found := 0
			for _, h := range hashes {
				found |= subtle.ConstantTimeCompare([]byte(h), []byte(want))
			}
			if found == 1 {
				used, err := tx.UseAdminRecoveryCode(ctx, adminID, want, now)
				if err != nil {
					return err
				}
				if used {
					if err := tx.SetAdminTOTPFailures(ctx, adminID, 0, nil); err != nil {
						return err
					}
					return onOK(tx, true)
				}
			}
		}
		if since == nil {
			since = &now
		}
		result = fail
		if err := tx.SetAdminTOTPFailures(ctx, adminID, failures+1, since); err != nil {
			return err
		}
		reason := "wrong_code"
		if fail == ErrTOTPReused {
			reason = "code_reused"
		}
		return s.codeFailed(ctx, tx, actor, adminID, confirmed, reason)
	})
	if err != nil {
		return err
	}
	return result
}

// codeFailed records a refused sign-in code (not an enrolment's).
func (s *Service) codeFailed(ctx context.Context, tx *store.Tx, actor Actor, adminID string, signIn bool, reason string) error {
	if !signIn {
		return nil
	}
	return s.events.Record(ctx, tx, actor, Event{Type: EventAdminSigninFailed, Payload: map[string]any{"admin_id": adminID, "reason": reason}})
}

// matchTOTP compares code with the codes of the steps around now, in
// constant time, and returns the matching step.
func matchTOTP(secret []byte, code string, now time.Time) (int64, bool) {
	enc := b32.EncodeToString(secret)
	cur := now.Unix() / totpPeriod
	var step int64
	matched := 0
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := hotp.GenerateCodeCustom(enc, uint64(cur+d), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, matched = cur+d, 1
		}
	}
	return step, matched == 1
}

// normalizeCode drops spaces and dashes and lowercases, so codes can be
// typed as shown ("1234 56", "abcd-efgh-…").
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, code)
}

// newRecoveryCodes makes RecoveryCodeCount codes of 80 random bits each,
// shown as xxxx-xxxx-xxxx-xxxx, and their hashes. 80 bits make a fast hash
// enough, as for API keys.
func newRecoveryCodes(adminID string) ([]string, []string, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([]string, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
		c := strings.ToLower(b32.EncodeToString(b))
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		hashes[i] = hashRecoveryCode(adminID, c)
	}
	return codes, hashes, nil
}

func hashRecoveryCode(adminID, norm string) string {
	return hashToken("admin-recovery\x00" + adminID + "\x00" + norm)
}

// RenewRecoveryCodes replaces an admin's recovery codes with new ones
// (the current password required), returned this once.
func (s *Service) RenewRecoveryCodes(ctx context.Context, actor Actor, adminID, password string) ([]string, error) {
	a, err := s.store.AdminByID(ctx, adminID)
	if err != nil {
		return nil, err
	}
	if !s.hasher.Verify(a.PasswordHash, password) {
		return nil, fieldErr("password", ReasonValidationFailed, "The password is not correct.", nil)
	}
	codes, hashes, err := newRecoveryCodes(adminID)
	if err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		row, err := tx.AdminTOTPByID(ctx, adminID)
		if errors.Is(err, store.ErrNotFound) || err == nil && row.ConfirmedAt == nil {
			return ErrTOTPNotEnrolled
		} else if err != nil {
			return err
		}
		if err := tx.ReplaceAdminRecoveryCodes(ctx, adminID, hashes, s.Now()); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminRecoveryRenewed, Payload: map[string]any{"admin_id": adminID}})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableOwnTOTP turns the signed-in admin's two-factor off; the current
// password is required.
func (s *Service) DisableOwnTOTP(ctx context.Context, actor Actor, adminID, password string) error {
	a, err := s.store.AdminByID(ctx, adminID)
	if err != nil {
		return err
	}
	if !s.hasher.Verify(a.PasswordHash, password) {
		return fieldErr("password", ReasonValidationFailed, "The password is not correct.", nil)
	}
	return s.disableTOTP(ctx, actor, a)
}

// DisableAdmin2FA turns an admin's two-factor off by email (the command
// line's `latchkey admin disable-2fa`, for an admin who lost their phone
// and codes). It reports whether two-factor was on.
func (s *Service) DisableAdmin2FA(ctx context.Context, actor Actor, email string) (bool, error) {
	a, err := s.adminByEmail(ctx, &s.store.Tx, email)
	if err != nil {
		return false, err
	}
	var was bool
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		was, err = tx.DeleteAdminTOTP(ctx, a.ID)
		if err != nil || !was {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdmin2FADisabled, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
	return was, err
}

func (s *Service) disableTOTP(ctx context.Context, actor Actor, a *store.Admin) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		was, err := tx.DeleteAdminTOTP(ctx, a.ID)
		if err != nil {
			return err
		}
		if !was {
			return ErrTOTPNotEnrolled
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdmin2FADisabled, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
}
