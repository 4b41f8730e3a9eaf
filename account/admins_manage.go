package account

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"latchkey/store"
)

// Admin management events (all audit-only: the admin. prefix).
const (
	EventAdminInvited         = "admin.invited"
	EventAdminInviteAccepted  = "admin.invite.accepted"
	EventAdminRemoved         = "admin.removed"
	EventAdminPasswordChanged = "admin.password.changed"
	EventAdminPasswordReset   = "admin.password.reset"
	EventAdmin2FAEnabled      = "admin.2fa.enabled"
	EventAdmin2FADisabled     = "admin.2fa.disabled"
	EventAdminRecoveryUsed    = "admin.2fa.recovery_code.used"
	EventAdminRecoveryRenewed = "admin.2fa.recovery_codes.renewed"
	EventAdminRequire2FA      = "admin.settings.require_2fa.updated"
	EventAdminSessionsRevoked = "admin.sessions.revoked"
)

// AdminInviteTTL is how long an admin invitation link works.
const AdminInviteTTL = 72 * time.Hour

// require2FASetting holds "1" when every admin must use two-factor.
const require2FASetting = "admin_require_2fa"

// AdminInviteMail asks for the email that carries an admin invitation link.
type AdminInviteMail struct {
	To        string
	Link      string
	InvitedBy string
	TTL       time.Duration
}

// AdminInviteMailer is implemented by a Mailer that can send admin
// invitations (the mail outbox does). It is a separate interface so that
// other Mailers need not know about admins.
type AdminInviteMailer interface {
	QueueAdminInvite(ctx context.Context, tx *store.Tx, m AdminInviteMail) error
}

// inviteMailer is the mailer as an AdminInviteMailer, or nil when it
// cannot send invitations.
func (s *Service) inviteMailer() AdminInviteMailer {
	im, _ := s.mailer.(AdminInviteMailer)
	return im
}

// ErrLastAdmin refuses to remove the only admin who can sign in.
var ErrLastAdmin = &Error{Name: "Forbidden", Reason: "LastAdmin",
	Message: "This is the last admin who can sign in. Add another admin before removing this one."}

// AdminInfo is one admin in the portal's list.
type AdminInfo struct {
	store.AdminSummary
	// Sessions counts the admin's live portal sessions.
	Sessions int
}

// ListAdmins lists every admin with their two-factor state and how many
// portal sessions they have open.
func (s *Service) ListAdmins(ctx context.Context) ([]AdminInfo, error) {
	rows, err := s.store.ListAdmins(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AdminInfo, len(rows))
	for i, r := range rows {
		n, err := s.CountAdminSessions(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out[i] = AdminInfo{AdminSummary: r, Sessions: n}
	}
	return out, nil
}

// AdminInvitation is a created invitation: the link is returned once (to
// show it when it is not emailed); only its hash is stored.
type AdminInvitation struct {
	Admin  store.Admin
	Link   string
	Mailed bool
}

// InviteAdmin creates an admin without a password and a one-time link
// (valid AdminInviteTTL) with which they choose one. With sendEmail the
// link is emailed through the outbox in the same transaction; otherwise the
// caller shows it once to the inviting admin. No password is ever shown.
func (s *Service) InviteAdmin(ctx context.Context, actor Actor, email string, sendEmail bool, linkBase string) (*AdminInvitation, error) {
	id, err := NormalizeLoginID(KindEmail, email, s.cfg.PhoneRegion)
	if err != nil {
		e := err.(*Error)
		e.Field = "email"
		return nil, e
	}
	im := s.inviteMailer()
	if sendEmail && im == nil {
		return nil, fieldErr("send_email", ReasonValidationFailed, "Email is not available here: untick “Send the link by email” and hand the link over yourself.", nil)
	}
	token := NewToken()
	link := linkBase + "?" + url.Values{"token": {token}}.Encode()
	now := s.Now()
	a := store.Admin{ID: uuid.NewString(), Email: id.Norm, CreatedAt: now}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		err := tx.InsertAdmin(ctx, a)
		if errors.Is(err, store.ErrConflict) {
			return fieldErr("email", ReasonInvariantViolated, "An admin with this email exists.", nil)
		} else if err != nil {
			return err
		}
		if err := tx.InsertAdminInvite(ctx, store.AdminInvite{TokenHash: hashToken(token), AdminID: a.ID, CreatedAt: now, ExpiresAt: now.Add(AdminInviteTTL)}); err != nil {
			return err
		}
		if sendEmail {
			if err := im.QueueAdminInvite(ctx, tx, AdminInviteMail{To: id.Norm, Link: link, InvitedBy: actor.Name, TTL: AdminInviteTTL}); err != nil {
				return err
			}
		}
		if err := s.events.Record(ctx, tx, actor, Event{Type: EventAdminCreated, Payload: map[string]any{"email": id.Norm, "admin_id": a.ID, "method": "invite"}}); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminInvited, Payload: map[string]any{"email": id.Norm, "admin_id": a.ID, "emailed": sendEmail}})
	})
	if err != nil {
		return nil, err
	}
	return &AdminInvitation{Admin: a, Link: link, Mailed: sendEmail}, nil
}

