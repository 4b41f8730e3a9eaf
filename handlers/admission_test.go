package handlers

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/metrics"
	"latchkey/store/testdb"
)

// fillSlots takes every verification slot of a, as requests verifying
// passwords would, and returns the function that gives them back.
func fillSlots(t *testing.T, a *Admission) func() {
	t.Helper()
	for i := 0; i < a.Slots(); i++ {
		a.slots <- struct{}{}
	}
	var done bool
	return func() {
		if done {
			return
		}
		done = true
		for i := 0; i < a.Slots(); i++ {
			<-a.slots
		}
	}
}

// TestAdmissionRefusesPastBoundWithoutCountingAttempts: with both slots
// taken and the one queue place filled, sign-in is refused at once with
// 503, Retry-After and a "try again in N seconds" page; fifteen refusals
// (more than the lockout threshold and the per-account limit) leave no
// failed attempt, and the queued request completes once a slot frees.
func TestAdmissionRefusesPastBoundWithoutCountingAttempts(t *testing.T) {
	adm := NewAdmission(2, time.Second, 1)
	a := newAuthAppCost(t, 4, nil, func(c *Config) { c.Admission = adm })
	u := a.createUser("queued@example.com", "first-password-1", false)
	a.createUser("refused@example.com", "second-password-2", false)

	free := fillSlots(t, adm)
	defer free()

	// One request waits in the queue.
	queued := a.browser()
	wantStatus(t, queued.get("/login"), http.StatusOK)
	type result struct {
		r   response
		err error
	}
	done := make(chan result, 1)
	go func() {
		form := url.Values{"login_id": {"queued@example.com"}, "password": {"first-password-1"}, "_csrf": {queued.csrf}}
		req, _ := http.NewRequest(http.MethodPost, queued.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := queued.client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		res.Body.Close()
		done <- result{r: response{Status: res.StatusCode, Location: res.Header.Get("Location")}}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for adm.waiting.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first sign-in never joined the queue")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The metrics see the queue and, below, each refusal as shed.
	if q := scrapeMetric(t, `latchkey_sign_in_queue_length`); q != 1 {
		t.Fatalf("sign-in queue gauge %v, want 1", q)
	}
	shedBefore := scrapeMetric(t, `latchkey_sign_ins_total{outcome="shed"}`)

	// Everyone else is refused, fast, whatever the password.
	b := a.browser()
	for i := 0; i < 15; i++ {
		pw := "wrong-password"
		if i == 14 {
			pw = "second-password-2"
		}
		wantStatus(t, b.get("/login"), http.StatusOK)
		start := time.Now()
		r := b.post("/login", url.Values{"login_id": {"refused@example.com"}, "password": {pw}})
		took := time.Since(start)
		wantStatus(t, r, http.StatusServiceUnavailable)
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || ra < 1 {
			t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
		}
		if msg := loginError(r.Body); !strings.Contains(msg, "busy") || !strings.Contains(msg, "Try again in "+strconv.Itoa(ra)+" second") {
			t.Fatalf("refusal message %q (Retry-After %d)", msg, ra)
		}
		if took > time.Second {
			t.Fatalf("refusal took %v", took)
		}
	}
	if n := a.events.ofType(account.EventAuthPasswordFailed); len(n) != 0 {
		t.Fatalf("refusals recorded %d failed attempts", len(n))
	}
	if d := scrapeMetric(t, `latchkey_sign_ins_total{outcome="shed"}`) - shedBefore; d != 15 {
		t.Fatalf("shed sign-ins went up by %v, want 15", d)
	}
	refused, err := a.store.IdentityByNorm(context.Background(), "refused@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := a.acct.Lockout(context.Background(), refused.UserID); err != nil || (l != nil && l.Failures != 0) {
		t.Fatalf("lockout after refusals: %+v, %v", l, err)
	}

	// The slots free up: the queued sign-in goes through, and so does the
	// refused user's next try (no rate limit spent, no lockout).
	free()
	select {
	case res := <-done:
		if res.err != nil || res.r.Status != http.StatusSeeOther || res.r.Location != "/settings" {
			t.Fatalf("queued sign-in: %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queued sign-in did not finish after the slots were freed")
	}
	if a.sessions(u.ID) != 1 {
		t.Fatal("queued sign-in made no session")
	}
	wantStatus(t, signIn(b, "refused@example.com", "second-password-2", ""), http.StatusSeeOther)
}

// TestAdmissionPortalAndPasswordChangeRefused: the portal sign-in and the
// settings password change, which verify passwords too, are refused the
// same way; the change then works once there is room.
func TestAdmissionPortalAndPasswordChangeRefused(t *testing.T) {
	adm := NewAdmission(1, time.Second, 1)
	a := newAuthAppCost(t, 4, nil, func(c *Config) { c.Admission = adm })
	a.createUser("changer@example.com", "first-password-1", false)
	b := a.browser()
	wantStatus(t, signIn(b, "changer@example.com", "first-password-1", ""), http.StatusSeeOther)
	wantStatus(t, b.get("/settings"), http.StatusOK)

	free := fillSlots(t, adm)
	adm.waiting.Store(1) // the queue's one place is taken
	change := url.Values{"current_password": {"first-password-1"}, "password": {"second-password-2"}, "confirm": {"second-password-2"}}
	r := b.post("/settings/password", change)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "busy right now") {
		t.Fatalf("settings refusal: Retry-After %q, body has busy: %v", r.Header.Get("Retry-After"), strings.Contains(r.Body, "busy right now"))
	}
	p := a.browser()
	wantStatus(t, p.get("/portal/login"), http.StatusOK)
	r = p.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "busy right now") {
		t.Fatal("portal refusal has no Retry-After or message")
	}

	adm.waiting.Store(0)
	free()
	wantStatus(t, b.get("/settings"), http.StatusOK)
	wantStatus(t, b.post("/settings/password", change), http.StatusSeeOther)
	wantStatus(t, p.get("/portal/login"), http.StatusOK)
	wantStatus(t, p.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}}), http.StatusSeeOther)
}

