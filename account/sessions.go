package account

import (
	"context"
	"regexp"
	"strings"
	"time"

	"latchkey/store"
)

// SessionInfo is one signed-in session as the user page and /settings
// show it. ID is a public ID derived from the stored token hash.
type SessionInfo struct {
	ID         string
	UserID     string
	Browser    string
	IP         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// Restricted sessions only reach the forced password change.
	Restricted bool
	// Current is the session of the request that asked.
	Current bool
}

// ID returns the session's public ID (as SessionInfo.ID has it).
func (s *Session) ID() string { return store.SessionPublicID(s.tokenHash) }

// lastSeenEvery is how stale a session's last-seen time may get before a
// request updates it: one write a minute per active session at most.
const lastSeenEvery = time.Minute

// touchSession records the session's request, at most once a minute.
func (s *Service) touchSession(ctx context.Context, us *store.UserSession) {
	now := s.Now()
	if now.Sub(us.LastSeenAt) < lastSeenEvery {
		return
	}
	if err := s.store.TouchUserSession(ctx, us.TokenHash, now, now.Add(-lastSeenEvery)); err != nil {
		s.log.Warn("session last-seen not recorded", "err", err)
	}
}

// UserSessions lists the user's live sessions, most recently active
// first; current (may be nil) marks the asking session.
func (s *Service) UserSessions(ctx context.Context, userID string, current *Session) ([]SessionInfo, error) {
	rows, err := s.store.UserSessionsByUser(ctx, userID, s.Now())
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, SessionInfo{ID: store.SessionPublicID(r.TokenHash), UserID: r.UserID, Browser: BrowserName(r.UserAgent), IP: r.IP,
			CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt, Restricted: r.Restricted,
			Current: current != nil && current.tokenHash == r.TokenHash})
	}
	return out, nil
}

// RevokeAllSessions signs the user out everywhere: every session, and
// the applications' refresh tokens. It records user.sessions.revoked
// when anything was ended, and returns how many were.
func (s *Service) RevokeAllSessions(ctx context.Context, actor Actor, userID string) (int, error) {
	return s.revoke(ctx, actor, userID, func(tx *store.Tx, _ []store.UserSession) ([]string, int, error) {
		rows, err := tx.UserSessionsByUser(ctx, userID, time.Time{})
		if err != nil {
			return nil, 0, err
		}
		n, err := tx.DeleteUserSessions(ctx, userID, "")
		if err != nil {
			return nil, 0, err
		}
		// Applications' refresh tokens end too (OpenID Connect), as they
		// do when the password changes or the account is disabled.
		m, err := tx.RevokeUserOIDCTokens(ctx, userID, s.Now())
		if err != nil {
			return nil, 0, err
		}
		n += m
		ids := make([]string, 0, len(rows))
		for _, r := range rows {
			ids = append(ids, store.SessionPublicID(r.TokenHash))
		}
		return ids, n, nil
	}, "all")
}

// RevokeSession signs out one session of the user, by its public ID. An
// unknown ID (already ended) is an error the caller can show.
func (s *Service) RevokeSession(ctx context.Context, actor Actor, userID, sessionID string) error {
	_, err := s.revoke(ctx, actor, userID, func(tx *store.Tx, rows []store.UserSession) ([]string, int, error) {
		for _, r := range rows {
			if store.SessionPublicID(r.TokenHash) == sessionID {
				if err := tx.DeleteUserSession(ctx, r.TokenHash); err != nil {
					return nil, 0, err
				}
				return []string{sessionID}, 1, nil
			}
		}
		return nil, 0, &Error{Name: "NotFound", Reason: ReasonSessionNotFound, Field: "sessionID", Message: "This session has already ended."}
	}, "one")
	return err
}

// RevokeOtherSessions is /settings' "Sign out other sessions": every
// session of the user but the current one.
func (s *Service) RevokeOtherSessions(ctx context.Context, actor Actor, current *Session) (int, error) {
	return s.revoke(ctx, actor, current.UserID, func(tx *store.Tx, rows []store.UserSession) ([]string, int, error) {
		var ids []string
		for _, r := range rows {
			if r.TokenHash != current.tokenHash {
				ids = append(ids, store.SessionPublicID(r.TokenHash))
			}
		}
		n, err := tx.DeleteUserSessions(ctx, current.UserID, current.tokenHash)
		return ids, n, err
	}, "others")
}

// ReasonSessionNotFound is the error reason for revoking a session that
// does not exist.
const ReasonSessionNotFound = "SessionNotFound"

// revoke runs end in one transaction with the user's live sessions and
// records user.sessions.revoked when it ended any.
func (s *Service) revoke(ctx context.Context, actor Actor, userID string, end func(tx *store.Tx, rows []store.UserSession) ([]string, int, error), scope string) (int, error) {
	var n int
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		u, err := loadUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		rows, err := tx.UserSessionsByUser(ctx, userID, s.Now())
		if err != nil {
			return err
		}
		ids, ended, err := end(tx, rows)
		if err != nil {
			return err
		}
		n = ended
		if ended == 0 {
			return nil
		}
		if ids == nil {
			ids = []string{}
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventUserSessionsRevoked, UserID: userID,
			Payload: map[string]any{"user": UserPayload(u)["user"], "scope": scope, "session_ids": ids, "count": ended}})
	})
	if err != nil {
		return 0, wrapAccountErr("revoke sessions", err)
	}
	if n > 0 {
		s.log.Info("sessions revoked", "user_id", userID, "scope", scope, "count", n, "actor", actor.Kind, "actor_id", actor.ID)
	}
	return n, nil
}

var (
	uaVersion = regexp.MustCompile(`(Edg|OPR|Firefox|Chrome|Chromium|Version)/(\d+)`)
)

// BrowserName makes a short "Chrome 120 on Windows" of a User-Agent.
func BrowserName(ua string) string {
	if ua == "" {
		return "Unknown browser"
	}
	browser := ""
	versions := map[string]string{}
	for _, m := range uaVersion.FindAllStringSubmatch(ua, -1) {
		versions[m[1]] = m[2]
	}
	switch {
	case versions["Edg"] != "":
		browser = "Edge " + versions["Edg"]
	case versions["OPR"] != "":
		browser = "Opera " + versions["OPR"]
	case versions["Firefox"] != "":
		browser = "Firefox " + versions["Firefox"]
	case strings.Contains(ua, "HeadlessChrome"):
		browser = "Headless Chrome"
	case versions["Chrome"] != "":
		browser = "Chrome " + versions["Chrome"]
	case versions["Chromium"] != "":
		browser = "Chromium " + versions["Chromium"]
	case strings.Contains(ua, "Safari") && versions["Version"] != "":
		browser = "Safari " + versions["Version"]
	case strings.HasPrefix(ua, "curl/"):
		browser = "curl"
	default:
		browser = ua
		if len(browser) > 40 {
			browser = browser[:40] + "…"
		}
		return browser
	}
	os := ""
	switch {
	case strings.Contains(ua, "Windows"):
		os = "Windows"
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"):
		os = "iOS"
	case strings.Contains(ua, "Android"):
		os = "Android"
	case strings.Contains(ua, "Mac OS X"):
		os = "macOS"
	case strings.Contains(ua, "Linux"):
		os = "Linux"
	}
	if os != "" {
		browser += " on " + os
	}
	return browser
}
