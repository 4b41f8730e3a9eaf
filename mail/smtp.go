// Package mail delivers Latchkey's email: a durable outbox written inside
// account transactions, a worker that sends it over SMTP (or into the dev
// mailbox when no SMTP server is configured), and the messages themselves.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jordan-wright/email"
)

// Message is one email ready to send.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Kind is the outbox kind (new_user, password_reset, forgot_password);
	// SMS providers pass it on as the template name.
	Kind string
}

// Sender delivers a message. An error wrapped in PermanentError means the
// server refused it for good; any other error is worth a retry.
type Sender interface {
	Send(ctx context.Context, from string, m Message) error
}

// PermanentError is a refusal that retrying will not fix (an SMTP 5xx
// reply to the sender, a recipient or the message).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent delivery failure.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// TLS modes of an SMTP URL.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
	TLSNone     = "none"
)

// SMTPConfig is the SMTP server to deliver through.
type SMTPConfig struct {
	Host     string
	Port     string
	TLS      string
	Username string
	Password string
	// HelloName is the name given in EHLO (default "localhost").
	HelloName string
	// Timeout bounds each send: dial, TLS, auth and the whole SMTP
	// conversation (default 30s).
	Timeout time.Duration
	// MaxIdle is how many connections are kept open for reuse (default 4).
	MaxIdle int
	// IdleTimeout closes a pooled connection unused for this long (default 30s),
	// before the server's own idle timeout does.
	IdleTimeout time.Duration
	// RootCAs verifies the server's certificate; nil means the system roots.
	RootCAs *x509.CertPool
}

// ParseSMTPURL reads LATCHKEY_SMTP_URL:
// smtp://user:pass@host:port?tls=starttls|implicit|none. The port defaults
// to 587 (starttls), 465 (implicit) or 25 (none); smtps:// means implicit TLS.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	var c SMTPConfig
	u, err := url.Parse(raw)
	if err != nil {
		return c, fmt.Errorf("mail: LATCHKEY_SMTP_URL is not a URL")
	}
	switch u.Scheme {
	case "smtp":
		c.TLS = TLSStartTLS
	case "smtps":
		c.TLS = TLSImplicit
	default:
		return c, fmt.Errorf("mail: LATCHKEY_SMTP_URL must start with smtp:// or smtps://")
	}
	if t := u.Query().Get("tls"); t != "" {
		switch t {
		case TLSStartTLS, TLSImplicit, TLSNone:
			c.TLS = t
		default:
			return c, fmt.Errorf("mail: LATCHKEY_SMTP_URL: tls must be starttls, implicit or none, not %q", t)
		}
	}
	c.Host, c.Port = u.Hostname(), u.Port()
	if c.Host == "" {
		return c, fmt.Errorf("mail: LATCHKEY_SMTP_URL has no host")
	}
	if c.Port == "" {
		c.Port = map[string]string{TLSStartTLS: "587", TLSImplicit: "465", TLSNone: "25"}[c.TLS]
	}
	if n, err := strconv.Atoi(c.Port); err != nil || n < 1 || n > 65535 {
		return c, fmt.Errorf("mail: LATCHKEY_SMTP_URL has a bad port %q", c.Port)
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return c, nil
}

// SMTPSender sends over SMTP and keeps connections open between sends, so
// a burst of messages costs one connection (and one TLS handshake and
// login) per concurrent sender rather than one per message.
//
// It composes messages with jordan-wright/email but does not use that
// library's Pool: the Pool has data races on connection failure (go test
// -race flags them when the server is down), no deadline on the SMTP
// conversation itself (a stalled server would hang a send for ever), and
// no implicit TLS.
type SMTPSender struct {
	cfg SMTPConfig

	mu     sync.Mutex
	idle   []*smtpConn
	closed bool
	// dials counts connections opened, for tests and benchmarks.
	dials int
}

type smtpConn struct {
	conn     net.Conn
	c        *smtp.Client
	lastUsed time.Time
}

// NewSMTPSender makes a sender; it connects on the first Send.
func NewSMTPSender(cfg SMTPConfig) *SMTPSender {
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 4
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	return &SMTPSender{cfg: cfg}
}

// Dials counts the SMTP connections opened so far.
func (s *SMTPSender) Dials() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

// Close says goodbye on every idle connection.
func (s *SMTPSender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, sc := range idle {
		_ = sc.conn.SetDeadline(time.Now().Add(2 * time.Second))
		_ = sc.c.Quit()
		_ = sc.conn.Close()
	}
	return nil
}

