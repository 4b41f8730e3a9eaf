package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/sms"
	"latchkey/sms/smstest"
	"latchkey/store"
)

// waitRow waits until the user's latest outbox row satisfies ok.
func (a *apiApp) waitRow(userID string, what string, ok func(store.OutboxMessage) bool) store.OutboxMessage {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ms, err := a.store.OutboxByUser(context.Background(), userID, 1)
		if err != nil {
			a.t.Fatal(err)
		}
		if len(ms) == 1 && ok(ms[0]) {
			return ms[0]
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("the text never %s: %+v", what, ms)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHangingSMSProvider: a webhook provider that accepts the connection
// and never answers is given up on after the provider timeout, the text
// is retried, the user page says it timed out, and the portal keeps
// serving meanwhile. Once the provider answers again, the text arrives.
func TestHangingSMSProvider(t *testing.T) {
	hook := smstest.StartWebhook(t)
	hook.Hang(true)
	provider, err := sms.Open(hook.WebhookURL(), sms.Config{AppID: "acme", WebhookSecret: smstest.Secret, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newSMSAppWith(t, provider, account.SMSLimits{}, func(c *mail.Config) {
		c.RetryBase, c.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	})
	a.loginAdmin()
	a.get("/portal/users/new")
	start := time.Now()
	r := a.post("/portal/users", createForm("phone", "+14155550200", "manual", "Typed-passw0rd-200", true, true))
	wantStatus(t, r, http.StatusSeeOther)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Create User took %s: the request waited on the provider", d)
	}
	u := a.userByLoginID("+14155550200")
	row := a.waitRow(u.ID, "was retried after a timeout", func(m store.OutboxMessage) bool {
		return m.Status == store.OutboxQueued && m.Attempts >= 2
	})
	if !strings.Contains(row.LastError, "timeout") || strings.Contains(row.LastError, "/sms") {
		t.Fatalf("last error %q, want one saying timeout (and no URL)", row.LastError)
	}
	// The portal answers while texts hang.
	for _, p := range []string{"/healthz", "/portal/users", "/portal/users/" + u.ID} {
		start := time.Now()
		res := a.get(p)
		wantStatus(t, res, http.StatusOK)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %s while the provider hung", p, d)
		}
		if p == "/portal/users/"+u.ID {
			wantContains(t, res.Body, "Retrying", "timeout")
		}
	}
	if hook.Requests() < 2 {
		t.Fatalf("%d requests reached the provider, want retries", hook.Requests())
	}
	hook.Hang(false)
	m := hook.MessageTo("+14155550200", 15*time.Second)
	if !strings.Contains(m.Body, "Typed-passw0rd-200") {
		t.Fatalf("text %q", m.Body)
	}
	a.waitRow(u.ID, "was delivered", func(m store.OutboxMessage) bool { return m.Status == store.OutboxDelivered && m.Secret == nil })
}

var retryFormRE = regexp.MustCompile(`action="(/portal/users/[^/]+/mail/(\d+)/retry)"`)

// TestTextRetryNow: a text waiting out its backoff (the provider was down)
// shows "Retrying" and "Retry now" on the user page; Retry now sends it at
// once. A text the provider refused (failed) has no Retry now, and a
// forged retry of it sends nothing.
func TestTextRetryNow(t *testing.T) {
	hook := smstest.StartWebhook(t)
	hook.Answer(http.StatusServiceUnavailable, "maintenance")
	provider, err := sms.Open(hook.WebhookURL(), sms.Config{AppID: "acme", WebhookSecret: smstest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	// An hour's backoff: without Retry now, the text would wait that long.
	a, _ := newSMSAppWith(t, provider, account.SMSLimits{}, func(c *mail.Config) { c.RetryBase, c.RetryMax = time.Hour, time.Hour })
	a.loginAdmin()
	a.get("/portal/users/new")
	r := a.post("/portal/users", createForm("phone", "+14155550210", "auto", "", false, true))
	wantStatus(t, r, http.StatusSeeOther)
	u := a.userByLoginID("+14155550210")
	row := a.waitRow(u.ID, "failed its first attempt", func(m store.OutboxMessage) bool { return m.Attempts == 1 && m.Status == store.OutboxQueued })
	page := a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, "<h2>Email and text messages</h2>", "Text message: new account password", "Retrying", "The SMS webhook answered 503: maintenance", "Retry now")
	f := retryFormRE.FindStringSubmatch(page.Body)
	if f == nil || f[2] != strconv.FormatInt(row.ID, 10) {
		t.Fatalf("no Retry now form for message %d", row.ID)
	}
	hook.Answer(0, "")
	time.Sleep(200 * time.Millisecond)
	if n := len(hook.Messages()); n != 0 {
		t.Fatalf("%d texts sent before Retry now: the backoff is not an hour", n)
	}
	r = a.post(f[1], nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/users/"+u.ID+"#mail" {
		t.Fatalf("redirect %q", r.Location)
	}
	wantContains(t, a.get(r.Location).Body, "The message will be sent again now.")
	m := hook.MessageTo("+14155550210", 10*time.Second)
	pw := textPasswordRE.FindStringSubmatch(m.Body)
	if pw == nil || !a.acct.Hasher().Verify(a.userByLoginID("+14155550210").Password.Hash, pw[1]) {
		t.Fatalf("text %q", m.Body)
	}
	a.waitRow(u.ID, "was delivered", func(m store.OutboxMessage) bool { return m.Status == store.OutboxDelivered && m.Secret == nil })

	// Refused by the provider: failed at once, no Retry now.
	hook.Answer(http.StatusBadRequest, "unknown destination")
	a.get("/portal/users/" + u.ID + "/reset-password")
	r = a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	failed := a.waitRow(u.ID, "failed", func(m store.OutboxMessage) bool { return m.Status == store.OutboxFailed })
	page = a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, "Text message: password reset by an admin", "Failed", "The SMS webhook answered 400: unknown destination")
	if strings.Contains(page.Body, "/mail/"+strconv.FormatInt(failed.ID, 10)+"/retry") {
		t.Fatal("a failed text offers Retry now")
	}
	hook.Answer(0, "")
	r = a.post("/portal/users/"+u.ID+"/mail/"+strconv.FormatInt(failed.ID, 10)+"/retry", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "This message is no longer waiting to be sent.")
	time.Sleep(200 * time.Millisecond)
	if n := len(hook.Messages()); n != 1 {
		t.Fatalf("%d texts, want 1: the failed text was sent", n)
	}
	// Another user's message ID under this user's URL does nothing either.
	other, err := a.acct.CreateUser(context.Background(), account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550211", Password: ptr("Old-passw0rd-211")})
	if err != nil {
		t.Fatal(err)
	}
	a.get("/portal/users/" + other.ID)
	r = a.post("/portal/users/"+other.ID+"/mail/"+strconv.FormatInt(row.ID, 10)+"/retry", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "This message is no longer waiting to be sent.")
}

// TestCreatePhoneUserSendCheckbox: with a phone login ID (a form sent back
// with an error, as a browser without JavaScript sees it) the manual
// password's checkbox reads "Send the password to user's phone" and is
// unchecked unless the admin ticked it; the fresh form has it unchecked.
func TestCreatePhoneUserSendCheckbox(t *testing.T) {
	a, _ := newSMSApp(t, mail.NewDevMailbox(0), account.SMSLimits{})
	a.loginAdmin()
	checkbox := regexp.MustCompile(`<input type="checkbox" id="sendPassword" name="sendPassword" value="true"( checked)?>`)
	page := a.get("/portal/users/new")
	if m := checkbox.FindStringSubmatch(page.Body); m == nil || m[1] != "" {
		t.Fatalf("fresh form: send checkbox %q, want it unchecked", m)
	}
	// A password the policy refuses brings the form back with phone chosen.
	r := a.post("/portal/users", createForm("phone", "+14155550220", "manual", "short", false, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, `Send the password to user's <span data-send-target>phone</span>`)
	if m := checkbox.FindStringSubmatch(r.Body); m == nil || m[1] != "" {
		t.Fatalf("phone, unticked: send checkbox %q, want it unchecked", m)
	}
	r = a.post("/portal/users", createForm("phone", "+14155550220", "manual", "short", true, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if m := checkbox.FindStringSubmatch(r.Body); m == nil || m[1] != " checked" {
		t.Fatalf("phone, ticked: send checkbox %q, want the admin's tick kept", m)
	}
	if a.countUsers() != 0 {
		t.Fatal("a refused form created a user")
	}
}

// TestResetPasswordUsernameOnly: the portal's Reset Password for a user
// with neither email nor phone says plainly that nothing can be sent, and
// offers no way to send: auto and the checkbox are disabled and there is
// no Email / Text message choice.
func TestResetPasswordUsernameOnly(t *testing.T) {
	a, _ := newSMSApp(t, mail.NewDevMailbox(0), account.SMSLimits{})
	a.loginAdmin()
	u, err := a.acct.CreateUser(context.Background(), account.SystemActor, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "only.name", Password: ptr("Old-passw0rd-230")})
	if err != nil {
		t.Fatal(err)
	}
	page := a.get("/portal/users/" + u.ID + "/reset-password")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "No email or phone identity found", "This user has no email address or phone number, so Latchkey cannot send them a password.")
	for _, re := range []string{`id="mode-auto" name="passwordMode" value="auto" disabled`, `id="sendPassword" name="sendPassword" value="true" disabled`} {
		if !regexp.MustCompile(re).MatchString(page.Body) {
			t.Errorf("no %s", re)
		}
	}
	if strings.Contains(page.Body, `name="sendTo"`) {
		t.Error("a user with no email or phone is offered Email / Text message")
	}
	// A forged send by text is refused and changes nothing.
	before := a.snapshot()
	r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"Typed-passw0rd-230"}, "sendPassword": {"true"}, "sendTo": {"sms"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	a.wantUnchanged(before)
}
