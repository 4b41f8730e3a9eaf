package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"latchkey/account"
	"latchkey/metrics"
	"latchkey/store"
	"latchkey/views"
)

// KindForgotPassword is the outbox kind of the forgot-password message;
// the password kinds are account.MailNewUser and account.MailPasswordReset.
const KindForgotPassword = "forgot_password"

// Config is the outbox's settings.
type Config struct {
	AppName string
	// PublicURL is where users reach Latchkey; sign-in links point to PublicURL + "/login".
	PublicURL string
	// From is the From address (LATCHKEY_MAIL_FROM).
	From string
	// Secret is the server secret; the outbox key is derived from it.
	Secret []byte
	// Concurrency is how many messages are sent at once (default 4).
	Concurrency int
	// SendTimeout bounds one delivery attempt (default 30s).
	SendTimeout time.Duration
	// RetryBase is the first retry delay; each retry doubles it (default 30s)
	// up to RetryMax (default 1h).
	RetryBase time.Duration
	RetryMax  time.Duration
	// GiveUpAfter abandons a message still failing this long after it was
	// queued (default 24h).
	GiveUpAfter time.Duration
	// PollInterval is the longest the worker sleeps without being woken
	// (default 1 min); commits wake it at once.
	PollInterval time.Duration
	// KeepFailedFor is how long a failed message keeps its sealed secret,
	// so that "Retry all" can still send it (default 7 days); then the
	// secret is wiped.
	KeepFailedFor time.Duration
	// Lease, when > 0, is how long a claimed message stays hidden from
	// other workers before it is taken again (LATCHKEY_WORKER_LEASE);
	// default twice SendTimeout plus a minute.
	Lease time.Duration
	Log   *slog.Logger
}

// Outbox is Latchkey's durable email outbox: it implements account.Mailer
// by writing sealed rows inside the caller's transaction, and runs the
// worker that delivers them.
type Outbox struct {
	st     *store.Store
	sender Sender
	// texts delivers the sms channel (mail/text.go); nil until SetTextSender.
	texts  Sender
	sealer *account.Sealer
	cfg    Config
	log    *slog.Logger
	events account.Events

	wake chan struct{}
	// writeMu serialises the worker's own write transactions, so its
	// senders queue in Go instead of in SQLite's busy handler.
	writeMu sync.Mutex

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// stop is closed when Stop begins; outcome retries end then.
	stop chan struct{}

	// active maps the messages this process is sending to their claim's
	// fencing token (attempts).
	activeMu sync.Mutex
	active   map[int64]int
	// unsettled counts sent messages whose outcome is being recorded;
	// while any is, the worker claims nothing.
	unsettled atomic.Int32
	// failing is set, per channel, by a temporary failure and cleared by
	// the next delivery on that channel, which then releases the messages
	// waiting on backoff for it (an SMTP recovery says nothing of the SMS
	// provider).
	failing sync.Map // channel -> true

	// Now is the clock; tests move it.
	Now func() time.Time

	hb metrics.Heartbeat // the worker's last round, for /readyz
}

// New makes an outbox over st that delivers through sender.
func New(st *store.Store, sender Sender, cfg Config) (*Outbox, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("mail: no server secret")
	}
	if cfg.AppName == "" {
		cfg.AppName = "Latchkey"
	}
	if cfg.From == "" {
		cfg.From = cfg.AppName + " <no-reply@localhost>"
	}
	if _, err := parseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: LATCHKEY_MAIL_FROM %q is not an email address: %w", cfg.From, err)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 24 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Minute
	}
	if cfg.KeepFailedFor <= 0 {
		cfg.KeepFailedFor = 7 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	sealer, err := account.NewSealer(cfg.Secret, "outbox")
	if err != nil {
		return nil, fmt.Errorf("mail: outbox key: %w", err)
	}
	return &Outbox{st: st, sender: sender, sealer: sealer, cfg: cfg, log: cfg.Log, events: account.NopEvents{},
		wake: make(chan struct{}, 1), Now: func() time.Time { return time.Now().UTC() }}, nil
}

// SetEvents wires in the event recorder for email.sent and email.failed.
// Call it before Start: the worker reads it without a lock.
func (o *Outbox) SetEvents(e account.Events) {
	if e == nil {
		e = account.NopEvents{}
	}
	o.events = e
}

