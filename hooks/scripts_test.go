package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

func (e *env) addScript(in ScriptInput) *store.Webhook {
	e.t.Helper()
	in.Enabled = true
	w, err := e.svc.CreateScript(context.Background(), admin, in)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.svc.Close)
	return w
}

// phoneSink records the bodies of requests.
type phoneSink struct {
	mu   sync.Mutex
	got  []string
	srv  *httptest.Server
	wake chan struct{}
}

func newPhoneSink(t *testing.T) *phoneSink {
	s := &phoneSink{wake: make(chan struct{}, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, string(b))
		s.mu.Unlock()
		s.wake <- struct{}{}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *phoneSink) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.got...)
}

const blockedSource = `import { HookEvent, HookResponse } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";
export default async function (e: HookEvent): Promise<HookResponse> {
  const email = e.payload.user.standard_attributes.email ?? "";
  if (email.endsWith("@blocked.example")) {
    return { is_allowed: false, title: "Blocked domain", reason: "Addresses at blocked.example are not accepted." };
  }
  return { is_allowed: true };
}`

func TestScriptBlockingVeto(t *testing.T) {
	e := newEnv(t, "")
	e.addScript(ScriptInput{Name: "no blocked", Source: blockedSource, Blocking: true})
	e.addHook("http://127.0.0.1:1/never", WebhookInput{AllEvents: true})
	_, err := e.createUser("email", "eve@blocked.example", pw("s3cret-Passw0rd"))
	ae, ok := account.AsError(err)
	if !ok || ae.Name != "Forbidden" || ae.Reason != ReasonDisallowed || ae.Message != "Blocked domain: Addresses at blocked.example are not accepted." {
		t.Fatalf("error %#v", err)
	}
	reasons, _ := ae.Info["reasons"].([]map[string]any)
	if len(reasons) != 1 || reasons[0]["title"] != "Blocked domain" {
		t.Fatalf("info %#v", ae.Info)
	}
	e.nothingWritten()
	if _, err := e.createUser("email", "ok@example.com", nil); err != nil {
		t.Fatalf("allowed address refused: %v", err)
	}
}

func TestScriptBlockingFailuresAbort(t *testing.T) {
	for _, c := range []struct {
		name, src, reason, msg string
	}{
		{"throw", `export default () => { throw new Error("db down"); }`, ReasonInvalidResponse, "Error: db down"},
		{"bad answer", `export default () => ({ ok: true })`, ReasonInvalidResponse, "is_allowed"},
		{"timeout", `export default () => { for (;;) {} }`, ReasonTimeout, "did not finish in time"},
		{"mutation of a login ID", `export default () => ({ is_allowed: true, mutations: { user: { standard_attributes: { email: "x@y.example" } } } })`,
			ReasonInvalidResponse, "standard_attributes.email"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "", func(cfg *Config) { cfg.BlockingTimeout = 300 * time.Millisecond })
			e.addScript(ScriptInput{Name: c.name, Source: c.src, Blocking: true})
			_, err := e.createUser("email", "a@example.com", nil)
			ae, ok := account.AsError(err)
			if !ok || ae.Reason != c.reason || !strings.Contains(ae.Message, c.msg) {
				t.Fatalf("error %#v", err)
			}
			e.nothingWritten()
		})
	}
	// A mutation that restates what the user has is accepted.
	e := newEnv(t, "")
	e.addScript(ScriptInput{Name: "same", Blocking: true, Source: `export default (e: any) => ({ is_allowed: true, mutations: { user: { standard_attributes: { email: e.payload.user.standard_attributes.email } } } })`})
	if _, err := e.createUser("email", "same@example.com", nil); err != nil {
		t.Fatal(err)
	}
}

