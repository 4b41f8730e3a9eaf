package handlers

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/sms"
	"latchkey/sms/smstest"
	"latchkey/store"
	"latchkey/store/testdb"
)

// newSMSApp is the portal, Auth UI and Admin API over a real outbox whose
// email goes to a dev mailbox and whose texts go to texts (a provider, or
// a DevMailbox for the dev "Text messages" tab), with an Admin API key.
func newSMSApp(t *testing.T, texts mail.Sender, limits account.SMSLimits) (*apiApp, *mail.DevMailbox) {
	t.Helper()
	return newSMSAppWith(t, texts, limits, nil)
}

// newSMSAppWith is newSMSApp with the outbox's configuration changed by
// tune (a long backoff, a short send timeout).
func newSMSAppWith(t *testing.T, texts mail.Sender, limits account.SMSLimits, tune func(*mail.Config)) (*apiApp, *mail.DevMailbox) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4, SMS: limits}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	emails := mail.NewDevMailbox(0)
	mcfg := mail.Config{AppName: "Acme", PublicURL: "http://localhost", Secret: secret, Log: log,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond, SendTimeout: 3 * time.Second}
	if tune != nil {
		tune(&mcfg)
	}
	ob, err := mail.New(st, emails, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	ob.SetTextSender(texts)
	acct.SetMailer(ob)
	if err := ob.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{AppName: "Acme", PublicURL: "http://localhost", SessionKey: secret, Log: log, DevMailbox: true, Mail: ob}, acct))
	t.Cleanup(func() {
		srv.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ob.Stop(stopCtx)
		st.Close()
	})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	a := &apiApp{testApp: &testApp{t: t, srv: srv, acct: acct, store: st, client: client}, mail: &recMailer{}, events: &recEvents{}}
	k, err := acct.CreateAPIKey(ctx, account.Actor{Kind: "admin", Name: testAdminEmail}, "test key")
	if err != nil {
		t.Fatal(err)
	}
	a.token = k.Token
	return a, emails
}

