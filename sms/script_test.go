package sms_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/mail"
	"latchkey/outbound"
	"latchkey/sms"
	"latchkey/store"
)

// provider is an SMS provider's API on loopback, as a custom SMS script
// calls it: the first fail requests get a 503, the rest are kept.
type provider struct {
	*httptest.Server
	mu       sync.Mutex
	fail     int
	requests int
	texts    []map[string]string
}

func startProvider(t *testing.T, fail int) *provider {
	p := &provider{fail: fail}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.requests++
		if p.fail > 0 {
			p.fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var m map[string]string
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		p.texts = append(p.texts, m)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) counts() (int, []map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests, append([]map[string]string(nil), p.texts...)
}

func scriptSource(url string) string {
	return `import { CustomSMSGatewayPayload } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";
export default async function (p: CustomSMSGatewayPayload) {
  const res = await fetch("` + url + `", { method: "POST", body: JSON.stringify({ to: p.to, body: p.body, app: p.app_id ?? "" }) });
  if (!res.ok) throw new Error("provider answered " + res.status);
}
`
}

// hooksOn makes a hooks service on st with one saved TypeScript hook
// named name, and the script:// provider for ref.
func hooksOn(t *testing.T, st *store.Store, policy outbound.Policy, name, source, ref string, timeout time.Duration) (*hooks.Service, mail.Sender) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hooks.New(st, testSecret, hooks.Config{Outbound: policy}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if name != "" {
		if _, err := h.CreateScript(context.Background(), admin, hooks.ScriptInput{Name: name, Source: source, Events: []string{hooks.UserCreated}, Timeout: timeout}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sms.Open(ref, sms.Config{AppID: "acme", Schemes: map[string]sms.Opener{"script": sms.ScriptOpener(h)}})
	if err != nil {
		t.Fatal(err)
	}
	return h, s
}

// TestScriptProviderRetriesThrow: the provider answers 503 twice, so the
// script throws twice; the outbox retries the text, and once the provider
// accepts it the text is delivered exactly once, with the password that
// was stored, and the row is wiped.
func TestScriptProviderRetriesThrow(t *testing.T) {
	p := startProvider(t, 2)
	e := newEnv(t, "", "", account.SMSLimits{})
	_, s := hooksOn(t, e.st, outbound.Policy{AllowPrivate: true}, "gateway", scriptSource(p.URL), "script://gateway", 0)
	e.ob.SetTextSender(s)
	e.start()
	u := e.createPhoneUser("+14155550111", ptr(""))
	row := e.waitStatus(u.ID, store.OutboxDelivered)
	if row.Secret != nil || row.Attempts != 3 {
		t.Fatalf("row %+v: want delivered on the third attempt, secret wiped", row)
	}
	time.Sleep(200 * time.Millisecond)
	n, texts := p.counts()
	if n != 3 || len(texts) != 1 {
		t.Fatalf("%d requests, %d texts; want 3 and exactly 1", n, len(texts))
	}
	pw := passwordRE.FindStringSubmatch(texts[0]["body"])
	if texts[0]["to"] != "+14155550111" || texts[0]["app"] != "acme" || pw == nil || !e.acct.Hasher().Verify(u.Password.Hash, pw[1]) {
		t.Fatalf("text %v is not the user's password text", texts[0])
	}
	if len(e.events.ofType(account.EventSMSFailed)) != 0 {
		t.Fatal("sms.failed recorded for a text that was delivered")
	}
}

// TestScriptProviderFailures: what an admin sees when the script cannot
// send: a throw, an answer other than {code: "ok"}, a fetch the outbound
// policy refuses (the provider is on loopback and the policy is the
// default one), a hook that does not exist, and a run past the hook's own
// timeout; none reaches the provider, and each is retried.
func TestScriptProviderFailures(t *testing.T) {
	p := startProvider(t, 0)
	ctx := context.Background()
	msg := mail.Message{To: "+14155550112", Text: "Your code is 123456", Kind: "forgot_password"}
	for name, c := range map[string]struct {
		source  string
		policy  outbound.Policy
		want    string
		timeout time.Duration
	}{
		"throw":   {`export default () => { throw new Error("no credit left") }`, outbound.Policy{AllowPrivate: true}, `The SMS script "gw" failed: The hook threw: Error: no credit left`, 0},
		"code":    {`export default async () => ({ code: "rate_limited", provider_error_code: "20429" })`, outbound.Policy{AllowPrivate: true}, "answered rate_limited (20429)", 0},
		"policy":  {scriptSource(p.URL), outbound.Policy{}, "loopback", 0},
		"missing": {"", outbound.Policy{AllowPrivate: true}, "no hook has that name or ID", 0},
		"timeout": {`export default () => { for (;;) {} }`, outbound.Policy{AllowPrivate: true}, "did not finish within 1s", time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := store.Open(ctx, t.TempDir()+"/s.db")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			hookName := "gw"
			if c.source == "" {
				hookName = ""
			}
			_, s := hooksOn(t, st, c.policy, hookName, c.source, "script://gw", c.timeout)
			err = s.Send(ctx, "", msg)
			if err == nil || !strings.Contains(err.Error(), c.want) || mail.IsPermanent(err) {
				t.Fatalf("error %v, want a temporary one containing %q", err, c.want)
			}
		})
	}
	if n, _ := p.counts(); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
}

// TestScriptProviderRef: a hook is found by ID as well as by name; two
// hooks with one name must be named by ID; script:// without a hook is a
// configuration error.
func TestScriptProviderRef(t *testing.T) {
	ctx := context.Background()
	p := startProvider(t, 0)
	e := newEnv(t, "", "", account.SMSLimits{})
	h, _ := hooksOn(t, e.st, outbound.Policy{AllowPrivate: true}, "gw", scriptSource(p.URL), "script://gw", 0)
	w, err := h.CreateScript(ctx, admin, hooks.ScriptInput{Name: "gw", Source: scriptSource(p.URL), Events: []string{hooks.UserCreated}})
	if err != nil {
		t.Fatal(err)
	}
	schemes := map[string]sms.Opener{"script": sms.ScriptOpener(h)}
	byName, err := sms.Open("script://gw", sms.Config{Schemes: schemes})
	if err != nil {
		t.Fatal(err)
	}
	if err := byName.Send(ctx, "", mail.Message{To: "+1", Text: "x"}); err == nil || !strings.Contains(err.Error(), "2 TypeScript hooks are named") {
		t.Fatalf("ambiguous name: %v", err)
	}
	byID, err := sms.Open("script://"+w.ID, sms.Config{Schemes: schemes})
	if err != nil {
		t.Fatal(err)
	}
	if err := byID.Send(ctx, "", mail.Message{To: "+14155550113", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, texts := p.counts(); len(texts) != 1 || texts[0]["to"] != "+14155550113" || texts[0]["body"] != "hello" {
		t.Fatalf("texts %v", texts)
	}
	if _, err := sms.Open("script://", sms.Config{Schemes: schemes}); err == nil || !strings.Contains(err.Error(), "name or ID") {
		t.Fatalf("script:// with no hook: %v", err)
	}
}
