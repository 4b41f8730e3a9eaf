package hooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/outbound"
	"latchkey/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type env struct {
	t    *testing.T
	path string
	st   *store.Store
	svc  *Service
	acct *account.Service
}

// fastRetries makes retries quick enough for a test.
func fastRetries(c *Config) {
	c.RetryBase = 20 * time.Millisecond
	c.RetryMax = 100 * time.Millisecond
}

func newEnv(t *testing.T, path string, tune ...func(*Config)) *env {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Receivers run on loopback.
	cfg := Config{AppID: "test-app", Outbound: outbound.Policy{AllowPrivate: true}}
	for _, f := range tune {
		f(&cfg)
	}
	svc, err := New(st, testSecret, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, svc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: path, st: st, svc: svc, acct: acct}
	t.Cleanup(func() { st.Close() })
	return e
}

// run starts the delivery worker until the test ends (or stop is called).
func (e *env) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

var admin = account.Actor{Kind: "admin", ID: "adm-1", Name: "admin@example.com", TriggeredBy: "admin_api",
	IP: "203.0.113.9", UserAgent: "TestBrowser/1", Languages: []string{"fr-CA", "en"}}

func (e *env) createUser(kind, login string, password *string) (*account.User, error) {
	return e.acct.CreateUser(context.Background(), admin, account.CreateUserInput{LoginIDKey: kind, LoginIDValue: login, Password: password})
}

func (e *env) addHook(url string, in WebhookInput) (*store.Webhook, string) {
	e.t.Helper()
	in.URL = url
	w, secret, err := e.svc.CreateWebhook(context.Background(), admin, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return w, secret
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.st.DB().QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// delivery is one request the receiver got, verified.
type delivery struct {
	ID, Timestamp string
	Env           map[string]any
	Body          []byte
}

// receiver is a real HTTP endpoint that verifies both signatures with code
// written here from the two specifications, not the sender's helpers.
type receiver struct {
	t      *testing.T
	secret string
	got    chan delivery
	mu     sync.Mutex
	status int // answer with this status (0: 204)
	bad    []string
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, got: make(chan delivery, 100)}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status, secret := r.status, r.secret
	r.mu.Unlock()
	if err := verifyStandard(secret, req.Header, body); err != "" {
		r.fail("standard webhooks: " + err)
	}
	if err := verifyAuthgear(secret, req.Header, body); err != "" {
		r.fail("x-authgear-body-signature: " + err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.fail("body is not JSON: " + err.Error())
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	r.got <- delivery{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"), Env: m, Body: body}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) fail(msg string) {
	r.mu.Lock()
	r.bad = append(r.bad, msg)
	r.mu.Unlock()
}

func (r *receiver) setSecret(s string) { r.mu.Lock(); r.secret = s; r.mu.Unlock() }
func (r *receiver) setStatus(c int)    { r.mu.Lock(); r.status = c; r.mu.Unlock() }

func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		r.t.Error(b)
	}
}

func (r *receiver) wait(timeout time.Duration) delivery {
	r.t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(timeout):
		r.t.Fatal("no delivery arrived")
	}
	return delivery{}
}

func (r *receiver) none(wait time.Duration) {
	r.t.Helper()
	select {
	case d := <-r.got:
		r.t.Fatalf("unexpected delivery %s of %v", d.ID, d.Env["type"])
	case <-time.After(wait):
	}
}

// verifyStandard checks webhook-signature per the Standard Webhooks spec:
// the secret is whsec_<base64 key>; the signed content is id.timestamp.body;
// the header holds space-separated "v1,<base64 sig>" entries.
func verifyStandard(secret string, h http.Header, body []byte) string {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "missing headers"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "bad timestamp " + ts
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "secret not base64"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "no matching signature in " + sigs
}

// verifyAuthgear checks hex(HMAC-SHA256(secret, body)) the way a receiver
// written for the reference product does: keyed with the string shown.
func verifyAuthgear(secret string, h http.Header, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	got, err := hex.DecodeString(h.Get("x-authgear-body-signature"))
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return "mismatch"
	}
	return ""
}

func pw(s string) *string { return &s }