// waitText waits for the dev mailbox to hold a message to phone.
func waitText(t *testing.T, box *mail.DevMailbox, phone string) mail.DevMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range box.List() {
			if m.To == phone {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no message to %s", phone)
	return mail.DevMessage{}
}

var textPasswordRE = regexp.MustCompile(`password: (\S+?)(?:\s|$)`)

func (a *apiApp) userByLoginID(loginID string) *account.User {
	a.t.Helper()
	id, err := a.store.IdentityByNorm(context.Background(), loginID)
	if err != nil {
		a.t.Fatal(err)
	}
	u, err := a.acct.GetUser(context.Background(), id.UserID)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// TestCreatePhoneUserSendsText: with no SMS provider, Create User with a
// phone login ID and "Automatically create a password and send to the
// user" puts the text in the dev mailbox's "Text messages" tab, with the
// banner saying so; the user page shows its delivery.
func TestCreatePhoneUserSendsText(t *testing.T) {
	texts := mail.NewDevMailbox(0)
	a, emails := newSMSApp(t, texts, account.SMSLimits{})
	a.loginAdmin()
	page := a.get("/portal/users/new")
	wantContains(t, page.Body, "SMS is not configured: text messages go to the dev mailbox", "Only available for an email or phone login ID.")
	r := a.post("/portal/users", createForm("phone", "+1 415 555 0100", "auto", "", false, true))
	wantStatus(t, r, http.StatusSeeOther)
	u := a.userByLoginID("+14155550100")
	m := waitText(t, texts, "+14155550100")
	pw := textPasswordRE.FindStringSubmatch(m.Text)
	if pw == nil || !a.acct.Hasher().Verify(u.Password.Hash, pw[1]) {
		t.Fatalf("text %q does not carry the stored password", m.Text)
	}
	if len(emails.List()) != 0 {
		t.Error("a phone user's password went to the email dev mailbox")
	}
	show := a.get(r.Location)
	wantContains(t, show.Body, "The password is on its way by text message to +14155550100.", "Text message: new account password")
	if strings.Contains(show.Body, pw[1]) {
		t.Error("the generated password is shown to the admin")
	}
	tab := a.get("/portal/mail?tab=texts")
	wantStatus(t, tab, http.StatusOK)
	wantContains(t, tab.Body, "Text messages", "+14155550100", html.EscapeString(pw[1]))
	// A manual password with the box unticked sends nothing.
	r = a.post("/portal/users", createForm("phone", "+14155550101", "manual", "Typed-passw0rd-1", false, true))
	wantStatus(t, r, http.StatusSeeOther)
	time.Sleep(150 * time.Millisecond)
	if n := len(texts.List()); n != 1 {
		t.Fatalf("%d texts, want 1", n)
	}
	// Ticked, it goes by text.
	a.get("/portal/users/new")
	r = a.post("/portal/users", createForm("phone", "+14155550102", "manual", "Typed-passw0rd-2", true, true))
	wantStatus(t, r, http.StatusSeeOther)
	if m := waitText(t, texts, "+14155550102"); !strings.Contains(m.Text, "Typed-passw0rd-2") {
		t.Fatalf("text %q", m.Text)
	}
}

// TestResetPasswordByText: Reset Password sends to the phone of a user
// whose only target it is, lets the admin choose for a user with both,
// and refuses a choice the form never offers.
func TestResetPasswordByText(t *testing.T) {
	texts := mail.NewDevMailbox(0)
	a, emails := newSMSApp(t, texts, account.SMSLimits{})
	a.loginAdmin()
	ctx := context.Background()
	phoneOnly, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550110", Password: ptr("Old-passw0rd-110")})
	if err != nil {
		t.Fatal(err)
	}
	page := a.get("/portal/users/" + phoneOnly.ID + "/reset-password")
	wantContains(t, page.Body, `value="+14155550110"`, "Send the password to user's phone (by text message)")
	if regexp.MustCompile(`id="mode-auto" name="passwordMode" value="auto" disabled`).MatchString(page.Body) {
		t.Fatal("auto mode disabled for a phone user")
	}
	r := a.post("/portal/users/"+phoneOnly.ID+"/reset-password", url.Values{"passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	m := waitText(t, texts, "+14155550110")
	if !strings.HasPrefix(m.Text, "Hello, an administrator has reset your password on Acme.") && !strings.HasPrefix(m.Text, "An administrator has reset your password on Acme.") {
		t.Fatalf("text %q", m.Text)
	}
	pw := textPasswordRE.FindStringSubmatch(m.Text)
	if got := a.userByLoginID("+14155550110"); pw == nil || !a.acct.Hasher().Verify(got.Password.Hash, pw[1]) {
		t.Fatalf("text %q does not carry the new password", m.Text)
	}

	// A user with an email and a phone: email by default, text when chosen.
	both, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "both@example.com", Password: ptr("Old-passw0rd-111")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.InTx(ctx, func(tx *store.Tx) error {
		return tx.InsertIdentity(ctx, store.Identity{ID: uuid.NewString(), UserID: both.ID, Kind: "phone", Value: "+14155550111", ValueNorm: "+14155550111", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	page = a.get("/portal/users/" + both.ID + "/reset-password")
	wantContains(t, page.Body, `name="sendTo" value="email" checked`, `name="sendTo" value="sms"`)
	r = a.post("/portal/users/"+both.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"Typed-passw0rd-111"}, "sendPassword": {"true"}, "sendTo": {"sms"}})
	wantStatus(t, r, http.StatusSeeOther)
	if m := waitText(t, texts, "+14155550111"); !strings.Contains(m.Text, "Typed-passw0rd-111") {
		t.Fatalf("text %q", m.Text)
	}
	a.get("/portal/users/" + both.ID + "/reset-password")
	r = a.post("/portal/users/"+both.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"Typed-passw0rd-112"}, "sendPassword": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	deadline := time.Now().Add(10 * time.Second)
	for len(emails.List()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := emails.List(); len(l) != 1 || l[0].To != "both@example.com" || !strings.Contains(l[0].Text, "Typed-passw0rd-112") {
		t.Fatalf("emails %+v", l)
	}
	a.get("/portal/users/" + both.ID + "/reset-password")
	before := a.snapshot()
	r = a.post("/portal/users/"+both.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"Typed-passw0rd-113"}, "sendPassword": {"true"}, "sendTo": {"pigeon"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Choose Email or Text message.")
	a.wantUnchanged(before)
}

// TestAdminAPISendPasswordByText: sendPassword on createUser and
// resetPassword texts a phone user through a real webhook provider,
// emails an email user, and is SendPasswordNoTarget for a username user.
func TestAdminAPISendPasswordByText(t *testing.T) {
	hook := smstest.StartWebhook(t)
	provider, err := sms.Open(hook.WebhookURL(), sms.Config{AppID: "acme", WebhookSecret: smstest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	a, emails := newSMSApp(t, provider, account.SMSLimits{})
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "phone", value: "+14155550120"}}, password: "", sendPassword: true, setPasswordExpired: true}) { user { id } } }`, nil)
	phoneUser := path(d, "createUser", "user", "id")
	m := hook.MessageTo("+14155550120", 10*time.Second)
	pw := textPasswordRE.FindStringSubmatch(m.Body)
	if pw == nil || !a.acct.Hasher().Verify(a.userByLoginID("+14155550120").Password.Hash, pw[1]) || m.Payload.MessageType != "new_user" {
		t.Fatalf("text %+v", m)
	}
	a.gqlOK(`mutation($id: ID!) { resetPassword(input: {userID: $id, password: "Api-reset-passw0rd", sendPassword: true}) { user { id } } }`, map[string]any{"id": phoneUser})
	hook.WaitFor(2, 10*time.Second)
	if m := hook.Messages()[1]; !strings.Contains(m.Body, "Api-reset-passw0rd") || m.Payload.MessageType != "password_reset" {
		t.Fatalf("reset text %+v", m)
	}
	a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "api@example.com"}}, password: "", sendPassword: true}) { user { id } } }`, nil)
	deadline := time.Now().Add(10 * time.Second)
	for len(emails.List()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := emails.List(); len(l) != 1 || l[0].To != "api@example.com" {
		t.Fatalf("emails %+v", l)
	}
	r := a.gql(`mutation { createUser(input: {definition: {loginID: {key: "username", value: "api.user"}}, password: "", sendPassword: true}) { user { id } } }`, nil)
	if len(r.Errors) != 1 || r.Errors[0].Extensions["reason"] != "SendPasswordNoTarget" {
		t.Fatalf("username user: %s", r.Raw)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(hook.Messages()); n != 2 || hook.BadSignatures() != 0 {
		t.Errorf("%d texts (bad signatures %d), want 2", n, hook.BadSignatures())
	}
}

// TestForgotPasswordByTextPages: /forgot-password with a phone number
// sends a code by text; the code page takes it. Over the per-phone limit
// the page says why (429) and nothing is sent.
func TestForgotPasswordByTextPages(t *testing.T) {
	texts := mail.NewDevMailbox(0)
	a, _ := newSMSApp(t, texts, account.SMSLimits{PerPhoneHour: 1})
	ctx := context.Background()
	if _, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550130", Password: ptr("Old-passw0rd-130")}); err != nil {
		t.Fatal(err)
	}
	a.get("/forgot-password")
	r := a.post("/forgot-password", url.Values{"login_id": {"+1 (415) 555-0130"}})
	wantStatus(t, r, http.StatusSeeOther)
	m := waitText(t, texts, "+14155550130")
	code := regexp.MustCompile(`^(\d{6}) is your Acme password reset code`).FindStringSubmatch(m.Text)
	if code == nil || strings.Contains(m.Text, "http") {
		t.Fatalf("text %q", m.Text)
	}
	page := a.get(r.Location)
	wantContains(t, page.Body, "the code comes by text message")
	r = a.post("/reset-password/code", url.Values{"login_id": {"+14155550130"}, "code": {code[1]}, "password": {"New-passw0rd-130"}, "confirm": {"New-passw0rd-130"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/login" {
		t.Fatalf("redirect %q", r.Location)
	}
	// The next request within the hour is over the (test's) limit of one.
	a.acct.Now = func() time.Time { return time.Now().UTC().Add(2 * time.Minute) }
	a.get("/forgot-password")
	r = a.post("/forgot-password", url.Values{"login_id": {"+14155550130"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	wantContains(t, r.Body, "Too many text messages were sent to this phone number in the last hour")
	time.Sleep(100 * time.Millisecond)
	if n := len(texts.List()); n != 1 {
		t.Fatalf("%d texts, want 1", n)
	}
}

// TestCreateUserOverSMSLimit: the user is created, the text is not sent,
// and the admin sees why in the flash, on the user page and in the list.
func TestCreateUserOverSMSLimit(t *testing.T) {
	texts := mail.NewDevMailbox(0)
	a, _ := newSMSApp(t, texts, account.SMSLimits{DailyTotal: 1})
	a.loginAdmin()
	a.get("/portal/users/new")
	wantStatus(t, a.post("/portal/users", createForm("phone", "+14155550140", "auto", "", false, true)), http.StatusSeeOther)
	a.get("/portal/users/new")
	r := a.post("/portal/users", createForm("phone", "+14155550141", "auto", "", false, true))
	wantStatus(t, r, http.StatusSeeOther)
	show := a.get(r.Location)
	wantContains(t, show.Body, "User created. The password text was not sent.", "Not sent: The daily limit of text messages (1) has been reached.")
	list := a.get("/portal/users")
	wantContains(t, list.Body, "Password text failed")
	// Badges only: the filter menu names "Password email failed" too.
	if strings.Count(list.Body, `badge-danger">Password text failed`) != 1 || strings.Contains(list.Body, `badge-danger">Password email failed`) {
		t.Error("the Users list marks the wrong users or calls the text an email")
	}
	time.Sleep(150 * time.Millisecond)
	if n := len(texts.List()); n != 1 {
		t.Fatalf("%d texts, want 1", n)
	}
}
