package mail_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/mail/mailtest"
	"latchkey/store"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// recorder is an account.Events that keeps what was recorded, to check
// that email.sent and email.failed are written with the status change.
type recorder struct {
	mu     sync.Mutex
	events []account.Event
	actors []account.Actor
}

func (r *recorder) Record(_ context.Context, tx *store.Tx, actor account.Actor, ev account.Event) error {
	if tx == nil {
		return errors.New("no transaction")
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.actors = append(r.actors, actor)
		r.mu.Unlock()
	})
	return nil
}

func (r *recorder) Blocking(context.Context, account.Actor, account.Event) error { return nil }

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

// env is an account service and an outbox over a real SQLite file.
type env struct {
	t      *testing.T
	path   string
	st     *store.Store
	acct   *account.Service
	ob     *mail.Outbox
	events *recorder
}

type opt func(*mail.Config)

func fastRetries(c *mail.Config) {
	c.RetryBase, c.RetryMax, c.PollInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	c.SendTimeout = 3 * time.Second
}

// newEnv opens (or reopens) the database at path with an outbox sending
// through sender; the worker is not started.
func newEnv(t *testing.T, path string, sender mail.Sender, opts ...opt) *env {
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
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mail.Config{AppName: "Acme", PublicURL: "https://id.example.com/", From: "Acme <no-reply@example.com>", Secret: testSecret, Log: log}
	fastRetries(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	ob, err := mail.New(st, sender, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ob.SetEvents(rec)
	acct.SetMailer(ob)
	e := &env{t: t, path: path, st: st, acct: acct, ob: ob, events: rec}
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

func smtpSender(srv *mailtest.Server) *mail.SMTPSender {
	c, err := mail.ParseSMTPURL(srv.URL())
	if err != nil {
		panic(err)
	}
	c.Timeout = 3 * time.Second
	return mail.NewSMTPSender(c)
}

func (e *env) createUser(loginID string, password *string, send, expire bool) *account.User {
	e.t.Helper()
	u, err := e.acct.CreateUser(context.Background(), account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: "email", LoginIDValue: loginID, Password: password, SendPassword: send, SetPasswordExpired: expire})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) messages(userID string) []store.OutboxMessage {
	e.t.Helper()
	ms, err := e.st.OutboxByUser(context.Background(), userID, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

// waitRow waits until the user's latest message satisfies ok.
func (e *env) waitRow(userID string, what string, ok func(store.OutboxMessage) bool) store.OutboxMessage {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last store.OutboxMessage
	for time.Now().Before(deadline) {
		if ms := e.messages(userID); len(ms) > 0 {
			last = ms[0]
			if ok(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("message never became %s; last: status %s, attempts %d, error %q", what, last.Status, last.Attempts, last.LastError)
	return last
}

func (e *env) waitStatus(userID, status string) store.OutboxMessage {
	e.t.Helper()
	return e.waitRow(userID, status, func(m store.OutboxMessage) bool { return m.Status == status })
}

var tempPasswordRE = regexp.MustCompile(`Your temporary password: (\S+)`)

func ptr(s string) *string { return &s }

func TestNewUserPasswordEmailOverSMTP(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	u := e.createUser("Carol@Example.com", ptr(""), true, true)

	msg := srv.MessageTo("Carol@Example.com", 10*time.Second)
	if msg.Subject != "Get Started With Acme" {
		t.Errorf("subject %q", msg.Subject)
	}
	if len(msg.To) != 1 || msg.From != "no-reply@example.com" {
		t.Errorf("envelope from %q to %v", msg.From, msg.To)
	}
	for _, want := range []string{"Your login ID: Carol@example.com", "https://id.example.com/login",
		"Login to Acme with your email and temporary password.", "You must change this password when you first sign in."} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, msg.Text)
		}
	}
	m := tempPasswordRE.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no temporary password in:\n%s", msg.Text)
	}
	password := m[1]
	full, err := e.acct.GetUser(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !e.acct.Hasher().Verify(full.Password.Hash, password) {
		t.Fatalf("the emailed password %q does not verify against the stored hash", password)
	}
	if !strings.Contains(html.UnescapeString(msg.HTML), password) || !strings.Contains(msg.HTML, `href="https://id.example.com/login"`) {
		t.Errorf("HTML part lacks the password or the sign-in link:\n%s", msg.HTML)
	}

	row := e.waitStatus(u.ID, store.OutboxDelivered)
	if row.Secret != nil || row.DeliveredAt == nil || row.Attempts != 1 {
		t.Errorf("delivered row: secret %v, delivered_at %v, attempts %d", row.Secret, row.DeliveredAt, row.Attempts)
	}
	waitEvents(t, e.events, "email.sent")
	if e.events.actors[0].Kind != "system" {
		t.Errorf("email.sent actor %+v, want the system actor", e.events.actors[0])
	}
	if p, _ := e.events.events[0].Payload["recipient"].(string); p != "Carol@example.com" {
		t.Errorf("event payload %v", e.events.events[0].Payload)
	}
	for k, v := range e.events.events[0].Payload {
		if s, ok := v.(string); ok && strings.Contains(s, password) {
			t.Errorf("event payload %s carries the password", k)
		}
	}
}

func waitEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Join(r.types(), ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("events %v, want %v", r.types(), want)
}

func TestPasswordResetAndForgotPasswordMessages(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	u := e.createUser("dan@example.com", ptr("first-Passw0rd"), false, false)
	ctx := context.Background()
	err := e.st.InTx(ctx, func(tx *store.Tx) error {
		if err := e.ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailPasswordReset, UserID: u.ID,
			To: "dan@example.com", LoginID: "dan@example.com", Password: "new<&>Passw0rd", MustChange: false}); err != nil {
			return err
		}
		return e.ob.QueueForgotPassword(ctx, tx, account.ForgotPasswordMail{UserID: u.ID, To: "dan@example.com",
			Code: "493817", Link: "https://id.example.com/reset?token=abc&x=1", CodeTTL: 300 * time.Second, LinkTTL: 20 * time.Minute})
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.WaitFor(2, 10*time.Second)
	bySubject := map[string]mailtest.Message{}
	for _, m := range msgs {
		bySubject[m.Subject] = m
	}
	reset, ok := bySubject["[Acme] Your password has been changed"]
	if !ok {
		t.Fatalf("no reset message; subjects: %v", subjects(msgs))
	}
	for _, want := range []string{"Your new password: new<&>Passw0rd", "Security tips", "https://id.example.com/login"} {
		if !strings.Contains(reset.Text, want) {
			t.Errorf("reset text lacks %q:\n%s", want, reset.Text)
		}
	}
	if strings.Contains(reset.Text, "You must change") {
		t.Error("reset text asks for a change though MustChange is off")
	}
	if !strings.Contains(reset.HTML, "new&lt;&amp;&gt;Passw0rd") {
		t.Errorf("reset HTML does not carry the escaped password:\n%s", reset.HTML)
	}
	forgot, ok := bySubject["[Acme] Reset your password"]
	if !ok {
		t.Fatalf("no forgot-password message; subjects: %v", subjects(msgs))
	}
	for _, want := range []string{"Your verification code: 493817", "The code expires in 5 minutes.",
		"https://id.example.com/reset?token=abc&x=1", "(it expires in 20 minutes)"} {
		if !strings.Contains(forgot.Text, want) {
			t.Errorf("forgot text lacks %q:\n%s", want, forgot.Text)
		}
	}
	if !strings.Contains(forgot.HTML, `href="https://id.example.com/reset?token=abc&amp;x=1"`) {
		t.Errorf("forgot HTML lacks the link:\n%s", forgot.HTML)
	}
}

func subjects(ms []mailtest.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Subject)
	}
	return out
}

func TestQueueRollsBackWithTheTransaction(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	ctx := context.Background()
	boom := errors.New("boom")
	err := e.st.InTx(ctx, func(tx *store.Tx) error {
		if err := e.ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailNewUser, To: "x@example.com",
			LoginID: "x@example.com", Password: "Passw0rd-x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	counts, err := e.st.CountOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 0 {
		t.Fatalf("outbox after rollback: %v", counts)
	}
	// Bad input is refused and writes nothing.
	err = e.st.InTx(ctx, func(tx *store.Tx) error {
		return e.ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailNewUser, To: "not an address", Password: "x"})
	})
	if err == nil || !strings.Contains(err.Error(), "bad recipient") {
		t.Fatalf("bad recipient: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent for rolled-back rows", n)
	}
}

func TestSMTPDownAtCreationRetriesUntilUp(t *testing.T) {
	srv := mailtest.Reserve(t)
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	start := time.Now()
	u := e.createUser("erin@example.com", ptr(""), true, true)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CreateUser took %s with SMTP down; it must not wait on SMTP", d)
	}
	if _, err := e.acct.GetUser(context.Background(), u.ID); err != nil {
		t.Fatalf("user not created: %v", err)
	}
	row := e.waitRow(u.ID, "retrying", func(m store.OutboxMessage) bool {
		return m.Status == store.OutboxQueued && m.Attempts >= 2 && m.LastError != ""
	})
	if !strings.Contains(row.LastError, "connection refused") || row.Secret == nil {
		t.Fatalf("retrying row: error %q, secret kept %v", row.LastError, row.Secret != nil)
	}
	srv.Up()
	msg := srv.MessageTo("erin@example.com", 10*time.Second)
	e.waitStatus(u.ID, store.OutboxDelivered)
	pw := tempPasswordRE.FindStringSubmatch(msg.Text)
	full, _ := e.acct.GetUser(context.Background(), u.ID)
	if pw == nil || !e.acct.Hasher().Verify(full.Password.Hash, pw[1]) {
		t.Fatal("the message that arrived late does not carry the user's password")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages arrived, want exactly 1", n)
	}
}

