package hooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/metrics"
	"latchkey/store"
)

func blockingServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// nothingWritten checks that a refused creation left no trace.
func (e *env) nothingWritten() {
	e.t.Helper()
	for _, table := range []string{"users", "identities", "passwords", "events", "webhook_deliveries"} {
		q := `SELECT COUNT(*) FROM ` + table
		if table == "events" {
			q += ` WHERE type NOT LIKE 'webhook.%'`
		}
		if n := e.count(q); n != 0 {
			e.t.Errorf("%d rows in %s after a refused creation", n, table)
		}
	}
}

func TestBlockingHookVeto(t *testing.T) {
	e := newEnv(t, "")
	var got map[string]any
	var gotSecretOK bool
	var secret string
	var mu sync.Mutex
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		_ = json.Unmarshal(body, &got)
		gotSecretOK = verifyStandard(secret, r.Header, body) == "" && verifyAuthgear(secret, r.Header, body) == ""
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"is_allowed": false, "reason": "Phone numbers from this region are not accepted.", "title": "Region blocked"}`)
	})
	_, s := e.addHook(srv.URL, WebhookInput{Blocking: true})
	mu.Lock()
	secret = s
	mu.Unlock()
	// A non-blocking hook too: the veto must queue nothing for it.
	e.addHook("http://127.0.0.1:1/never", WebhookInput{AllEvents: true})

	vetoes := blockingMetric(t, "disallowed")
	_, err := e.createUser("phone", "+14155550199", pw("s3cret-Passw0rd"))
	if d := blockingMetric(t, "disallowed") - vetoes; d != 1 {
		t.Errorf("disallowed blocking calls went up by %v, want 1", d)
	}
	ae, ok := account.AsError(err)
	if !ok || ae.Reason != ReasonDisallowed || !strings.Contains(ae.Message, "Phone numbers from this region are not accepted.") ||
		!strings.Contains(ae.Message, "Region blocked") || ae.Field != "" {
		t.Fatalf("error %#v", err)
	}
	if fe := account.FieldErrors(err); !strings.Contains(fe[""], "not accepted") {
		t.Errorf("form errors %v", fe)
	}
	e.nothingWritten()
	mu.Lock()
	defer mu.Unlock()
	if got["type"] != UserPreCreate || !gotSecretOK {
		t.Errorf("hook got %v (signatures ok: %v)", got["type"], gotSecretOK)
	}
	if got["context"].(map[string]any)["triggered_by"] != "admin_api" {
		t.Errorf("context %v", got["context"])
	}
	if strings.Contains(string(mustJSON(got)), "s3cret-Passw0rd") {
		t.Error("plaintext password sent to the blocking hook")
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestBlockingHookAllowsThenUserCreated(t *testing.T) {
	e := newEnv(t, "")
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"is_allowed": true}`)
	})
	e.addHook(srv.URL, WebhookInput{Blocking: true})
	if _, err := e.createUser("email", "ok@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT COUNT(*) FROM users`); n != 1 {
		t.Errorf("%d users", n)
	}
}

func TestBlockingHookFailuresAbort(t *testing.T) {
	for _, c := range []struct {
		name, reason, msg string
		h                 http.HandlerFunc
	}{
		{"timeout", ReasonTimeout, "did not answer in time", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}},
		{"non-2xx", ReasonInvalidResponse, "HTTP 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }},
		{"bad json", ReasonInvalidResponse, "was not", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") }},
		{"no is_allowed", ReasonInvalidResponse, "was not", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"reason":"x"}`) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "", func(cfg *Config) { cfg.BlockingTimeout = 200 * time.Millisecond })
			srv := blockingServer(t, c.h)
			e.addHook(srv.URL, WebhookInput{Blocking: true})
			failed := blockingMetric(t, "failed")
			start := time.Now()
			_, err := e.createUser("email", "x@example.com", pw("s3cret-Passw0rd"))
			ae, ok := account.AsError(err)
			if !ok || ae.Reason != c.reason || !strings.Contains(ae.Message, c.msg) {
				t.Fatalf("error %#v", err)
			}
			if d := blockingMetric(t, "failed") - failed; d != 1 {
				t.Errorf("failed blocking calls went up by %v, want 1", d)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			e.nothingWritten()
		})
	}
}

func TestBlockingHooksShareTotalBudget(t *testing.T) {
	e := newEnv(t, "", func(cfg *Config) {
		cfg.BlockingTimeout = 300 * time.Millisecond
		cfg.BlockingTotal = 400 * time.Millisecond
	})
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(250 * time.Millisecond)
		io.WriteString(w, `{"is_allowed": true}`)
	}
	e.addHook(blockingServer(t, slow).URL, WebhookInput{Blocking: true})
	e.addHook(blockingServer(t, slow).URL, WebhookInput{Blocking: true})
	_, err := e.createUser("email", "budget@example.com", nil)
	if ae, ok := account.AsError(err); !ok || ae.Reason != ReasonTimeout {
		t.Fatalf("two 250 ms hooks in a 400 ms budget: %v", err)
	}
	e.nothingWritten()
}

func TestDisabledBlockingHookIsSkipped(t *testing.T) {
	e := newEnv(t, "")
	srv := blockingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"is_allowed": false}`) })
	w, _ := e.addHook(srv.URL, WebhookInput{Blocking: true})
	if err := e.svc.SetEnabled(context.Background(), admin, w.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.createUser("email", "skip@example.com", nil); err != nil {
		t.Fatal(err)
	}
}

