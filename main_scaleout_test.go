package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/outbound"
	"latchkey/store"
	"latchkey/store/pgtest"
)

func TestParseWorkerLease(t *testing.T) {
	if d, err := parseWorkerLease(""); err != nil || d != 0 {
		t.Fatalf("empty: %v, %v", d, err)
	}
	if d, err := parseWorkerLease("90s"); err != nil || d != 90*time.Second {
		t.Fatalf("90s: %v, %v", d, err)
	}
	for _, bad := range []string{"soon", "500ms", "-5s"} {
		if _, err := parseWorkerLease(bad); err == nil || !strings.Contains(err.Error(), "LATCHKEY_WORKER_LEASE") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// TestPostgresMultiInstance runs the real binary twice, as two separate
// processes, on one PostgreSQL database with the same LATCHKEY_SECRET_KEY
// (issue 15's "Done when"):
//
//   - a user created through instance A signs in on instance B;
//   - per-account sign-in limits hold across both: wrong passwords
//     alternated between A and B are refused at the limit (10 a minute
//     per account and address), not at twice the limit;
//   - 500 users are created through both at once with the Admin API and
//     sendPassword; every password email reaches the test's SMTP servers
//     exactly once, and every user.created event reaches the test's
//     webhook receiver exactly once (counted by webhook-id);
//   - instance A is killed with SIGKILL in the middle of delivering, and B
//     delivers what A had claimed once A's lease (LATCHKEY_WORKER_LEASE,
//     6 s here) runs out.
//
// What "exactly once" means under SIGKILL. Delivery is at least once: a
// message the receiver accepted but the killed process had not yet
// recorded as sent would be sent again by B, and no outbox can avoid
// that. So the kill is staged such that A has nothing accepted but
// unrecorded: each instance has its own SMTP server (both in this
// process, counting into one tally), and before the kill A's SMTP server
// stops answering DATA and the webhook receiver stops answering requests
// from A's process (told apart by the owner of the client socket, from
// /proc). The messages A is sending then are held, not accepted, and never
// counted; the test waits until A is stuck on both channels, lets a
// second pass for A to record the outcomes of everything answered before
// the freeze, and then kills it. Everything counted was answered 2xx/250
// and recorded by its sender, so a second delivery of it would be a real
// duplicate, and the test asserts there is none: each of the 500 emails
// and 501 events (500 plus the sign-in user's) is counted exactly once,
// and the ones held at A's kill are delivered by B.
func TestPostgresMultiInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two instances")
	}
	if runtime.GOOS != "linux" {
		t.Skip("tells the instances' connections apart through /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The cluster is closed last: after the instances' cleanups, which
	// are registered later, have stopped them.
	dbURL := pgtest.Database(t)
	secretKey := strings.Repeat("multi-instance-secret-", 2)
	bin := buildBinary(t)

	// The database first: schema, an Admin API key, and a webhook for
	// user.created pointing at the receiver.
	tally := newDeliveryTally()
	recv := newHeldHookReceiver(t, tally)
	token, err := prepareDatabase(ctx, dbURL, secretKey, recv.URL())
	if err != nil {
		t.Fatal(err)
	}

	smtpA, smtpB := startHoldSMTP(t, tally), startHoldSMTP(t, tally)
	a := startInstance(t, bin, "a", map[string]string{"LATCHKEY_DB": dbURL, "LATCHKEY_SECRET_KEY": secretKey, "LATCHKEY_SMTP_URL": smtpA.URL()})
	b := startInstance(t, bin, "b", map[string]string{"LATCHKEY_DB": dbURL, "LATCHKEY_SECRET_KEY": secretKey, "LATCHKEY_SMTP_URL": smtpB.URL()})
	recv.pids = []int{a.cmd.Process.Pid, b.cmd.Process.Pid}

	// A user created on A signs in on B.
	const pw = "a long shared password 42"
	if err := apiCreateUser(a.base, token, "roamer@example.com", `"`+pw+`"`, false); err != nil {
		t.Fatal(err)
	}
	if code, loc := instanceSignIn(t, b.base, "roamer@example.com", pw); code != http.StatusSeeOther || strings.Contains(loc, "login") {
		t.Fatalf("user created on A signing in on B: %d to %q", code, loc)
	}
	// Per-account limits across both: the success above left its own
	// hit on the counter (a success whose only hit is its own does not
	// pay a round trip to reset it), so with 10 a minute the 10th wrong
	// password in a row is refused, alternating A, B, A, ...; with a
	// limit in each instance's memory it would be the 20th.
	refusedAt := 0
	for i := 1; i <= 12 && refusedAt == 0; i++ {
		inst := []*instance{a, b}[i%2]
		switch code, _ := instanceSignIn(t, inst.base, "roamer@example.com", "wrong password"); code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refusedAt = i
		default:
			t.Fatalf("wrong password %d on %s: %d", i, inst.name, code)
		}
	}
	if refusedAt != 10 {
		t.Fatalf("per-account limit across two instances: first refusal at attempt %d, want 10", refusedAt)
	}
	for _, inst := range []*instance{a, b} {
		if code, _ := instanceSignIn(t, inst.base, "roamer@example.com", pw); code != http.StatusTooManyRequests {
			t.Fatalf("right password on %s after the limit: %d, want 429", inst.name, code)
		}
	}

	// 500 users through both instances at once. Creation goes on while
	// A is killed: from then on every user goes to B, and a request that
	// A took but did not answer is sent again to B, where "this login ID
	// exists" means A committed it (with its email in the outbox) before
	// it died. Either way the user exists once and is emailed once.
	const users = 500
	created := make(chan error, users)
	var next atomic.Int64
	var aDead atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= users {
					return
				}
				email := fmt.Sprintf("mass%03d@example.com", i)
				if i%2 == 0 && !aDead.Load() {
					err := apiCreateUser(a.base, token, email, `""`, true)
					if err == nil || !aDead.Load() {
						created <- err
						continue
					}
					if err := apiCreateUser(b.base, token, email, `""`, true); err != nil && !strings.Contains(err.Error(), "DuplicatedIdentity") {
						created <- err
					} else {
						created <- nil
					}
					continue
				}
				created <- apiCreateUser(b.base, token, email, `""`, true)
			}
		}()
	}

	// Mid-delivery: once A has delivered some of both, freeze A's SMTP
	// server and A's webhook requests, wait until A is stuck on both, let
	// it record what was answered before, then SIGKILL it.
	// A webhook's deliveries go one at a time, in order, from whichever
	// instance holds it (a busy mark in the database), and a worker with
	// a backlog keeps the hook for its next batch: B may hold the one
	// webhook for long stretches, so A is asked for fewer webhook
	// deliveries than emails, and the kill does not wait for a held
	// webhook at A for more than 2 s (it is logged when there is none):
	// what A holds must not outlive the test's 6 s lease before the kill.
	// B can hold the webhook through the whole burst and drain it; then
	// no delivery is left for A. So, once the burst is in, A gets one
	// more user every 2 s while it has delivered no webhook: A's own
	// worker is woken by its commit before B hears of the row (LISTEN/
	// NOTIFY), so with the backlog drained A takes the hook. These users
	// count like the others (mass500, mass501, ...).
	var extra atomic.Int64
	started, lastExtra := time.Now(), time.Now()
	// extraUser creates the next extra user through A, once the burst is
	// in and at most every 2 s; in the background unless wait.
	extraUser := func(wait bool) {
		if next.Load() < users || time.Since(lastExtra) <= 2*time.Second {
			return
		}
		lastExtra = time.Now()
		email := fmt.Sprintf("mass%03d@example.com", users+int(extra.Add(1))-1)
		create := func() {
			if err := apiCreateUser(a.base, token, email, `""`, true); err != nil {
				t.Errorf("extra user %s through A: %v", email, err)
			}
		}
		if wait {
			create()
		} else {
			go create()
		}
	}
	waitFor(t, 2*time.Minute, "A delivering email and webhooks", func() bool {
		if time.Since(started) > 110*time.Second {
			t.Logf("A so far: %d emails, %d webhook requests", smtpA.accepted.Load(), recv.fromPID(a.cmd.Process.Pid))
		}
		if recv.fromPID(a.cmd.Process.Pid) == 0 {
			extraUser(true)
		}
		return smtpA.accepted.Load() >= 20 && recv.fromPID(a.cmd.Process.Pid) >= 1
	})
	smtpA.frozen.Store(true)
	recv.freeze(a.cmd.Process.Pid)
	// Likewise, when the burst is over A may have no email left to
	// send: one more user through A every 2 s gives it one (in the
	// background: A's SMTP is frozen now, the create answers, its email
	// waits).
	lastExtra = time.Now()
	waitFor(t, time.Minute, "A stuck on held SMTP DATA", func() bool {
		if smtpA.held.Load() == 0 {
			extraUser(false)
		}
		return smtpA.held.Load() >= 1
	})
	for end := time.Now().Add(2 * time.Second); recv.heldCount() == 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	heldMail, heldHooks := smtpA.heldRecipients(), recv.heldIDs()
	aDead.Store(true)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("killed A: %d emails and %d webhooks accepted from A; held at A: %v emails, %d webhooks",
		smtpA.accepted.Load(), recv.fromPID(a.cmd.Process.Pid), heldMail, len(heldHooks))

	wg.Wait()
	close(created)
	failed := 0
	for err := range created {
		if err != nil {
			failed++
			if failed < 3 {
				t.Errorf("createUser: %v", err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d createUser calls failed", failed)
	}

	// B finishes: every email and every event, each once.
	total := users + int(extra.Load())
	waitFor(t, 3*time.Minute, "every email and every user.created delivered", func() bool {
		return tally.distinctMail() == total && tally.distinctHooks() == total+1
	})
	// Late duplicates would come from a lease running out on a message
	// already delivered: wait past another lease before counting.
	time.Sleep(8 * time.Second)
	if dup := tally.duplicates(); len(dup) > 0 {
		t.Fatalf("delivered more than once: %v", dup)
	}
	if n := tally.distinctMail(); n != total {
		t.Fatalf("%d distinct emails, want %d", n, total)
	}
	if n := tally.distinctHooks(); n != total+1 {
		t.Fatalf("%d distinct user.created deliveries, want %d", n, total+1)
	}
	for _, rcpt := range heldMail {
		at, ok := tally.mailAt(rcpt)
		if !ok || at.Before(killedAt) || smtpB.count(rcpt) != 1 {
			t.Fatalf("email to %s, held at A's kill: delivered %v at %v (kill at %v), through B %d times", rcpt, ok, at, killedAt, smtpB.count(rcpt))
		}
	}
	for _, id := range heldHooks {
		if at, ok := tally.hookAt(id); !ok || at.Before(killedAt) {
			t.Fatalf("webhook %s, held at A's kill: delivered %v at %v (kill at %v)", id, ok, at, killedAt)
		}
	}
	if len(heldMail) == 0 {
		t.Fatalf("no email was held at A when it was killed: the kill was not mid-delivery")
	}
	if len(heldHooks) == 0 {
		t.Logf("B held the webhook when A was killed: no webhook delivery was in flight at A")
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var notSent, pending, nUsers int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&nUsers); err != nil || nUsers != total+1 {
		t.Fatalf("users in the database: %d, %v (want %d)", nUsers, err, total+1)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE status <> 'delivered' OR secret IS NOT NULL`).Scan(&notSent); err != nil || notSent != 0 {
		t.Fatalf("outbox rows not delivered, or with their sealed password kept: %d, %v", notSent, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("webhook deliveries pending: %d, %v", pending, err)
	}
}

// deliveryTally counts what the SMTP servers accepted (by recipient) and
// what the webhook receiver answered 2xx (by webhook-id), with when.
type deliveryTally struct {
	mu    sync.Mutex
	mail  map[string][]time.Time
	hooks map[string][]time.Time
}

func newDeliveryTally() *deliveryTally {
	return &deliveryTally{mail: map[string][]time.Time{}, hooks: map[string][]time.Time{}}
}

func (d *deliveryTally) addMail(rcpt string) {
	d.mu.Lock()
	d.mail[rcpt] = append(d.mail[rcpt], time.Now())
	d.mu.Unlock()
}

func (d *deliveryTally) addHook(id string) {
	d.mu.Lock()
	d.hooks[id] = append(d.hooks[id], time.Now())
	d.mu.Unlock()
}

func (d *deliveryTally) distinctMail() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for k := range d.mail {
		if strings.HasPrefix(k, "mass") {
			n++
		}
	}
	return n
}

func (d *deliveryTally) distinctHooks() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.hooks)
}

func (d *deliveryTally) duplicates() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for k, v := range d.mail {
		if len(v) > 1 {
			out = append(out, fmt.Sprintf("email to %s ×%d", k, len(v)))
		}
	}
	for k, v := range d.hooks {
		if len(v) > 1 {
			out = append(out, fmt.Sprintf("webhook %s ×%d", k, len(v)))
		}
	}
	return out
}

func (d *deliveryTally) mailAt(rcpt string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v := d.mail[rcpt]; len(v) > 0 {
		return v[0], true
	}
	return time.Time{}, false
}

func (d *deliveryTally) hookAt(id string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v := d.hooks[id]; len(v) > 0 {
		return v[0], true
	}
	return time.Time{}, false
}

// holdSMTP is an SMTP server that accepts every message into the tally,
// or, once frozen, holds DATA without an answer (the message is then
// not accepted, and not counted) until the test ends.
type holdSMTP struct {
	srv      *smtp.Server
	addr     string
	tally    *deliveryTally
	frozen   atomic.Bool
	accepted atomic.Int64
	held     atomic.Int64
	release  chan struct{}

	mu      sync.Mutex
	heldTo  []string
	byRcpt  map[string]int
	closing sync.Once
}

func startHoldSMTP(t *testing.T, tally *deliveryTally) *holdSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdSMTP{addr: ln.Addr().String(), tally: tally, release: make(chan struct{}), byRcpt: map[string]int{}}
	h.srv = smtp.NewServer(h)
	h.srv.Domain = "localhost"
	h.srv.AllowInsecureAuth = true
	go h.srv.Serve(ln)
	t.Cleanup(func() {
		h.closing.Do(func() { close(h.release) })
		h.srv.Close()
	})
	return h
}

func (h *holdSMTP) URL() string { return "smtp://" + h.addr + "?tls=none" }

func (h *holdSMTP) count(rcpt string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byRcpt[rcpt]
}

func (h *holdSMTP) heldRecipients() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.heldTo...)
}

func (h *holdSMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &holdSession{h: h}, nil }

type holdSession struct {
	h  *holdSMTP
	to []string
}

func (s *holdSession) Reset()                                    { s.to = nil }
func (s *holdSession) Logout() error                             { return nil }
func (s *holdSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *holdSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }

func (s *holdSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if s.h.frozen.Load() {
		s.h.mu.Lock()
		s.h.heldTo = append(s.h.heldTo, s.to...)
		s.h.mu.Unlock()
		s.h.held.Add(1)
		<-s.h.release
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "held"}
	}
	// A little latency, as a real server has, so that delivering 500
	// messages takes longer than the test needs to stage the kill.
	time.Sleep(20 * time.Millisecond)
	for _, to := range s.to {
		s.h.mu.Lock()
		s.h.byRcpt[to]++
		s.h.mu.Unlock()
		s.h.tally.addMail(to)
	}
	s.h.accepted.Add(1)
	return nil
}

// heldHookReceiver answers webhook deliveries 204 and counts them by
// webhook-id, except, once frozen, those from one process, which it
// holds unanswered (and never counts) until that process dies.
type heldHookReceiver struct {
	srv   *httptest.Server
	tally *deliveryTally
	pids  []int

	mu     sync.Mutex
	frozen int // a pid, 0: none
	byPID  map[int]int
	held   []string
}

func newHeldHookReceiver(t *testing.T, tally *deliveryTally) *heldHookReceiver {
	r := &heldHookReceiver{tally: tally, byPID: map[int]int{}}
	release := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		var env struct {
			Type string `json:"type"`
		}
		if id == "" || json.Unmarshal(body, &env) != nil || env.Type != "user.created" {
			http.Error(w, "not a user.created webhook", http.StatusBadRequest)
			return
		}
		_, port, _ := net.SplitHostPort(r.srv.Listener.Addr().String())
		pid := socketOwner(req.RemoteAddr, port, r.pids)
		r.mu.Lock()
		if pid != 0 && pid == r.frozen {
			r.held = append(r.held, id)
			r.mu.Unlock()
			select {
			case <-req.Context().Done():
			case <-release:
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.byPID[pid]++
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		r.tally.addHook(id)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(release); r.srv.Close() })
	return r
}

func (r *heldHookReceiver) URL() string { return r.srv.URL + "/hook" }

func (r *heldHookReceiver) freeze(pid int) { r.mu.Lock(); r.frozen = pid; r.mu.Unlock() }

func (r *heldHookReceiver) fromPID(pid int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byPID[pid]
}

func (r *heldHookReceiver) heldCount() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.held) }

func (r *heldHookReceiver) heldIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.held...)
}

// socketOwner returns which of pids holds the TCP client socket whose
// local address is remote (as a server sees it) and whose peer port is
// serverPort, by its inode in /proc/net/tcp and the processes' fds; 0 when
// none does.
func socketOwner(remote, serverPort string, pids []int) int {
	_, cport, err := net.SplitHostPort(remote)
	if err != nil {
		return 0
	}
	cp, _ := strconv.Atoi(cport)
	sp, _ := strconv.Atoi(serverPort)
	inode := ""
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			if hexPort(fs[1]) == cp && hexPort(fs[2]) == sp {
				inode = fs[9]
			}
		}
	}
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				return pid
			}
		}
	}
	return 0
}

func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	v, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(v)
}

// prepareDatabase migrates the database and adds an Admin API key and a
// webhook for user.created, as an operator would before starting the
// instances; it returns the key's token.
func prepareDatabase(ctx context.Context, dbURL, secretKey, hookURL string) (string, error) {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	secret, err := serverSecret(ctx, st, secretKey)
	if err != nil {
		return "", err
	}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		return "", err
	}
	k, err := acct.CreateAPIKey(ctx, account.SystemActor, "multi-instance test")
	if err != nil {
		return "", err
	}
	hk, err := hooks.New(st, secret, hooks.Config{Outbound: outbound.Policy{AllowPrivate: true}}, log)
	if err != nil {
		return "", err
	}
	defer hk.Close()
	if _, _, err := hk.CreateWebhook(ctx, account.SystemActor, hooks.WebhookInput{URL: hookURL, Events: []string{account.EventUserCreated}}); err != nil {
		return "", err
	}
	return k.Token, nil
}

// instance is one Latchkey process.
type instance struct {
	name string
	base string
	cmd  *exec.Cmd
}

// startInstance starts the binary with env (on top of a loopback address,
// cost-4 hashes, loopback webhooks and a 6 s worker lease) and waits for
// /healthz. Its log goes to a file, shown when the test fails.
func startInstance(t *testing.T, bin, name string, env map[string]string) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{
		"LATCHKEY_ADDR": addr, "LATCHKEY_PUBLIC_URL": "http://" + addr, "LATCHKEY_BCRYPT_COST": "4",
		"LATCHKEY_LOG_LEVEL": "warn", "LATCHKEY_HOOKS_ALLOW_PRIVATE": "true", "LATCHKEY_WORKER_LEASE": "6s",
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("instance %s log:\n%s", name, b)
			}
		}
	})
	inst := &instance{name: name, base: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(time.Minute)
	for {
		if r, err := http.Get(inst.base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return inst
			}
		}
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			t.Fatalf("instance %s exited: %v\n%s", name, err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not healthy", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiCreateUser creates a user through the Admin API: password is a
// GraphQL string literal ("" generates one).
func apiCreateUser(base, token, email, password string, send bool) error {
	q := fmt.Sprintf(`mutation { createUser(input: {definition: {loginID: {key: "email", value: %q}}, password: %s, sendPassword: %v}) { user { id } } }`,
		email, password, send)
	body, _ := json.Marshal(map[string]any{"query": q})
	req, _ := http.NewRequest(http.MethodPost, base+"/_api/admin/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out struct {
		Errors []any `json:"errors"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || len(out.Errors) > 0 {
		return fmt.Errorf("createUser %s on %s: %d %.300s", email, base, res.StatusCode, raw)
	}
	return nil
}

// instanceSignIn signs in on the Auth UI of base with a fresh browser and
// returns the status and Location of the answer to the form.
func instanceSignIn(t *testing.T, base, loginID, password string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfFieldRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on %s/login (%d)", base, res.StatusCode)
	}
	res, err = c.PostForm(base+"/login", url.Values{"_csrf": {string(m[1])}, "login_id": {loginID}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
