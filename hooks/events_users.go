package hooks

import "latchkey/account"

// Issue 14's event types: login ID edits (by kind), profile edits and
// signed-out sessions go to webhooks; the admin's identity mutation is
// audit-only like every admin_api.* type.
func init() {
	for _, kind := range []string{account.KindEmail, account.KindPhone, account.KindUsername} {
		for _, what := range []struct{ verb, desc string }{{"added", "added to"}, {"updated", "changed on"}, {"removed", "removed from"}} {
			Types = append(Types, TypeInfo{Type: account.IdentityEventType(kind, what.verb),
				Description: "A login ID (" + kind + ") was " + what.desc + " a user"})
		}
	}
	Types = append(Types,
		TypeInfo{Type: account.EventUserProfileUpdated, Description: "A user's name attributes were changed"},
		TypeInfo{Type: account.EventUserSessionsRevoked, Description: "A user was signed out of one or more sessions"},
		TypeInfo{Type: account.EventAdminIdentity, Description: "An admin added, changed or removed a login ID", AuditOnly: true},
		TypeInfo{Type: account.EventAdminExportUsers, Description: "An admin exported users", AuditOnly: true},
	)
}
