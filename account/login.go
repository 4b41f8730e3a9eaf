package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"latchkey/store"
)

// Sign-in error reasons, besides ErrBadCredentials.
const (
	ReasonAccountLocked            = "AccountLocked"
	ReasonUserDisabled             = "UserDisabled"
	ReasonTemporaryPasswordExpired = "TemporaryPasswordExpired"
	ReasonSessionEnded             = "SessionEnded"
)

// Session lifetimes: a full session lasts as long as its cookie; a
// restricted one only as long as it takes to choose a new password.
const (
	SessionTTL           = 12 * time.Hour
	RestrictedSessionTTL = 30 * time.Minute
)

// Lock times grow from LockBase, doubling with each lock, up to LockMax.
const (
	LockBase = time.Minute
	LockMax  = 24 * time.Hour
)

// LoginInput is what an end user types on the sign-in page.
type LoginInput struct {
	LoginID  string
	Password string
	// OldSession is the token of the session the browser had, ended on
	// sign-in so that the session gets a new ID.
	OldSession string
}

// LoginResult is a successful sign-in (or the start of a forced change).
type LoginResult struct {
	User *User
	// Restricted means the password has expired: the session may only
	// change it or sign out.
	Restricted bool
	// Session is the new session token for the cookie.
	Session string
}

// Session is an end user's signed-in session.
type Session struct {
	UserID     string
	Restricted bool
	// CreatedAt is when the user signed in (or replaced an expired
	// password): an OpenID Connect app's auth_time.
	CreatedAt time.Time
	tokenHash string
}

func lockedErr(until *time.Time) *Error {
	e := &Error{Name: "Forbidden", Reason: ReasonAccountLocked, Message: "Too many failed sign-in attempts. Try again later, or use “Forgot password”."}
	if until != nil {
		e.Info = map[string]any{"until": until.UTC().Format(time.RFC3339)}
	}
	return e
}

// userActor is the actor for something a user does themselves.
func userActor(a Actor, userID string) Actor {
	a.Kind, a.TriggeredBy, a.ID = "user", "user", userID
	return a
}

