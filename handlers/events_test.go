package handlers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/outbound"
	"latchkey/store"
	"latchkey/store/testdb"
)

// newEventsApp is newTestApp with the hooks service wired in and its
// delivery worker running, as main.go does.
func newEventsApp(t *testing.T, tune ...func(*hooks.Config)) (*testApp, *hooks.Service) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	secret := []byte("0123456789abcdef0123456789abcdef")
	// Receivers run on loopback.
	hcfg := hooks.Config{AppID: "latchkey", Outbound: outbound.Policy{AllowPrivate: true}}
	for _, f := range tune {
		f(&hcfg)
	}
	hk, err := hooks.New(st, secret, hcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, hk, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hk.Run(wctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(New(Config{PublicURL: "http://localhost", SessionKey: secret, Log: log, Hooks: hk}, acct))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testApp{t: t, srv: srv, acct: acct, store: st, client: client}, hk
}

// sink is a webhook endpoint that keeps what it gets.
type sink struct {
	mu  sync.Mutex
	got []map[string]any
	hdr []http.Header
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	s.mu.Lock()
	s.got = append(s.got, m)
	s.hdr = append(s.hdr, r.Header.Clone())
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *sink) waitType(t *testing.T, typ string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, m := range s.got {
			if m["type"] == typ {
				s.mu.Unlock()
				return m
			}
		}
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s delivered", typ)
	return nil
}

var (
	secretRE  = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)
	hookIDRE  = regexp.MustCompile(`^/portal/hooks/([0-9a-f-]{36})$`)
	eventIDRE = regexp.MustCompile(`data-event-id="([0-9a-f]{16})"`)
)

// addHook adds a webhook through the portal form and returns its ID and
// the secret shown once.
func addHook(t *testing.T, a *testApp, form url.Values) (string, string) {
	t.Helper()
	a.get("/portal/hooks")
	r := a.post("/portal/hooks", form)
	wantStatus(t, r, http.StatusSeeOther)
	m := hookIDRE.FindStringSubmatch(r.Location)
	if m == nil {
		t.Fatalf("redirect to %q", r.Location)
	}
	page := a.get(r.Location)
	wantStatus(t, page, http.StatusOK)
	secret := secretRE.FindString(page.Body)
	if secret == "" {
		t.Fatal("secret not shown after adding the webhook")
	}
	again := a.get(r.Location)
	if strings.Contains(again.Body, secret) || strings.Contains(again.Body, "whsec_") {
		t.Fatal("secret shown a second time")
	}
	return m[1], secret
}