// DevMailbox returns the dev mailbox when that is where mail goes, or nil.
func (o *Outbox) DevMailbox() *DevMailbox {
	d, _ := o.sender.(*DevMailbox)
	return d
}

// Store is the store the outbox lives in.
func (o *Outbox) Store() *store.Store { return o.st }

// sealed is what a row's secret column holds, encrypted: everything the
// message needs that must not sit in the database in plaintext.
type sealed struct {
	LoginID    string `json:"login_id,omitempty"`
	Password   string `json:"password,omitempty"`
	MustChange bool   `json:"must_change,omitempty"`
	ExpiresAt  int64  `json:"expires_at,omitempty"` // unix seconds: the temporary password stops working
	Code       string `json:"code,omitempty"`
	Link       string `json:"link,omitempty"`
	CodeTTL    int64  `json:"code_ttl,omitempty"`
	LinkTTL    int64  `json:"link_ttl,omitempty"`
	ValidDays  int    `json:"valid_days,omitempty"`
}

// aad binds a sealed secret to its row's kind, user and recipient, so a
// database writer cannot move a password to another address.
func aad(kind, userID, recipient string) []byte {
	return []byte("latchkey-outbox\x00" + kind + "\x00" + userID + "\x00" + strings.ToLower(recipient))
}

func (o *Outbox) seal(kind, userID, recipient string, s sealed) ([]byte, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return o.sealer.Seal(plain, aad(kind, userID, recipient))
}

func (o *Outbox) open(m *store.OutboxMessage) (sealed, error) {
	var s sealed
	if len(m.Secret) == 0 {
		return s, errors.New("the message's secret is missing")
	}
	plain, err := o.sealer.Open(m.Secret, aad(m.Kind, m.UserID, m.Recipient))
	if err != nil {
		return s, errors.New("the message cannot be decrypted (was the server secret changed?)")
	}
	defer clear(plain)
	err = json.Unmarshal(plain, &s)
	return s, err
}

func (o *Outbox) subject(kind string) string {
	switch kind {
	case account.MailNewUser:
		return "Get Started With " + o.cfg.AppName
	case account.MailPasswordReset:
		return "[" + o.cfg.AppName + "] Your password has been changed"
	case KindForgotPassword:
		return "[" + o.cfg.AppName + "] Reset your password"
	case KindAdminInvite:
		return "[" + o.cfg.AppName + "] You are invited as an admin"
	}
	return ""
}

// QueuePassword implements account.Mailer: it writes the sealed message
// with tx, so it commits or rolls back with the password it carries, and
// wakes the worker once tx commits.
func (o *Outbox) QueuePassword(ctx context.Context, tx *store.Tx, m account.PasswordMail) error {
	if m.Kind != account.MailNewUser && m.Kind != account.MailPasswordReset {
		return fmt.Errorf("mail: unknown password mail kind %q", m.Kind)
	}
	if m.Channel == store.ChannelSMS {
		return o.queueText(ctx, tx, m.Kind, m.UserID, m.To, m.Refused, sealed{LoginID: m.LoginID, Password: m.Password, MustChange: m.MustChange, ValidDays: m.ValidDays})
	}
	return o.queue(ctx, tx, m.Kind, m.UserID, m.To, sealed{LoginID: m.LoginID, Password: m.Password, MustChange: m.MustChange, ExpiresAt: unixOrZero(m.ExpiresAt)})
}

// QueueForgotPassword implements account.Mailer for the forgot-password
// code and link.
func (o *Outbox) QueueForgotPassword(ctx context.Context, tx *store.Tx, m account.ForgotPasswordMail) error {
	if m.Channel == store.ChannelSMS {
		return o.queueText(ctx, tx, KindForgotPassword, m.UserID, m.To, "", sealed{Code: m.Code, CodeTTL: int64(m.CodeTTL / time.Second)})
	}
	return o.queue(ctx, tx, KindForgotPassword, m.UserID, m.To, sealed{Code: m.Code, Link: m.Link,
		CodeTTL: int64(m.CodeTTL / time.Second), LinkTTL: int64(m.LinkTTL / time.Second)})
}

