package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/store"
)

// TestAdminAPICreateUserWebhookStory is the guide's story through the
// Admin API: a key made in the portal, createUser with a phone number, and
// the webhook gets user.created with triggered_by "admin_api" (as from the
// portal), the phone number where the guide's hook reads it, and the API
// key named in audit_context. Then a user import over the same key fires
// no user.created.
func TestAdminAPICreateUserWebhookStory(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	app := startApp(t, nil)
	p := newPortalClient(t, app.URL)
	p.signIn()
	p.get("/portal/hooks")
	if code, _, _ := p.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {hook.URL}, "events_mode": {"chosen"}, "events": {"user.created"}}); code != http.StatusSeeOther {
		t.Fatalf("add webhook: %d", code)
	}
	p.get("/portal/api-keys")
	code, body, loc := p.post("/portal/api-keys", url.Values{"name": {"sms-onboarding"}})
	if code == http.StatusSeeOther {
		_, body, _ = p.get(loc)
	}
	token := regexp.MustCompile(`lk_[A-Za-z0-9_-]+`).FindString(body)
	if token == "" || strings.HasSuffix(token, "_") {
		t.Fatalf("no API key token shown (%d)", code)
	}

	call := func(path, contentType, payload string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, app.URL+path, strings.NewReader(payload))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	q, _ := json.Marshal(map[string]any{"query": `mutation { createUser(input: {definition: {loginID: {key: "phone", value: "+14155550188"}}, password: "Temp-Passw0rd-9"}) { user { id } } }`})
	if code, out := call("/_api/admin/graphql", "application/json", string(q)); code != http.StatusOK || strings.Contains(out, `"errors"`) {
		t.Fatalf("createUser: %d %s", code, out)
	}
	var ev map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for ev == nil {
		mu.Lock()
		if len(got) > 0 {
			ev = got[0]
		}
		mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no user.created delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cx := ev["context"].(map[string]any)
	if ev["type"] != "user.created" || cx["triggered_by"] != "admin_api" {
		t.Errorf("event %v / %v", ev["type"], cx["triggered_by"])
	}
	if ac := cx["audit_context"].(map[string]any); ac["actor_kind"] != "api_key" || ac["actor_name"] != "sms-onboarding" {
		t.Errorf("audit_context %v", ac)
	}
	if phone := ev["payload"].(map[string]any)["user"].(map[string]any)["standard_attributes"].(map[string]any)["phone_number"]; phone != "+14155550188" {
		t.Errorf("phone_number %v", phone)
	}

	code, out := call("/_api/admin/users/import", "application/json",
		`{"records": [{"phone_number": "+14155550189", "password_hash": "$2a$04$0123456789012345678901uNOk2yRdZ9TP.6whOlDQ3fs5YPvDcV6"}]}`)
	if code != http.StatusOK || !strings.Contains(out, `"outcome":"created"`) {
		t.Fatalf("import: %d %s", code, out)
	}
	// The import queued no delivery (deliveries are queued in their
	// event's transaction), so none can arrive later.
	st, err := store.Open(context.Background(), app.DB)
	if err != nil {
		t.Fatal(err)
	}
	var queued int
	err = st.Direct().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE ev.type <> 'user.created' OR ev.seq > ?`,
		int64(ev["seq"].(float64))).Scan(&queued)
	st.Close()
	if err != nil || queued != 0 {
		t.Fatalf("%d deliveries queued after the created user's (%v)", queued, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Errorf("the webhook got %d events; the import must fire no user.created", len(got))
	}
}
