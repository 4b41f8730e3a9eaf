package account

// Event types, named once here where the events are made; the hooks
// package lists them with descriptions and decides which reach webhooks.
const (
	EventUserPreCreate        = "user.pre_create"
	EventUserCreated          = "user.created"
	EventUserAuthenticated    = "user.authenticated"
	EventUserDisabled         = "user.disabled"
	EventUserReenabled        = "user.reenabled"
	EventUserDeleted          = "user.deleted"
	EventUserPasswordChanged  = "user.password.changed"
	EventPasswordExpiredSet   = "password.expired.set"
	EventUserLockoutCleared   = "user.lockout.cleared"
	EventAdminCreateUser      = "admin_api.mutation.create_user.executed"
	EventAdminResetPassword   = "admin_api.mutation.reset_password.executed"
	EventAdminSetPasswordExp  = "admin_api.mutation.set_password_expired.executed"
	EventAdminImportUsers     = "admin_api.import_users.executed"
	EventEmailSent            = "email.sent"
	EventEmailFailed          = "email.failed"
	EventAuthPasswordFailed   = "authentication.password.failed"
	EventPasswordPolicyUpdate = "password_policy.updated"
	EventAdminCreated         = "admin.created"
	EventAdminDeleteUser      = "admin_api.mutation.delete_user.executed"
	EventAPIKeyCreated        = "api_key.created"
	EventAPIKeyRevoked        = "api_key.revoked"
	EventWebhookCreated       = "webhook.created"
	EventWebhookUpdated       = "webhook.updated"
	EventWebhookDeleted       = "webhook.deleted"
	EventWebhookTest          = "webhook.test"
)
