package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// hookReceiver is the guide's webhook endpoint: it keeps what it gets and
// checks both signatures against the secret the portal showed.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	events []map[string]any
	bad    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	// The reference product's receiver keys its HMAC with the secret string.
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write(body)
	if got := r.Header.Get("x-authgear-body-signature"); got != hex.EncodeToString(m.Sum(nil)) {
		h.bad = append(h.bad, "x-authgear-body-signature mismatch")
	}
	// Standard Webhooks: the decoded bytes of the whsec_ secret.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.secret, "whsec_"))
	m = hmac.New(sha256.New, key)
	m.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	m.Write(body)
	if got := r.Header.Get("webhook-signature"); got != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		h.bad = append(h.bad, "webhook-signature mismatch")
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		h.bad = append(h.bad, "body is not JSON")
	}
	h.events = append(h.events, ev)
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) waitFor(t *testing.T, typ string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev["type"] == typ {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the webhook never received %s", typ)
	return nil
}

// TestE2EWebhookUserCreatedStory is the reference guide's webhook story:
// an admin adds a webhook for user.created in the portal, then creates a
// phone-number user; the endpoint receives user.created, signed, with
// triggered_by "admin_api" and the number at
// payload.user.standard_attributes.phone_number — what the guide's hook
// code reads to send its text message.
func TestE2EWebhookUserCreatedStory(t *testing.T) {
	ctx := newBrowser(t)
	rcv := &hookReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	app := startApp(t, nil)
	const phone = "+14155550123"
	var secret string
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Click(`//nav//a[text()="Hooks"]`),
		chromedp.WaitVisible(`//h1[text()="Hooks"]`),
		chromedp.SendKeys(`#url`, srv.URL+"/hook", chromedp.ByQuery),
		chromedp.Click(`#events-chosen`, chromedp.ByQuery),
		chromedp.Click(`#add-webhook input[value="user.created"]`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add webhook"]`),
		chromedp.WaitVisible(`#signing-secret`, chromedp.ByQuery),
		chromedp.Text(`#signing-secret pre`, &secret, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	rcv.mu.Lock()
	rcv.secret = secret
	rcv.mu.Unlock()

	err = chromedp.Run(ctx,
		chromedp.Click(`//nav//a[text()="Users"]`),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
		chromedp.Click(`//a[text()="Create User"]`),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-phone`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, phone, chromedp.ByQuery),
		chromedp.Click(`#mode-manual`, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, "Temp-Passw0rd-42", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+phone+`"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	ev := rcv.waitFor(t, "user.created")
	// The guide's hook, line for line.
	cx := ev["context"].(map[string]any)
	if cx["triggered_by"] != "admin_api" {
		t.Errorf("context.triggered_by = %v, want admin_api", cx["triggered_by"])
	}
	got := ev["payload"].(map[string]any)["user"].(map[string]any)["standard_attributes"].(map[string]any)["phone_number"]
	if got != phone {
		t.Errorf("payload.user.standard_attributes.phone_number = %v, want %s", got, phone)
	}
	if cx["app_id"] != "latchkey" || cx["user_agent"] == "" || cx["ip_address"] == "" {
		t.Errorf("context = %v", cx)
	}
	raw, _ := json.Marshal(ev)
	if strings.Contains(string(raw), "Temp-Passw0rd-42") {
		t.Error("the password reached the webhook")
	}
	rcv.mu.Lock()
	for _, b := range rcv.bad {
		t.Error(b)
	}
	rcv.mu.Unlock()

	// The user page links to the user's events; the audit log shows them.
	var auditText string
	err = chromedp.Run(ctx,
		chromedp.Click(`#events a[href^="/portal/audit-log?user="]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//h1[text()="Audit log"]`),
		chromedp.Text(`.audit-table`, &auditText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(auditText, "user.created") || !strings.Contains(auditText, "admin_api.mutation.create_user.executed") {
		t.Errorf("audit log for the user: %q", auditText)
	}
}

// TestE2EBlockingHookVetoShownOnForm: a blocking hook refuses the
// creation; the Create User form shows its reason and no user exists.
func TestE2EBlockingHookVetoShownOnForm(t *testing.T) {
	ctx := newBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"is_allowed": false, "title": "Not now", "reason": "New accounts are paused for maintenance."}`)
	}))
	defer srv.Close()
	app := startApp(t, nil)
	var formText, usersText string
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/hooks"),
		chromedp.WaitVisible(`#blocking-url`, chromedp.ByQuery),
		chromedp.SendKeys(`#blocking-url`, srv.URL, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add blocking webhook"]`),
		chromedp.WaitVisible(`#signing-secret`, chromedp.ByQuery),
		chromedp.Navigate(app.URL+"/portal/users/new"),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-username`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, "paused", chromedp.ByQuery),
		chromedp.Click(`#mode-none`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`#create-user-form .field-error`, chromedp.ByQuery),
		chromedp.Text(`#create-user-form`, &formText, chromedp.ByQuery),
		chromedp.Navigate(app.URL+"/portal/users"),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
		chromedp.Text(`main`, &usersText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(formText, "Not now: New accounts are paused for maintenance.") {
		t.Errorf("form shows %q", formText)
	}
	if strings.Contains(usersText, "paused") {
		t.Error("a vetoed user is in the Users list")
	}
}
