package handlers

import (
	"context"
	"encoding/json"
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
	"latchkey/store"
	"latchkey/store/testdb"
)

// authClock is the account service's clock in Auth UI tests.
type authClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *authClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *authClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// authMailer records forgot-password and password mail instead of sending
// it (until the mail package is merged), inside the same transaction as
// the real outbox would.
type authMailer struct {
	mu     sync.Mutex
	forgot []account.ForgotPasswordMail
	pw     []account.PasswordMail
}

func (m *authMailer) QueuePassword(_ context.Context, tx *store.Tx, pm account.PasswordMail) error {
	tx.AfterCommit(func() { m.mu.Lock(); m.pw = append(m.pw, pm); m.mu.Unlock() })
	return nil
}

func (m *authMailer) QueueForgotPassword(_ context.Context, tx *store.Tx, fm account.ForgotPasswordMail) error {
	tx.AfterCommit(func() { m.mu.Lock(); m.forgot = append(m.forgot, fm); m.mu.Unlock() })
	return nil
}

func (m *authMailer) forgotCount() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.forgot) }
func (m *authMailer) lastForgot(t *testing.T) account.ForgotPasswordMail {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.forgot) == 0 {
		t.Fatal("no forgot-password mail queued")
	}
	return m.forgot[len(m.forgot)-1]
}

// authEvents records events committed with their transaction.
type authEvents struct {
	mu     sync.Mutex
	events []authEvent
}

type authEvent struct {
	Actor account.Actor
	account.Event
	JSON string
}

func (r *authEvents) Record(_ context.Context, tx *store.Tx, actor account.Actor, ev account.Event) error {
	b, err := json.Marshal(ev.Payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() { r.mu.Lock(); r.events = append(r.events, authEvent{actor, ev, string(b)}); r.mu.Unlock() })
	return nil
}

func (r *authEvents) Blocking(context.Context, account.Actor, account.Event) error { return nil }

func (r *authEvents) ofType(typ string) []authEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []authEvent
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// authApp is a testApp with a fake clock, a recording mailer and events.
type authApp struct {
	*testApp
	clock  *authClock
	mailer *authMailer
	events *authEvents
}

// newAuthApp starts the real router like newTestApp, with the clock,
// mailer and event recorder wired in before the server serves.
func newAuthApp(t *testing.T, policy func(*account.Policy)) *authApp {
	return newAuthAppCost(t, 4, policy)
}

// newAuthAppCost is newAuthApp with a chosen bcrypt cost; configure may
// change the handler config.
func newAuthAppCost(t *testing.T, cost int, policy func(*account.Policy), configure ...func(*Config)) *authApp {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	m, ev := &authMailer{}, &authEvents{}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: cost}, m, ev, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &authClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	acct.Now = clock.Now
	if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
		t.Fatal(err)
	}
	if policy != nil {
		p := acct.Policy()
		policy(&p)
		if err := acct.SavePolicy(ctx, account.SystemActor, p); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{PublicURL: "http://localhost", SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: log}
	for _, f := range configure {
		f(&cfg)
	}
	srv := httptest.NewServer(New(cfg, acct))
	t.Cleanup(srv.Close)
	a := &authApp{testApp: &testApp{t: t, srv: srv, acct: acct, store: st}, clock: clock, mailer: m, events: ev}
	a.client = newJarClient()
	return a
}

func newJarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// browser is another browser (own cookie jar) on the same app.
func (a *authApp) browser() *testApp {
	return &testApp{t: a.t, srv: a.srv, acct: a.acct, store: a.store, client: newJarClient()}
}

// createUser makes a user as an admin would; expired asks for a change at
// next sign-in.
func (a *authApp) createUser(loginID, password string, expired bool) *account.User {
	a.t.Helper()
	kind := account.KindEmail
	if !strings.Contains(loginID, "@") {
		kind = account.KindUsername
	}
	u, err := a.acct.CreateUser(context.Background(), account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: kind, LoginIDValue: loginID, Password: &password, SetPasswordExpired: expired})
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// signIn posts the sign-in form from a fresh GET of /login.
func signIn(b *testApp, loginID, password, next string) response {
	b.t.Helper()
	path := "/login"
	if next != "" {
		path += "?" + url.Values{"next": {next}}.Encode()
	}
	wantStatus(b.t, b.get(path), http.StatusOK)
	return b.post("/login", url.Values{"login_id": {loginID}, "password": {password}, "next": {next}})
}

func cookieValue(b *testApp, name string) string {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var loginErrorRE = regexp.MustCompile(`(?s)id="login-error">(.*?)</div>`)

func loginError(body string) string {
	m := loginErrorRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

func (a *authApp) sessions(userID string) int {
	a.t.Helper()
	n, err := a.store.CountUserSessions(context.Background(), userID, a.clock.Now())
	if err != nil {
		a.t.Fatal(err)
	}
	return n
}

func (a *authApp) user(id string) *account.User {
	a.t.Helper()
	u, err := a.acct.GetUser(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}
