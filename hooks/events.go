// Package hooks records events and delivers them: every event lands in the
// event log (the audit log) in the transaction of the change it records,
// webhook deliveries are queued in that same transaction and sent by a
// durable worker with retries, and blocking hooks may veto a change before
// it is made.
package hooks

import (
	"encoding/json"
	"fmt"
	"strings"

	"latchkey/account"
	"latchkey/store"
)

// Event types (defined in account, where the events are made). Blocking
// types are sent to blocking hooks before the change; the others are
// recorded after it. WebhookTest is sent by "Send test event" to one
// webhook only.
const (
	UserPreCreate        = account.EventUserPreCreate
	UserCreated          = account.EventUserCreated
	UserAuthenticated    = account.EventUserAuthenticated
	UserDisabled         = account.EventUserDisabled
	UserReenabled        = account.EventUserReenabled
	UserDeleted          = account.EventUserDeleted
	UserPasswordChanged  = account.EventUserPasswordChanged
	PasswordExpiredSet   = account.EventPasswordExpiredSet
	UserLockoutCleared   = account.EventUserLockoutCleared
	AdminCreateUser      = account.EventAdminCreateUser
	AdminResetPassword   = account.EventAdminResetPassword
	AdminSetPasswordExp  = account.EventAdminSetPasswordExp
	AdminImportUsers     = account.EventAdminImportUsers
	EmailSent            = account.EventEmailSent
	EmailFailed          = account.EventEmailFailed
	AuthPasswordFailed   = account.EventAuthPasswordFailed
	PasswordPolicyUpdate = account.EventPasswordPolicyUpdate
	AdminCreated         = account.EventAdminCreated
	AdminDeleteUser      = account.EventAdminDeleteUser
	APIKeyCreated        = account.EventAPIKeyCreated
	APIKeyRevoked        = account.EventAPIKeyRevoked
	WebhookCreated       = account.EventWebhookCreated
	WebhookUpdated       = account.EventWebhookUpdated
	WebhookDeleted       = account.EventWebhookDeleted
	WebhookTest          = account.EventWebhookTest
)

// TypeInfo describes an event type for the portal's pickers.
type TypeInfo struct {
	Type        string
	Description string
	// Blocking types go to blocking hooks, before the change.
	Blocking bool
	// AuditOnly types are kept in the audit log and never sent to webhooks.
	AuditOnly bool
}

// Types lists every event type Latchkey records.
//
// Which types reach webhooks: the reference product sends its user.* and
// password.* events to webhooks and keeps admin_api.* in the audit log
// only. Latchkey does the same, and also keeps these audit-only:
//   - email.sent / email.failed: delivery bookkeeping of Latchkey's own
//     outbox, not a change to an account;
//   - authentication.password.failed: a stranger can cause it at will, so
//     sending it out would let anyone drive webhook traffic;
//   - password_policy.updated, admin.*, api_key.* and webhook.*: portal
//     configuration.
//
// A type not listed here (a later feature's) is sent to "all events" hooks
// unless it matches the audit-only rules in AuditOnly.
var Types = []TypeInfo{
	{Type: UserPreCreate, Description: "Before a user is created (blocking: the hook may veto it)", Blocking: true},
	{Type: UserCreated, Description: "A user was created"},
	{Type: UserAuthenticated, Description: "A user signed in"},
	{Type: UserDisabled, Description: "A user was disabled"},
	{Type: UserReenabled, Description: "A user was re-enabled"},
	{Type: UserDeleted, Description: "A user was deleted"},
	{Type: UserPasswordChanged, Description: "A user changed their password"},
	{Type: PasswordExpiredSet, Description: "A user was asked (or no longer asked) to change their password"},
	{Type: UserLockoutCleared, Description: "An admin cleared a user's sign-in lockout"},
	{Type: AdminCreateUser, Description: "An admin created a user", AuditOnly: true},
	{Type: AdminResetPassword, Description: "An admin reset a password", AuditOnly: true},
	{Type: AdminSetPasswordExp, Description: "An admin changed a password's expiry", AuditOnly: true},
	{Type: AdminDeleteUser, Description: "An admin deleted a user", AuditOnly: true},
	{Type: AdminImportUsers, Description: "An admin imported users", AuditOnly: true},
	{Type: EmailSent, Description: "An email was sent", AuditOnly: true},
	{Type: EmailFailed, Description: "An email could not be sent", AuditOnly: true},
	{Type: account.EventSMSSent, Description: "A text message was sent", AuditOnly: true},
	{Type: account.EventSMSFailed, Description: "A text message could not be sent (or an SMS limit refused it)", AuditOnly: true},
	{Type: AuthPasswordFailed, Description: "A sign-in failed on a wrong password", AuditOnly: true},
	{Type: PasswordPolicyUpdate, Description: "The password policy was changed", AuditOnly: true},
	{Type: account.EventAdminSigninSucceeded, Description: "A portal admin signed in", AuditOnly: true},
	{Type: account.EventAdminSigninFailed, Description: "A portal sign-in failed", AuditOnly: true},
	{Type: account.EventAdminInvited, Description: "A portal admin was invited", AuditOnly: true},
	{Type: account.EventAdminInviteAccepted, Description: "An invited admin chose a password", AuditOnly: true},
	{Type: account.EventAdminRemoved, Description: "A portal admin was removed", AuditOnly: true},
	{Type: account.EventAdminPasswordChanged, Description: "An admin changed their password", AuditOnly: true},
	{Type: account.EventAdminPasswordReset, Description: "An admin's password was reset from the command line", AuditOnly: true},
	{Type: account.EventAdmin2FAEnabled, Description: "An admin turned two-factor sign-in on", AuditOnly: true},
	{Type: account.EventAdmin2FADisabled, Description: "An admin's two-factor sign-in was turned off", AuditOnly: true},
	{Type: account.EventAdminRecoveryUsed, Description: "An admin signed in with a recovery code", AuditOnly: true},
	{Type: account.EventAdminRecoveryRenewed, Description: "An admin made new recovery codes", AuditOnly: true},
	{Type: account.EventAdminRequire2FA, Description: "Two-factor for every admin was turned on or off", AuditOnly: true},
	{Type: account.EventAdminSessionsRevoked, Description: "An admin signed out all their sessions", AuditOnly: true},
	{Type: AdminCreated, Description: "A portal admin was created", AuditOnly: true},
	{Type: APIKeyCreated, Description: "An Admin API key was created", AuditOnly: true},
	{Type: APIKeyRevoked, Description: "An Admin API key was revoked", AuditOnly: true},
	{Type: WebhookCreated, Description: "A webhook was added", AuditOnly: true},
	{Type: WebhookUpdated, Description: "A webhook was enabled or disabled", AuditOnly: true},
	{Type: WebhookDeleted, Description: "A webhook was deleted", AuditOnly: true},
	{Type: WebhookTest, Description: "A test event sent to one webhook"},
	// OpenID Connect applications (package oidc, which names them).
	{Type: "admin.application.created", Description: "An application was added", AuditOnly: true},
	{Type: "admin.application.updated", Description: "An application was edited, disabled or got a new secret", AuditOnly: true},
	{Type: "admin.application.deleted", Description: "An application was deleted", AuditOnly: true},
	{Type: "admin.signing_key.rotated", Description: "The OpenID Connect signing key was rotated", AuditOnly: true},
}

