package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"latchkey/store"
)

// Identity and profile event types. The reference product names identity
// events by kind: identity.email.added, identity.phone.updated, ...
const (
	EventUserProfileUpdated  = "user.profile.updated"
	EventUserSessionsRevoked = "user.sessions.revoked"
	EventAdminIdentity       = "admin_api.mutation.identity.executed"
)

// IdentityEventType is the event type for a login ID of kind being
// "added", "updated" or "removed".
func IdentityEventType(kind, what string) string { return "identity." + kind + "." + what }

// ReasonIdentityNotFound is the error reason for an unknown login ID.
const ReasonIdentityNotFound = "IdentityNotFound"

func identityNotFound() *Error {
	return &Error{Name: "NotFound", Reason: ReasonIdentityNotFound, Message: "This login ID does not exist (any more)."}
}

func identityPayload(i store.Identity) map[string]any {
	return map[string]any{"id": i.ID, "type": "login_id", "claims": map[string]any{LoginIDClaim(i.Kind): i.Value},
		"login_id": map[string]any{"key": i.Kind, "type": i.Kind, "value": i.Value}}
}

// AddIdentity gives a user another login ID (an email for a phone user,
// say), normalised and checked for duplicates as Create User does, and
// records identity.<kind>.added in the same transaction.
func (s *Service) AddIdentity(ctx context.Context, actor Actor, userID, kind, value string) (*User, *store.Identity, error) {
	id, err := NormalizeLoginID(kind, value, s.cfg.PhoneRegion)
	if err != nil {
		return nil, nil, err
	}
	var u *User
	var ident store.Identity
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		now := s.Now()
		ident = store.Identity{ID: uuid.NewString(), UserID: userID, Kind: id.Kind, Value: id.Value, ValueNorm: id.Norm, CreatedAt: now}
		if err := tx.InsertIdentity(ctx, ident); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return duplicated()
			}
			return err
		}
		if err := tx.TouchUser(ctx, userID, now); err != nil {
			return err
		}
		u.Identities, u.UpdatedAt = append(u.Identities, ident), now
		return s.identityEvents(ctx, tx, actor, u, ident.Kind, "added", map[string]any{"identity": identityPayload(ident)})
	})
	if err != nil {
		return nil, nil, wrapAccountErr("add identity", err)
	}
	s.log.Info("login ID added", "user_id", userID, "kind", id.Kind, "actor", actor.Kind, "actor_id", actor.ID)
	return u, &ident, nil
}

// UpdateIdentity changes the value of one of the user's login IDs; its
// kind stays. The new value is normalised and checked for duplicates.
func (s *Service) UpdateIdentity(ctx context.Context, actor Actor, userID, identityID, value string) (*User, *store.Identity, error) {
	var u *User
	var updated store.Identity
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var idx int
		var err error
		if u, idx, err = loadIdentity(ctx, tx, userID, identityID); err != nil {
			return err
		}
		old := u.Identities[idx]
		id, err := NormalizeLoginID(old.Kind, value, s.cfg.PhoneRegion)
		if err != nil {
			return err
		}
		if id.Norm == old.ValueNorm && id.Value == old.Value {
			updated = old
			return nil // nothing changes, nothing is recorded
		}
		if err := tx.UpdateIdentity(ctx, old.ID, id.Value, id.Norm); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return duplicated()
			}
			return err
		}
		now := s.Now()
		if err := tx.TouchUser(ctx, userID, now); err != nil {
			return err
		}
		updated = old
		updated.Value, updated.ValueNorm = id.Value, id.Norm
		u.Identities[idx], u.UpdatedAt = updated, now
		return s.identityEvents(ctx, tx, actor, u, old.Kind, "updated", map[string]any{
			"old_identity": identityPayload(old), "new_identity": identityPayload(updated)})
	})
	if err != nil {
		return nil, nil, wrapAccountErr("update identity", err)
	}
	return u, &updated, nil
}

// RemoveIdentity removes one of the user's login IDs. The last one is
// never removed: without a login ID the user could not sign in with a
// password, nor be found by an admin.
func (s *Service) RemoveIdentity(ctx context.Context, actor Actor, userID, identityID string) (*User, error) {
	var u *User
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var idx int
		var err error
		if u, idx, err = loadIdentity(ctx, tx, userID, identityID); err != nil {
			return err
		}
		if len(u.Identities) == 1 {
			return &Error{Name: "Invalid", Reason: ReasonInvariantViolated, Field: "identityID",
				Message: "This is the user's only login ID: add another one before removing it.",
				Info:    map[string]any{"cause": map[string]any{"kind": "RemoveLastIdentity"}}}
		}
		old := u.Identities[idx]
		if err := tx.DeleteIdentity(ctx, old.ID); err != nil {
			return err
		}
		now := s.Now()
		if err := tx.TouchUser(ctx, userID, now); err != nil {
			return err
		}
		u.Identities = append(u.Identities[:idx:idx], u.Identities[idx+1:]...)
		u.UpdatedAt = now
		return s.identityEvents(ctx, tx, actor, u, old.Kind, "removed", map[string]any{"identity": identityPayload(old)})
	})
	if err != nil {
		return nil, wrapAccountErr("remove identity", err)
	}
	return u, nil
}

// identityEvents records identity.<kind>.<what> and, for an admin or an
// API key, the audit event admin_api.mutation.identity.executed.
func (s *Service) identityEvents(ctx context.Context, tx *store.Tx, actor Actor, u *User, kind, what string, extra map[string]any) error {
	payload := map[string]any{"user": UserPayload(u)["user"]}
	for k, v := range extra {
		payload[k] = v
	}
	if err := s.events.Record(ctx, tx, actor, Event{Type: IdentityEventType(kind, what), UserID: u.ID, Payload: payload}); err != nil {
		return err
	}
	if actor.Kind == "user" || actor.Kind == "system" {
		return nil
	}
	audit := map[string]any{"user": payload["user"], "action": what}
	for k, v := range extra {
		audit[k] = v
	}
	return s.events.Record(ctx, tx, actor, Event{Type: EventAdminIdentity, UserID: u.ID, Payload: audit})
}

