package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/mail"
	"latchkey/mail/mailtest"
)

// TestOutboxRetryAll: with SMTP refusing (550), a password email fails;
// after the fix, "Retry all" on /portal/mail (CSRF required) sends it.
func TestOutboxRetryAll(t *testing.T) {
	smtp := mailtest.Start(t)
	smtp.RejectRecipients(550, "5.7.1 Relaying denied")
	a, _ := newMailApp(t, smtpTo(smtp), func(c *mail.Config) { c.RetryBase, c.RetryMax = time.Hour, time.Hour })
	a.loginAdmin()
	createViaPortal(t, a, createForm("email", "retryall@example.com", "auto", "", false, true))
	page := waitPage(t, a, "/portal/mail", `data-mail-status="failed"`)
	wantContains(t, page.Body, "Retry all", `action="/portal/mail/retry-all"`)

	wantStatus(t, a.postRaw("/portal/mail/retry-all", url.Values{}), http.StatusForbidden)
	smtp.RejectRecipients(0, "")
	a.get("/portal/mail")
	r := a.post("/portal/mail/retry-all", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "1 message will be sent now.")
	msg := smtp.MessageTo("retryall@example.com", 5*time.Second)
	if !strings.Contains(msg.Subject, "Get Started") {
		t.Fatalf("subject %q", msg.Subject)
	}
	page = waitPage(t, a, "/portal/mail", `data-mail-status="delivered"`)
	if strings.Contains(page.Body, `action="/portal/mail/retry-all"`) {
		t.Error("Retry all offered with nothing to retry")
	}
}
