package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"latchkey/account"
	"latchkey/hooks"
)

// newImportApp is the events app with an Admin API key.
func newImportApp(t *testing.T, tune ...func(*hooks.Config)) (*testApp, string) {
	t.Helper()
	a, _ := newEventsApp(t, tune...)
	k, err := a.acct.CreateAPIKey(context.Background(), account.Actor{Kind: "admin", Name: testAdminEmail}, "importer")
	if err != nil {
		t.Fatal(err)
	}
	return a, k.Token
}

// browser is a new visitor of a's server: its own cookie jar.
func browser(a *testApp) *testApp {
	jar, _ := cookiejar.New(nil)
	b := *a
	b.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.csrf = ""
	return &b
}

type importAnswer struct {
	Status  int
	Raw     string
	Summary map[string]int
	Results []struct {
		Index   int    `json:"index"`
		Outcome string `json:"outcome"`
		UserID  string `json:"user_id"`
		Error   *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

func postImport(t *testing.T, a *testApp, token string, body string) importAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/users/import", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := importAnswer{Status: res.StatusCode, Raw: string(b)}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("import answer %d is not JSON: %s", res.StatusCode, b)
	}
	return out
}

func TestImportEndpoint10000Bcrypt(t *testing.T) {
	a, token := newImportApp(t)
	rcv := &sink{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	a.loginAdmin()
	addHook(t, a, map[string][]string{"kind": {"non_blocking"}, "url": {srv.URL}, "events_mode": {"all"}})

	hash, _ := bcrypt.GenerateFromPassword([]byte("Imported-Passw0rd"), 4)
	var b strings.Builder
	b.WriteString(`{"upsert": false, "records": [`)
	for i := range 10000 {
		if i > 0 {
			b.WriteString(",")
		}
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `{"email": "imp%05d@example.com", "password_hash": %q, "set_password_expired": true}`, i, hash)
		case 1:
			fmt.Fprintf(&b, `{"email": "imp%05d@example.com", "password": {"type": "bcrypt", "password_hash": %q}}`, i, hash)
		default:
			fmt.Fprintf(&b, `{"preferred_username": "imp%05d", "password_hash": %q}`, i, hash)
		}
	}
	b.WriteString(`]}`)
	r := postImport(t, a, token, b.String())
	if r.Status != http.StatusOK || r.Summary["created"] != 10000 || r.Summary["total"] != 10000 || len(r.Results) != 10000 {
		t.Fatalf("import: %d %v %.300s", r.Status, r.Summary, r.Raw)
	}
	if a.countUsers() != 10000 {
		t.Fatalf("%d users", a.countUsers())
	}
	// They can sign in with the imported password.
	for _, i := range []int{0, 1, 2, 9999} {
		u, err := a.acct.GetUser(context.Background(), r.Results[i].UserID)
		if err != nil {
			t.Fatal(err)
		}
		if !a.acct.Hasher().Verify(u.Password.Hash, "Imported-Passw0rd") {
			t.Errorf("record %d cannot sign in", i)
		}
	}
	// None fired user.created; one audit event for the import.
	var created, audit, deliveries int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events WHERE type LIKE 'user.%'`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events WHERE type = ?`, hooks.AdminImportUsers).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if created != 0 || audit != 1 {
		t.Errorf("%d user events, %d import events", created, audit)
	}
	// No webhook was sent: deliveries are queued in the transaction of
	// their event, so none queued means none will ever go out.
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if deliveries != 0 {
		t.Errorf("%d webhook deliveries queued by an import", deliveries)
	}
	rcv.mu.Lock()
	if len(rcv.got) != 0 {
		t.Errorf("the webhook got %d events from an import", len(rcv.got))
	}
	rcv.mu.Unlock()

	// They sign in through the Auth UI with their old password; the ones
	// imported with set_password_expired are sent to change it.
	if r := signIn(browser(a), "imp00001@example.com", "Imported-Passw0rd", ""); r.Status != http.StatusSeeOther || r.Location != "/settings" {
		t.Errorf("email sign-in: %d %q", r.Status, r.Location)
	}
	if r := signIn(browser(a), "imp00002", "Imported-Passw0rd", ""); r.Status != http.StatusSeeOther || r.Location != "/settings" {
		t.Errorf("username sign-in: %d %q", r.Status, r.Location)
	}
	if r := signIn(browser(a), "imp00003@example.com", "Imported-Passw0rd", ""); r.Status != http.StatusSeeOther || r.Location != "/change-password" {
		t.Errorf("expired imported password: %d %q", r.Status, r.Location)
	}
	wantStatus(t, signIn(browser(a), "imp00004@example.com", "wrong-password", ""), http.StatusUnauthorized)

	// Insert-only again: every record skipped, with a reason; upsert updates.
	r = postImport(t, a, token, `{"records": [{"email": "imp00000@example.com", "password": "Another-Passw0rd"}, {"email": "bad"}, {"email": "a@example.com", "phone_number": "+14155550100"}]}`)
	if r.Status != http.StatusOK || r.Results[0].Outcome != "skipped" || r.Results[1].Outcome != "failed" || r.Results[2].Outcome != "failed" ||
		r.Results[1].Error == nil || r.Results[2].Error == nil || !strings.Contains(r.Results[2].Error.Message, "identifier") {
		t.Fatalf("mixed import: %s", r.Raw)
	}
	r = postImport(t, a, token, `{"upsert": true, "records": [{"email": "imp00000@example.com", "password": "Another-Passw0rd"}]}`)
	if r.Status != http.StatusOK || r.Results[0].Outcome != "updated" {
		t.Fatalf("upsert: %s", r.Raw)
	}
	u, _ := a.acct.GetUser(context.Background(), r.Results[0].UserID)
	if !a.acct.Hasher().Verify(u.Password.Hash, "Another-Passw0rd") {
		t.Error("upsert did not set the new password")
	}
}