// Login signs an end user in with a login ID and password.
//
// A wrong login ID and a wrong password return ErrBadCredentials after the
// same hashing work. A known user's attempt is reserved in the lockout
// counter BEFORE the hash is checked, in one atomic statement, so parallel
// guesses never get more tries than the policy's lockout threshold. A
// disabled account, a lapsed temporary password and a lock return *Error
// with ReasonUserDisabled, ReasonTemporaryPasswordExpired and
// ReasonAccountLocked; the first two only after the correct password, so
// they reveal nothing to someone guessing.
func (s *Service) Login(ctx context.Context, actor Actor, in LoginInput) (*LoginResult, error) {
	policy := s.Policy()
	id, err := ParseAnyLoginID(in.LoginID, s.cfg.PhoneRegion)
	if err != nil {
		s.hasher.VerifyDummy(in.Password)
		return nil, ErrBadCredentials
	}
	ident, err := s.store.IdentityByNorm(ctx, id.Norm)
	if errors.Is(err, store.ErrNotFound) {
		s.hasher.VerifyDummy(in.Password)
		return nil, ErrBadCredentials
	} else if err != nil {
		return nil, err
	}
	u, err := loadUser(ctx, &s.store.Tx, ident.UserID)
	if err != nil {
		return nil, err
	}
	if u.Password == nil {
		s.hasher.VerifyDummy(in.Password)
		return nil, ErrBadCredentials
	}
	actor = userActor(actor, u.ID)
	if policy.LockoutThreshold > 0 {
		// Not cancellable: a client hanging up while the reservation is
		// in flight must not leave it made but unknown to us (on
		// PostgreSQL a cancelled statement may still have committed),
		// since only a known reservation gets settled below.
		ok, err := s.store.ReserveLoginAttempt(context.WithoutCancel(ctx), u.ID, policy.LockoutThreshold, s.Now())
		if err != nil {
			return nil, err
		}
		if !ok {
			// The same hashing work as a wrong password, so a locked
			// account cannot be told from an unknown one by time.
			s.hasher.VerifyDummy(in.Password)
			l, err := s.store.LockoutByUser(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			return nil, lockedErr(l.LockedUntil)
		}
		// The attempt is reserved: settle it whatever happens to the
		// request from here on. A client that hangs up mid-check cancels
		// the request's context, and a reservation left unsettled would
		// count against the account until it lapses.
		ctx = context.WithoutCancel(ctx)
	}
	reserved := policy.LockoutThreshold > 0
	// settle runs a settlement of the reserved attempt (retried in the
	// background when it fails); without a reservation, just fn.
	settle := func(what string, fn func(ctx context.Context) error) error {
		if !reserved {
			return fn(ctx)
		}
		return s.settle(ctx, what, u.ID, fn)
	}
	if !s.hasher.Verify(u.Password.Hash, in.Password) {
		now := s.Now()
		fail := func(ctx context.Context) error {
			var until *time.Time
			err := s.store.InTx(ctx, func(tx *store.Tx) error {
				if reserved {
					var err error
					if until, err = tx.FailLoginAttempt(ctx, u.ID, policy.LockoutThreshold, now, policy.LockDuration(), LockMax); err != nil {
						return err
					}
				}
				return s.events.Record(ctx, tx, actor, Event{Type: EventAuthPasswordFailed, UserID: u.ID,
					Payload: map[string]any{"user": UserPayload(u)["user"]}})
			})
			if err == nil && until != nil {
				s.log.Warn("user account locked", "user_id", u.ID, "until", until, "ip", actor.IP)
			}
			return err
		}
		if err := settle("user failure", fail); err != nil {
			return nil, err
		}
		return nil, ErrBadCredentials
	}
	// The password is right: whatever follows, the failures are forgotten
	// (clear settles the reservation; when the write that does it fails,
	// it is retried alone), and a hash in an old format or at another cost
	// is brought up to date.
	clear := func(ctx context.Context) error { return s.store.ClearLoginFailures(ctx, u.ID) }
	s.rehash(u.Password.Hash, in.Password, func(h string) error {
		return s.store.RehashPassword(ctx, u.ID, u.Password.Hash, h)
	})
	now := s.Now()
	if u.IsDisabled {
		if err := settle("user success", clear); err != nil {
			return nil, err
		}
		return nil, &Error{Name: "Forbidden", Reason: ReasonUserDisabled, Message: "Your account is disabled. Contact your administrator."}
	}
	if s.TemporaryPasswordLapsed(u, now) {
		if err := settle("user success", clear); err != nil {
			return nil, err
		}
		return nil, &Error{Name: "Forbidden", Reason: ReasonTemporaryPasswordExpired,
			Message: "Your temporary password has expired. Use “Forgot password” to set a new one."}
	}
	res := &LoginResult{User: u, Restricted: s.MustChangePassword(u, now)}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.ClearLoginFailures(ctx, u.ID); err != nil {
			return err
		}
		if in.OldSession != "" {
			if err := tx.DeleteUserSession(ctx, hashToken(in.OldSession)); err != nil {
				return err
			}
		}
		var err error
		if res.Session, err = s.startSession(ctx, tx, actor, u.ID, res.Restricted, now); err != nil {
			return err
		}
		if res.Restricted {
			return nil
		}
		return s.authenticated(ctx, tx, actor, u, now)
	})
	if err != nil {
		if reserved {
			s.settleLater("user success", u.ID, err, clear)
		}
		return nil, err
	}
	return res, nil
}

// rehash stores a new hash of password through put when stored is not in
// the current format and cost (an imported hash, a changed cost). A
// failure is logged, not returned: the sign-in itself succeeded.
func (s *Service) rehash(stored, password string, put func(hash string) error) {
	if !s.hasher.NeedsRehash(stored) {
		return
	}
	h, err := s.hasher.Hash(password)
	if err == nil {
		err = put(h)
	}
	if err != nil {
		s.log.Error("rehash password", "err", err)
	}
}

