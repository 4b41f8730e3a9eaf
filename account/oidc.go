package account

import (
	"context"
	"time"

	"latchkey/store"
)

// Events returns the service's event recorder, for the packages that
// record their own events inside their own store transactions (oidc).
func (s *Service) Events() Events { return s.events }

// AuthenticatedForApp records a sign-in that completes for an OpenID
// Connect application (clientID): the user's last login and
// user.authenticated with the client ID in its payload, inside tx. A
// disabled or deleted user gets ReasonUserDisabled / ReasonUserNotFound
// and nothing is recorded.
func (s *Service) AuthenticatedForApp(ctx context.Context, tx *store.Tx, actor Actor, userID, clientID string, now time.Time) (*User, error) {
	u, err := loadUser(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	if u.IsDisabled {
		return nil, &Error{Name: "Forbidden", Reason: ReasonUserDisabled, Message: "Your account is disabled. Contact your administrator."}
	}
	if err := tx.TouchUserLogin(ctx, u.ID, now); err != nil {
		return nil, err
	}
	u.LastLoginAt = &now
	payload := UserPayload(u)
	payload["client_id"] = clientID
	return u, s.events.Record(ctx, tx, userActor(actor, u.ID), Event{Type: EventUserAuthenticated, UserID: u.ID, Payload: payload})
}
