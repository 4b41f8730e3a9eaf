package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail/mailtest"
)

// newSMTPAPIApp is the Admin API over the real email outbox, delivering
// to a real SMTP server in the test process.
func newSMTPAPIApp(t *testing.T) (*apiApp, *mailtest.Server) {
	t.Helper()
	srv := mailtest.Start(t)
	ta, _ := newMailApp(t, smtpTo(srv))
	a := &apiApp{testApp: ta, events: &recEvents{}}
	a.acct.SetEvents(a.events)
	k, err := a.acct.CreateAPIKey(context.Background(), account.Actor{Kind: "admin", Name: testAdminEmail}, "smtp test key")
	if err != nil {
		t.Fatal(err)
	}
	a.token = k.Token
	return a, srv
}

// outboxRows counts queued, sending, delivered and failed messages.
func (a *apiApp) outboxRows() int {
	a.t.Helper()
	m, err := a.store.CountOutbox(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestAdminAPIReferenceMutationsOverSMTP(t *testing.T) {
	a, srv := newSMTPAPIApp(t)
	r := a.gql(refCreateUser, nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("createUser: %d %s", r.Status, r.Raw)
	}
	id := path(r.Data, "createUser", "user", "id").(string)
	msg := srv.MessageTo("user@example.com", 10*time.Second)
	if !strings.Contains(msg.Subject, "Get Started With Acme") || !strings.Contains(msg.Text, "s3c0rp4$sw0rd") {
		t.Fatalf("new-user email: subject %q, text %q", msg.Subject, msg.Text)
	}
	r = a.gql(strings.Replace(refResetPassword, "<ENCODED USER ID>", id, 1), nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("resetPassword: %d %s", r.Status, r.Raw)
	}
	if got := path(r.Data, "resetPassword", "user", "id"); got != id {
		t.Errorf("resetPassword user id %v, want %s", got, id)
	}
	msgs := srv.WaitFor(2, 10*time.Second)
	reset := msgs[1]
	if reset.To[0] != "user@example.com" || !strings.Contains(reset.Subject, "Your password has been changed") || !strings.Contains(reset.Text, "n3w-p4$s") {
		t.Fatalf("reset email: to %v, subject %q, text %q", reset.To, reset.Subject, reset.Text)
	}
	if strings.Contains(r.Raw, "n3w-p4") {
		t.Error("password in the API response")
	}
}

// TestAdminAPIErrorsSendNothingOverSMTP: a mutation that fails after
// asking for an email leaves no outbox row and no message; a later
// successful one (the barrier) is the only message that arrives.
func TestAdminAPIErrorsSendNothingOverSMTP(t *testing.T) {
	a, srv := newSMTPAPIApp(t)
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "taken@example.com"}}, password: "first-passw0rd"}) { user { id } } }`, nil)
	emailUser := path(d, "createUser", "user", "id")
	d = a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "username", value: "nameonly"}}, password: "first-passw0rd"}) { user { id } } }`, nil)
	nameUser := path(d, "createUser", "user", "id")
	p := account.DefaultPolicy()
	p.HistorySize = 3
	if err := a.acct.SavePolicy(context.Background(), account.SystemActor, p); err != nil {
		t.Fatal(err)
	}
	failing := []struct {
		name, query string
		vars        map[string]any
	}{
		{"DuplicatedIdentity", `mutation { createUser(input: {definition: {loginID: {key: "email", value: "taken@example.com"}}, password: "", sendPassword: true}) { user { id } } }`, nil},
		{"PasswordPolicyViolated", `mutation($id: ID!) { resetPassword(input: {userID: $id, password: "short", sendPassword: true}) { user { id } } }`, map[string]any{"id": emailUser}},
		{"PasswordReused", `mutation($id: ID!) { resetPassword(input: {userID: $id, password: "first-passw0rd", sendPassword: true}) { user { id } } }`, map[string]any{"id": emailUser}},
		{"SendPasswordNoTarget", `mutation($id: ID!) { resetPassword(input: {userID: $id, sendPassword: true}) { user { id } } }`, map[string]any{"id": nameUser}},
		{"UserNotFound", `mutation($id: ID!) { resetPassword(input: {userID: $id, sendPassword: true}) { user { id } } }`, map[string]any{"id": nodeID("00000000-0000-0000-0000-000000000000")}},
	}
	for i, tc := range failing {
		t.Run(tc.name, func(t *testing.T) {
			rows := a.outboxRows()
			if r := a.gql(tc.query, tc.vars); len(r.Errors) != 1 {
				t.Fatalf("want an error: %s", r.Raw)
			}
			if n := a.outboxRows(); n != rows {
				t.Fatalf("outbox rows %d -> %d after a failed mutation", rows, n)
			}
			barrier := "barrier" + string(rune('a'+i)) + "@example.com"
			a.gqlOK(`mutation($e: String!) { createUser(input: {definition: {loginID: {key: "email", value: $e}}, password: "", sendPassword: true}) { user { id } } }`, map[string]any{"e": barrier})
			msgs := srv.WaitFor(i+1, 10*time.Second)
			time.Sleep(100 * time.Millisecond) // room for a stray message to show up
			msgs = srv.Messages()
			if len(msgs) != i+1 || msgs[i].To[0] != barrier {
				var to []string
				for _, m := range msgs {
					to = append(to, m.To...)
				}
				t.Fatalf("messages to %v, want only the barriers so far", to)
			}
		})
	}
}

func TestPortalResetPasswordAutoOverSMTP(t *testing.T) {
	a, srv := newSMTPAPIApp(t)
	a.loginAdmin()
	pw := "old-passw0rd"
	u, err := a.acct.CreateUser(context.Background(), account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "frank@example.com", Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	a.get("/portal/users/" + u.ID + "/reset-password")
	r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	msg := srv.MessageTo("frank@example.com", 10*time.Second)
	if !strings.Contains(msg.Subject, "Your password has been changed") {
		t.Fatalf("subject %q", msg.Subject)
	}
	got, _ := a.acct.GetUser(context.Background(), u.ID)
	found := false
	for _, w := range strings.Fields(msg.Text) {
		if len(w) >= 8 && a.acct.Hasher().Verify(got.Password.Hash, w) {
			found = true
		}
	}
	if !found {
		t.Errorf("the emailed password does not sign in: %q", msg.Text)
	}
	if !got.PasswordExpired(a.acct.Now()) {
		t.Error("not expired")
	}
}
