// Package mailtest runs a real SMTP server inside a test process, so mail
// tests exercise the whole SMTP conversation: connection, envelope, DATA.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jordan-wright/email"
)

// Message is one message the server accepted.
type Message struct {
	From    string
	To      []string
	Raw     []byte
	Subject string
	Text    string
	HTML    string
}

// Server is an SMTP server on 127.0.0.1 that keeps what it receives.
type Server struct {
	t    testing.TB
	addr string

	mu       sync.Mutex
	srv      *smtp.Server
	messages []Message
	notify   chan struct{}
	// rcptErr, when set, answers RCPT TO with this error (e.g. a 5xx).
	rcptErr *smtp.SMTPError
	// tempFails answers this many DATA commands with a 451 first.
	tempFails int
	// stallMail holds this many MAIL FROM commands on a connection that
	// already delivered a message, for stallFor, as a server that has
	// quietly stopped answering would.
	stallMail int
	stallFor  time.Duration
	conns     int
	seen      map[string]bool

	// tlsCfg, when set, offers STARTTLS, or with implicit wraps the
	// whole connection in TLS.
	tlsCfg   *tls.Config
	implicit bool
	roots    *x509.CertPool
	// user and pass, when set, are required through AUTH PLAIN.
	user, pass string
}

// Start starts a server on a free loopback port; it stops when the test ends.
func Start(t testing.TB) *Server {
	s := &Server{t: t, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// StartTLS starts a server with a fresh self-signed certificate for
// 127.0.0.1: it offers STARTTLS, or with implicit speaks TLS from the first
// byte. RootCAs trusts the certificate.
func StartTLS(t testing.TB, implicit bool) *Server {
	s := &Server{t: t, notify: make(chan struct{}, 1), implicit: implicit}
	s.tlsCfg, s.roots = selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// RootCAs is a pool holding the server's certificate (TLS servers only).
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// RequireAuth makes the server demand AUTH PLAIN with user and pass before
// it accepts a message.
func (s *Server) RequireAuth(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
}

func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: key: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, pool
}

// Reserve picks a free loopback address without serving on it, for tests
// where the SMTP server is down at first; Up starts it there later.
func Reserve(t testing.TB) *Server {
	s := &Server{t: t, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	t.Cleanup(s.Stop)
	return s
}

// Up starts serving on the server's address (after Reserve or Stop).
func (s *Server) Up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(s)
	srv.Domain = "mailtest.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if s.tlsCfg != nil {
		srv.TLSConfig = s.tlsCfg
		if s.implicit {
			ln = tls.NewListener(ln, s.tlsCfg)
		}
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop stops the server; messages received so far are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is an smtp:// URL for LATCHKEY_SMTP_URL: tls=none, or the server's
// TLS mode, with the credentials RequireAuth set.
func (s *Server) URL() string {
	mode := "none"
	switch {
	case s.tlsCfg != nil && s.implicit:
		mode = "implicit"
	case s.tlsCfg != nil:
		mode = "starttls"
	}
	u := url.URL{Scheme: "smtp", Host: s.addr, RawQuery: "tls=" + mode}
	s.mu.Lock()
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	s.mu.Unlock()
	return u.String()
}

// RejectRecipients makes every RCPT TO fail with code and message (say
// 550); code 0 accepts again.
func (s *Server) RejectRecipients(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.rcptErr = nil
		return
	}
	s.rcptErr = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// TempFail makes the next n messages fail at DATA with a 451.
func (s *Server) TempFail(n int) {
	s.mu.Lock()
	s.tempFails = n
	s.mu.Unlock()
}

// StallReused makes the next n MAIL FROM commands on connections that
// already delivered a message hang for d before answering.
func (s *Server) StallReused(n int, d time.Duration) {
	s.mu.Lock()
	s.stallMail, s.stallFor = n, d
	s.mu.Unlock()
}

// Connections counts the SMTP connections opened so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Messages returns a copy of what was received.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until n messages have arrived, or fails the test.
func (s *Server) WaitFor(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			s.t.Fatalf("mailtest: waited %s for %d messages, got %d", timeout, n, len(s.Messages()))
			return nil
		}
	}
}

// MessageTo returns the last message to addr, waiting up to timeout.
func (s *Server) MessageTo(addr string, timeout time.Duration) Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		msgs := s.Messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			for _, to := range msgs[i].To {
				if strings.EqualFold(to, addr) {
					return msgs[i]
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("mailtest: no message to %s within %s", addr, timeout)
	return Message{}
}

// NewSession implements smtp.Backend.
// A connection that switches to TLS with STARTTLS starts a second
// session; it is counted once, by its client address.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if remote := c.Conn().RemoteAddr().String(); !s.seen[remote] {
		s.seen[remote] = true
		s.conns++
	}
	s.mu.Unlock()
	return &session{s: s}, nil
}

type session struct {
	s      *Server
	from   string
	to     []string
	authed bool
	// delivered counts messages accepted on this connection.
	delivered int
}

// AuthMechanisms implements smtp.AuthSession.
func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth implements smtp.AuthSession: AUTH PLAIN against RequireAuth's pair.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		ss.s.mu.Lock()
		ok := ss.s.user != "" && user == ss.s.user && pass == ss.s.pass
		ss.s.mu.Unlock()
		if !ok {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "mailtest: bad credentials"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	needAuth := ss.s.user != ""
	ss.s.mu.Unlock()
	if needAuth && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.s.mu.Lock()
	var stall time.Duration
	if ss.delivered > 0 && ss.s.stallMail > 0 {
		ss.s.stallMail--
		stall = ss.s.stallFor
	}
	ss.s.mu.Unlock()
	if stall > 0 {
		time.Sleep(stall)
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	rerr := ss.s.rcptErr
	ss.s.mu.Unlock()
	if rerr != nil {
		return rerr
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	if ss.s.tempFails > 0 {
		ss.s.tempFails--
		ss.s.mu.Unlock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailtest: try again later"}
	}
	ss.s.mu.Unlock()
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw}
	if e, err := email.NewEmailFromReader(bytes.NewReader(raw)); err == nil {
		m.Subject, m.Text, m.HTML = e.Subject, string(e.Text), string(e.HTML)
	} else {
		return errors.New("mailtest: unparseable message: " + err.Error())
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, m)
	ss.s.mu.Unlock()
	ss.delivered++
	select {
	case ss.s.notify <- struct{}{}:
	default:
	}
	return nil
}
