package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"latchkey/store/testdb"
)

// syncBuffer is a log sink that the server's goroutines and the test
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startLoggedApp is startApp with the log written to logw instead of the
// process's stderr.
func startLoggedApp(t *testing.T, env map[string]string, logw io.Writer) *e2eApp {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{
		"LATCHKEY_ADDR":           addr,
		"LATCHKEY_DB":             testdb.DB(t, filepath.Join(t.TempDir(), "latchkey.db")),
		"LATCHKEY_PUBLIC_URL":     "http://" + addr,
		"LATCHKEY_ADMIN_EMAIL":    e2eAdminEmail,
		"LATCHKEY_ADMIN_PASSWORD": e2eAdminPassword,
		"LATCHKEY_BCRYPT_COST":    "4",
		// Receivers run on loopback, which the outbound policy refuses.
		"LATCHKEY_HOOKS_ALLOW_PRIVATE": "true",
	}
	if testdb.Postgres() {
		vars["LATCHKEY_SECRET_KEY"] = pgSecretKey
	}
	for k, v := range env {
		vars[k] = v
	}
	return launchApp(t, vars, "serve", func(ctx context.Context, getenv func(string) string) error {
		return serve(ctx, nil, getenv, logw)
	})
}

// endUserSignIn posts the Auth UI sign-in form from a fresh browser, as
// the client at forwardedFor when that is set (the app trusts its proxy).
func endUserSignIn(t *testing.T, base, loginID, password, forwardedFor string) int {
	t.Helper()
	p := newPortalClient(t, base)
	p.get("/login")
	form := url.Values{"_csrf": {p.csrf}, "login_id": {loginID}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	code, _, _ := p.read(p.client.Do(req))
	return code
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series finds the metric of family name whose labels include want, and
// returns its value (a histogram's sample count).
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsAfterRealTraffic drives the real server (portal, webhooks,
// email to a dead SMTP server, end-user sign-ins of every outcome) and
// then scrapes the separate metrics listener, parsing it with expfmt.
func TestMetricsAfterRealTraffic(t *testing.T) {
	metricsAddr := freeAddr(t)
	deadSMTP := freeAddr(t) // nothing listens: email stays queued
	okHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer okHook.Close()
	badHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer badHook.Close()

	app := startLoggedApp(t, map[string]string{
		"LATCHKEY_METRICS_ADDR": metricsAddr,
		"LATCHKEY_TRUST_PROXY":  "127.0.0.1/32",
		"LATCHKEY_SMTP_URL":     "smtp://" + deadSMTP + "?tls=none",
	}, io.Discard)

	// The main listener does not serve metrics.
	if res, err := http.Get(app.URL + "/metrics"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("main listener /metrics: %v %v", res, err)
	}

	p := newPortalClient(t, app.URL)
	p.signIn()
	for _, u := range []string{okHook.URL, badHook.URL} {
		p.get("/portal/hooks")
		if code, _, _ := p.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {u + "/hook"}, "events_mode": {"all"}}); code != http.StatusSeeOther {
			t.Fatalf("add webhook: %d", code)
		}
	}
	const pw = "Sturdy-Pass-4812"
	for _, u := range []struct {
		email   string
		expired bool
	}{{"ok@example.com", false}, {"exp@example.com", true}, {"lock@example.com", false}} {
		p.get("/portal/users/new")
		form := url.Values{"loginIDKey": {"email"}, "loginID": {u.email}, "passwordMode": {"manual"}, "password": {pw}, "sendPassword": {"true"}}
		if u.expired {
			form.Set("setPasswordExpired", "true")
		}
		code, _, loc := p.post("/portal/users", form)
		if code != http.StatusSeeOther {
			t.Fatalf("create %s: %d", u.email, code)
		}
		if code, _, _ := p.get(loc); code != http.StatusOK {
			t.Fatalf("user page %s: %d", loc, code)
		}
	}

	if code := endUserSignIn(t, app.URL, "ok@example.com", pw, ""); code != http.StatusSeeOther {
		t.Fatalf("ok sign-in: %d", code)
	}
	if code := endUserSignIn(t, app.URL, "exp@example.com", pw, ""); code != http.StatusSeeOther {
		t.Fatalf("expired sign-in: %d", code)
	}
	if code := endUserSignIn(t, app.URL, "ok@example.com", "wrong-"+pw, ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong sign-in: %d", code)
	}
	// Ten failures from one client lock the account (the default policy);
	// the eleventh from that client is rate limited, and the right
	// password from another client is refused as locked (answered like a
	// wrong password, so that the lock does not tell whether the account
	// exists; the metric still says "locked").
	for i := 0; i < 10; i++ {
		if code := endUserSignIn(t, app.URL, "lock@example.com", "wrong-"+pw, "203.0.113.10"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code := endUserSignIn(t, app.URL, "lock@example.com", "wrong-"+pw, "203.0.113.10"); code != http.StatusTooManyRequests {
		t.Fatalf("11th attempt from the same client: %d", code)
	}
	if code := endUserSignIn(t, app.URL, "lock@example.com", pw, "203.0.113.11"); code != http.StatusUnauthorized {
		t.Fatalf("locked sign-in: %d", code)
	}

	// Wait until both webhooks have had an attempt and the email has
	// failed once against the dead SMTP server.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams = scrape(t, metricsAddr)
		ok, _ := series(fams, "latchkey_webhook_attempts_total", map[string]string{"result": "ok"})
		bad, _ := series(fams, "latchkey_webhook_attempts_total", map[string]string{"result": "error"})
		queued, _ := series(fams, "latchkey_outbox_messages", map[string]string{"channel": "email", "state": "queued"})
		pending, _ := series(fams, "latchkey_outbox_messages", map[string]string{"channel": "webhook", "state": "pending"})
		if ok >= 1 && bad >= 1 && queued >= 3 && pending >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook ok=%v error=%v, email queued=%v, webhook pending=%v", ok, bad, queued, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}

	want := func(name string, labels map[string]string, check func(float64) bool, what string) {
		t.Helper()
		v, ok := series(fams, name, labels)
		if !ok {
			t.Errorf("%s%v: missing", name, labels)
			return
		}
		if !check(v) {
			t.Errorf("%s%v = %v, want %s", name, labels, v, what)
		}
	}
	atLeast := func(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
	between := func(lo, hi float64) func(float64) bool { return func(v float64) bool { return v >= lo && v <= hi } }

	// HTTP: by method, route pattern and status.
	want("latchkey_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/login", "status": "303"}, atLeast(2), ">= 2")
	want("latchkey_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/login", "status": "401"}, atLeast(12), ">= 12")
	want("latchkey_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/login", "status": "429"}, atLeast(1), ">= 1")
	want("latchkey_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/portal/users/:id", "status": "200"}, atLeast(3), ">= 3")
	want("latchkey_http_request_duration_seconds", map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, atLeast(1), ">= 1")
	for _, m := range fams["latchkey_http_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() != "unmatched" && (!strings.HasPrefix(l.GetValue(), "/") || strings.ContainsAny(l.GetValue(), "@?") || strings.Count(l.GetValue(), "-") > 2) {
				t.Errorf("route label %q is not a route pattern", l.GetValue())
			}
		}
		if h := m.GetHistogram(); h.GetSampleSum() < 0 || h.GetSampleSum() > float64(h.GetSampleCount())*10 {
			t.Errorf("implausible duration sum %v for %d requests", h.GetSampleSum(), h.GetSampleCount())
		}
	}
	// Sign-ins by outcome; shed is exposed for admission control (zero
	// here: nothing sheds yet), as is the admission queue.
	want("latchkey_sign_ins_total", map[string]string{"outcome": "ok"}, atLeast(1), ">= 1")
	want("latchkey_sign_ins_total", map[string]string{"outcome": "expired"}, atLeast(1), ">= 1")
	want("latchkey_sign_ins_total", map[string]string{"outcome": "wrong"}, atLeast(11), ">= 11")
	want("latchkey_sign_ins_total", map[string]string{"outcome": "locked"}, atLeast(1), ">= 1")
	want("latchkey_admin_sign_ins_total", map[string]string{"outcome": "ok"}, atLeast(1), ">= 1")
	want("latchkey_sign_ins_total", map[string]string{"outcome": "limited"}, atLeast(1), ">= 1")
	want("latchkey_sign_ins_total", map[string]string{"outcome": "shed"}, between(0, 0), "0")
	want("latchkey_sign_in_queue_length", nil, between(0, 0), "0")
	// Outbox: three password emails wait for the dead SMTP server; the
	// failing webhook's deliveries wait for their retry.
	want("latchkey_outbox_messages", map[string]string{"channel": "email", "state": "queued"}, atLeast(3), ">= 3")
	want("latchkey_outbox_oldest_age_seconds", map[string]string{"channel": "email", "state": "queued"}, between(0.001, 120), "a few seconds")
	want("latchkey_outbox_messages", map[string]string{"channel": "email", "state": "failed"}, between(0, 0), "0")
	want("latchkey_outbox_oldest_age_seconds", map[string]string{"channel": "email", "state": "failed"}, between(0, 0), "0")
	want("latchkey_outbox_messages", map[string]string{"channel": "webhook", "state": "pending"}, atLeast(1), ">= 1")
	want("latchkey_outbox_oldest_age_seconds", map[string]string{"channel": "webhook", "state": "pending"}, between(0.001, 120), "a few seconds")
	want("latchkey_webhook_attempts_total", map[string]string{"result": "ok"}, atLeast(1), ">= 1")
	want("latchkey_webhook_attempts_total", map[string]string{"result": "error"}, atLeast(1), ">= 1")
	want("latchkey_store_scrape_error", nil, between(0, 0), "0")
	// Events: three users created, sign-ins, failures.
	want("latchkey_events_written_total", nil, atLeast(3+2+11), ">= 16")
	// Database pool and Go runtime.
	if testdb.Postgres() {
		// PostgreSQL has one pool for reads and writes, which both name.
		want("go_sql_max_open_connections", map[string]string{"db_name": "writer"}, atLeast(2), ">= 2 (the pool)")
	} else {
		want("go_sql_max_open_connections", map[string]string{"db_name": "writer"}, between(1, 1), "1 (the one writer)")
	}
	want("go_sql_max_open_connections", map[string]string{"db_name": "reader"}, atLeast(2), ">= 2")
	want("go_sql_open_connections", map[string]string{"db_name": "writer"}, atLeast(1), ">= 1")
	want("go_sql_open_connections", map[string]string{"db_name": "reader"}, atLeast(1), ">= 1")
	want("go_goroutines", nil, atLeast(5), ">= 5")
	want("go_memstats_alloc_bytes", nil, atLeast(1<<20), ">= 1 MiB")
	want("process_resident_memory_bytes", nil, atLeast(1<<20), ">= 1 MiB")
}