// Send delivers m. SMTP 5xx replies to MAIL, RCPT or DATA come back as
// *PermanentError with the server's text; everything else (refused
// connection, timeout, 4xx, a failed login or TLS handshake, which are
// configuration to fix rather than reasons to drop the message) is temporary.
func (s *SMTPSender) Send(ctx context.Context, from string, m Message) error {
	e := email.NewEmail()
	e.From = from
	e.To = []string{m.To}
	e.Subject = m.Subject
	e.Text = []byte(m.Text)
	e.HTML = []byte(m.HTML)
	raw, err := e.Bytes()
	if err != nil {
		return &PermanentError{fmt.Errorf("mail: compose: %w", err)}
	}
	fromAddr, err := addrOnly(from)
	if err != nil {
		return &PermanentError{fmt.Errorf("mail: sender address: %w", err)}
	}
	toAddr, err := addrOnly(m.To)
	if err != nil {
		return &PermanentError{fmt.Errorf("mail: recipient address: %w", err)}
	}
	var first error
	for try := 0; ; try++ {
		// Each attempt has its own deadline: a retry on a new connection
		// after a reused one stalled must not start out of time.
		deadline := s.attemptDeadline(ctx)
		sc, reused, err := s.get(ctx, deadline)
		if err != nil {
			if first != nil {
				return fmt.Errorf("%w (after a reused connection failed: %v)", err, first)
			}
			return err
		}
		stage, err := sc.send(deadline, fromAddr, toAddr, raw)
		if err == nil {
			s.put(sc)
			return nil
		}
		var te *textproto.Error
		if errors.As(err, &te) {
			// The server answered: the connection is still good.
			if rerr := sc.c.Reset(); rerr == nil {
				s.put(sc)
			} else {
				sc.close()
			}
			if te.Code >= 500 {
				return &PermanentError{fmt.Errorf("%d %s", te.Code, te.Msg)}
			}
			return fmt.Errorf("%d %s", te.Code, te.Msg)
		}
		sc.close()
		where := ""
		if reused {
			where = " on a reused connection"
		}
		err = fmt.Errorf("mail: smtp %s%s: %w", stage, where, err)
		// A pooled connection the server has since closed (or that
		// stalled) fails on the first command, before anything was
		// accepted: try a fresh one.
		if reused && stage == "MAIL" && try == 0 && ctx.Err() == nil {
			first = err
			continue
		}
		if first != nil {
			return fmt.Errorf("%w (after a reused connection failed: %v)", err, first)
		}
		return err
	}
}

// attemptDeadline is now plus the timeout, or ctx's deadline if sooner.
func (s *SMTPSender) attemptDeadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// Warm opens connections until n are idle and ready (greeted, TLS,
// logged in), so the outbox can mark a message sending only once a
// connection waits for it. It stops at the first failure.
func (s *SMTPSender) Warm(ctx context.Context, n int) error {
	n = min(n, s.cfg.MaxIdle)
	for {
		s.mu.Lock()
		fresh := 0
		for _, sc := range s.idle {
			if time.Since(sc.lastUsed) < s.cfg.IdleTimeout {
				fresh++
			}
		}
		if fresh >= n || s.closed {
			s.mu.Unlock()
			return nil
		}
		s.dials++
		s.mu.Unlock()
		sc, err := s.dial(ctx, s.attemptDeadline(ctx))
		if err != nil {
			return err
		}
		s.put(sc)
	}
}

func (sc *smtpConn) send(deadline time.Time, from, to string, raw []byte) (string, error) {
	if err := sc.conn.SetDeadline(deadline); err != nil {
		return "MAIL", err
	}
	if err := sc.c.Mail(from); err != nil {
		return "MAIL", err
	}
	if err := sc.c.Rcpt(to); err != nil {
		return "RCPT", err
	}
	w, err := sc.c.Data()
	if err != nil {
		return "DATA", err
	}
	if _, err := w.Write(raw); err != nil {
		return "DATA", err
	}
	if err := w.Close(); err != nil {
		return "DATA", err
	}
	sc.lastUsed = time.Now()
	return "", nil
}

func (sc *smtpConn) close() { _ = sc.conn.Close() }

// get takes an idle connection or dials a new one.
func (s *SMTPSender) get(ctx context.Context, deadline time.Time) (*smtpConn, bool, error) {
	s.mu.Lock()
	for len(s.idle) > 0 {
		sc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(sc.lastUsed) < s.cfg.IdleTimeout {
			s.mu.Unlock()
			return sc, true, nil
		}
		go func() { _ = sc.c.Quit(); sc.close() }()
	}
	s.dials++
	s.mu.Unlock()
	sc, err := s.dial(ctx, deadline)
	return sc, false, err
}

func (s *SMTPSender) put(sc *smtpConn) {
	s.mu.Lock()
	if !s.closed && len(s.idle) < s.cfg.MaxIdle {
		s.idle = append(s.idle, sc)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	_ = sc.c.Quit()
	sc.close()
}

func (s *SMTPSender) dial(ctx context.Context, deadline time.Time) (*smtpConn, error) {
	addr := net.JoinHostPort(s.cfg.Host, s.cfg.Port)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail: connect to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(deadline)
	tlsCfg := &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: s.cfg.RootCAs}
	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("mail: TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mail: greeting from %s: %w", addr, err)
	}
	fail := func(what string, err error) (*smtpConn, error) {
		conn.Close()
		return nil, fmt.Errorf("mail: %s with %s: %w", what, addr, err)
	}
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fail("EHLO", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fail("STARTTLS", errors.New("the server does not offer STARTTLS (use tls=none to send unencrypted)"))
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fail("STARTTLS", err)
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail("AUTH", errors.New("the server does not offer AUTH"))
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fail("AUTH", err)
		}
	}
	return &smtpConn{conn: conn, c: c, lastUsed: time.Now()}, nil
}

func addrOnly(s string) (string, error) {
	a, err := parseAddress(s)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(a, "\r\n") {
		return "", errors.New("address contains a line break")
	}
	return a, nil
}