func TestTemporary4xxIsRetried(t *testing.T) {
	srv := mailtest.Start(t)
	srv.TempFail(2)
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	u := e.createUser("fay@example.com", ptr("Passw0rd-fay"), true, false)
	row := e.waitStatus(u.ID, store.OutboxDelivered)
	if row.Attempts != 3 || len(srv.Messages()) != 1 {
		t.Fatalf("attempts %d, messages %d; want 3 attempts, 1 message", row.Attempts, len(srv.Messages()))
	}
	if !strings.Contains(row.LastError, "451") {
		t.Errorf("last error %q should keep the 451 seen on the way", row.LastError)
	}
}

func TestPermanent5xxFailsWithServerText(t *testing.T) {
	srv := mailtest.Start(t)
	srv.RejectRecipients(550, "5.1.1 No such mailbox here")
	e := newEnv(t, "", smtpSender(srv))
	e.start()
	u := e.createUser("gus@example.com", ptr("Passw0rd-gus"), true, false)
	row := e.waitStatus(u.ID, store.OutboxFailed)
	if !strings.Contains(row.LastError, "550") || !strings.Contains(row.LastError, "No such mailbox here") {
		t.Errorf("failure reason %q lacks the server's text", row.LastError)
	}
	if row.Attempts != 1 || row.Secret == nil {
		t.Errorf("attempts %d (want 1: no retry on 5xx), secret kept for Retry all %v", row.Attempts, row.Secret != nil)
	}
	waitEvents(t, e.events, "email.failed")
	if got, _ := e.events.events[0].Payload["error"].(string); !strings.Contains(got, "No such mailbox here") {
		t.Errorf("email.failed payload %v", e.events.events[0].Payload)
	}
	list, err := e.st.ListUsers(context.Background(), store.ListUsersParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !list[0].EmailFailed {
		t.Fatalf("Users list does not mark the failed password email: %+v", list)
	}
	// A later password email supersedes the failure mark.
	srv.RejectRecipients(0, "")
	ctx := context.Background()
	if err := e.st.InTx(ctx, func(tx *store.Tx) error {
		return e.ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailPasswordReset, UserID: u.ID, To: "gus@example.com",
			LoginID: "gus@example.com", Password: "Passw0rd-gus2"})
	}); err != nil {
		t.Fatal(err)
	}
	list, _ = e.st.ListUsers(ctx, store.ListUsersParams{Limit: 10})
	if list[0].EmailFailed {
		t.Error("a newer password email should clear the failed mark")
	}
	if found, _ := e.st.ListUsers(ctx, store.ListUsersParams{Search: "gus@", Limit: 10}); len(found) != 1 || found[0].EmailFailed {
		t.Errorf("search path: %+v", found)
	}
}

