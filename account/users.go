package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"latchkey/store"
)

// CreateUserInput is what an admin gives to create a user. Password follows
// the reference semantics: nil means no password, "" means generate one,
// anything else is the password.
type CreateUserInput struct {
	LoginIDKey         string
	LoginIDValue       string
	Password           *string
	SendPassword       bool
	SetPasswordExpired bool
}

// User is a user with their login IDs and password state.
type User struct {
	store.User
	Identities []store.Identity
	// Password is nil when the user has no password.
	Password *store.Password
}

// Email returns the user's first email identity, or "".
func (u *User) Email() string { return u.identity(KindEmail) }

// Phone returns the user's first phone identity, or "".
func (u *User) Phone() string { return u.identity(KindPhone) }

// Username returns the user's first username identity, or "".
func (u *User) Username() string { return u.identity(KindUsername) }

func (u *User) identity(kind string) string {
	for _, i := range u.Identities {
		if i.Kind == kind {
			return i.Value
		}
	}
	return ""
}

// PasswordExpired reports whether the user must change their password at
// next sign-in: expire_after has been reached.
func (u *User) PasswordExpired(now time.Time) bool {
	return u.Password != nil && ExpiredAt(u.Password.ExpireAfter, now)
}

// ExpiredAt reports whether a password with this expire_after must be
// changed at now; nil never expires. List rows that carry only the
// expire_after column use it too.
func ExpiredAt(expireAfter *time.Time, now time.Time) bool {
	return expireAfter != nil && !now.Before(*expireAfter)
}

// CreateUser creates a user with one login ID and an optional password,
// queues the password email when asked, and records user.created, all in
// one transaction: on any error nothing is written and nothing is sent.
func (s *Service) CreateUser(ctx context.Context, actor Actor, in CreateUserInput) (*User, error) {
	policy := s.Policy()
	var errs []*Error
	id, idErr := NormalizeLoginID(in.LoginIDKey, in.LoginIDValue, s.cfg.PhoneRegion)
	if idErr != nil {
		errs = append(errs, idErr.(*Error))
	}
	var err error
	password := ""
	generated := false
	if in.Password != nil {
		password = *in.Password
		if password == "" {
			generated = true
			if password, err = GeneratePassword(policy); err != nil {
				return nil, err
			}
		} else if causes := policy.Check(password); len(causes) > 0 {
			errs = append(errs, policyErr("password", causes))
		}
	}
	if in.SendPassword {
		switch {
		case idErr == nil && id.Kind == KindUsername:
			errs = append(errs, noEmailTarget())
		case in.Password == nil:
			errs = append(errs, fieldErr("sendPassword", ReasonValidationFailed, "There is no password to send.", nil))
		}
	}
	if in.SetPasswordExpired && in.Password == nil {
		errs = append(errs, fieldErr("setPasswordExpired", ReasonValidationFailed, "A user without a password cannot be asked to change it.", nil))
	}
	if err := JoinErrors(errs); err != nil {
		return nil, err
	}

	// Cheap duplicate check before the slow hash and the hooks; the unique
	// index in the transaction is what really guards it.
	if _, err := s.store.IdentityByNorm(ctx, id.Norm); err == nil {
		return nil, duplicated()
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	now := s.Now()
	u := &User{User: store.User{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now}}
	u.Identities = []store.Identity{{ID: uuid.NewString(), UserID: u.ID, Kind: id.Kind, Value: id.Value, ValueNorm: id.Norm, CreatedAt: now}}
	var hash string
	if in.Password != nil {
		if hash, err = s.hasher.Hash(password); err != nil {
			return nil, err
		}
		u.Password = &store.Password{UserID: u.ID, Hash: hash, CreatedAt: now, UpdatedAt: now, SetByAdmin: actor.Kind != "user"}
		if in.SetPasswordExpired {
			u.Password.ExpireAfter = &now
		}
	}

	if err := s.events.Blocking(ctx, actor, Event{Type: EventUserPreCreate, UserID: u.ID, Payload: UserPayload(u)}); err != nil {
		return nil, err
	}

	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertUser(ctx, &u.User); err != nil {
			return err
		}
		if err := tx.InsertIdentity(ctx, u.Identities[0]); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return duplicated()
			}
			return err
		}
		if u.Password != nil {
			if err := setPassword(ctx, tx, *u.Password); err != nil {
				return err
			}
		}
		if in.SendPassword {
			if s.mailer == nil {
				return errors.New("account: no mailer configured")
			}
			m := PasswordMail{Kind: MailNewUser, UserID: u.ID, To: id.Value, LoginID: id.Value, Password: password, MustChange: in.SetPasswordExpired}
			if id.Kind == KindPhone {
				if err := s.queuePasswordText(ctx, tx, m); err != nil {
					return err
				}
			} else if err := s.queuePassword(ctx, tx, m); err != nil {
				return err
			}
		}
		payload := UserPayload(u)
		if err := s.events.Record(ctx, tx, actor, Event{Type: EventUserCreated, UserID: u.ID, Payload: payload}); err != nil {
			return err
		}
		if in.SetPasswordExpired {
			if err := s.events.Record(ctx, tx, actor, Event{Type: EventPasswordExpiredSet, UserID: u.ID, Payload: map[string]any{"user": payload["user"], "expired": true}}); err != nil {
				return err
			}
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminCreateUser, UserID: u.ID,
			Payload: map[string]any{"user": payload["user"], "password_generated": generated, "send_password": in.SendPassword,
				"set_password_expired": in.SetPasswordExpired}})
	})
	if err != nil {
		if e, ok := AsError(err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("account: create user: %w", err)
	}
	s.log.Info("user created", "user_id", u.ID, "login_id_kind", id.Kind, "actor", actor.Kind, "actor_id", actor.ID,
		"password", in.Password != nil, "generated", generated, "send_password", in.SendPassword)
	return u, nil
}