func TestUserCreatedDeliveredSignedWithReferenceShape(t *testing.T) {
	e := newEnv(t, "")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	_, secret := e.addHook(srv.URL, WebhookInput{Events: []string{UserCreated}})
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	rcv.setSecret(secret)
	e.run()

	u, err := e.createUser("phone", "+14155550123", pw("s3cret-Passw0rd"))
	if err != nil {
		t.Fatal(err)
	}
	d := rcv.wait(5 * time.Second)
	rcv.check()
	// The reference guide's hook, in Go.
	if d.Env["type"] != "user.created" {
		t.Fatalf("type %v", d.Env["type"])
	}
	cx := d.Env["context"].(map[string]any)
	if cx["triggered_by"] != "admin_api" || cx["user_id"] != u.ID || cx["app_id"] != "test-app" ||
		cx["ip_address"] != "203.0.113.9" || cx["user_agent"] != "TestBrowser/1" || cx["language"] != "fr-CA" {
		t.Errorf("context %v", cx)
	}
	if langs, _ := cx["preferred_languages"].([]any); len(langs) != 2 {
		t.Errorf("preferred_languages %v", cx["preferred_languages"])
	}
	ac, _ := cx["audit_context"].(map[string]any)
	if ac["actor_kind"] != "admin" || ac["actor_name"] != "admin@example.com" {
		t.Errorf("audit_context %v", ac)
	}
	phone := d.Env["payload"].(map[string]any)["user"].(map[string]any)["standard_attributes"].(map[string]any)["phone_number"]
	if phone != "+14155550123" {
		t.Errorf("phone_number %v", phone)
	}
	if ids, _ := d.Env["payload"].(map[string]any)["identities"].([]any); len(ids) != 1 {
		t.Errorf("identities %v", d.Env["payload"])
	}
	seq := int64(d.Env["seq"].(float64))
	if d.Env["id"] != EventID(seq) || len(d.ID) != 16 || d.ID != d.Env["id"] {
		t.Errorf("id %v, seq %v, webhook-id %s", d.Env["id"], seq, d.ID)
	}
	// Only user.created was chosen: password.expired.set and the audit-only
	// admin_api event were recorded but not sent. Deliveries are queued in
	// their event's transaction, so the queue says it for good.
	if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE ev.type <> 'user.created'`); n != 0 {
		t.Errorf("%d deliveries queued for events the webhook did not choose", n)
	}
	rcv.none(0)
	if n := e.count(`SELECT COUNT(*) FROM events WHERE user_id = ?`, u.ID); n != 2 {
		t.Errorf("%d events for the user, want user.created + admin_api...executed", n)
	}
	// The worker marks the delivery after the receiver has answered.
	deadline := time.Now().Add(5 * time.Second)
	for e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d succeeded deliveries, want 1", e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWrongSecretFailsIndependentVerification(t *testing.T) {
	// The verifier must be able to fail: a receiver holding another secret rejects.
	rcv := newReceiver(t)
	body := []byte(`{"a":1}`)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	signRequest(req, []byte("key-one-key-one-key-one-key-one!"), "0000000000000001", time.Now(), body)
	if verifyStandard(FormatSecret([]byte("key-two-key-two-key-two-key-two!")), req.Header, body) == "" {
		t.Error("standard verification passed with the wrong secret")
	}
	if verifyAuthgear(FormatSecret([]byte("key-two-key-two-key-two-key-two!")), req.Header, body) == "" {
		t.Error("body signature verification passed with the wrong secret")
	}
	if verifyStandard(FormatSecret([]byte("key-one-key-one-key-one-key-one!")), req.Header, []byte(`{"a":2}`)) == "" {
		t.Error("standard verification passed with a changed body")
	}
	if verifyStandard(FormatSecret([]byte("key-one-key-one-key-one-key-one!")), req.Header, body) != "" {
		t.Error("standard verification failed with the right secret")
	}
	_ = rcv
}

// reservePort finds a loopback address nobody listens on (yet).
func reservePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestReceiverDownIsRetriedUntilUp(t *testing.T) {
	e := newEnv(t, "", fastRetries)
	addr := reservePort(t)
	rcv := newReceiver(t)
	w, secret := e.addHook("http://"+addr+"/hook", WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	e.run()
	if _, err := e.createUser("email", "down@example.com", nil); err != nil {
		t.Fatal(err)
	}
	// Connection refused for a while: attempts pile up.
	deadline := time.Now().Add(5 * time.Second)
	for e.count(`SELECT COALESCE(MAX(attempts), 0) FROM webhook_deliveries`) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no retries while the receiver was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ds, err := e.svc.Deliveries(context.Background(), w.ID, 0, 10)
	if err != nil || len(ds) != 1 || ds[0].Status != store.DeliveryPending || ds[0].LastError == "" || ds[0].NextAttemptAt == nil {
		t.Fatalf("deliveries while down: %+v %v", ds, err)
	}
	// Then the receiver answers 503 for a while, then comes up for real.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not re-listen on %s: %v", addr, err)
	}
	rcv.setStatus(http.StatusServiceUnavailable)
	srv := httptest.NewUnstartedServer(rcv)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	for {
		ds, _ = e.svc.Deliveries(context.Background(), w.ID, 0, 10)
		if ds[0].LastStatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the 503 was never recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rcv.setStatus(0)
	d := rcv.wait(5 * time.Second)
	rcv.check()
	if d.Env["type"] != "user.created" {
		t.Errorf("type %v", d.Env["type"])
	}
	time.Sleep(100 * time.Millisecond)
	ds, _ = e.svc.Deliveries(context.Background(), w.ID, 0, 10)
	if ds[0].Status != store.DeliverySucceeded || ds[0].Attempts < 4 || ds[0].LastStatusCode != http.StatusNoContent {
		t.Errorf("after delivery: %+v", ds[0])
	}
}

func TestGivesUpAfterRetryWindow(t *testing.T) {
	e := newEnv(t, "", fastRetries, func(c *Config) { c.RetryFor = 300 * time.Millisecond })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	w, _ := e.addHook(srv.URL, WebhookInput{AllEvents: true})
	e.run()
	if _, err := e.createUser("username", "giveup", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, _ := e.svc.Deliveries(context.Background(), w.ID, 0, 10)
		if len(ds) == 1 && ds[0].Status == store.DeliveryFailed {
			if !strings.Contains(ds[0].LastError, "Gave up") || ds[0].NextAttemptAt != nil || ds[0].LastStatusCode != 500 {
				t.Errorf("failed delivery: %+v", ds[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never gave up: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRestartDeliversPendingDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "restart.db")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	// First process: the event is recorded but the worker never runs.
	e1 := newEnv(t, path)
	_, secret := e1.addHook(srv.URL, WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	u, err := e1.createUser("email", "restart@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := e1.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`); n != 1 {
		t.Fatalf("%d pending deliveries", n)
	}
	e1.st.Close()

	// Second process on the same file delivers it.
	e2 := newEnv(t, path)
	e2.run()
	d := rcv.wait(5 * time.Second)
	rcv.check()
	if d.Env["type"] != "user.created" || d.Env["context"].(map[string]any)["user_id"] != u.ID {
		t.Errorf("delivered %v", d.Env)
	}
}