func (o *Outbox) queue(ctx context.Context, tx *store.Tx, kind, userID, to string, s sealed) error {
	if _, err := addrOnly(to); err != nil {
		return fmt.Errorf("mail: queue %s: bad recipient: %w", kind, err)
	}
	secret, err := o.seal(kind, userID, to, s)
	if err != nil {
		return fmt.Errorf("mail: queue %s: %w", kind, err)
	}
	now := o.Now()
	row := &store.OutboxMessage{UserID: userID, Kind: kind, Recipient: to, Subject: o.subject(kind), Secret: secret,
		NextAttemptAt: now, CreatedAt: now}
	if err := tx.InsertOutbox(ctx, row); err != nil {
		return fmt.Errorf("mail: queue %s: %w", kind, err)
	}
	return o.notify(ctx, tx)
}

// notify wakes the outbox workers once tx commits: this process's and,
// on PostgreSQL, every other instance's (store.Tx.Notify).
func (o *Outbox) notify(ctx context.Context, tx *store.Tx) error {
	if err := tx.Notify(ctx, store.ChannelOutbox); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return nil
}

// Wake makes the worker look for due messages now.
func (o *Outbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// render opens a row's secret and builds its message.
func (o *Outbox) render(ctx context.Context, m *store.OutboxMessage) (Message, error) {
	s, err := o.open(m)
	if err != nil {
		return Message{}, err
	}
	if m.Channel == store.ChannelSMS {
		return o.renderText(m, s)
	}
	msg := Message{To: m.Recipient, Subject: m.Subject, Kind: m.Kind}
	var buf bytes.Buffer
	switch m.Kind {
	case account.MailNewUser, account.MailPasswordReset:
		d := views.PasswordEmail{AppName: o.cfg.AppName, LoginID: s.LoginID, Password: s.Password,
			SignInURL: o.cfg.PublicURL + "/login", MustChange: s.MustChange, ExpiresAt: expiresText(s.ExpiresAt)}
		if m.Kind == account.MailNewUser {
			err = views.NewUserEmailHTML(d).Render(ctx, &buf)
			msg.Text = views.NewUserEmailText(d)
		} else {
			err = views.PasswordResetEmailHTML(d).Render(ctx, &buf)
			msg.Text = views.PasswordResetEmailText(d)
		}
	case KindForgotPassword:
		d := views.ForgotPasswordEmail{AppName: o.cfg.AppName, Code: s.Code, Link: s.Link,
			CodeMinutes: int((s.CodeTTL + 59) / 60), LinkMinutes: int((s.LinkTTL + 59) / 60)}
		err = views.ForgotPasswordEmailHTML(d).Render(ctx, &buf)
		msg.Text = views.ForgotPasswordEmailText(d)
	case KindAdminInvite: // LoginID holds who invited
		d := views.AdminInviteEmail{AppName: o.cfg.AppName, Link: s.Link, InvitedBy: s.LoginID, Hours: int(s.LinkTTL / 3600)}
		err = views.AdminInviteEmailHTML(d).Render(ctx, &buf)
		msg.Text = views.AdminInviteEmailText(d)
	default:
		err = fmt.Errorf("unknown message kind %q", m.Kind)
	}
	if err != nil {
		return Message{}, err
	}
	msg.HTML = buf.String()
	return msg, nil
}

// backoff is the delay before retry number attempts (1-based): RetryBase
// doubling up to RetryMax, with up to 10% jitter so a recovered server is
// not hit by every message at once.
func (o *Outbox) backoff(attempts int) time.Duration {
	d := o.cfg.RetryBase
	for i := 1; i < attempts && d < o.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, o.cfg.RetryMax)
	return d + time.Duration(mrand.Int64N(int64(d)/10+1))
}

// RetryAll makes every queued message due now and puts failed messages
// that still hold their secret back in the queue ("Retry all" on the
// outbox page), then wakes the worker. It returns how many it touched.
func (o *Outbox) RetryAll(ctx context.Context) (int, error) {
	var n int
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.RetryAllOutbox(ctx, o.Now())
		if err == nil && n > 0 {
			err = o.notify(ctx, tx)
		}
		return err
	})
	return n, err
}

// RetryNow makes a queued message to userID due at once and wakes the
// worker. It reports false when the message is not held any more.
func (o *Outbox) RetryNow(ctx context.Context, userID string, id int64) (bool, error) {
	var ok bool
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		ok, err = tx.RetryOutboxNow(ctx, id, userID, o.Now())
		if err == nil && ok {
			err = o.notify(ctx, tx)
		}
		return err
	})
	return ok, err
}
