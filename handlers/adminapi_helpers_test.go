package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"latchkey/account"
	"latchkey/store"
)

// recMailer records password mail once the transaction that queued it
// commits, so a rolled-back mutation shows as "nothing sent".
type recMailer struct {
	mu   sync.Mutex
	sent []account.PasswordMail
}

func (m *recMailer) QueuePassword(_ context.Context, tx *store.Tx, pm account.PasswordMail) error {
	tx.AfterCommit(func() { m.mu.Lock(); m.sent = append(m.sent, pm); m.mu.Unlock() })
	return nil
}

func (m *recMailer) QueueForgotPassword(context.Context, *store.Tx, account.ForgotPasswordMail) error {
	return nil
}

func (m *recMailer) all() []account.PasswordMail {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]account.PasswordMail(nil), m.sent...)
}

// recEvents records events once their transaction commits.
type recEvents struct {
	mu     sync.Mutex
	events []recordedEvent
}

type recordedEvent struct {
	Actor account.Actor
	Event account.Event
}

func (r *recEvents) Record(_ context.Context, tx *store.Tx, actor account.Actor, ev account.Event) error {
	tx.AfterCommit(func() { r.mu.Lock(); r.events = append(r.events, recordedEvent{actor, ev}); r.mu.Unlock() })
	return nil
}

func (r *recEvents) Blocking(context.Context, account.Actor, account.Event) error { return nil }

func (r *recEvents) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Event.Type)
	}
	return out
}

func (r *recEvents) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

// apiApp is a test app with a recording mailer and event recorder wired
// in, and an Admin API key.
type apiApp struct {
	*testApp
	mail   *recMailer
	events *recEvents
	token  string
}

func newAPIApp(t *testing.T) *apiApp {
	t.Helper()
	a := &apiApp{testApp: newTestApp(t), mail: &recMailer{}, events: &recEvents{}}
	a.acct.SetMailer(a.mail)
	a.acct.SetEvents(a.events)
	k, err := a.acct.CreateAPIKey(context.Background(), account.Actor{Kind: "admin", Name: testAdminEmail}, "test key")
	if err != nil {
		t.Fatal(err)
	}
	a.token = k.Token
	a.events.events = nil
	return a
}

// gqlResult is a GraphQL answer.
type gqlResult struct {
	Status int
	Raw    string
	Data   map[string]any
	Errors []gqlError
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// gql POSTs a GraphQL request with the given Authorization header value.
func (a *apiApp) gqlAuth(auth, query string, vars map[string]any) gqlResult {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return a.gqlDo(req)
}

func (a *apiApp) gqlDo(req *http.Request) gqlResult {
	a.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	var raw strings.Builder
	dec := json.NewDecoder(res.Body)
	var m json.RawMessage
	if err := dec.Decode(&m); err != nil {
		a.t.Fatalf("graphql: status %d, body not JSON: %v", res.StatusCode, err)
	}
	raw.Write(m)
	if err := json.Unmarshal(m, &out); err != nil {
		a.t.Fatalf("graphql: %v in %s", err, m)
	}
	return gqlResult{Status: res.StatusCode, Raw: raw.String(), Data: out.Data, Errors: out.Errors}
}

func (a *apiApp) gql(query string, vars map[string]any) gqlResult {
	a.t.Helper()
	return a.gqlAuth("Bearer "+a.token, query, vars)
}

// gqlOK runs a request that must succeed.
func (a *apiApp) gqlOK(query string, vars map[string]any) map[string]any {
	a.t.Helper()
	r := a.gql(query, vars)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		a.t.Fatalf("graphql: status %d: %s", r.Status, r.Raw)
	}
	return r.Data
}

// path digs into nested JSON maps.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// snapshot is the state an erroring mutation must leave untouched.
type snapshot struct {
	users  int
	hashes map[string]string
	mails  int
	events int
}

func (a *apiApp) snapshot() snapshot {
	a.t.Helper()
	ctx := context.Background()
	s := snapshot{users: a.countUsers(), hashes: map[string]string{}, mails: len(a.mail.all()), events: len(a.events.all())}
	rows, err := a.store.ListUsers(ctx, store.ListUsersParams{Limit: 10000})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, r := range rows {
		p, err := a.store.PasswordByUser(ctx, r.ID)
		h := ""
		if err == nil {
			h = p.Hash + "|" + p.UpdatedAt.String()
		}
		s.hashes[r.ID] = h + "|" + r.UpdatedAt.String()
	}
	return s
}

func (a *apiApp) wantUnchanged(before snapshot) {
	a.t.Helper()
	after := a.snapshot()
	if after.users != before.users {
		a.t.Errorf("users: %d, want %d", after.users, before.users)
	}
	if after.mails != before.mails {
		a.t.Errorf("mails sent: %d, want %d", after.mails, before.mails)
	}
	if after.events != before.events {
		a.t.Errorf("events recorded: %d, want %d", after.events, before.events)
	}
	for id, h := range before.hashes {
		if after.hashes[id] != h {
			a.t.Errorf("user %s changed", id)
		}
	}
}
