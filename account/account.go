// Package account is Latchkey's domain: users, their login IDs and
// passwords, the password policy, and portal admins. The portal, the Auth UI
// and the Admin API all call it, so every rule lives here once.
package account

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"latchkey/store"
)

// Actor says who asks for a change and from where. It ends up in events
// and the audit log.
type Actor struct {
	// Kind is "admin" (portal), "api_key" (Admin API), "user" (Auth UI) or "system".
	Kind string
	// ID and Name identify the admin, API key or user.
	ID   string
	Name string
	// TriggeredBy is the reference product's context.triggered_by:
	// "admin_api" for changes made by an admin through the portal or the API.
	TriggeredBy string
	IP          string
	UserAgent   string
	Languages   []string
}

// SystemActor is the actor for changes Latchkey makes on its own.
var SystemActor = Actor{Kind: "system", TriggeredBy: "system"}

// PasswordMail asks for a password email. It is queued inside the
// transaction that sets the password, so the two commit together.
type PasswordMail struct {
	// Kind is MailNewUser or MailPasswordReset.
	Kind       string
	UserID     string
	To         string
	LoginID    string
	Password   string
	MustChange bool
	// Channel is "" or store.ChannelEmail for email, store.ChannelSMS for
	// a text message to the phone number in To.
	Channel string
	// ValidDays, for a text, says how many days the temporary password
	// keeps working (0: no limit to mention).
	ValidDays int
	// Refused, when set, is why an abuse limit kept the text from being
	// sent: the mailer records a failed message with this reason instead.
	Refused string
	// ExpiresAt is when a temporary password stops signing in (nil: it
	// does not lapse); filled in from the policy as the mail is queued.
	ExpiresAt *time.Time
}

// Password mail kinds.
const (
	MailNewUser       = "new_user"
	MailPasswordReset = "password_reset"
)

// ForgotPasswordMail asks for the forgot-password message: a 6-digit code
// and a link. Code and Link are plaintext here and must be stored only
// encrypted (or not at all) by the mailer; the account package keeps their hashes.
type ForgotPasswordMail struct {
	UserID  string
	To      string
	Code    string
	Link    string
	CodeTTL time.Duration
	LinkTTL time.Duration
	// Channel is "" for email (code and link), store.ChannelSMS for a
	// text with the code only.
	Channel string
}

// Mailer queues email inside a store transaction. The mail package
// implements it with a durable outbox.
type Mailer interface {
	QueuePassword(ctx context.Context, tx *store.Tx, m PasswordMail) error
	QueueForgotPassword(ctx context.Context, tx *store.Tx, m ForgotPasswordMail) error
}

// Event is a thing that happened, recorded in the same transaction as the change.
type Event struct {
	Type    string
	UserID  string
	Payload map[string]any
}

// Events records events and runs blocking hooks. The hooks package
// implements it.
type Events interface {
	// Record writes ev (and its webhook deliveries) inside tx.
	Record(ctx context.Context, tx *store.Tx, actor Actor, ev Event) error
	// Blocking runs the blocking hooks for ev before any write; an error vetoes it.
	Blocking(ctx context.Context, actor Actor, ev Event) error
}

// NopEvents records nothing and allows everything: the Events of a
// service, outbox or test without the hooks package.
type NopEvents struct{}

// Record does nothing.
func (NopEvents) Record(context.Context, *store.Tx, Actor, Event) error { return nil }

// Blocking allows everything.
func (NopEvents) Blocking(context.Context, Actor, Event) error { return nil }

// Config holds the account settings that come from the environment.
type Config struct {
	// BcryptCost is the bcrypt work factor (default 10).
	BcryptCost int
	// PhoneRegion is the default region for phone numbers without a country code.
	PhoneRegion string
	// SMS holds the abuse limits on text messages (account/sms.go).
	SMS SMSLimits
}

// Service runs every account operation.
type Service struct {
	store  *store.Store
	hasher *Hasher
	mailer Mailer
	events Events
	cfg    Config
	log    *slog.Logger
	policy atomic.Pointer[Policy]
	// totpSealer seals admins' TOTP secrets: see SetSecret (totp.go).
	totpSealer *Sealer
	// require2FA caches the "every admin must use two-factor" setting,
	// which the portal checks on every request (require2fa_cache.go).
	require2FA settingCache
	// Now is the clock; tests move it.
	Now func() time.Time
}

