// Package smstest runs SMS providers inside a test process: a receiver
// for Latchkey's SMS webhook that checks both signatures, and an endpoint
// that speaks Twilio's Messages API (form fields and basic auth), so SMS
// tests go over real HTTP on loopback.
package smstest

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/hooks"
	"latchkey/sms"
)

// Message is one text a provider accepted.
type Message struct {
	To   string
	Body string
	// Payload is the webhook's JSON body (webhook only).
	Payload sms.WebhookPayload
	// Form is the Twilio request's form (Twilio only).
	Form url.Values
}

// Server is an SMS provider on 127.0.0.1.
type Server struct {
	t    testing.TB
	addr string
	srv  *http.Server

	mu       sync.Mutex
	messages []Message
	notify   chan struct{}
	// requests counts every request, accepted or not.
	requests int
	// status, when not 0, answers every request with it and body (down or refusing).
	status int
	body   string
	// badSignatures counts requests whose signatures did not verify.
	badSignatures int
	// hang, when set, holds each request until the client gives up or
	// the channel is closed (a provider that accepts connections but never
	// answers).
	hang  chan struct{}
	check func(r *http.Request, body []byte) (Message, error)
}

// Secret is the webhook signing secret the receivers expect.
const Secret = "whsec_c21zdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyEhIQ=="

// Twilio credentials the Twilio endpoint expects.
const (
	TwilioSID   = "AC0123456789abcdef0123456789abcdef"
	TwilioToken = "twilio-test-token"
	TwilioFrom  = "+15551230000"
)

func start(t testing.TB, ln net.Listener, check func(*http.Request, []byte) (Message, error)) *Server {
	s := &Server{t: t, notify: make(chan struct{}, 1), check: check}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// StartWebhook runs a receiver for the SMS webhook signed with Secret.
func StartWebhook(t testing.TB) *Server { return start(t, nil, checkWebhook) }

// StartTwilio runs an endpoint that speaks Twilio's Messages API.
func StartTwilio(t testing.TB) *Server { return start(t, nil, checkTwilio) }

// WebhookURL is the LATCHKEY_SMS_URL of a webhook receiver.
func (s *Server) WebhookURL() string { return "webhook+http://" + s.addr + "/sms" }

// TwilioURL is the LATCHKEY_SMS_URL of a Twilio endpoint.
func (s *Server) TwilioURL() string {
	return "twilio://" + TwilioSID + ":" + TwilioToken + "@" + s.addr + "?tls=none&from=" + url.QueryEscape(TwilioFrom)
}

// Stop closes the server: connections are refused from then on.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart() {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve(ln)
}

// Answer makes every request get status and body (503 for "down", 400
// for a refusal); status 0 goes back to accepting.
func (s *Server) Answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// Hang makes every request wait for an answer that never comes (until the
// client gives up); Hang(false) answers again, releasing held requests.
func (s *Server) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on && s.hang == nil {
		s.hang = make(chan struct{})
	} else if !on && s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
}

// Requests counts the requests received, accepted or not.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

// BadSignatures counts webhook requests whose signatures did not verify.
func (s *Server) BadSignatures() int { s.mu.Lock(); defer s.mu.Unlock(); return s.badSignatures }

// Messages returns the texts accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until n texts were accepted, or fails the test.
func (s *Server) WaitFor(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.notify:
		case <-deadline:
			s.t.Fatalf("smstest: waited %s for %d texts, got %d", timeout, n, len(s.Messages()))
		}
	}
}

// MessageTo waits for a text to phone and returns the latest one.
func (s *Server) MessageTo(phone string, timeout time.Duration) Message {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		msgs := s.Messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].To == phone {
				return msgs[i]
			}
		}
		select {
		case <-s.notify:
		case <-deadline:
			s.t.Fatalf("smstest: no text to %s within %s", phone, timeout)
		}
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.requests++
	status, answer, hang := s.status, s.body, s.hang
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
		http.Error(w, "released", http.StatusServiceUnavailable)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
		return
	}
	m, err := s.check(r, body)
	if err != nil {
		s.mu.Lock()
		s.badSignatures++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if m.Form != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"sid":"SM%d","status":"queued","to":%q}`, len(s.Messages()), m.To)
		return
	}
	_, _ = io.WriteString(w, `{"code":"ok"}`)
}

// checkWebhook verifies both signatures and the timestamp, then reads the payload.
func checkWebhook(r *http.Request, body []byte) (Message, error) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		return Message{}, fmt.Errorf("want a JSON POST")
	}
	if got, want := r.Header.Get("x-authgear-body-signature"), hooks.BodySignature(Secret, body); !hmac.Equal([]byte(got), []byte(want)) {
		return Message{}, fmt.Errorf("bad x-authgear-body-signature")
	}
	key, err := hooks.ParseSecret(Secret)
	if err != nil {
		return Message{}, err
	}
	id, tsRaw := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil || id == "" || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return Message{}, fmt.Errorf("bad webhook-id or webhook-timestamp")
	}
	want := hooks.StandardSignature(key, id, ts, body)
	ok := false
	for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			ok = true
		}
	}
	if !ok {
		return Message{}, fmt.Errorf("bad webhook-signature")
	}
	var p sms.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Message{}, err
	}
	if p.To == "" || p.Body == "" || p.TemplateName == "" || p.MessageType == "" || p.LanguageTag == "" {
		return Message{}, fmt.Errorf("payload lacks a field: %s", body)
	}
	return Message{To: p.To, Body: p.Body, Payload: p}, nil
}

// checkTwilio verifies basic auth, the path and the form fields.
func checkTwilio(r *http.Request, body []byte) (Message, error) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != TwilioSID || pass != TwilioToken {
		return Message{}, fmt.Errorf("bad basic auth")
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+TwilioSID+"/Messages.json" {
		return Message{}, fmt.Errorf("bad method or path %s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		return Message{}, fmt.Errorf("bad content type %q", ct)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Message{}, err
	}
	if form.Get("To") == "" || form.Get("Body") == "" || (form.Get("From") == "") == (form.Get("MessagingServiceSid") == "") {
		return Message{}, fmt.Errorf("want To, Body and one of From or MessagingServiceSid: %v", form)
	}
	return Message{To: form.Get("To"), Body: form.Get("Body"), Form: form}, nil
}