func TestImportEndpointRefusals(t *testing.T) {
	a, token := newImportApp(t)
	for _, c := range []struct {
		name, token, body string
		status            int
		text              string
	}{
		{"no key", "", `{"records": [{"email": "x@example.com"}]}`, 401, "Admin API key"},
		{"wrong key", "lk_nope_nope", `{"records": [{"email": "x@example.com"}]}`, 401, "Admin API key"},
		{"not json", token, `records=1`, 400, "not an import request"},
		{"unknown field", token, `{"records": [], "mode": "x"}`, 400, "not an import request"},
		{"empty", token, `{"records": []}`, 400, "no records"},
		{"too many", token, `{"records": [` + strings.Repeat(`{"email":"a@b.co"},`, 10000) + `{"email":"a@b.co"}]}`, 400, "at most 10000"},
		{"bad identifier", token, `{"identifier": "nickname", "records": [{"email": "x@example.com"}]}`, 400, "identifier must be"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := postImport(t, a, c.token, c.body)
			if r.Status != c.status || !strings.Contains(r.Raw, c.text) {
				t.Errorf("%d %s", r.Status, r.Raw)
			}
		})
	}
	if n := a.countUsers(); n != 0 {
		t.Errorf("%d users after refused imports", n)
	}
}

func TestAPICreateUserShowsBlockingHookReason(t *testing.T) {
	a, token := newImportApp(t, func(c *hooks.Config) { c.BlockingTimeout = 300 * time.Millisecond })
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		io.WriteString(w, `{"is_allowed": false, "title": "Closed", "reason": "No new accounts today."}`)
	}))
	defer srv.Close()
	a.loginAdmin()
	addHook(t, a, map[string][]string{"kind": {"blocking"}, "url": {srv.URL}})
	gql := func() map[string]any {
		body, _ := json.Marshal(map[string]any{"query": `mutation { createUser(input: {definition: {loginID: {key: "email", value: "api@example.com"}}, password: "s3cret-Passw0rd"}) { user { id } } }`})
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return out
	}
	out := gql()
	errs, _ := out["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("answer %v", out)
	}
	e := errs[0].(map[string]any)
	if e["message"] != "Closed: No new accounts today." || e["extensions"].(map[string]any)["reason"] != hooks.ReasonDisallowed {
		t.Errorf("veto error %v", e)
	}
	slow.Store(true)
	out = gql()
	errs, _ = out["errors"].([]any)
	if len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["message"].(string), "did not answer in time") ||
		errs[0].(map[string]any)["extensions"].(map[string]any)["reason"] != hooks.ReasonTimeout {
		t.Errorf("timeout answer %v", out)
	}
	if n := a.countUsers(); n != 0 {
		t.Errorf("%d users after a veto and a timeout", n)
	}
}

