package sms_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/sms/smstest"
	"latchkey/store"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// events records events once their transaction commits.
type events struct {
	mu  sync.Mutex
	evs []account.Event
}

func (r *events) Record(_ context.Context, tx *store.Tx, _ account.Actor, ev account.Event) error {
	tx.AfterCommit(func() { r.mu.Lock(); r.evs = append(r.evs, ev); r.mu.Unlock() })
	return nil
}
func (r *events) Blocking(context.Context, account.Actor, account.Event) error { return nil }
func (r *events) ofType(typ string) []account.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []account.Event
	for _, e := range r.evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// env is an account service and an outbox whose texts go to a provider,
// over a real SQLite file.
type env struct {
	t      *testing.T
	path   string
	st     *store.Store
	acct   *account.Service
	ob     *mail.Outbox
	events *events
}

func newEnv(t *testing.T, path, smsURL string, limits account.SMSLimits) *env {
	t.Helper()
	ctx := context.Background()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ev := &events{}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4, SMS: limits}, nil, ev, log)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := mail.New(st, mail.NewDevMailbox(0), mail.Config{AppName: "Acme", PublicURL: "https://id.example.com", Secret: testSecret, Log: log,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond, SendTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ob.SetEvents(ev)
	ob.SetTextSender(open(t, smsURL))
	acct.SetMailer(ob)
	e := &env{t: t, path: path, st: st, acct: acct, ob: ob, events: ev}
	t.Cleanup(e.close)
	return e
}

func (e *env) start() {
	e.t.Helper()
	if err := e.ob.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.ob.Stop(ctx)
	_ = e.st.Close()
}

var admin = account.Actor{Kind: "admin", ID: "admin-1", TriggeredBy: "admin_api"}

func ptr(s string) *string { return &s }

// createPhoneUser creates a phone user and sends their password by SMS.
func (e *env) createPhoneUser(phone string, password *string) *account.User {
	e.t.Helper()
	u, err := e.acct.CreateUser(context.Background(), admin, account.CreateUserInput{LoginIDKey: account.KindPhone, LoginIDValue: phone,
		Password: password, SendPassword: true, SetPasswordExpired: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) messages(userID string) []store.OutboxMessage {
	e.t.Helper()
	ms, err := e.st.OutboxByUser(context.Background(), userID, 10)
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

func (e *env) waitStatus(userID, status string) store.OutboxMessage {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := e.messages(userID)
		if len(ms) > 0 && ms[0].Status == status {
			return ms[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %+v never reached %s", ms, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var passwordRE = regexp.MustCompile(`password: (\S+?)(?:\s|$)`)

// TestCreatedPhoneUserGetsPasswordText: Create User with a phone login ID
// and a generated password sends it by text, in the guide's wording; the
// text's password is the stored one; the row is delivered and wiped, and
// sms.sent is recorded without the body.
func TestCreatedPhoneUserGetsPasswordText(t *testing.T) {
	for _, provider := range []string{"webhook", "twilio"} {
		t.Run(provider, func(t *testing.T) {
			var srv *smstest.Server
			var url string
			if provider == "webhook" {
				srv = smstest.StartWebhook(t)
				url = srv.WebhookURL()
			} else {
				srv = smstest.StartTwilio(t)
				url = srv.TwilioURL()
			}
			e := newEnv(t, "", url, account.SMSLimits{})
			e.start()
			u := e.createPhoneUser("+14155550100", ptr(""))
			m := srv.MessageTo("+14155550100", 10*time.Second)
			// The guide's wording; "Hello, " gives way when the expiry note would not fit one SMS.
			if !regexp.MustCompile(`^(Hello, a|A) new account has been created for you on Acme\. Visit https://id\.example\.com/login to sign in\. Your user ID is \+14155550100, password: `).MatchString(m.Body) {
				t.Fatalf("text %q", m.Body)
			}
			pw := passwordRE.FindStringSubmatch(m.Body)
			if pw == nil || !e.acct.Hasher().Verify(u.Password.Hash, pw[1]) {
				t.Fatalf("the text's password %v is not the stored one: %q", pw, m.Body)
			}
			if !strings.Contains(m.Body, "7 days") {
				t.Errorf("the text does not say when the temporary password stops working: %q", m.Body)
			}
			if n := len(m.Body); n > 160 {
				t.Errorf("text is %d characters, want one SMS: %q", n, m.Body)
			}
			row := e.waitStatus(u.ID, store.OutboxDelivered)
			if row.Secret != nil || row.Channel != store.ChannelSMS || row.Recipient != "+14155550100" {
				t.Errorf("row %+v", row)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(e.events.ofType(account.EventSMSSent)) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			sent := e.events.ofType(account.EventSMSSent)
			if len(sent) != 1 || len(e.events.ofType(account.EventEmailSent)) != 0 {
				t.Fatalf("sms.sent events %v", sent)
			}
			for k, v := range sent[0].Payload {
				if s, ok := v.(string); ok && strings.Contains(s, pw[1]) {
					t.Errorf("event payload %s carries the password", k)
				}
			}
		})
	}
}

// TestTextArrivesAfterProviderComesBack: the provider is down when the
// user is created; the text is retried and arrives once it is back up.
func TestTextArrivesAfterProviderComesBack(t *testing.T) {
	srv := smstest.StartWebhook(t)
	srv.Answer(http.StatusServiceUnavailable, "maintenance")
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	e.start()
	u := e.createPhoneUser("+14155550101", ptr("Typed-passw0rd-101"))
	deadline := time.Now().Add(10 * time.Second)
	for srv.Requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retries while the provider was down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if row := e.messages(u.ID)[0]; row.Status == store.OutboxFailed || row.Secret == nil || !strings.Contains(row.LastError, "503") {
		t.Fatalf("while down: %+v", row)
	}
	// Down hard: connections refused, then up again.
	srv.Stop()
	time.Sleep(100 * time.Millisecond)
	srv.Answer(0, "")
	srv.Restart()
	m := srv.MessageTo("+14155550101", 10*time.Second)
	if !strings.Contains(m.Body, "Typed-passw0rd-101") {
		t.Fatalf("text %q", m.Body)
	}
	if row := e.waitStatus(u.ID, store.OutboxDelivered); row.Attempts < 2 {
		t.Errorf("attempts %d", row.Attempts)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d texts, want 1", n)
	}
}

// TestRefusedTextFailsAtOnce: a 4xx from the provider fails the text on
// the first attempt, with the provider's words for the admin, and keeps
// the sealed password only for "Retry all" (mail.KeepFailedFor);
// sms.failed is recorded.
func TestRefusedTextFailsAtOnce(t *testing.T) {
	srv := smstest.StartWebhook(t)
	srv.Answer(http.StatusBadRequest, "unroutable destination +14155550102")
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	e.start()
	u := e.createPhoneUser("+14155550102", ptr(""))
	row := e.waitStatus(u.ID, store.OutboxFailed)
	if row.Attempts != 1 || row.LastError != "The SMS webhook answered 400: unroutable destination +14155550102" {
		t.Fatalf("row %+v", row)
	}
	time.Sleep(150 * time.Millisecond)
	if srv.Requests() != 1 {
		t.Errorf("%d requests: a permanent failure was retried", srv.Requests())
	}
	if f := e.events.ofType(account.EventSMSFailed); len(f) != 1 || !strings.Contains(f[0].Payload["error"].(string), "unroutable") {
		t.Errorf("sms.failed events %+v", f)
	}
	list, err := e.acct.ListUsers(context.Background(), store.ListUsersParams{Limit: 10})
	if err != nil || len(list) != 1 || !list[0].EmailFailed {
		t.Errorf("the Users list does not mark the failed password text: %+v %v", list, err)
	}
}

// TestQueuedTextsSurviveRestart: texts queued by one process (worker not
// running, as if it stopped) are each delivered exactly once by the next.
func TestQueuedTextsSurviveRestart(t *testing.T) {
	srv := smstest.StartWebhook(t)
	path := filepath.Join(t.TempDir(), "restart.db")
	e := newEnv(t, path, srv.WebhookURL(), account.SMSLimits{})
	phones := []string{"+14155550110", "+14155550111", "+14155550112"}
	for _, p := range phones {
		e.createPhoneUser(p, ptr(""))
	}
	// A claim left in "sending" by a crash is requeued too.
	ctx := context.Background()
	now := time.Now()
	if err := e.st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ClaimOutbox(ctx, now, now.Add(time.Hour), 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.close()
	if srv.Requests() != 0 {
		t.Fatal("texts sent before the worker started")
	}
	e2 := newEnv(t, path, srv.WebhookURL(), account.SMSLimits{})
	e2.start()
	srv.WaitFor(3, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	got := map[string]int{}
	for _, m := range srv.Messages() {
		got[m.To]++
	}
	for _, p := range phones {
		if got[p] != 1 {
			t.Errorf("%s got %d texts, want 1", p, got[p])
		}
	}
}

// TestNoPasswordTraceAfterTextDelivery scans the database file and its
// WAL byte by byte: the sealed secret is there while queued (so the scan
// works), and neither it nor the plaintext is after delivery.
func TestNoPasswordTraceAfterTextDelivery(t *testing.T) {
	srv := smstest.StartWebhook(t)
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	const password = "Zq8-unique-Sms-Pl41ntext"
	u := e.createPhoneUser("+14155550120", ptr(password))
	row := e.messages(u.ID)[0]
	sealedBytes := row.Secret[len(row.Secret)-32:]
	if !filesContain(t, e.path, sealedBytes) {
		t.Fatal("scan cannot find the sealed secret before delivery; the scan is broken")
	}
	if filesContain(t, e.path, []byte(password)) {
		t.Fatal("the plaintext password is in the database files while queued")
	}
	e.start()
	if m := srv.MessageTo("+14155550120", 10*time.Second); !strings.Contains(m.Body, password) {
		t.Fatal("the text does not carry the password")
	}
	e.waitStatus(u.ID, store.OutboxDelivered)
	deadline := time.Now().Add(5 * time.Second)
	for filesContain(t, e.path, sealedBytes) {
		if time.Now().After(deadline) {
			t.Fatal("the wiped secret's bytes are still in the database file or its WAL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if filesContain(t, e.path, []byte(password)) {
		t.Fatal("the plaintext password is in the database files")
	}
}

func filesContain(t *testing.T, dbPath string, needle []byte) bool {
	t.Helper()
	for _, p := range []string{dbPath, dbPath + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, needle) {
			return true
		}
	}
	return false
}

// TestForgotPasswordByText: a phone login ID gets a 6-digit code by text,
// with no link; the code resets the password once.
func TestForgotPasswordByText(t *testing.T) {
	srv := smstest.StartWebhook(t)
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	e.start()
	ctx := context.Background()
	u, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: account.KindPhone, LoginIDValue: "+14155550130", Password: ptr("Old-passw0rd-130")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.acct.ForgotPassword(ctx, account.Actor{Kind: "user", IP: "192.0.2.1"}, "+1 415 555 0130", "https://id.example.com/reset-password"); err != nil {
		t.Fatal(err)
	}
	m := srv.MessageTo("+14155550130", 10*time.Second)
	code := regexp.MustCompile(`^(\d{6}) is your Acme password reset code\. It expires in 5 minutes\.`).FindStringSubmatch(m.Body)
	if code == nil || strings.Contains(m.Body, "http") || m.Payload.MessageType != "forgot_password" {
		t.Fatalf("text %q (%+v)", m.Body, m.Payload)
	}
	in := account.ChangePasswordInput{New: "New-passw0rd-130", Confirm: "New-passw0rd-130"}
	if err := e.acct.ResetPasswordWithCode(ctx, account.Actor{Kind: "user"}, "+14155550130", code[1], in); err != nil {
		t.Fatal(err)
	}
	if err := e.acct.ResetPasswordWithCode(ctx, account.Actor{Kind: "user"}, "+14155550130", code[1], account.ChangePasswordInput{New: "Third-passw0rd-130", Confirm: "Third-passw0rd-130"}); err == nil {
		t.Fatal("the code worked twice")
	}
	got, _ := e.acct.GetUser(ctx, u.ID)
	if !e.acct.Hasher().Verify(got.Password.Hash, "New-passw0rd-130") {
		t.Fatal("the new password was not set")
	}
	// A username-only account is told it has nowhere to get a code.
	if _, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: account.KindUsername, LoginIDValue: "nophone"}); err != nil {
		t.Fatal(err)
	}
	err = e.acct.ForgotPassword(ctx, account.Actor{Kind: "user"}, "nophone", "https://id.example.com/reset-password")
	if ae, ok := account.AsError(err); !ok || ae.Reason != account.ReasonNoRecoveryTarget || !strings.Contains(ae.Message, "Contact an administrator") {
		t.Fatalf("username-only forgot: %v", err)
	}
}

// TestSMSLimits: each abuse limit refuses the next text. Forgot password
// answers with the reason and queues nothing; an admin's Create User
// still creates the user and records the refusal for the user page.
func TestSMSLimits(t *testing.T) {
	ctx := context.Background()
	forgot := func(e *env, phone, ip string) error {
		// Each request two minutes after the last: past the one-minute
		// cooldown, well inside the hour.
		at := e.acct.Now().Add(2 * time.Minute)
		e.acct.Now = func() time.Time { return at }
		return e.acct.ForgotPassword(ctx, account.Actor{Kind: "user", IP: ip}, phone, "https://id.example.com/reset-password")
	}
	mk := func(e *env, phones ...string) {
		for _, p := range phones {
			if _, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: account.KindPhone, LoginIDValue: p, Password: ptr("Passw0rd-limits")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantRefused := func(t *testing.T, err error, words string) {
		t.Helper()
		ae, ok := account.AsError(err)
		if !ok || ae.Reason != account.ReasonSMSLimitExceeded || !strings.Contains(ae.Message, words) {
			t.Fatalf("error %v, want an SMS limit refusal saying %q", err, words)
		}
	}
	cases := []struct {
		name   string
		limits account.SMSLimits
		run    func(e *env) error
		words  string
	}{
		{"per phone per hour", account.SMSLimits{}, func(e *env) error {
			mk(e, "+14155550140")
			for i := 0; i < 3; i++ {
				if err := forgot(e, "+14155550140", "192.0.2.1"); err != nil {
					return err
				}
			}
			return forgot(e, "+14155550140", "192.0.2.2")
		}, "in the last hour (at most 3)"},
		{"per phone per day", account.SMSLimits{PerPhoneHour: 100, PerPhoneDay: 2}, func(e *env) error {
			mk(e, "+14155550141")
			for i := 0; i < 2; i++ {
				if err := forgot(e, "+14155550141", "192.0.2.1"); err != nil {
					return err
				}
			}
			return forgot(e, "+14155550141", "192.0.2.9")
		}, "today (at most 2 in 24 hours)"},
		{"per IP", account.SMSLimits{PerIPHour: 2}, func(e *env) error {
			mk(e, "+14155550142", "+14155550143", "+14155550144")
			for _, p := range []string{"+14155550142", "+14155550143"} {
				if err := forgot(e, p, "198.51.100.7"); err != nil {
					return err
				}
			}
			if err := forgot(e, "+14155550144", "198.51.100.8"); err != nil { // another IP still may
				return err
			}
			return forgot(e, "+14155550144", "198.51.100.7")
		}, "from your network"},
		{"per country calling code", account.SMSLimits{PerCountryDay: map[string]int{"44": 1, "*": 100}}, func(e *env) error {
			mk(e, "+442071838750", "+442071838751", "+14155550145")
			if err := forgot(e, "+442071838750", "192.0.2.1"); err != nil {
				return err
			}
			if err := forgot(e, "+14155550145", "192.0.2.1"); err != nil { // +1 has its own cap
				return err
			}
			return forgot(e, "+442071838751", "192.0.2.3")
		}, "to +44 numbers (1)"},
		{"global daily cap", account.SMSLimits{DailyTotal: 2}, func(e *env) error {
			mk(e, "+14155550146", "+14155550147", "+14155550148")
			for _, p := range []string{"+14155550146", "+14155550147"} {
				if err := forgot(e, p, "192.0.2."+p[len(p)-1:]); err != nil {
					return err
				}
			}
			return forgot(e, "+14155550148", "192.0.2.200")
		}, "daily limit of text messages (2)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := smstest.StartWebhook(t)
			e := newEnv(t, "", srv.WebhookURL(), c.limits)
			before := countRows(t, e)
			err := c.run(e)
			wantRefused(t, err, c.words)
			if got := countRows(t, e); got != before+len(srvCount(e)) {
				t.Errorf("outbox rows %d, sends counted %d: the refused text was queued", got, len(srvCount(e)))
			}
		})
	}

	// An admin's Create User over the limit: the user exists, the text is
	// recorded as not sent with the reason, and sms.failed is recorded.
	srv := smstest.StartWebhook(t)
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{DailyTotal: 1})
	e.start()
	e.createPhoneUser("+14155550150", ptr(""))
	u := e.createPhoneUser("+14155550151", ptr(""))
	rows := e.messages(u.ID)
	if len(rows) != 1 || rows[0].Status != store.OutboxFailed || rows[0].Secret != nil || rows[0].Attempts != 0 ||
		!strings.HasPrefix(rows[0].LastError, "Not sent: The daily limit of text messages (1) has been reached.") {
		t.Fatalf("refused row %+v", rows)
	}
	srv.WaitFor(1, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d texts sent, want 1", n)
	}
	if f := e.events.ofType(account.EventSMSFailed); len(f) != 1 {
		t.Errorf("sms.failed events: %+v", f)
	}
}

// srvCount lists the sms_sends rows (what the limits counted).
func srvCount(e *env) []int {
	var n int
	_ = e.st.InTx(context.Background(), func(tx *store.Tx) error {
		c, err := tx.CountSMSSends(context.Background(), "", "", "", time.Now().Add(time.Hour))
		n = c.GlobalDay
		return err
	})
	return make([]int, n)
}

func countRows(t *testing.T, e *env) int {
	t.Helper()
	c, err := e.st.CountOutbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}