func duplicated() *Error {
	return &Error{Name: "Invalid", Reason: ReasonInvariantViolated, Field: "loginID", Message: "Duplicated identity",
		Info: map[string]any{"cause": map[string]any{"kind": "DuplicatedIdentity"}}}
}

// GetUser loads a user with identities and password state.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	return loadUser(ctx, &s.store.Tx, id)
}

func loadUser(ctx context.Context, tx *store.Tx, id string) (*User, error) {
	su, err := tx.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, userNotFound()
	} else if err != nil {
		return nil, err
	}
	u := &User{User: *su}
	if u.Identities, err = tx.IdentitiesByUser(ctx, id); err != nil {
		return nil, err
	}
	p, err := tx.PasswordByUser(ctx, id)
	switch {
	case err == nil:
		u.Password = p
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return u, nil
}

// ListUsers returns a page of the Users list.
func (s *Service) ListUsers(ctx context.Context, p store.ListUsersParams) ([]store.UserSummary, error) {
	return s.store.ListUsers(ctx, p)
}

// UserPayload is the reference product's user object for events and
// webhooks: no password, no hash.
func UserPayload(u *User) map[string]any {
	attrs := map[string]any{"updated_at": u.UpdatedAt.Unix()}
	for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName} {
		if v != "" {
			attrs[k] = v
		}
	}
	var ids []map[string]any
	for _, i := range u.Identities {
		switch i.Kind {
		case KindEmail:
			if _, ok := attrs["email"]; !ok {
				attrs["email"] = i.Value
				attrs["email_verified"] = false
			}
		case KindPhone:
			if _, ok := attrs["phone_number"]; !ok {
				attrs["phone_number"] = i.Value
				attrs["phone_number_verified"] = false
			}
		case KindUsername:
			if _, ok := attrs["preferred_username"]; !ok {
				attrs["preferred_username"] = i.Value
			}
		}
		ids = append(ids, map[string]any{"id": i.ID, "type": "login_id", "claims": map[string]any{LoginIDClaim(i.Kind): i.Value},
			"login_id": map[string]any{"key": i.Kind, "type": i.Kind, "value": i.Value}, "created_at": i.CreatedAt.Format(time.RFC3339Nano)})
	}
	user := map[string]any{
		"id":                  u.ID,
		"created_at":          u.CreatedAt.Format(time.RFC3339Nano),
		"updated_at":          u.UpdatedAt.Format(time.RFC3339Nano),
		"is_disabled":         u.IsDisabled,
		"can_reauthenticate":  u.Password != nil,
		"standard_attributes": attrs,
	}
	if u.LastLoginAt != nil {
		user["last_login_at"] = u.LastLoginAt.Format(time.RFC3339Nano)
	}
	return map[string]any{"user": user, "identities": ids}
}

// LoginIDClaim is the standard attribute a login ID kind fills: email,
// phone_number or preferred_username.
func LoginIDClaim(kind string) string {
	switch kind {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone_number"
	}
	return "preferred_username"
}