// logLines decodes JSON log output.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestRequestLogHoldsNoSecrets posts canary passwords, codes and tokens
// through forms, query strings and headers, then finds one JSON request
// line per request (method, route, status, duration, request ID) and no
// canary anywhere in the log.
func TestRequestLogHoldsNoSecrets(t *testing.T) {
	logs := &syncBuffer{}
	app := startLoggedApp(t, map[string]string{"LATCHKEY_LOG_FORMAT": "json", "LATCHKEY_LOG_LEVEL": "debug"}, logs)
	const (
		pwCanary     = "CanaryPw-5f1e9a7Q"
		tokenCanary  = "CanaryTok-8d2c4b"
		bearerCanary = "CanaryBearer-3a9e"
		codeCanary   = "917353"
	)
	canaries := []string{pwCanary, tokenCanary, bearerCanary, codeCanary, strings.ToLower(pwCanary), url.QueryEscape(pwCanary)}

	p := newPortalClient(t, app.URL)
	n := 0
	ids := map[string]int{} // request ID -> expected status
	send := func(method, path string, form url.Values, hdr map[string]string, wantStatus int) *http.Response {
		t.Helper()
		n++
		var body io.Reader
		if form != nil {
			if _, ok := form["_csrf"]; !ok {
				form.Set("_csrf", p.csrf)
			}
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, app.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		id := "canary-test-" + strings.Repeat("x", n%3) + string(rune('a'+n%26)) + "-" + time.Now().Format("150405.000000")
		req.Header.Set("X-Request-ID", id)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := p.client.Do(req)
		code, _, _ := p.read(res, err)
		if code != wantStatus {
			t.Fatalf("%s %s: %d, want %d", method, path, code, wantStatus)
		}
		if got := res.Header.Get("X-Request-ID"); got != id {
			t.Fatalf("%s %s: X-Request-ID %q, want the incoming %q", method, path, got, id)
		}
		ids[id] = code
		return res
	}

	send("GET", "/portal/login", nil, nil, 200)
	send("POST", "/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {pwCanary}}, nil, 401)
	send("POST", "/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {e2eAdminPassword}}, nil, 303)
	send("GET", "/portal/users/new", nil, nil, 200)
	send("POST", "/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"canary-user@example.com"}, "passwordMode": {"manual"}, "password": {pwCanary}}, nil, 303)
	send("GET", "/portal/users?q="+tokenCanary+"&token="+tokenCanary, nil, nil, 200)
	send("GET", "/portal/setup?token="+tokenCanary, nil, nil, 404)
	send("GET", "/reset-password?token="+tokenCanary, nil, nil, 410)
	send("GET", "/login?next=/settings%3Ftoken%3D"+tokenCanary, nil, nil, 200)
	send("POST", "/login", url.Values{"login_id": {"canary-user@example.com"}, "password": {"x" + pwCanary}}, nil, 401)
	send("POST", "/login", url.Values{"login_id": {"canary-user@example.com"}, "password": {pwCanary}}, nil, 303)
	send("GET", "/forgot-password", nil, nil, 200)
	send("POST", "/reset-password/code", url.Values{"login_id": {"canary-user@example.com"}, "code": {codeCanary}, "password": {pwCanary}, "confirm": {pwCanary}}, nil, 422)
	send("POST", "/_api/admin/graphql", nil, map[string]string{"Authorization": "Bearer " + bearerCanary, "Content-Type": "application/json"}, 401)
	send("GET", "/no/such/"+tokenCanary+"?password="+pwCanary, nil, nil, 404)

	// An ID that is not sane is replaced by a new one.
	req, _ := http.NewRequest("GET", app.URL+"/healthz", nil)
	req.Header.Set("X-Request-ID", "evil\" id "+pwCanary)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	gen := res.Header.Get("X-Request-ID")
	if gen == "" || strings.Contains(gen, "evil") || len(gen) < 16 {
		t.Fatalf("generated X-Request-ID = %q", gen)
	}
	ids[gen] = 200

	// The error page shows the request ID.
	res, err = http.Get(app.URL + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if id := res.Header.Get("X-Request-ID"); id == "" || !strings.Contains(string(b), "Request ID: <code>"+id+"</code>") {
		t.Fatalf("404 page does not show its request ID %q:\n%s", id, b)
	}

	time.Sleep(100 * time.Millisecond) // the last line is written after the answer
	out := logs.String()
	for _, c := range canaries {
		if strings.Contains(out, c) {
			i := strings.Index(out, c)
			t.Errorf("the log holds the canary %q: ...%s...", c, out[max(0, i-200):min(len(out), i+100)])
		}
	}
	seen := map[string]int{}
	for _, l := range logLines(t, out) {
		if l["msg"] != "request" {
			continue
		}
		id, _ := l["request_id"].(string)
		if _, mine := ids[id]; !mine {
			continue
		}
		seen[id]++
		if int(l["status"].(float64)) != ids[id] {
			t.Errorf("request %s logged status %v, want %d", id, l["status"], ids[id])
		}
		for _, k := range []string{"method", "route", "duration_ms", "ip"} {
			if _, ok := l[k]; !ok {
				t.Errorf("request line without %s: %v", k, l)
			}
		}
		if r, _ := l["route"].(string); r != "unmatched" && !strings.HasPrefix(r, "/") {
			t.Errorf("route %q", r)
		}
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("request %s has %d request lines, want 1", id, seen[id])
		}
	}
	if !strings.Contains(out, `"route":"/portal/users/:id"`) && !strings.Contains(out, `"route":"/portal/users"`) {
		t.Errorf("no portal users route in the log")
	}
}