// recordingMailer is the account.Mailer seam: it keeps what would be
// emailed, so the test knows the generated password to look for.
type recordingMailer struct {
	mu   sync.Mutex
	sent []account.PasswordMail
}

func (m *recordingMailer) QueuePassword(_ context.Context, _ *store.Tx, pm account.PasswordMail) error {
	m.mu.Lock()
	m.sent = append(m.sent, pm)
	m.mu.Unlock()
	return nil
}

func (m *recordingMailer) QueueForgotPassword(context.Context, *store.Tx, account.ForgotPasswordMail) error {
	return nil
}

func TestNoPlaintextPasswordInAnyEvent(t *testing.T) {
	e := newEnv(t, "")
	mailer := &recordingMailer{}
	e.acct.SetMailer(mailer)
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	_, secret := e.addHook(srv.URL, WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	e.run()
	ctx := context.Background()
	typed := []string{"Typed-Passw0rd-one", "Typed-Passw0rd-two"}
	if _, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "t1@example.com",
		Password: pw(typed[0]), SendPassword: true, SetPasswordExpired: true}); err != nil {
		t.Fatal(err)
	}
	u2, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "typed2", Password: pw(typed[1])})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: "email",
			LoginIDValue: "gen" + string(rune('a'+i)) + "@example.com", Password: pw(""), SendPassword: true, SetPasswordExpired: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.acct.SetPasswordExpired(ctx, admin, u2.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.SetDisabledStatus(ctx, admin, u2.ID, true, "test"); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	secrets = append(secrets, typed...)
	for _, m := range mailer.sent {
		secrets = append(secrets, m.Password)
	}
	if len(secrets) != 6 {
		t.Fatalf("%d passwords to look for", len(secrets))
	}
	rows, err := e.st.DB().Query(`SELECT type, payload, context FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var typ, payload, cx string
		if err := rows.Scan(&typ, &payload, &cx); err != nil {
			t.Fatal(err)
		}
		n++
		for _, s := range secrets {
			if s == "" || strings.Contains(payload, s) || strings.Contains(cx, s) {
				t.Errorf("%s event holds a plaintext password (%q)", typ, payload)
			}
		}
		if strings.Contains(payload, "bcrypt") || strings.Contains(payload, "$2a$") {
			t.Errorf("%s event holds a password hash", typ)
		}
	}
	if n < 10 {
		t.Errorf("only %d events", n)
	}
	// What went out on the wire too.
	for range 5 {
		d := rcv.wait(5 * time.Second)
		for _, s := range secrets {
			if strings.Contains(string(d.Body), s) {
				t.Errorf("webhook body holds a plaintext password")
			}
		}
	}
	rcv.check()
}

func TestPayloadPasswordKeysRedacted(t *testing.T) {
	e := newEnv(t, "")
	err := e.st.InTx(context.Background(), func(tx *store.Tx) error {
		return e.svc.Record(context.Background(), tx, admin, account.Event{Type: "user.test", Payload: map[string]any{
			"password": "hunter2-plain", "nested": map[string]any{"new_password": "hunter3-plain", "password_generated": true},
			"list": []any{map[string]any{"Password_Hash": "$2a$04$abc"}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var payload string
	if err := e.st.DB().QueryRow(`SELECT payload FROM events WHERE type = 'user.test'`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hunter2-plain", "hunter3-plain", "$2a$04$abc"} {
		if strings.Contains(payload, s) {
			t.Errorf("payload %s keeps %q", payload, s)
		}
	}
	if !strings.Contains(payload, `"password_generated":true`) {
		t.Errorf("payload %s lost a non-secret field", payload)
	}
}

// blockingMetric reads latchkey_blocking_hook_calls_total{result} from the
// /metrics handler.
func blockingMetric(t *testing.T, result string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(metrics.Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	series := `latchkey_blocking_hook_calls_total{result="` + result + `"} `
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}