func TestGivesUpAfterTheRetryWindow(t *testing.T) {
	srv := mailtest.Reserve(t)
	e := newEnv(t, "", smtpSender(srv), func(c *mail.Config) { c.GiveUpAfter = 300 * time.Millisecond })
	e.start()
	u := e.createUser("hal@example.com", ptr("Passw0rd-hal"), true, false)
	row := e.waitStatus(u.ID, store.OutboxFailed)
	if !strings.HasPrefix(row.LastError, "Gave up after 300ms") || !strings.Contains(row.LastError, "connection refused") || row.Secret == nil {
		t.Fatalf("gave-up row: %q, secret kept for Retry all %v", row.LastError, row.Secret != nil)
	}
}

func TestRestartDeliversQueuedRowsExactlyOnce(t *testing.T) {
	srv := mailtest.Start(t)
	path := filepath.Join(t.TempDir(), "restart.db")
	ctx := context.Background()

	// First run: one message delivered, then the worker stops.
	e1 := newEnv(t, path, smtpSender(srv))
	e1.start()
	delivered := e1.createUser("ivy@example.com", ptr("Passw0rd-ivy"), true, false)
	e1.waitStatus(delivered.ID, store.OutboxDelivered)
	if err := e1.ob.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Three more are queued while no worker runs, and one of them is
	// claimed by a "process" that then dies mid-send.
	var users []*account.User
	for _, id := range []string{"jo@example.com", "kim@example.com", "lee@example.com"} {
		users = append(users, e1.createUser(id, ptr("Passw0rd-x1"), true, false))
	}
	if err := e1.st.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.ClaimOutbox(ctx, time.Now(), time.Now().Add(time.Hour), 1)
		if len(rows) != 1 {
			t.Fatalf("claimed %d rows", len(rows))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e1.close()
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages before restart, want 1", n)
	}

	// Restart: each held message goes out once, the delivered one never again.
	e2 := newEnv(t, path, smtpSender(srv))
	e2.start()
	srv.WaitFor(4, 10*time.Second)
	for _, u := range users {
		e2.waitStatus(u.ID, store.OutboxDelivered)
	}
	time.Sleep(300 * time.Millisecond)
	count := map[string]int{}
	for _, m := range srv.Messages() {
		count[m.To[0]]++
	}
	for _, to := range []string{"ivy@example.com", "jo@example.com", "kim@example.com", "lee@example.com"} {
		if count[to] != 1 {
			t.Errorf("%s got %d messages, want 1 (all: %v)", to, count[to], count)
		}
	}
}