// ReinviteAdmin makes a new one-time link for an admin who has not yet
// chosen a password (the old link stops working), emailed or returned to
// be shown once, as InviteAdmin.
func (s *Service) ReinviteAdmin(ctx context.Context, actor Actor, adminID string, sendEmail bool, linkBase string) (*AdminInvitation, error) {
	im := s.inviteMailer()
	if sendEmail && im == nil {
		return nil, fieldErr("send_email", ReasonValidationFailed, "Email is not available here: show the link and hand it over yourself.", nil)
	}
	token := NewToken()
	link := linkBase + "?" + url.Values{"token": {token}}.Encode()
	now := s.Now()
	var a *store.Admin
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.AdminByID(ctx, adminID)
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Name: "NotFound", Reason: "AdminNotFound", Message: "There is no such admin."}
		} else if err != nil {
			return err
		}
		if a.PasswordHash != "" {
			return &Error{Name: "Invalid", Reason: "AdminActive", Message: a.Email + " has already chosen a password: they sign in with it."}
		}
		if err := tx.DeleteAdminInvites(ctx, a.ID); err != nil {
			return err
		}
		if err := tx.InsertAdminInvite(ctx, store.AdminInvite{TokenHash: hashToken(token), AdminID: a.ID, CreatedAt: now, ExpiresAt: now.Add(AdminInviteTTL)}); err != nil {
			return err
		}
		if sendEmail {
			if err := im.QueueAdminInvite(ctx, tx, AdminInviteMail{To: a.Email, Link: link, InvitedBy: actor.Name, TTL: AdminInviteTTL}); err != nil {
				return err
			}
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminInvited, Payload: map[string]any{"email": a.Email, "admin_id": a.ID, "emailed": sendEmail, "again": true}})
	})
	if err != nil {
		return nil, err
	}
	return &AdminInvitation{Admin: *a, Link: link, Mailed: sendEmail}, nil
}

var errInviteInvalid = &Error{Name: "Forbidden", Reason: "InvalidInvite",
	Message: "This invitation link is not valid any more. Ask an admin for a new one."}

// CheckAdminInvite returns the invited admin's email when the link token
// is good (unused, unexpired, admin still there).
func (s *Service) CheckAdminInvite(ctx context.Context, token string) (string, error) {
	a, _, err := s.adminInvite(ctx, &s.store.Tx, token)
	if err != nil {
		return "", err
	}
	return a.Email, nil
}

func (s *Service) adminInvite(ctx context.Context, tx *store.Tx, token string) (*store.Admin, *store.AdminInvite, error) {
	if token == "" {
		return nil, nil, errInviteInvalid
	}
	inv, err := tx.AdminInviteByHash(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errInviteInvalid
	} else if err != nil {
		return nil, nil, err
	}
	if inv.UsedAt != nil || !s.Now().Before(inv.ExpiresAt) {
		return nil, nil, errInviteInvalid
	}
	a, err := tx.AdminByID(ctx, inv.AdminID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errInviteInvalid
	}
	return a, inv, err
}

// AcceptAdminInvite sets the invited admin's password with the link's
// token, once: the token is burnt in the same transaction.
func (s *Service) AcceptAdminInvite(ctx context.Context, actor Actor, token, password string) (*store.Admin, error) {
	if causes := s.Policy().Check(password); len(causes) > 0 {
		return nil, policyErr("password", causes)
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return nil, err
	}
	var admin *store.Admin
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		a, inv, err := s.adminInvite(ctx, tx, token)
		if err != nil {
			return err
		}
		ok, err := tx.UseAdminInvite(ctx, inv.TokenHash, s.Now())
		if err != nil {
			return err
		}
		if !ok {
			return errInviteInvalid
		}
		if err := tx.SetAdminPassword(ctx, a.ID, hash); err != nil {
			return err
		}
		admin = a
		actor.Kind, actor.ID, actor.Name = "admin", a.ID, a.Email
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminInviteAccepted, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
	return admin, err
}

// RemoveAdmin deletes an admin, never the last one who can sign in. Their
// sessions (admin_sessions rows), invites and two-factor state go with
// them in the same transaction, so a signed-in browser of theirs is signed
// out at once.
func (s *Service) RemoveAdmin(ctx context.Context, actor Actor, id string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		a, err := tx.AdminByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Name: "NotFound", Reason: "AdminNotFound", Message: "There is no such admin."}
		} else if err != nil {
			return err
		}
		others, err := tx.CountActiveAdminsExcept(ctx, id)
		if err != nil {
			return err
		}
		if others == 0 {
			return ErrLastAdmin
		}
		if _, err := tx.DeleteAdminSessions(ctx, id, ""); err != nil {
			return err
		}
		if err := tx.DeleteAdmin(ctx, id); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminRemoved, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
}

