package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"latchkey/store"
)

const setupTokenSetting = "setup_token_sha256"

// ErrSetupClosed is returned by setup once an admin exists.
var ErrSetupClosed = errors.New("account: setup is closed: an admin exists")

// ErrBadCredentials is the one answer to a wrong email or a wrong password.
var ErrBadCredentials = errors.New("account: incorrect email or password")

// HasAdmin reports whether any portal admin exists.
func (s *Service) HasAdmin(ctx context.Context) (bool, error) {
	n, err := s.store.CountAdmins(ctx)
	return n > 0, err
}

// BootstrapAdmin creates the first admin from the environment when none
// exists. It reports whether it created one.
func (s *Service) BootstrapAdmin(ctx context.Context, email, password string) (bool, error) {
	created := false
	err := s.createAdmin(ctx, email, password, func(tx *store.Tx) error {
		n, err := tx.CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrSetupClosed
		}
		created = true
		return nil
	})
	if errors.Is(err, ErrSetupClosed) {
		return false, nil
	}
	return created, err
}

// NewSetupToken makes a one-time setup token when no admin exists, storing
// only its hash, and returns it for the setup link in the log. Each call
// replaces the previous token.
func (s *Service) NewSetupToken(ctx context.Context) (string, error) {
	token := NewToken()
	if err := s.store.PutSetting(ctx, setupTokenSetting, []byte(hashToken(token))); err != nil {
		return "", fmt.Errorf("account: setup token: %w", err)
	}
	return token, nil
}

// CheckSetupToken reports whether setup is open and token is the current one.
func (s *Service) CheckSetupToken(ctx context.Context, token string) error {
	return s.checkSetupToken(ctx, &s.store.Tx, token)
}

func (s *Service) checkSetupToken(ctx context.Context, tx *store.Tx, token string) error {
	n, err := tx.CountAdmins(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrSetupClosed
	}
	want, err := tx.Setting(ctx, setupTokenSetting)
	if errors.Is(err, store.ErrNotFound) {
		return ErrSetupClosed
	} else if err != nil {
		return err
	}
	if token == "" || !equalSecret(hashToken(token), string(want)) {
		return &Error{Name: "Forbidden", Reason: "InvalidSetupToken", Message: "This setup link is not valid. Use the link from the server log."}
	}
	return nil
}

// SetupAdmin creates the first admin with the one-time token, then burns the token.
func (s *Service) SetupAdmin(ctx context.Context, token, email, password string) (*store.Admin, error) {
	var admin *store.Admin
	err := s.createAdmin(ctx, email, password, func(tx *store.Tx) error {
		if err := s.checkSetupToken(ctx, tx, token); err != nil {
			return err
		}
		return tx.DeleteSetting(ctx, setupTokenSetting)
	})
	if err != nil {
		return nil, err
	}
	id, err := NormalizeLoginID(KindEmail, email, s.cfg.PhoneRegion)
	if err != nil {
		return nil, err
	}
	admin, err = s.store.AdminByEmail(ctx, id.Norm)
	return admin, err
}

func (s *Service) createAdmin(ctx context.Context, email, password string, guard func(tx *store.Tx) error) error {
	return s.createAdminAs(ctx, SystemActor, email, password, guard)
}

func (s *Service) createAdminAs(ctx context.Context, actor Actor, email, password string, guard func(tx *store.Tx) error) error {
	var errs []*Error
	id, err := NormalizeLoginID(KindEmail, email, s.cfg.PhoneRegion)
	if err != nil {
		e := err.(*Error)
		e.Field = "email"
		errs = append(errs, e)
	}
	if causes := s.Policy().Check(password); len(causes) > 0 {
		errs = append(errs, policyErr("password", causes))
	}
	if err := JoinErrors(errs); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := guard(tx); err != nil {
			return err
		}
		now := s.Now()
		err := tx.InsertAdmin(ctx, store.Admin{ID: uuid.NewString(), Email: id.Norm, PasswordHash: hash, CreatedAt: now})
		if errors.Is(err, store.ErrConflict) {
			return fieldErr("email", ReasonInvariantViolated, "An admin with this email exists.", nil)
		}
		if err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminCreated, Payload: map[string]any{"email": id.Norm}})
	})
}

// AdminLogin checks an admin's email and password with no actor; the
// portal calls AdminSignIn.
func (s *Service) AdminLogin(ctx context.Context, email, password string) (*store.Admin, error) {
	return s.AdminSignIn(ctx, SystemActor, email, password)
}

// Admin loads an admin by ID.
func (s *Service) Admin(ctx context.Context, id string) (*store.Admin, error) {
	return s.store.AdminByID(ctx, id)
}