func TestAStaleClaimCannotUndoADelivery(t *testing.T) {
	e := newEnv(t, "", mail.NewDevMailbox(0))
	ctx := context.Background()
	u := e.createUser("max@example.com", ptr("Passw0rd-max"), true, false)
	now := time.Now()
	var first, second []store.OutboxMessage
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.st.InTx(ctx, func(tx *store.Tx) (err error) {
		first, err = tx.ClaimOutbox(ctx, now, now.Add(time.Second), 10)
		return err
	}))
	// The first claim's lease runs out and a second worker takes the row.
	must(e.st.InTx(ctx, func(tx *store.Tx) (err error) {
		second, err = tx.ClaimOutbox(ctx, now.Add(2*time.Second), now.Add(time.Hour), 10)
		return err
	}))
	if len(first) != 1 || len(second) != 1 || second[0].Attempts != first[0].Attempts+1 {
		t.Fatalf("claims: %+v / %+v", first, second)
	}
	must(e.st.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.MarkOutboxDelivered(ctx, second[0].ID, second[0].Attempts, now)
		if !ok {
			t.Error("the current claim could not mark the row delivered")
		}
		return err
	}))
	must(e.st.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.MarkOutboxRetry(ctx, first[0].ID, first[0].Attempts, now, "late 451", now)
		if ok {
			t.Error("a stale claim put a delivered message back in the queue")
		}
		return err
	}))
	must(e.st.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.ClaimOutbox(ctx, now.Add(48*time.Hour), now.Add(49*time.Hour), 10)
		if len(rows) != 0 {
			t.Errorf("a delivered message was claimed again: %+v", rows)
		}
		return err
	}))
	if ms := e.messages(u.ID); ms[0].Status != store.OutboxDelivered {
		t.Fatalf("status %s", ms[0].Status)
	}
}