// TestAdmissionQueueBoundFollowsServiceTime: the derived bound is slots ×
// target ÷ the measured time a request holds a slot.
func TestAdmissionQueueBoundFollowsServiceTime(t *testing.T) {
	adm := NewAdmission(2, time.Second, 0)
	adm.service.Store(int64(100 * time.Millisecond))
	if got := adm.QueueBound(); got != 20 {
		t.Fatalf("bound %d, want 20", got)
	}
	adm.service.Store(int64(10 * time.Second))
	if got := adm.QueueBound(); got != 2 {
		t.Fatalf("bound %d with slow service, want the slot count 2", got)
	}
	release, err := adm.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	release()
	release() // twice is harmless
	if len(adm.slots) != 0 {
		t.Fatalf("%d slots still held", len(adm.slots))
	}
	if svc := time.Duration(adm.service.Load()); svc >= 10*time.Second {
		t.Fatalf("service time not updated: %v", svc)
	}
}

// TestLockedDatabaseAnswers503: while another connection holds SQLite's
// write lock past the write budget, creating a user answers 503 with
// Retry-After (portal and Admin API), not 500, and creates nothing.
func TestLockedDatabaseAnswers503(t *testing.T) {
	a := newBusyApp(t)
	a.loginAdmin()
	key := a.apiKey()
	wantStatus(t, a.get("/portal/users/new"), http.StatusOK)

	// Another connection takes the lock a user's creation needs: SQLite's
	// one write lock, or on PostgreSQL a lock on the users table that lets
	// reads through but makes an INSERT wait (past the budget: lock_timeout).
	driver, dsn, holdLock := "sqlite3", "file:"+a.dbPath+"?_txlock=immediate", `INSERT INTO settings (key, value) VALUES ('lock-holder', x'00')`
	if testdb.Postgres() {
		driver, dsn, holdLock = "pgx", a.dbPath, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`
	}
	other, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(holdLock); err != nil {
		t.Fatal(err)
	}
	before := a.countUsers()

	r := a.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"busy@example.com"},
		"passwordMode": {"manual"}, "password": {"a-fine-password-1"}})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "busy") {
		t.Fatalf("portal: Retry-After %q, body %.300s", r.Header.Get("Retry-After"), r.Body)
	}

	body := `{"query":"mutation { createUser(input: {definition: {loginID: {key: \"email\", value: \"busyapi@example.com\"}}, password: \"a-fine-password-1\"}) { user { id } } }"}`
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	r = a.do(req)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, `"errorName":"ServiceUnavailable"`) || !strings.Contains(r.Body, `"reason":"DatabaseBusy"`) {
		t.Fatalf("api: Retry-After %q, body %s", r.Header.Get("Retry-After"), r.Body)
	}

	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := a.countUsers(); n != before {
		t.Fatalf("users %d -> %d while locked", before, n)
	}
	req, _ = http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	r = a.do(req)
	wantStatus(t, r, http.StatusOK)
	if a.countUsers() != before+1 {
		t.Fatalf("the retry after the lock did not create the user: %s", r.Body)
	}
}

// busyApp is a testApp over a store with a short write budget.
type busyApp struct {
	*testApp
	dbPath string
}

func newBusyApp(t *testing.T) *busyApp {
	t.Helper()
	path := testdb.DB(t, filepath.Join(t.TempDir(), "busy.db"))
	app := startTestAppAt(t, true, path, 300*time.Millisecond)
	return &busyApp{testApp: app, dbPath: path}
}

// apiKey creates an Admin API key and returns its secret.
func (a *busyApp) apiKey() string {
	a.t.Helper()
	k, err := a.acct.CreateAPIKey(context.Background(), account.SystemActor, "busy test")
	if err != nil {
		a.t.Fatal(err)
	}
	return k.Token
}

// TestAdmissionResetCodeRefused: the reset-by-code form (which checks the
// password history) is refused when the queue is full, without burning
// the code; the same code works once there is room.
func TestAdmissionResetCodeRefused(t *testing.T) {
	adm := NewAdmission(1, time.Second, 1)
	a := newAuthAppCost(t, 4, nil, func(c *Config) { c.Admission = adm })
	a.createUser("resetter@example.com", "first-password-1", false)
	b := a.browser()
	b.get("/forgot-password")
	wantStatus(t, b.post("/forgot-password", url.Values{"login_id": {"resetter@example.com"}}), http.StatusSeeOther)
	code := a.mailer.lastForgot(t).Code
	form := url.Values{"login_id": {"resetter@example.com"}, "code": {code}, "password": {"second-password-2"}, "confirm": {"second-password-2"}}

	free := fillSlots(t, adm)
	adm.waiting.Store(1)
	for i := 0; i < 6; i++ { // more than the 5 wrong codes that burn a reset
		b.get("/reset-password/code?login_id=resetter%40example.com")
		r := b.post("/reset-password/code", form)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "busy right now") {
			t.Fatal("reset refusal has no Retry-After or message")
		}
	}
	adm.waiting.Store(0)
	free()
	b.get("/reset-password/code?login_id=resetter%40example.com")
	wantStatus(t, b.post("/reset-password/code", form), http.StatusSeeOther)
	wantStatus(t, signIn(a.browser(), "resetter@example.com", "second-password-2", ""), http.StatusSeeOther)
}

// scrapeMetric reads one series from the /metrics handler, as Prometheus
// would: series is the exposition line's name and labels.
func scrapeMetric(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(metrics.Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}
