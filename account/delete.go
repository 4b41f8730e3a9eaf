package account

import (
	"context"
	"fmt"

	"latchkey/store"
)

// DeleteUser deletes a user with their login IDs, password and password
// history. user.deleted, carrying the user as it was, is recorded in the
// same transaction before the rows go, so the event and the deletion
// commit together or not at all.
func (s *Service) DeleteUser(ctx context.Context, actor Actor, userID string) (*User, error) {
	var u *User
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		payload := UserPayload(u)
		if err := s.events.Record(ctx, tx, actor, Event{Type: EventUserDeleted, UserID: u.ID, Payload: payload}); err != nil {
			return err
		}
		if err := s.events.Record(ctx, tx, actor, Event{Type: EventAdminDeleteUser, UserID: u.ID,
			Payload: map[string]any{"user": payload["user"]}}); err != nil {
			return err
		}
		return tx.DeleteUser(ctx, u.ID)
	})
	if err != nil {
		if e, ok := AsError(err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("account: delete user: %w", err)
	}
	s.log.Info("user deleted", "user_id", u.ID, "actor", actor.Kind, "actor_id", actor.ID)
	return u, nil
}

// BulkResult counts what a bulk action did.
type BulkResult struct {
	// Changed users got the change; Skipped had nothing to change (no
	// password, already required) or no longer exist.
	Changed, Skipped int
}

// RequirePasswordChange makes each user in ids change their password at
// next sign-in, in one transaction for the batch, recording the same
// events per user as SetPasswordExpired. Users without a password, users
// already required to change and users that no longer exist are skipped.
// Callers with many users call it batch by batch.
func (s *Service) RequirePasswordChange(ctx context.Context, actor Actor, ids []string) (BulkResult, error) {
	var res BulkResult
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		res = BulkResult{}
		now := s.Now()
		for _, id := range ids {
			u, err := loadUser(ctx, tx, id)
			if e, ok := AsError(err); ok && e.Reason == ReasonUserNotFound {
				res.Skipped++
				continue
			} else if err != nil {
				return err
			}
			if u.Password == nil || u.PasswordExpired(now) {
				res.Skipped++
				continue
			}
			if err := s.setExpired(ctx, tx, actor, u, true, now, map[string]any{"bulk": true}); err != nil {
				return err
			}
			res.Changed++
		}
		return nil
	})
	if err != nil {
		return BulkResult{}, fmt.Errorf("account: require password change: %w", err)
	}
	return res, nil
}