// TestImportPlaintextOutlivesServerWriteTimeout: hashing plaintext
// passwords may take longer than the server's write timeout; the import
// extends its own deadline, so the client still gets its results.
func TestImportPlaintextOutlivesServerWriteTimeout(t *testing.T) {
	a, token := newImportApp(t)
	srv := httptest.NewUnstartedServer(a.srv.Config.Handler)
	// A write deadline that has passed before the handler starts: only
	// the import's own, extended deadline lets the answer out, however
	// fast the machine.
	srv.Config.WriteTimeout = time.Nanosecond
	srv.Start()
	t.Cleanup(srv.Close)
	slow := *a
	slow.srv = srv
	var recs []string
	for i := 0; i < 300; i++ {
		recs = append(recs, fmt.Sprintf(`{"email": "plain%03d@example.com", "password": "plain-Passw0rd-%03d"}`, i, i))
	}
	ans := postImport(t, &slow, token, `{"records": [`+strings.Join(recs, ",")+`]}`)
	if ans.Status != http.StatusOK || ans.Summary["created"] != 300 {
		t.Fatalf("status %d, summary %v", ans.Status, ans.Summary)
	}
}

// TestImportBodyLimits: a 10,000-record import written the way the docs
// show, pretty-printed with long login IDs, is over the router's usual 2 MB
// and still goes in; a body over the import's own limit gets the import's
// 413 answer, and nothing is written.
func TestImportBodyLimits(t *testing.T) {
	a, token := newImportApp(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("Imported-Passw0rd"), 4)
	type rec struct {
		Email              string `json:"email"`
		Password           any    `json:"password"`
		SetPasswordExpired bool   `json:"set_password_expired"`
	}
	var recs []rec
	for i := range 10000 {
		recs = append(recs, rec{Email: fmt.Sprintf("a-rather-long-local-part-%05d@imports.example.com", i),
			Password: map[string]string{"type": "bcrypt", "password_hash": string(hash)}, SetPasswordExpired: true})
	}
	body, _ := json.MarshalIndent(map[string]any{"upsert": false, "records": recs}, "", "    ")
	if len(body) < 2_500_000 {
		t.Fatalf("body is only %d bytes; the test needs more than the router's 2 MB", len(body))
	}
	r := postImport(t, a, token, string(body))
	if r.Status != http.StatusOK || r.Summary["created"] != 10000 {
		t.Fatalf("%d-byte import: %d %v %.300s", len(body), r.Status, r.Summary, r.Raw)
	}

	huge := `{"records": [{"email": "x@example.com", "password": "` + strings.Repeat("p", importBodyLimit) + `"}]}`
	r = postImport(t, a, token, huge)
	if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(r.Raw, "send fewer records per request") {
		t.Fatalf("over-limit import: %d %.300s", r.Status, r.Raw)
	}
	if n := a.countUsers(); n != 10000 {
		t.Fatalf("%d users after the refused import", n)
	}
}