// AuditOnly reports whether events of type t stay in the audit log and are
// never sent to webhooks.
func AuditOnly(t string) bool {
	for _, ti := range Types {
		if ti.Type == t {
			return ti.AuditOnly
		}
	}
	for _, p := range []string{"admin_api.", "admin.", "api_key.", "email.", "webhook.", "authentication."} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// IsBlocking reports whether t is a blocking event type.
func IsBlocking(t string) bool { return t == UserPreCreate }

// WebhookTypes lists the types a non-blocking webhook can choose: those
// that are neither blocking nor audit-only (nor the test event).
func WebhookTypes() []TypeInfo {
	var out []TypeInfo
	for _, ti := range Types {
		if !ti.Blocking && !ti.AuditOnly && ti.Type != WebhookTest {
			out = append(out, ti)
		}
	}
	return out
}

// Envelope is an event as webhooks receive it and the audit log shows it.
type Envelope struct {
	ID      string          `json:"id"`
	Seq     int64           `json:"seq"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Context json.RawMessage `json:"context"`
}

// Context is the envelope's context: when, for whom, by whom and from where.
type Context struct {
	Timestamp          int64         `json:"timestamp"`
	UserID             string        `json:"user_id,omitempty"`
	TriggeredBy        string        `json:"triggered_by"`
	IPAddress          string        `json:"ip_address,omitempty"`
	UserAgent          string        `json:"user_agent,omitempty"`
	AppID              string        `json:"app_id"`
	Language           string        `json:"language"`
	PreferredLanguages []string      `json:"preferred_languages"`
	AuditContext       *AuditContext `json:"audit_context,omitempty"`
}

// AuditContext names who acted: a portal admin, an Admin API key, the user
// themselves, or Latchkey.
type AuditContext struct {
	ActorKind string `json:"actor_kind"`
	ActorID   string `json:"actor_id,omitempty"`
	ActorName string `json:"actor_name,omitempty"`
}

// EventID is the event's id: its seq as 16 hex digits.
func EventID(seq int64) string { return fmt.Sprintf("%016x", seq) }

// ParseEventID turns an event id back into its seq.
func ParseEventID(id string) (int64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	var seq int64
	if _, err := fmt.Sscanf(id, "%016x", &seq); err != nil || seq <= 0 {
		return 0, false
	}
	return seq, true
}

// EnvelopeOf builds the envelope of a stored event.
func EnvelopeOf(e *store.Event) Envelope {
	return Envelope{ID: EventID(e.Seq), Seq: e.Seq, Type: e.Type, Payload: e.Payload, Context: e.Context}
}

// redactPasswords replaces the string value of any key that names a
// password (password, new_password, password_hash...) with "[redacted]",
// at any depth. Events are built from account payloads that carry no
// password; this is the belt to that pair of braces, so a later feature's
// slip cannot put one in the log or on the wire.
func redactPasswords(v any) (any, bool) {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && s != "" && strings.Contains(strings.ToLower(k), "password") {
				x[k] = "[redacted]"
				changed = true
				continue
			}
			if nv, ch := redactPasswords(val); ch {
				x[k], changed = nv, true
			}
		}
	case []any:
		for i, val := range x {
			if nv, ch := redactPasswords(val); ch {
				x[i], changed = nv, true
			}
		}
	}
	return v, changed
}

// marshalPayload turns an account payload into JSON with no password in it.
func marshalPayload(p map[string]any) (json.RawMessage, error) {
	if p == nil {
		p = map[string]any{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(strings.ToLower(string(b)), "password") {
		return b, nil
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, err
	}
	if generic, changed := redactPasswords(generic); changed {
		return json.Marshal(generic)
	}
	return b, nil
}
