package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
)

// rawSink keeps each delivery's raw body and signature header.
type rawSink struct {
	mu   sync.Mutex
	body [][]byte
	sig  []string
}

func (s *rawSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.body, s.sig = append(s.body, b), append(s.sig, r.Header.Get("x-authgear-body-signature"))
	s.mu.Unlock()
}

func (s *rawSink) wait(t *testing.T, substr string) ([]byte, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for i, b := range s.body {
			if strings.Contains(string(b), substr) {
				body, sig := b, s.sig[i]
				s.mu.Unlock()
				return body, sig
			}
		}
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no delivery containing %q", substr)
	return nil, ""
}

// TestPortalWebhookEditAndRotate: a webhook's URL and events are edited
// (422 and nothing changed on a bad URL), its secret rotated after a
// confirm step and shown once; later deliveries go to the new URL signed
// with the new secret, and the delivery log from before is kept.
func TestPortalWebhookEditAndRotate(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	first, second := &rawSink{}, &rawSink{}
	s1, s2 := httptest.NewServer(first), httptest.NewServer(second)
	defer s1.Close()
	defer s2.Close()
	id, oldSecret := addHook(t, a, url.Values{"kind": {"non_blocking"}, "url": {s1.URL}, "events_mode": {"chosen"}, "events": {"user.created"}})
	a.get("/portal/hooks/" + id)
	wantStatus(t, a.post("/portal/hooks/"+id+"/test", nil), http.StatusSeeOther)
	first.wait(t, "webhook.test")

	edit := a.get("/portal/hooks/" + id + "/edit")
	wantStatus(t, edit, http.StatusOK)
	wantContains(t, edit.Body, `value="`+s1.URL+`"`, `value="user.created" checked`)
	r := a.post("/portal/hooks/"+id+"/edit", url.Values{"url": {"ftp://nope"}, "events_mode": {"all"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Enter a full http:// or https:// URL.")
	r = a.post("/portal/hooks/"+id+"/edit", url.Values{"url": {s2.URL}, "events_mode": {"all"}})
	wantStatus(t, r, http.StatusSeeOther)
	page := a.get("/portal/hooks/" + id)
	wantContains(t, page.Body, s2.URL, "All events", "webhook.test", "Delivered")

	// Rotate: a confirm page first (no JS), then the new secret once.
	r = a.post("/portal/hooks/"+id+"/rotate-secret", nil)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "Rotate the signing secret", `name="confirm" value="yes"`)
	r = a.post("/portal/hooks/"+id+"/rotate-secret", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	shown := a.get(r.Location)
	newSecret := secretRE.FindString(shown.Body)
	if newSecret == "" || newSecret == oldSecret {
		t.Fatalf("new secret %q (old %q)", newSecret, oldSecret)
	}
	if strings.Contains(a.get(r.Location).Body, newSecret) {
		t.Fatal("new secret shown twice")
	}
	if _, err := a.acct.CreateUser(context.Background(), account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "after.rotate"}); err != nil {
		t.Fatal(err)
	}
	body, sig := second.wait(t, "after.rotate")
	m := hmac.New(sha256.New, []byte(newSecret))
	m.Write(body)
	if sig != hex.EncodeToString(m.Sum(nil)) {
		t.Fatal("delivery after rotation not signed with the new secret")
	}
	first.mu.Lock()
	n := len(first.body)
	first.mu.Unlock()
	if n != 1 {
		t.Fatalf("old URL got %d deliveries, want only the test before the edit", n)
	}
}