func TestNoPlaintextPasswordInDatabaseFilesAfterDelivery(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEnv(t, "", smtpSender(srv))
	const password = "Zq8-unique-Pl41ntext-Marker"
	u := e.createUser("nia@example.com", ptr(password), true, true)
	row := e.messages(u.ID)[0]
	if len(row.Secret) < 40 {
		t.Fatalf("secret too short: %d bytes", len(row.Secret))
	}
	sealedBytes := row.Secret[len(row.Secret)-32:]
	// The scan finds what is there: before delivery, the sealed secret is
	// in the database files (and the plaintext never is).
	if !filesContain(t, e.path, sealedBytes) {
		t.Fatal("scan cannot find the sealed secret before delivery; the scan is broken")
	}
	if filesContain(t, e.path, []byte(password)) {
		t.Fatal("the plaintext password is in the database files while queued")
	}
	e.start()
	msg := srv.MessageTo("nia@example.com", 10*time.Second)
	if !strings.Contains(msg.Text, password) {
		t.Fatal("the message does not carry the password")
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

// filesContain scans the SQLite file and its WAL byte by byte.
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

// TestSendPasswordNeedsAnEmail: a username-only user has nowhere to get a
// password (a phone user gets a text since issue 10; see sms_test.go).
func TestSendPasswordNeedsAnEmail(t *testing.T) {
	e := newEnv(t, "", mail.NewDevMailbox(0))
	e.start()
	ctx := context.Background()
	for _, tc := range []struct{ kind, value string }{{"username", "olga"}} {
		_, err := e.acct.CreateUser(ctx, account.Actor{Kind: "admin"}, account.CreateUserInput{LoginIDKey: tc.kind, LoginIDValue: tc.value,
			Password: ptr("Passw0rd-olga"), SendPassword: true})
		ae, ok := account.AsError(err)
		if !ok || ae.Reason != account.ReasonSendPasswordNoTarget {
			t.Errorf("%s: err %v, want SendPasswordNoTarget", tc.kind, err)
		}
	}
	if n, err := e.st.CountUsers(ctx); err != nil || n != 0 {
		t.Errorf("%d users created (%v)", n, err)
	}
	if c, err := e.st.CountOutbox(ctx); err != nil || len(c) != 0 {
		t.Errorf("outbox: %v (%v)", c, err)
	}
	if n := len(e.ob.DevMailbox().List()); n != 0 {
		t.Errorf("%d dev mailbox messages", n)
	}
}

func TestDevMailboxKeepsMessages(t *testing.T) {
	box := mail.NewDevMailbox(2)
	e := newEnv(t, "", box)
	e.start()
	u := e.createUser("pat@example.com", ptr("Passw0rd-pat"), true, false)
	e.waitStatus(u.ID, store.OutboxDelivered)
	list := box.List()
	if len(list) != 1 || list[0].To != "pat@example.com" || !strings.Contains(list[0].Text, "Passw0rd-pat") || !strings.Contains(list[0].HTML, "Passw0rd-pat") {
		t.Fatalf("dev mailbox: %+v", list)
	}
	if got, ok := box.Get(list[0].ID); !ok || got.Subject != "Get Started With Acme" {
		t.Fatalf("get: %+v %v", got, ok)
	}
	for i := 0; i < 3; i++ {
		_ = box.Send(context.Background(), "a@b.c", mail.Message{To: "q@example.com", Subject: "s"})
	}
	if n := len(box.List()); n != 2 {
		t.Fatalf("mailbox keeps %d, want its limit 2", n)
	}
}

func TestConnectionsAreReused(t *testing.T) {
	srv := mailtest.Start(t)
	sender := smtpSender(srv)
	e := newEnv(t, "", sender, func(c *mail.Config) { c.Concurrency = 2 })
	e.start()
	for i := 0; i < 20; i++ {
		e.createUser("u"+string(rune('a'+i))+"@example.com", ptr("Passw0rd-reuse"), true, false)
	}
	srv.WaitFor(20, 10*time.Second)
	if c := srv.Connections(); c > 4 {
		t.Errorf("%d SMTP connections for 20 messages; connections are not reused", c)
	}
}

func TestRetryNow(t *testing.T) {
	srv := mailtest.Reserve(t)
	e := newEnv(t, "", smtpSender(srv), func(c *mail.Config) {
		c.RetryBase, c.RetryMax, c.PollInterval = time.Hour, time.Hour, time.Hour
	})
	e.start()
	u := e.createUser("quin@example.com", ptr("Passw0rd-quin"), true, false)
	row := e.waitRow(u.ID, "retrying", func(m store.OutboxMessage) bool { return m.Status == store.OutboxQueued && m.Attempts == 1 })
	srv.Up()
	ctx := context.Background()
	if ok, err := e.ob.RetryNow(ctx, "someone-else", row.ID); ok || err != nil {
		t.Fatalf("retry of another user's message: %v %v", ok, err)
	}
	if ok, err := e.ob.RetryNow(ctx, u.ID, row.ID); !ok || err != nil {
		t.Fatalf("retry now: %v %v", ok, err)
	}
	srv.MessageTo("quin@example.com", 5*time.Second)
	e.waitStatus(u.ID, store.OutboxDelivered)
	if ok, err := e.ob.RetryNow(ctx, u.ID, row.ID); err != nil || ok {
		t.Fatalf("retry now on a delivered message: %v %v, want false and no error", ok, err)
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		in                        string
		host, port, tls, user, pw string
		err                       string
	}{
		{in: "smtp://u%40x:p%3Ass@mail.example.com:587?tls=starttls", host: "mail.example.com", port: "587", tls: "starttls", user: "u@x", pw: "p:ss"},
		{in: "smtp://mail.example.com", host: "mail.example.com", port: "587", tls: "starttls"},
		{in: "smtp://mail.example.com?tls=implicit", host: "mail.example.com", port: "465", tls: "implicit"},
		{in: "smtps://mail.example.com", host: "mail.example.com", port: "465", tls: "implicit"},
		{in: "smtp://127.0.0.1:2525?tls=none", host: "127.0.0.1", port: "2525", tls: "none"},
		{in: "http://mail.example.com", err: "must start with smtp://"},
		{in: "smtp://mail.example.com?tls=maybe", err: "tls must be"},
		{in: "smtp://:25", err: "no host"},
		{in: "smtp://mail.example.com:99999", err: "bad port"},
	} {
		c, err := mail.ParseSMTPURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c.Host != tc.host || c.Port != tc.port || c.TLS != tc.tls || c.Username != tc.user || c.Password != tc.pw {
			t.Errorf("%s: %+v %v", tc.in, c, err)
		}
	}
}

func TestStartTLSRequiredWhenAsked(t *testing.T) {
	srv := mailtest.Start(t)
	c, _ := mail.ParseSMTPURL("smtp://" + srv.Addr() + "?tls=starttls")
	c.Timeout = 2 * time.Second
	err := mail.NewSMTPSender(c).Send(context.Background(), "a@example.com", mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || mail.IsPermanent(err) {
		t.Fatalf("err %v: want a temporary STARTTLS error (the test server offers none)", err)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("message sent without the TLS that was asked for")
	}
}

func TestWorkerWakesOnCommitNotOnlyByPolling(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEnv(t, "", smtpSender(srv), func(c *mail.Config) { c.PollInterval = time.Hour })
	e.start()
	time.Sleep(50 * time.Millisecond) // the worker has found nothing and sleeps for the hour
	start := time.Now()
	e.createUser("wake@example.com", ptr("Passw0rd-wake"), true, false)
	srv.MessageTo("wake@example.com", 5*time.Second)
	t.Logf("delivered %s after commit", time.Since(start).Round(time.Millisecond))
}

func TestSMTPOverTLSWithAuth(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		srv := mailtest.StartTLS(t, implicit)
		srv.RequireAuth("mailer", "s3cret:pw")
		c, err := mail.ParseSMTPURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		c.Timeout, c.RootCAs = 3*time.Second, srv.RootCAs()
		sender := mail.NewSMTPSender(c)
		for i := 0; i < 3; i++ {
			if err := sender.Send(context.Background(), "Acme <a@example.com>", mail.Message{To: "tls@example.com", Subject: "over TLS", Text: "hello"}); err != nil {
				t.Fatalf("implicit=%v: %v", implicit, err)
			}
		}
		if m := srv.WaitFor(3, 5*time.Second); m[0].Subject != "over TLS" || srv.Connections() != 1 {
			t.Fatalf("implicit=%v: %+v, %d connections", implicit, m[0], srv.Connections())
		}
		sender.Close()

		// Wrong credentials or an untrusted certificate: temporary errors
		// (a setting to fix), and nothing is sent.
		bad := c
		bad.Password = "wrong"
		err = mail.NewSMTPSender(bad).Send(context.Background(), "a@example.com", mail.Message{To: "tls@example.com", Subject: "s", Text: "t"})
		if err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "AUTH") {
			t.Errorf("implicit=%v, bad password: %v", implicit, err)
		}
		untrusted := c
		untrusted.RootCAs = nil
		err = mail.NewSMTPSender(untrusted).Send(context.Background(), "a@example.com", mail.Message{To: "tls@example.com", Subject: "s", Text: "t"})
		if err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("implicit=%v, untrusted certificate: %v", implicit, err)
		}
		if n := len(srv.Messages()); n != 3 {
			t.Errorf("implicit=%v: %d messages, want 3", implicit, n)
		}
	}
}
