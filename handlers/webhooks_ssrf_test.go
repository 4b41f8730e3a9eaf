package handlers

import (
	"net/http"
	"net/url"
	"testing"

	"latchkey/hooks"
	"latchkey/outbound"
)

// TestWebhookFormRefusesPrivateAddresses: with the default policy, the
// Add webhook form refuses loopback, 0.0.0.0, private and link-local URLs
// with a clear message, and stores nothing.
func TestWebhookFormRefusesPrivateAddresses(t *testing.T) {
	a, _ := newEventsApp(t, func(c *hooks.Config) { c.Outbound = outbound.Policy{} })
	a.loginAdmin()
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://0.0.0.0/", "http://192.168.0.10/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://localhost/"} {
		a.get("/portal/hooks")
		r := a.post("/portal/hooks", url.Values{"kind": {"webhook"}, "url": {u}, "all_events": {"1"}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, "private network")
	}
	var n int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM webhooks`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d webhooks stored (%v)", n, err)
	}
}
