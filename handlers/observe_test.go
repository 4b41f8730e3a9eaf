package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/hooks"
	"latchkey/mail"
	"latchkey/store"
	"latchkey/store/testdb"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// requestLines decodes the JSON request lines of the log.
func requestLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestTrustedProxies: X-Forwarded-For is believed only from the proxies
// LATCHKEY_TRUST_PROXY names (or, for "true", loopback and private
// addresses), and never when trust is off. The request log shows the IP.
func TestTrustedProxies(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	_, tenNet, _ := net.ParseCIDR("10.0.0.0/8")
	for _, tc := range []struct {
		name  string
		trust bool
		nets  []*net.IPNet
		want  string
	}{
		{"off", false, nil, "127.0.0.1"},
		{"true trusts loopback", true, nil, "203.0.113.5"},
		{"listed proxy", true, []*net.IPNet{loopback}, "203.0.113.5"},
		{"unlisted proxy", true, []*net.IPNet{tenNet}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			a := newTestApp(t, func(c *Config) {
				c.TrustProxy, c.TrustedProxies = tc.trust, tc.nets
				c.Log = slog.New(slog.NewJSONHandler(logs, nil))
			})
			req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/healthz", nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.5")
			wantStatus(t, a.do(req), http.StatusOK)
			lines := requestLines(t, logs.String())
			if len(lines) != 1 || lines[0]["ip"] != tc.want {
				t.Fatalf("request lines %v, want one with ip %s", lines, tc.want)
			}
		})
	}
}

// TestErrorAnswersCarryRequestID: JSON errors carry the ID, and a
// request's ID is the same in the header, the body and the log.
func TestErrorAnswersCarryRequestID(t *testing.T) {
	logs := &lockedBuffer{}
	a := newTestApp(t, func(c *Config) { c.Log = slog.New(slog.NewJSONHandler(logs, nil)) })
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(`{"query":"{ users { totalCount } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "ticket-4711")
	r := a.do(req)
	if r.Status != http.StatusUnauthorized || r.Header.Get("X-Request-ID") != "ticket-4711" {
		t.Fatalf("status %d, X-Request-ID %q", r.Status, r.Header.Get("X-Request-ID"))
	}
	lines := requestLines(t, logs.String())
	if len(lines) != 1 || lines[0]["request_id"] != "ticket-4711" || lines[0]["route"] != "/_api/admin/graphql" || lines[0]["status"] != float64(401) {
		t.Fatalf("log lines %v", lines)
	}
	// A handler's error page (not the router's 404) carries it too.
	a.loginAdmin()
	r = a.get("/portal/users/00000000-0000-0000-0000-000000000000")
	if r.Status != http.StatusNotFound || !strings.Contains(r.Body, "Request ID: <code>"+r.Header.Get("X-Request-ID")+"</code>") {
		t.Fatalf("user page 404: %d\n%s", r.Status, r.Body)
	}
	lines = requestLines(t, logs.String())
	if last := lines[len(lines)-1]; last["route"] != "/portal/users/:id" || last["status"] != float64(404) {
		t.Errorf("a handler's 404 is logged as %v; want its route pattern", last)
	}
}

func TestSaneRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                          true,
		"4bf92f3577b34da6a3ce929d0e0e4736": true,
		"req:1.2_3":                        true,
		"":                                 false,
		"has space":                        false,
		"quote\"":                          false,
		"line\nbreak":                      false,
		strings.Repeat("a", 129):           false,
	} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestReadyz: /readyz fails until the mail and webhook workers run, then
// passes, and fails again once a worker stops beating for readyStale.
func TestReadyz(t *testing.T) {
	saved := readyStale
	t.Cleanup(func() { readyStale = saved })
	readyStale = 3 * time.Second

	ctx := context.Background()
	st, err := store.Open(ctx, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := []byte("0123456789abcdef0123456789abcdef")
	hk, err := hooks.New(st, secret, hooks.Config{AppID: "latchkey"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := mail.New(st, mail.NewDevMailbox(0), mail.Config{AppName: "Acme", PublicURL: "http://localhost", Secret: secret,
		PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, func(c *Config) { c.Mail, c.Hooks = ob, hk })
	ready := func() (int, map[string]any) {
		t.Helper()
		r := a.get("/readyz")
		var body struct {
			Checks map[string]any `json:"checks"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatalf("readyz body %q", r.Body)
		}
		return r.Status, body.Checks
	}
	if code, checks := ready(); code != http.StatusServiceUnavailable || checks["mail_worker"] != "not started" || checks["webhook_worker"] != "not started" || checks["database"] != "ok" {
		t.Fatalf("before the workers: %d %v", code, checks)
	}
	if code := a.get("/healthz").Status; code != http.StatusOK {
		t.Fatalf("healthz before the workers: %d", code)
	}
	if err := ob.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hctx, stopHooks := context.WithCancel(ctx)
	hooksDone := make(chan struct{})
	go func() { hk.Run(hctx); close(hooksDone) }()
	t.Cleanup(func() { stopHooks(); <-hooksDone })
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, checks := ready()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers running: %d %v", code, checks)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The mail worker stops; the webhook worker keeps going (it beats at
	// least once a minute, and at once when woken).
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ob.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		hk.Wake()
		code, checks := ready()
		if code == http.StatusServiceUnavailable {
			if s, _ := checks["mail_worker"].(string); !strings.HasPrefix(s, "stalled since ") || checks["webhook_worker"] != "ok" {
				t.Fatalf("stalled mail worker: %v", checks)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail worker stopped, readyz still %d %v", code, checks)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