// SignOutAllAdminSessions ends every portal session of the admin (the
// "Sign out all sessions" button), this one included, and records it in
// the same transaction. It reports how many sessions it ended.
func (s *Service) SignOutAllAdminSessions(ctx context.Context, actor Actor, adminID string) (int, error) {
	var n int
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if n, err = tx.DeleteAdminSessions(ctx, adminID, ""); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminSessionsRevoked, Payload: map[string]any{"admin_id": adminID, "sessions": n}})
	})
	return n, err
}

// ChangeAdminPassword changes the signed-in admin's own password; the
// current one is required. Every other portal session of theirs ends
// (keepToken is the session making the change).
func (s *Service) ChangeAdminPassword(ctx context.Context, actor Actor, adminID, keepToken, current, next string) error {
	a, err := s.store.AdminByID(ctx, adminID)
	if err != nil {
		return err
	}
	if !s.hasher.Verify(a.PasswordHash, current) {
		return fieldErr("current_password", ReasonValidationFailed, "The current password is not correct.", nil)
	}
	if causes := s.Policy().Check(next); len(causes) > 0 {
		return policyErr("new_password", causes)
	}
	if current == next {
		return fieldErr("new_password", ReasonValidationFailed, "Choose a password different from the current one.", nil)
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.SetAdminPassword(ctx, adminID, hash); err != nil {
			return err
		}
		if _, err := tx.DeleteAdminSessions(ctx, adminID, hashToken(keepToken)); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminPasswordChanged, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
}

// AdminNotFound is the error for an email that names no admin.
func AdminNotFound(email string) *Error {
	return &Error{Name: "NotFound", Reason: "AdminNotFound", Message: fmt.Sprintf("No admin has the email %s.", email)}
}

// adminByEmail finds an admin by email, normalised as at creation.
func (s *Service) adminByEmail(ctx context.Context, tx *store.Tx, email string) (*store.Admin, error) {
	norm := strings.ToLower(strings.TrimSpace(email))
	if id, err := NormalizeLoginID(KindEmail, email, s.cfg.PhoneRegion); err == nil {
		norm = id.Norm
	}
	a, err := tx.AdminByEmail(ctx, norm)
	if errors.Is(err, store.ErrNotFound) {
		return nil, AdminNotFound(norm)
	}
	return a, err
}

// CreateAdmin creates an admin with a password (the command line's
// `latchkey admin create`), whether or not admins exist.
func (s *Service) CreateAdmin(ctx context.Context, actor Actor, email, password string) (*store.Admin, error) {
	err := s.createAdminAs(ctx, actor, email, password, func(*store.Tx) error { return nil })
	if err != nil {
		return nil, err
	}
	return s.adminByEmail(ctx, &s.store.Tx, email)
}

// ResetAdminPassword sets an admin's password (the command line's
// `latchkey admin reset-password`, for a locked-out operator), ends their
// portal sessions and clears their sign-in lockout.
func (s *Service) ResetAdminPassword(ctx context.Context, actor Actor, email, password string) error {
	if _, err := s.adminByEmail(ctx, &s.store.Tx, email); err != nil {
		return err // an unknown email first: no use checking a password for no one
	}
	if causes := s.Policy().Check(password); len(causes) > 0 {
		return policyErr("password", causes)
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		a, err := s.adminByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		if err := tx.SetAdminPassword(ctx, a.ID, hash); err != nil {
			return err
		}
		// An invitation still open would let its holder replace this password.
		if err := tx.DeleteAdminInvites(ctx, a.ID); err != nil {
			return err
		}
		if _, err := tx.DeleteAdminSessions(ctx, a.ID, ""); err != nil {
			return err
		}
		// A sign-in paused by wrong passwords opens again.
		if err := tx.DeleteAdminLockout(ctx, a.ID); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminPasswordReset, Payload: map[string]any{"email": a.Email, "admin_id": a.ID}})
	})
}

// Require2FA reports whether every admin must use two-factor. The portal
// asks on every request, so the answer is cached for a moment
// (require2FACacheTTL): a change made on this instance applies at once,
// one made on another instance sharing the database within the TTL.
func (s *Service) Require2FA(ctx context.Context) (bool, error) {
	return s.require2FA.get(func() (bool, error) {
		v, err := s.store.Setting(ctx, require2FASetting)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return string(v) == "1", err
	})
}

// SetRequire2FA turns the "every admin must use two-factor" rule on or off.
func (s *Service) SetRequire2FA(ctx context.Context, actor Actor, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	// Dropped before and after: no read that began before the commit can
	// leave the old value cached after it.
	s.require2FA.invalidate()
	defer s.require2FA.invalidate()
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutSetting(ctx, require2FASetting, []byte(v)); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminRequire2FA, Payload: map[string]any{"require_2fa": on}})
	})
}
