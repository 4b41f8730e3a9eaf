package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/mail/mailtest"
	"latchkey/store"
)

// TestNoPasswordInEventsOrWebhooksEndToEnd creates users through the
// portal of the real app, with typed passwords and with generated ones
// mailed over real SMTP, then looks for every one of those passwords in
// every stored event and every webhook body: none may appear.
func TestNoPasswordInEventsOrWebhooksEndToEnd(t *testing.T) {
	smtp := mailtest.Start(t)
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	p := newPortalClient(t, app.URL)
	p.signIn()
	p.get("/portal/hooks")
	if code, _, _ := p.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {hook.URL}, "events_mode": {"all"}}); code != http.StatusSeeOther {
		t.Fatalf("add webhook: %d", code)
	}
	typed := map[string]string{"typed1@example.com": "Typed-Passw0rd-1", "typed2@example.com": "Typed-Passw0rd-2"}
	var passwords []string
	for email, pw := range typed {
		p.get("/portal/users/new")
		code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {email}, "passwordMode": {"manual"},
			"password": {pw}, "sendPassword": {"true"}, "setPasswordExpired": {"true"}})
		if code != http.StatusSeeOther {
			t.Fatalf("create %s: %d", email, code)
		}
		passwords = append(passwords, pw)
	}
	for _, email := range []string{"gen1@example.com", "gen2@example.com", "gen3@example.com"} {
		p.get("/portal/users/new")
		code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {email}, "passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
		if code != http.StatusSeeOther {
			t.Fatalf("create %s: %d", email, code)
		}
		msg := smtp.MessageTo(email, 10*time.Second)
		m := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
		if m == nil {
			t.Fatalf("no password in the mail to %s", email)
		}
		passwords = append(passwords, m[1])
	}
	smtp.WaitFor(5, 10*time.Second)

	st, err := store.Open(context.Background(), app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Wait for the email.sent events and the webhook deliveries to settle.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var sent, pending int
		_ = st.Direct().QueryRow(`SELECT COUNT(*) FROM events WHERE type = 'email.sent'`).Scan(&sent)
		_ = st.Direct().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE status != 'succeeded'`).Scan(&pending)
		if sent == 5 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d email.sent events, %d deliveries not done", sent, pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := st.Direct().Query(`SELECT type, payload || context FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := map[string]int{}
	for rows.Next() {
		var typ, text string
		if err := rows.Scan(&typ, &text); err != nil {
			t.Fatal(err)
		}
		types[typ]++
		for _, pw := range passwords {
			if strings.Contains(text, pw) {
				t.Errorf("a %s event holds a plaintext password", typ)
			}
		}
		if strings.Contains(text, "bcrypt") {
			t.Errorf("a %s event holds a password hash", typ)
		}
	}
	if types["user.created"] != 5 || types["email.sent"] != 5 || types["admin_api.mutation.create_user.executed"] != 5 {
		t.Errorf("events recorded: %v", types)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) < 10 { // user.created + password.expired.set per user
		t.Errorf("%d webhook bodies", len(bodies))
	}
	for _, b := range bodies {
		for _, pw := range passwords {
			if strings.Contains(b, pw) {
				t.Error("a webhook body holds a plaintext password")
			}
		}
		if strings.Contains(b, `"type":"email.sent"`) {
			t.Error("email.sent (audit-only) was sent to a webhook")
		}
	}
}