// A non-blocking TypeScript hook rides the delivery queue: called once per
// event, a throw is retried with backoff, and its console output is kept
// in the delivery log.
func TestScriptDeliveryRetriedAndLogged(t *testing.T) {
	e := newEnv(t, "", fastRetries)
	sink := newPhoneSink(t)
	src := `export default async function (e: any) {
  console.log("attempt for", e.type);
  const res = await fetch("` + sink.srv.URL + `", { method: "POST", body: e.payload.user.standard_attributes.phone_number });
  if (res.status !== 200) throw new Error("gateway said " + res.status);
}`
	w := e.addScript(ScriptInput{Name: "sms", Source: src, Events: []string{UserCreated}})
	e.run()
	if _, err := e.createUser("phone", "+14155550123", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := e.svc.Deliveries(context.Background(), w.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == store.DeliverySucceeded {
			out, _ := e.svc.DeliveryOutputs(context.Background(), []int64{ds[0].ID})
			if out[ds[0].ID] != "log: attempt for user.created" {
				t.Fatalf("output %q", out[ds[0].ID])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := sink.bodies(); len(got) != 1 || got[0] != "+14155550123" {
		t.Fatalf("gateway got %q", got)
	}

	// A throwing hook: the delivery stays pending with the error, and is tried again.
	bad := e.addScript(ScriptInput{Name: "bad", Source: `export default () => { console.error("about to fail"); throw new Error("nope"); }`, Events: []string{UserCreated}})
	if _, err := e.createUser("phone", "+14155550124", nil); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		ds, err := e.svc.Deliveries(context.Background(), bad.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Attempts >= 2 {
			if ds[0].Status != store.DeliveryPending || ds[0].LastError != "The hook threw: Error: nope" {
				t.Fatalf("delivery %+v", ds[0])
			}
			out, _ := e.svc.DeliveryOutputs(context.Background(), []int64{ds[0].ID})
			if out[ds[0].ID] != "error: about to fail" {
				t.Fatalf("output %q", out[ds[0].ID])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCreateScriptValidation(t *testing.T) {
	e := newEnv(t, "")
	t.Cleanup(e.svc.Close)
	for _, c := range []struct {
		in    ScriptInput
		field string
		msg   string
	}{
		{ScriptInput{Name: "", Source: "export default () => {}", AllEvents: true}, "name", "name"},
		{ScriptInput{Name: "x", Source: "export default () => {\n  let = ;\n}", AllEvents: true}, "code", "line 2, column"},
		{ScriptInput{Name: "x", Source: "export default () => {}\n//" + strings.Repeat("a", 200<<10), AllEvents: true}, "code", "at most 100 KiB"},
		{ScriptInput{Name: "x", Source: "export const a = 1;", AllEvents: true}, "code", "no default export"},
		{ScriptInput{Name: "x", Source: "export default () => {}", Events: []string{"nope"}}, "events", "Unknown"},
		{ScriptInput{Name: "x", Source: "export default () => {}", AllEvents: true, Timeout: 2 * time.Minute}, "timeout", "1 to 60"},
		{ScriptInput{Name: "x", Source: "export default () => {}", Blocking: true, Timeout: 6 * time.Second}, "timeout", "1 to 5"},
	} {
		_, err := e.svc.CreateScript(context.Background(), admin, c.in)
		fe := account.FieldErrors(err)
		if !strings.Contains(fe[c.field], c.msg) {
			t.Errorf("%+v: field errors %v, want %s: %q", c.in.Name, fe, c.field, c.msg)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM webhooks`) + e.count(`SELECT COUNT(*) FROM hook_scripts`); n != 0 {
		t.Fatalf("%d rows saved by invalid forms", n)
	}
}

func TestTryScriptWritesNothing(t *testing.T) {
	e := newEnv(t, "")
	w := e.addScript(ScriptInput{Name: "echo", Events: []string{UserCreated},
		Source: `export default (e: any) => { console.log(e.payload.user.standard_attributes.phone_number); return { seen: e.type }; }`})
	before := e.count(`SELECT COUNT(*) FROM events`)
	tr, err := e.svc.TryScript(context.Background(), admin, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Error != "" || string(tr.Value) != `{"seen":"user.created"}` || len(tr.Console) != 1 || tr.Console[0] != "log: +14155550100" {
		t.Fatalf("try = %+v", tr)
	}
	var ev map[string]any
	if err := json.Unmarshal(tr.Event, &ev); err != nil || ev["type"] != UserCreated {
		t.Fatalf("sample event %s", tr.Event)
	}
	if n := e.count(`SELECT COUNT(*) FROM events`); n != before {
		t.Fatalf("events %d -> %d", before, n)
	}
	if n := e.count(`SELECT COUNT(*) FROM users`) + e.count(`SELECT COUNT(*) FROM webhook_deliveries`); n != 0 {
		t.Fatalf("%d rows written", n)
	}
}

// An edit takes effect at the next delivery: the cached code is keyed by
// the hook's version.
func TestScriptEditTakesEffect(t *testing.T) {
	e := newEnv(t, "", fastRetries)
	w := e.addScript(ScriptInput{Name: "v", Source: `export default () => { console.log("v1"); }`, Events: []string{UserCreated}})
	e.run()
	outputs := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ds, _ := e.svc.Deliveries(context.Background(), w.ID, 0, 10)
			done := len(ds) == n
			for _, d := range ds {
				done = done && d.Status == store.DeliverySucceeded
			}
			if done {
				ids := []int64{}
				for _, d := range ds {
					ids = append(ids, d.ID)
				}
				out, _ := e.svc.DeliveryOutputs(context.Background(), ids)
				var got []string
				for i := len(ds) - 1; i >= 0; i-- {
					got = append(got, out[ds[i].ID])
				}
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries %+v", ds)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := e.createUser("email", "a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	outputs(1)
	if err := e.svc.UpdateScript(context.Background(), admin, w.ID, ScriptInput{Name: "v", Source: `export default () => { console.log("v2"); }`,
		Events: []string{UserCreated}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.createUser("email", "b@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if got := outputs(2); strings.Join(got, ",") != "log: v1,log: v2" {
		t.Fatalf("outputs %q", got)
	}
}

// TypeScript hooks fetch through the webhooks' own client, so whatever
// outbound policy that client enforces applies to them too.
func TestScriptFetchUsesWebhookClient(t *testing.T) {
	e := newEnv(t, "")
	sink := newPhoneSink(t)
	var seen atomic.Int64
	e.svc.client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen.Add(1)
		return nil, errors.New("refused by the webhook client")
	})
	w := e.addScript(ScriptInput{Name: "f", Events: []string{UserCreated}, Source: `export default async () => { await fetch("` + sink.srv.URL + `"); }`})
	tr, err := e.svc.TryScript(context.Background(), admin, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tr.Error, "refused by the webhook client") || seen.Load() != 1 || len(sink.bodies()) != 0 {
		t.Fatalf("try = %+v, client saw %d", tr, seen.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTrySMSScriptGetsSampleText: "Run with a sample event" on the hook
// that sends texts (LATCHKEY_SMS_URL=script://NAME) runs it with a sample
// text in the CustomSMSGatewayPayload shape, judged as a send is (an
// answer {code} other than "ok" is a failure); other hooks still get
// user.created.
func TestTrySMSScriptGetsSampleText(t *testing.T) {
	e := newEnv(t, "")
	gw := e.addScript(ScriptInput{Name: "sms-gateway", Events: []string{UserCreated},
		Source: `export default (p: any) => { console.log(p.to, p.template_name, typeof p.type); if (typeof p.body !== "string" || !p.body.includes("password")) throw new Error("no body"); return { code: p.to === "+14155550100" ? "ok" : "bad" }; }`})
	other := e.addScript(ScriptInput{Name: "other", Events: []string{UserCreated},
		Source: `export default (e: any) => ({ seen: e.type })`})
	refuse := e.addScript(ScriptInput{Name: "refuse", Events: []string{UserCreated},
		Source: `export default () => ({ code: "rate_limited", provider_error_code: "429" })`})
	ctx := context.Background()

	// Before it is named as the SMS script, it gets an event like any hook.
	tr, err := e.svc.TryScript(ctx, admin, gw.ID)
	if err != nil || tr.SMS || !strings.Contains(tr.Error, "no body") {
		t.Fatalf("before LATCHKEY_SMS_URL names it: %+v %v", tr, err)
	}
	e.svc.SetSMSScriptRef("sms-gateway")
	tr, err = e.svc.TryScript(ctx, admin, gw.ID)
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal(tr.Event, &in); err != nil || in["to"] != "+14155550100" || in["type"] != nil || !strings.Contains(in["body"].(string), "password") {
		t.Fatalf("sample text %s (%v)", tr.Event, err)
	}
	if !tr.SMS || tr.Error != "" || len(tr.Console) != 1 || tr.Console[0] != "log: +14155550100 new_user_sms.txt undefined" {
		t.Fatalf("try = %+v", tr)
	}
	if tr, err := e.svc.TryScript(ctx, admin, other.ID); err != nil || tr.SMS || string(tr.Value) != `{"seen":"user.created"}` {
		t.Fatalf("another hook: %+v %v", tr, err)
	}
	// An answer that fails a send fails the sample run, saying why.
	e.svc.SetSMSScriptRef(refuse.ID)
	if tr, err := e.svc.TryScript(ctx, admin, refuse.ID); err != nil || !tr.SMS || !strings.Contains(tr.Error, "rate_limited (429)") {
		t.Fatalf("refusing script: %+v %v", tr, err)
	}
	if n := e.count(`SELECT COUNT(*) FROM mail_outbox`) + e.count(`SELECT COUNT(*) FROM webhook_deliveries`); n != 0 {
		t.Fatalf("%d rows written", n)
	}
}