func TestRedeliverCarriesSameWebhookID(t *testing.T) {
	e := newEnv(t, "")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	w, secret := e.addHook(srv.URL, WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	e.run()
	if _, err := e.createUser("email", "dup@example.com", nil); err != nil {
		t.Fatal(err)
	}
	first := rcv.wait(5 * time.Second)
	time.Sleep(50 * time.Millisecond)
	ds, _ := e.svc.Deliveries(context.Background(), w.ID, 0, 10)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if err := e.svc.Redeliver(context.Background(), admin, w.ID, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	second := rcv.wait(5 * time.Second)
	rcv.check()
	if first.ID != second.ID || first.ID == "" {
		t.Errorf("webhook-id %q then %q", first.ID, second.ID)
	}
	if string(first.Body) != string(second.Body) {
		t.Errorf("bodies differ:\n%s\n%s", first.Body, second.Body)
	}
	if err := e.svc.Redeliver(context.Background(), admin, "other-hook", ds[0].ID); err == nil {
		t.Error("redelivered through another webhook's ID")
	}
}

func TestSendTestGoesToThatHookOnly(t *testing.T) {
	e := newEnv(t, "")
	rcvA, rcvB := newReceiver(t), newReceiver(t)
	a, b := httptest.NewServer(rcvA), httptest.NewServer(rcvB)
	defer a.Close()
	defer b.Close()
	wa, sa := e.addHook(a.URL, WebhookInput{AllEvents: true})
	_, sb := e.addHook(b.URL, WebhookInput{AllEvents: true})
	rcvA.setSecret(sa)
	rcvB.setSecret(sb)
	e.run()
	if _, err := e.svc.SendTest(context.Background(), admin, wa.ID); err != nil {
		t.Fatal(err)
	}
	d := rcvA.wait(5 * time.Second)
	rcvA.check()
	if d.Env["type"] != WebhookTest {
		t.Errorf("type %v", d.Env["type"])
	}
	if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id <> ?`, wa.ID); n != 0 {
		t.Errorf("%d test deliveries queued for the other webhook", n)
	}
	rcvB.none(0)
}

func TestDisabledHookGetsNothing(t *testing.T) {
	e := newEnv(t, "")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	w, secret := e.addHook(srv.URL, WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	if err := e.svc.SetEnabled(context.Background(), admin, w.ID, false); err != nil {
		t.Fatal(err)
	}
	e.run()
	if _, err := e.createUser("email", "off@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries`); n != 0 {
		t.Errorf("%d deliveries queued for a disabled hook", n)
	}
	rcv.none(0)
	if _, err := e.svc.SendTest(context.Background(), admin, w.ID); err == nil {
		t.Error("test event sent to a disabled hook")
	}
}

func TestCreateWebhookValidation(t *testing.T) {
	e := newEnv(t, "")
	for _, c := range []struct {
		in    WebhookInput
		field string
	}{
		{WebhookInput{URL: "ftp://example.com/x", AllEvents: true}, "url"},
		{WebhookInput{URL: "javascript:alert(1)", AllEvents: true}, "url"},
		{WebhookInput{URL: "", AllEvents: true}, "url"},
		{WebhookInput{URL: "http://example.com/x"}, "events"},
		{WebhookInput{URL: "http://example.com/x", Events: []string{AdminCreateUser}}, "events"},
		{WebhookInput{URL: "http://example.com/x", Events: []string{"nope"}}, "events"},
	} {
		_, _, err := e.svc.CreateWebhook(context.Background(), admin, c.in)
		if fe := account.FieldErrors(err); fe[c.field] == "" {
			t.Errorf("%+v: errors %v, want one on %s", c.in, fe, c.field)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM webhooks`); n != 0 {
		t.Errorf("%d webhooks stored from bad input", n)
	}
}

func TestSecretStoredEncrypted(t *testing.T) {
	e := newEnv(t, "")
	w, secret := e.addHook("https://example.com/hook", WebhookInput{AllEvents: true})
	key, _ := ParseSecret(secret)
	var stored []byte
	if err := e.st.DB().QueryRow(`SELECT secret FROM webhooks WHERE id = ?`, w.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), string(key)) || strings.Contains(string(stored), secret) {
		t.Error("signing key stored in the clear")
	}
	var events string
	if err := e.st.DB().QueryRow(`SELECT group_concat(payload || context) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(events, secret) || strings.Contains(events, base64.StdEncoding.EncodeToString(key)) {
		t.Error("secret in the event log")
	}
	// A different server secret cannot open it.
	other, _ := account.NewSealer([]byte("another-server-secret-another-one"), "webhook")
	if _, err := other.Open(stored, []byte(w.ID)); err == nil {
		t.Error("opened with another server secret")
	}
	if _, err := e.svc.sealer.Open(stored, []byte("another-webhook-id")); err == nil {
		t.Error("opened with another webhook's ID")
	}
	if got, err := e.svc.sealer.Open(stored, []byte(w.ID)); err != nil || string(got) != string(key) {
		t.Errorf("open: %v", err)
	}
}

func TestDeadEndpointDoesNotDelayOtherWebhooks(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.Timeout = 3 * time.Second; c.Concurrency = 2 })
	var mu sync.Mutex
	now, most := 0, 0
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now++
		most = max(most, now)
		mu.Unlock()
		_, _ = io.ReadAll(r.Body) // so the server notices when the sender hangs up
		<-r.Context().Done()      // never answers; the sender's timeout ends it
		mu.Lock()
		now--
		mu.Unlock()
	}))
	defer dead.Close()
	rcv := newReceiver(t)
	ok := httptest.NewServer(rcv)
	defer ok.Close()
	e.addHook(dead.URL, WebhookInput{Events: []string{UserCreated}})
	_, secret := e.addHook(ok.URL, WebhookInput{Events: []string{UserCreated}})
	rcv.setSecret(secret)
	stop := e.run()
	defer stop() // before the servers close: it cancels the hanging request
	start := time.Now()
	for i := range 6 {
		if _, err := e.createUser("username", fmt.Sprintf("busy%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		rcv.wait(2 * time.Second)
	}
	rcv.check()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the healthy webhook waited %s behind the dead one", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d requests at once to one webhook, want 1", most)
	}
}