func TestPortalWebhookLifecycle(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	rcv := &sink{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	page := a.get("/portal/hooks")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Add non-blocking webhook", "Add blocking webhook", `value="user.created"`, `value="user.disabled"`)
	for _, auditOnly := range []string{hooks.AdminCreateUser, hooks.EmailSent, hooks.AuthPasswordFailed, hooks.UserPreCreate} {
		if strings.Contains(page.Body, `name="events" value="`+auditOnly+`"`) {
			t.Errorf("picker offers %s", auditOnly)
		}
	}
	id, _ := addHook(t, a, url.Values{"kind": {"non_blocking"}, "url": {srv.URL}, "events_mode": {"chosen"}, "events": {"user.created"}})

	// Send test event, then see it in the delivery log.
	a.get("/portal/hooks/" + id)
	r := a.post("/portal/hooks/"+id+"/test", nil)
	wantStatus(t, r, http.StatusSeeOther)
	// The flash shows on the first page after the redirect only; the
	// delivery may be logged a moment later (slower on a loaded machine).
	wantContains(t, a.get("/portal/hooks/"+id).Body, "Test event queued")
	rcv.waitType(t, hooks.WebhookTest)
	var body string
	for range 100 {
		body = a.get("/portal/hooks/" + id).Body
		if strings.Contains(body, "Delivered") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantContains(t, body, "webhook.test", "Delivered", "200", "Redeliver")

	// Redeliver it.
	did := regexp.MustCompile(`data-delivery-id="(\d+)"`).FindStringSubmatch(body)[1]
	r = a.post("/portal/hooks/"+id+"/deliveries/"+did+"/redeliver", nil)
	wantStatus(t, r, http.StatusSeeOther)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rcv.mu.Lock()
		n := len(rcv.got)
		rcv.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries after Redeliver", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rcv.hdr[0].Get("webhook-id") != rcv.hdr[1].Get("webhook-id") {
		t.Error("redelivery has a different webhook-id")
	}

	// Disable: the page says so and a new user is not sent.
	a.get("/portal/hooks/" + id)
	wantStatus(t, a.post("/portal/hooks/"+id+"/status", url.Values{"enabled": {"false"}}), http.StatusSeeOther)
	wantContains(t, a.get("/portal/hooks/"+id).Body, "Disabled", "Enable")
	if _, err := a.acct.CreateUser(context.Background(), account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "quiet"}); err != nil {
		t.Fatal(err)
	}
	// Nothing was queued for the disabled hook (deliveries are queued in
	// their event's transaction), so nothing can arrive later either.
	var queued int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries d JOIN events ev ON ev.seq = d.event_seq
		WHERE d.webhook_id = ? AND ev.user_id IN (SELECT user_id FROM identities WHERE value_norm = 'quiet')`, id).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 0 {
		t.Errorf("%d deliveries queued for a disabled hook", queued)
	}
	rcv.mu.Lock()
	if len(rcv.got) != 2 {
		t.Errorf("disabled hook got %d deliveries", len(rcv.got))
	}
	rcv.mu.Unlock()

	// Delete.
	wantStatus(t, a.post("/portal/hooks/"+id+"/delete", nil), http.StatusSeeOther)
	wantStatus(t, a.get("/portal/hooks/"+id), http.StatusNotFound)
}

func TestPortalWebhookBadInput(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	a.get("/portal/hooks")
	r := a.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {"file:///etc/passwd"}, "events_mode": {"chosen"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Enter a full http:// or https:// URL.", "Choose at least one event", `value="file:///etc/passwd"`)
	r = a.post("/portal/hooks", url.Values{"kind": {"blocking"}, "url": {"gopher://x"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	var n int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM webhooks`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d webhooks stored from bad input (%v)", n, err)
	}
	// No CSRF token: refused.
	r = a.postRaw("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {"http://example.com"}, "events_mode": {"all"}})
	wantStatus(t, r, http.StatusForbidden)
}