// authenticated records a completed sign-in: last login and the event.
func (s *Service) authenticated(ctx context.Context, tx *store.Tx, actor Actor, u *User, now time.Time) error {
	if err := tx.TouchUserLogin(ctx, u.ID, now); err != nil {
		return err
	}
	u.LastLoginAt = &now
	return s.events.Record(ctx, tx, actor, Event{Type: EventUserAuthenticated, UserID: u.ID, Payload: UserPayload(u)})
}

// TemporaryPasswordLapsed reports whether u's password is a temporary one
// (set by an admin, who asked the user to change it at login) whose change
// has been due for the policy's TemporaryExpiryDays, so it no longer signs
// in. The days count from expire_after, the moment the change was asked
// for: an old admin-set password that an admin only now flags gets the
// full grace period instead of lapsing on the spot.
func (s *Service) TemporaryPasswordLapsed(u *User, now time.Time) bool {
	days := s.Policy().TemporaryExpiryDays
	p := u.Password
	return days > 0 && p != nil && p.SetByAdmin && p.ExpireAfter != nil &&
		!now.Before(p.ExpireAfter.Add(time.Duration(days)*24*time.Hour))
}

// MustChangePassword reports whether u must choose a new password before
// doing anything else: expire_after has been reached, or the password is
// older than the policy's MaxAgeDays.
func (s *Service) MustChangePassword(u *User, now time.Time) bool {
	if u.PasswordExpired(now) {
		return true
	}
	days := s.Policy().MaxAgeDays
	return days > 0 && u.Password != nil && !now.Before(u.Password.CreatedAt.Add(time.Duration(days)*24*time.Hour))
}

func (s *Service) startSession(ctx context.Context, tx *store.Tx, actor Actor, userID string, restricted bool, now time.Time) (string, error) {
	if err := tx.DeleteExpiredUserSessions(ctx, userID, now); err != nil {
		return "", err
	}
	token := NewToken()
	ttl := SessionTTL
	if restricted {
		ttl = RestrictedSessionTTL
	}
	ua := actor.UserAgent
	if len(ua) > 300 {
		ua = ua[:300]
	}
	err := tx.InsertUserSession(ctx, store.UserSession{TokenHash: hashToken(token), UserID: userID, Restricted: restricted,
		CreatedAt: now, ExpiresAt: now.Add(ttl), IP: actor.IP, UserAgent: ua})
	return token, err
}

// Session returns the live session for a cookie token. An unknown or
// expired token, or a disabled user, gives an *Error with ReasonSessionEnded.
func (s *Service) Session(ctx context.Context, token string) (*Session, error) {
	if token == "" {
		return nil, sessionEnded()
	}
	h := hashToken(token)
	us, err := s.store.UserSessionByHash(ctx, h, s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, sessionEnded()
	} else if err != nil {
		return nil, err
	}
	if us.UserDisabled {
		_ = s.store.DeleteUserSession(ctx, h)
		return nil, sessionEnded()
	}
	s.touchSession(ctx, us)
	return &Session{UserID: us.UserID, Restricted: us.Restricted, CreatedAt: us.CreatedAt, tokenHash: h}, nil
}

func sessionEnded() *Error {
	return &Error{Name: "Unauthenticated", Reason: ReasonSessionEnded, Message: "Your session has ended. Sign in again."}
}

// Logout ends the session with this token.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.store.DeleteUserSession(ctx, hashToken(token))
}

// Lockout returns a user's sign-in lockout state; nil when they have none.
func (s *Service) Lockout(ctx context.Context, userID string) (*store.Lockout, error) {
	l, err := s.store.LockoutByUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return l, err
}

// ClearLockout lets a locked-out user try again at once (an admin's action).
func (s *Service) ClearLockout(ctx context.Context, actor Actor, userID string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		u, err := loadUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		had, err := tx.DeleteLockout(ctx, userID)
		if err != nil || !had {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventUserLockoutCleared, UserID: userID, Payload: map[string]any{"user": UserPayload(u)["user"]}})
	})
}

// NewToken returns 32 random bytes, base64url-encoded: session tokens,
// reset links, API key secrets, CSRF tokens.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("account: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how session tokens, reset links, API key secrets and the
// setup token are stored: hex SHA-256.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