// loadIdentity loads the user and finds the index of one of their login
// IDs, or fails with identityNotFound.
func loadIdentity(ctx context.Context, tx *store.Tx, userID, identityID string) (*User, int, error) {
	u, err := loadUser(ctx, tx, userID)
	if err != nil {
		return nil, 0, err
	}
	for i, id := range u.Identities {
		if id.ID == identityID {
			return u, i, nil
		}
	}
	return nil, 0, identityNotFound()
}

// Profile is the user's editable standard attributes.
type Profile struct {
	Name       string
	GivenName  string
	FamilyName string
}

// ProfileAttribute names, as the reference's standard attributes.
var profileAttributes = []string{"name", "given_name", "family_name"}

// derivedAttributes come from login IDs and are not edited as attributes.
var derivedAttributes = map[string]bool{"email": true, "email_verified": true, "phone_number": true,
	"phone_number_verified": true, "preferred_username": true, "updated_at": true}

// ProfileFromAttributes reads the Admin API's standardAttributes object:
// name, given_name and family_name (absent ones are cleared, as the
// reference replaces the whole object); attributes that come from login
// IDs are ignored; anything else is an error.
func ProfileFromAttributes(attrs map[string]any) (Profile, error) {
	var p Profile
	var errs []*Error
	for k, v := range attrs {
		if derivedAttributes[k] {
			continue
		}
		str, ok := v.(string)
		if !ok && v != nil {
			errs = append(errs, fieldErr(k, ReasonValidationFailed, "Attribute "+k+" must be a string.", map[string]any{"kind": "type", "attribute": k}))
			continue
		}
		switch k {
		case "name":
			p.Name = str
		case "given_name":
			p.GivenName = str
		case "family_name":
			p.FamilyName = str
		default:
			errs = append(errs, fieldErr(k, ReasonValidationFailed, "Unknown attribute "+k+": Latchkey keeps name, given_name and family_name.",
				map[string]any{"kind": "unknown", "attribute": k}))
		}
	}
	return p, JoinErrors(errs)
}

// UpdateProfile sets the user's name attributes and records
// user.profile.updated; saving what is already there records nothing.
func (s *Service) UpdateProfile(ctx context.Context, actor Actor, userID string, p Profile) (*User, error) {
	p.Name, p.GivenName, p.FamilyName = strings.TrimSpace(p.Name), strings.TrimSpace(p.GivenName), strings.TrimSpace(p.FamilyName)
	var errs []*Error
	for field, v := range map[string]string{"name": p.Name, "given_name": p.GivenName, "family_name": p.FamilyName} {
		if utf8.RuneCountInString(v) > 100 {
			errs = append(errs, fieldErr(field, ReasonValidationFailed, "At most 100 characters.", map[string]any{"kind": "maxLength", "maxLength": 100}))
		} else if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			errs = append(errs, fieldErr(field, ReasonValidationFailed, "Remove the line breaks and control characters.", map[string]any{"kind": "format"}))
		}
	}
	if err := JoinErrors(errs); err != nil {
		return nil, err
	}
	var u *User
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		if u.Name == p.Name && u.GivenName == p.GivenName && u.FamilyName == p.FamilyName {
			return nil
		}
		now := s.Now()
		if err := tx.UpdateUserProfile(ctx, userID, p.Name, p.GivenName, p.FamilyName, now); err != nil {
			return err
		}
		u.Name, u.GivenName, u.FamilyName, u.UpdatedAt = p.Name, p.GivenName, p.FamilyName, now
		return s.events.Record(ctx, tx, actor, Event{Type: EventUserProfileUpdated, UserID: userID, Payload: map[string]any{"user": UserPayload(u)["user"]}})
	})
	if err != nil {
		return nil, wrapAccountErr("update profile", err)
	}
	return u, nil
}

// wrapAccountErr keeps an *Error as it is and prefixes anything else.
func wrapAccountErr(op string, err error) error {
	if e, ok := AsError(err); ok {
		return e
	}
	return fmt.Errorf("account: %s: %w", op, err)
}

// ProfileAttributes lists the editable attribute names.
func ProfileAttributes() []string { return append([]string(nil), profileAttributes...) }

// TemporaryPasswordEnds is when u's admin-set password, which u was asked
// to change, stops signing in (see TemporaryPasswordLapsed); nil when it
// never lapses.
func (s *Service) TemporaryPasswordEnds(u *User) *time.Time {
	days := s.Policy().TemporaryExpiryDays
	p := u.Password
	if days <= 0 || p == nil || !p.SetByAdmin || p.ExpireAfter == nil {
		return nil
	}
	t := p.ExpireAfter.Add(time.Duration(days) * 24 * time.Hour)
	return &t
}

// queuePassword queues a password message, filling PasswordMail.ExpiresAt
// for a temporary password (one the user must change) from the policy's
// TemporaryExpiryDays, counted from now, when the password is set and its
// change asked for.
func (s *Service) queuePassword(ctx context.Context, tx *store.Tx, pm PasswordMail) error {
	if days := s.Policy().TemporaryExpiryDays; pm.MustChange && days > 0 && pm.ExpiresAt == nil {
		t := s.Now().Add(time.Duration(days) * 24 * time.Hour)
		pm.ExpiresAt = &t
	}
	return s.mailer.QueuePassword(ctx, tx, pm)
}