func TestPortalBlockingHookVetoAndTimeoutShowReason(t *testing.T) {
	a, _ := newEventsApp(t, func(c *hooks.Config) { c.BlockingTimeout = 300 * time.Millisecond })
	a.loginAdmin()
	var mode sync.Map
	mode.Store("m", "veto")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, _ := mode.Load("m")
		if m == "slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		io.WriteString(w, `{"is_allowed": false, "reason": "Sign-ups from example.org are closed.", "title": "Closed"}`)
	}))
	defer srv.Close()
	addHook(t, a, url.Values{"kind": {"blocking"}, "url": {srv.URL}})

	a.get("/portal/users/new")
	r := a.post("/portal/users", createForm("email", "new@example.org", "manual", "s3cret-Passw0rd", false, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Closed: Sign-ups from example.org are closed.", `value="new@example.org"`)
	if strings.Contains(r.Body, "s3cret-Passw0rd") {
		t.Error("password echoed")
	}
	if n := a.countUsers(); n != 0 {
		t.Errorf("%d users after a veto", n)
	}

	mode.Store("m", "slow")
	r = a.post("/portal/users", createForm("email", "new@example.org", "manual", "s3cret-Passw0rd", false, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "did not answer in time")
	if n := a.countUsers(); n != 0 {
		t.Errorf("%d users after a timeout", n)
	}
	var n int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events WHERE type NOT LIKE 'webhook.%' AND type NOT LIKE 'admin.%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d events after refused creations (%v)", n, err)
	}
}

func TestAuditLogFiltersPagingAndUserPanel(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	ctx := context.Background()
	actor := account.Actor{Kind: "admin", Name: testAdminEmail, TriggeredBy: "admin_api"}
	var ids []string
	for i := range 30 {
		u, err := a.acct.CreateUser(ctx, actor, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "user" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// 62 events (admin.created, admin.signin.succeeded, then user.created
	// + admin_api...executed for each user): two pages.
	page := a.get("/portal/audit-log")
	wantStatus(t, page, http.StatusOK)
	first := eventIDRE.FindAllStringSubmatch(page.Body, -1)
	if len(first) != auditPageSize {
		t.Fatalf("%d rows on the first page", len(first))
	}
	if first[0][1] <= first[1][1] {
		t.Error("not newest first")
	}
	next := regexp.MustCompile(`href="(/portal/audit-log\?before=[0-9a-f]+)" rel="next"`).FindStringSubmatch(page.Body)
	if next == nil {
		t.Fatal("no next page link")
	}
	page2 := a.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	second := eventIDRE.FindAllStringSubmatch(page2.Body, -1)
	if len(second) != 12 || second[0][1] >= first[len(first)-1][1] {
		t.Fatalf("second page: %d rows", len(second))
	}
	// Full JSON, readable.
	wantContains(t, page.Body, "&#34;triggered_by&#34;: &#34;admin_api&#34;", "standard_attributes")

	// Filter by type and user.
	byType := a.get("/portal/audit-log?type=user.created")
	if n := len(eventIDRE.FindAllString(byType.Body, -1)); n != 30 {
		t.Errorf("%d user.created rows", n)
	}
	if strings.Contains(byType.Body, "<code>admin_api.mutation.create_user.executed</code>") {
		t.Error("type filter let another type through")
	}
	byUser := a.get("/portal/audit-log?user=" + ids[3])
	if n := len(eventIDRE.FindAllString(byUser.Body, -1)); n != 2 {
		t.Errorf("%d rows for one user", n)
	}
	byLogin := a.get("/portal/audit-log?user=userda")
	if n := len(eventIDRE.FindAllString(byLogin.Body, -1)); n != 2 {
		t.Errorf("%d rows for login ID userda", n)
	}
	// Date range: today has them all, yesterday none.
	today := time.Now().UTC().Format("2006-01-02")
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if n := len(eventIDRE.FindAllString(a.get("/portal/audit-log?type=user.created&from="+today+"&to="+today).Body, -1)); n != 30 {
		t.Errorf("%d rows today", n)
	}
	if n := len(eventIDRE.FindAllString(a.get("/portal/audit-log?to="+yesterday).Body, -1)); n != 0 {
		t.Errorf("%d rows up to yesterday", n)
	}
	// Bad filters: clear errors, nothing listed.
	bad := a.get("/portal/audit-log?from=31-12-2020&user=nobody@example.com")
	wantStatus(t, bad, http.StatusUnprocessableEntity)
	wantContains(t, bad.Body, "Enter a date as YYYY-MM-DD.", "No user has this login ID.")
	bad = a.get("/portal/audit-log?from=" + today + "&to=" + yesterday)
	wantStatus(t, bad, http.StatusUnprocessableEntity)
	wantContains(t, bad.Body, "The end date must not be before the start date.")

	// One event's page.
	ev := a.get("/portal/audit-log/" + first[0][1])
	wantStatus(t, ev, http.StatusOK)
	wantContains(t, ev.Body, first[0][1], "&#34;payload&#34;")
	wantStatus(t, a.get("/portal/audit-log/zzzz"), http.StatusNotFound)
	wantStatus(t, a.get("/portal/audit-log/00000000000fffff"), http.StatusNotFound)

	// The user page links to the user's events.
	up := a.get("/portal/users/" + ids[3])
	wantContains(t, up.Body, `href="/portal/audit-log?user=`+ids[3]+`"`, "user.created")
}

func TestAuditLogNeedsAdmin(t *testing.T) {
	a, _ := newEventsApp(t)
	r := a.get("/portal/audit-log")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Location, "/portal/login") {
		t.Errorf("redirect to %q", r.Location)
	}
	wantStatus(t, a.get("/portal/hooks"), http.StatusSeeOther)
}