// New makes a Service. mailer and events may be nil until their packages
// are wired in; then no mail is queued and no event recorded.
func New(ctx context.Context, st *store.Store, cfg Config, mailer Mailer, events Events, log *slog.Logger) (*Service, error) {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 10
	}
	if cfg.PhoneRegion == "" {
		cfg.PhoneRegion = "US"
	}
	if events == nil {
		events = NopEvents{}
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{store: st, hasher: &Hasher{Cost: cfg.BcryptCost}, mailer: mailer, events: events, cfg: cfg, log: log,
		Now: func() time.Time { return time.Now().UTC() }}
	if err := s.loadPolicy(ctx); err != nil {
		return nil, err
	}
	if err := s.renormalizeLoginIDs(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SetMailer replaces the mailer (tests swap in recorders; main passes the
// outbox to New).
func (s *Service) SetMailer(m Mailer) { s.mailer = m }

// SetEvents replaces the event recorder (tests; main passes hooks to New).
func (s *Service) SetEvents(e Events) {
	if e == nil {
		e = NopEvents{}
	}
	s.events = e
}

// Hasher exposes the password hasher (benchmarks, imports).
func (s *Service) Hasher() *Hasher { return s.hasher }

// Store exposes the store to packages that read alongside the service.
func (s *Service) Store() *store.Store { return s.store }

// PhoneRegion is the default phone region.
func (s *Service) PhoneRegion() string { return s.cfg.PhoneRegion }

const policySetting = "password_policy"

func (s *Service) loadPolicy(ctx context.Context) error {
	p := DefaultPolicy()
	raw, err := s.store.Setting(ctx, policySetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("account: load policy: %w", err)
	default:
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("account: load policy: %w", err)
		}
	}
	s.policy.Store(&p)
	return nil
}

// Policy returns the password policy in force.
func (s *Service) Policy() Policy { return *s.policy.Load() }

// Caps on the password policy: every remembered password is a bcrypt
// check on each change, and every keyword a scan of each password checked.
const (
	MaxHistorySize      = 50
	MaxExcludedKeywords = 200
	MaxKeywordLength    = 100
)

// SavePolicy validates and stores a new password policy.
func (s *Service) SavePolicy(ctx context.Context, actor Actor, p Policy) error {
	var errs []*Error
	if p.MinLength < 1 || p.MinLength > 128 {
		errs = append(errs, fieldErr("min_length", "ValidationFailed", "Minimum length must be between 1 and 128.", nil))
	}
	if p.LockoutMinutes < 0 || p.LockoutMinutes > 1440 {
		errs = append(errs, fieldErr("lockout_minutes", "ValidationFailed", "Enter between 1 and 1440 minutes (24 hours).", nil))
	}
	if p.MinimumGuessableLevel < 0 || p.MinimumGuessableLevel > 5 {
		errs = append(errs, fieldErr("minimum_guessable_level", "ValidationFailed", "Guessable level must be between 0 (off) and 5.", nil))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"history_size", p.HistorySize}, {"history_days", p.HistoryDays}, {"max_age_days", p.MaxAgeDays},
		{"temporary_expiry_days", p.TemporaryExpiryDays}, {"lockout_threshold", p.LockoutThreshold}} {
		if f.v < 0 || f.v > 3650 {
			errs = append(errs, fieldErr(f.name, "ValidationFailed", "Enter a number between 0 and 3650.", nil))
		}
	}
	if p.HistorySize > MaxHistorySize {
		errs = append(errs, fieldErr("history_size", "ValidationFailed", fmt.Sprintf("Enter a number between 0 and %d: each remembered password is checked on every change.", MaxHistorySize), nil))
	}
	var kw []string
	for _, k := range p.ExcludedKeywords {
		if k = strings.TrimSpace(k); k != "" {
			kw = append(kw, k)
		}
	}
	p.ExcludedKeywords = kw
	if len(kw) > MaxExcludedKeywords {
		errs = append(errs, fieldErr("excluded_keywords", "ValidationFailed", fmt.Sprintf("Enter at most %d keywords.", MaxExcludedKeywords), nil))
	}
	for _, k := range kw {
		if utf8.RuneCountInString(k) > MaxKeywordLength {
			errs = append(errs, fieldErr("excluded_keywords", "ValidationFailed", fmt.Sprintf("A keyword can be at most %d characters.", MaxKeywordLength), nil))
			break
		}
	}
	if err := JoinErrors(errs); err != nil {
		return err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("account: save policy: %w", err)
	}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutSetting(ctx, policySetting, raw); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventPasswordPolicyUpdate, Payload: map[string]any{"policy": p}})
	})
	if err != nil {
		return fmt.Errorf("account: save policy: %w", err)
	}
	s.policy.Store(&p)
	return nil
}

// DeriveKey derives a purpose-bound key from the server secret, so the
// session cookies and the outbox encryption never share a key.
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("latchkey:" + purpose))
	return m.Sum(nil)
}
