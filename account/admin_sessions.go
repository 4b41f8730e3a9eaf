package account

import (
	"context"
	"errors"
	"time"

	"latchkey/store"
)

// Portal session lifetimes. A portal session lasts at most AdminSessionTTL
// from sign-in, and ends sooner when unused for AdminSessionIdle. Activity
// is written back at most once per adminSessionTouchEvery, so a page view
// is not a database write.
const (
	AdminSessionTTL        = 12 * time.Hour
	AdminSessionIdle       = time.Hour
	adminSessionTouchEvery = time.Minute
)

// StartAdminSession opens a portal session for the admin, the last step of
// a sign-in, and returns the token for the cookie. It records the sign-in
// (last sign-in time, admin.signin.succeeded) with the session. oldToken, the session the browser had (if any),
// is ended, so every sign-in gets a new session ID.
func (s *Service) StartAdminSession(ctx context.Context, actor Actor, adminID, oldToken string) (string, error) {
	token := NewToken()
	now := s.Now()
	ua := actor.UserAgent
	if len(ua) > 300 {
		ua = ua[:300]
	}
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if oldToken != "" {
			if err := tx.DeleteAdminSession(ctx, hashToken(oldToken)); err != nil {
				return err
			}
		}
		if err := tx.DeleteStaleAdminSessions(ctx, adminID, now, now.Add(-AdminSessionIdle)); err != nil {
			return err
		}
		if err := tx.InsertAdminSession(ctx, store.AdminSession{TokenHash: hashToken(token), AdminID: adminID,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(AdminSessionTTL), IP: actor.IP, UserAgent: ua}); err != nil {
			return err
		}
		a, err := tx.AdminByID(ctx, adminID)
		if err != nil {
			return err
		}
		if err := tx.TouchAdminLogin(ctx, adminID, now); err != nil {
			return err
		}
		actor.Kind, actor.ID, actor.Name = "admin", a.ID, a.Email
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminSigninSucceeded, Payload: map[string]any{"admin_id": a.ID, "email": a.Email}})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AdminSession returns the admin of a live portal session token and keeps
// the session from idling out. An unknown, idle or expired token, or one
// whose admin was removed, gives an *Error with ReasonSessionEnded.
func (s *Service) AdminSession(ctx context.Context, token string) (*store.Admin, error) {
	if token == "" {
		return nil, sessionEnded()
	}
	h := hashToken(token)
	now := s.Now()
	sess, err := s.store.AdminSessionByHash(ctx, h, now, now.Add(-AdminSessionIdle))
	if errors.Is(err, store.ErrNotFound) {
		return nil, sessionEnded()
	} else if err != nil {
		return nil, err
	}
	a, err := s.store.AdminByID(ctx, sess.AdminID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, sessionEnded()
	} else if err != nil {
		return nil, err
	}
	if now.Sub(sess.LastSeenAt) >= adminSessionTouchEvery {
		if err := s.store.TouchAdminSession(ctx, h, now); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// EndAdminSession ends the portal session with this token (sign-out).
func (s *Service) EndAdminSession(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.store.DeleteAdminSession(ctx, hashToken(token))
}

// RevokeAdminSessions ends every portal session of the admin at once
// ("sign out all sessions", a removed or recovered admin) and reports how
// many it ended.
func (s *Service) RevokeAdminSessions(ctx context.Context, adminID string) (int, error) {
	return s.store.DeleteAdminSessions(ctx, adminID, "")
}

// RevokeOtherAdminSessions ends every portal session of the admin except
// the one with keepToken (after a password change, say).
func (s *Service) RevokeOtherAdminSessions(ctx context.Context, adminID, keepToken string) (int, error) {
	return s.store.DeleteAdminSessions(ctx, adminID, hashToken(keepToken))
}

// AdminSessions lists the admin's live portal sessions, newest first.
func (s *Service) AdminSessions(ctx context.Context, adminID string) ([]store.AdminSession, error) {
	now := s.Now()
	return s.store.AdminSessions(ctx, adminID, now, now.Add(-AdminSessionIdle))
}

// CountAdminSessions counts the admin's live portal sessions.
func (s *Service) CountAdminSessions(ctx context.Context, adminID string) (int, error) {
	now := s.Now()
	return s.store.CountAdminSessions(ctx, adminID, now, now.Add(-AdminSessionIdle))
}
