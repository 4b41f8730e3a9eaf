package handlers

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/store"
)

// newScriptApp is the events app with the admin signed in and an Admin API key.
func newScriptApp(t *testing.T, tune ...func(*hooks.Config)) (*testApp, *hooks.Service, string) {
	t.Helper()
	a, hk := newEventsApp(t, tune...)
	t.Cleanup(hk.Close)
	k, err := a.acct.CreateAPIKey(context.Background(), account.Actor{Kind: "admin", Name: testAdminEmail}, "scripts")
	if err != nil {
		t.Fatal(err)
	}
	a.loginAdmin()
	return a, hk, k.Token
}

func guideHook(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../script/testdata/guide_hook.ts")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var scriptIDRE = regexp.MustCompile(`^/portal/hooks/([0-9a-f-]{36})$`)

// addScriptHook saves a TypeScript hook through the portal form.
func addScriptHook(t *testing.T, a *testApp, form url.Values) string {
	t.Helper()
	wantStatus(t, a.get("/portal/hooks/new/typescript"), http.StatusOK)
	r := a.post("/portal/hooks/typescript", form)
	wantStatus(t, r, http.StatusSeeOther)
	m := scriptIDRE.FindStringSubmatch(r.Location)
	if m == nil {
		t.Fatalf("redirect to %q", r.Location)
	}
	return m[1]
}

func tsForm(name, code string, events ...string) url.Values {
	f := url.Values{"name": {name}, "code": {code}, "kind": {"non_blocking"}, "events_mode": {"chosen"}, "events": events,
		"enabled": {"true"}, "timeout": {"10"}}
	if len(events) == 0 {
		f.Set("events_mode", "all")
	}
	return f
}

// phoneReceiver is the SMS gateway of the test: it keeps what it gets.
type phoneReceiver struct {
	mu   sync.Mutex
	got  []string
	srv  *httptest.Server
	hits chan struct{}
}

func newPhoneReceiver(t *testing.T) *phoneReceiver {
	p := &phoneReceiver{hits: make(chan struct{}, 100)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got = append(p.got, string(b))
		p.mu.Unlock()
		p.hits <- struct{}{}
		_, _ = io.WriteString(w, `{"sid":"SM1"}`)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *phoneReceiver) bodies() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.got...)
}

// waitDeliveries waits until every delivery of hook has succeeded and
// returns them.
func waitDeliveries(t *testing.T, hk *hooks.Service, hookID string, n int) []store.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds, err := hk.Deliveries(context.Background(), hookID, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ds) == n
		for _, d := range ds {
			done = done && d.Status == store.DeliverySucceeded
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s: %+v", hookID, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The guide's hook, saved verbatim in the portal, compiles; a copy whose
// TODO texts the phone number calls the gateway exactly once when an admin
// creates a phone user in the portal, and not for a user made by import.
func TestGuideHookInPortal(t *testing.T) {
	a, hk, token := newScriptApp(t)
	gw := newPhoneReceiver(t)

	page := a.get("/portal/hooks/new/typescript")
	wantContains(t, page.Body, html.EscapeString(`import { HookEvent } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";`))

	guide := guideHook(t)
	verbatim := addScriptHook(t, a, tsForm("guide, verbatim", guide, hooks.UserCreated))
	sc, err := hk.HookScript(context.Background(), verbatim)
	if err != nil || sc.Source != guide {
		t.Fatalf("saved source differs from the guide's: %v", err)
	}

	const todo = "      // TODO Add code for sending a message to @new_user_phone_number here\n"
	if !strings.Contains(guide, todo) {
		t.Fatal("the guide's TODO line is not in the hook")
	}
	texting := strings.Replace(guide, todo, `      console.log("texting", new_user_phone_number);
      await fetch("`+gw.srv.URL+`/send", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ to: new_user_phone_number, body: "Your account is ready." }) });
`, 1)
	textingID := addScriptHook(t, a, tsForm("text new users", texting, hooks.UserCreated))

	wantStatus(t, a.get("/portal/users/new"), http.StatusOK)
	r := a.post("/portal/users", createForm("phone", "+1 415 555 0123", "manual", "s3cret-Passw0rd", false, true))
	wantStatus(t, r, http.StatusSeeOther)

	waitDeliveries(t, hk, verbatim, 1)
	ds := waitDeliveries(t, hk, textingID, 1)
	got := gw.bodies()
	if len(got) != 1 {
		t.Fatalf("gateway called %d times: %q", len(got), got)
	}
	var sms map[string]string
	if err := json.Unmarshal([]byte(got[0]), &sms); err != nil || sms["to"] != "+14155550123" {
		t.Fatalf("gateway got %q", got[0])
	}
	// The delivery log shows the console output and offers Redeliver.
	show := a.get("/portal/hooks/" + textingID)
	wantStatus(t, show, http.StatusOK)
	wantContains(t, show.Body, "log: texting +14155550123", "/deliveries/"+strconv.FormatInt(ds[0].ID, 10)+"/redeliver", "Delivered")

	// Import fires no user.created: nothing is queued, nothing is called.
	imp := postImport(t, a, token, `{"records": [{"phone_number": "+14155550124", "password": "s3cret-Passw0rd"}]}`)
	if imp.Status != http.StatusOK || imp.Summary["created"] != 1 {
		t.Fatalf("import: %d %s", imp.Status, imp.Raw)
	}
	if n := a.countUsers(); n != 2 {
		t.Fatalf("%d users", n)
	}
	for _, id := range []string{verbatim, textingID} {
		if ds, _ := hk.Deliveries(context.Background(), id, 0, 50); len(ds) != 1 {
			t.Fatalf("hook %s has %d deliveries after the import", id, len(ds))
		}
	}
	if got := gw.bodies(); len(got) != 1 {
		t.Fatalf("gateway called %d times after the import", len(got))
	}
}

// Each limit fails cleanly with a clear message, and the server keeps
// serving: saving a syntax error or a 200 KiB module saves nothing;
// running an endless loop, a runaway allocation, a fetch to a hanging
// server and a throw shows why each failed.
func TestScriptLimitsInPortal(t *testing.T) {
	a, _, _ := newScriptApp(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()

	// Saving.
	wantStatus(t, a.get("/portal/hooks/new/typescript"), http.StatusOK)
	r := a.post("/portal/hooks/typescript", tsForm("broken", "export default function (e) {\n  if (e.type == ) {}\n}\n"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "line 2, column 17", "broken") // the form keeps what was typed
	big := "export default function () {}\n//" + strings.Repeat("x", 200<<10) + "\n"
	r = a.post("/portal/hooks/typescript", tsForm("big", big))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "The code is 201 KiB; a hook can be at most 100 KiB.")
	var n int
	if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM hook_scripts`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d hooks saved from invalid forms (%v)", n, err)
	}

	// Running.
	for _, c := range []struct {
		name, code, timeout, want string
	}{
		{"endless loop", `export default function () { for (;;) {} }`, "1", "The hook did not finish within 1s and was stopped."},
		{"runaway allocation", `export default function () { const a = []; for (;;) a.push([a.length, "x" + a.length]); }`, "60", "The hook used more than 128 MiB of memory and was stopped."},
		{"hanging fetch", `export default async function () { await fetch("` + hang.URL + `"); }`, "1", "The hook did not finish within 1s and was stopped."},
		{"throw", `export default function () { console.warn("giving up"); throw new Error("gateway refused"); }`, "5", "The hook threw: Error: gateway refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := tsForm(c.name, c.code)
			f.Set("timeout", c.timeout)
			id := addScriptHook(t, a, f)
			a.get("/portal/hooks/" + id)
			r := a.post("/portal/hooks/"+id+"/try", nil)
			wantStatus(t, r, http.StatusOK)
			wantContains(t, r.Body, html.EscapeString(c.want), "Sample run")
			if c.name == "throw" {
				wantContains(t, r.Body, "warn: giving up")
			}
			res, err := http.Get(a.srv.URL + "/healthz")
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("server after %s: %v %v", c.name, res, err)
			}
			res.Body.Close()
			wantStatus(t, a.get("/portal/users"), http.StatusOK)
		})
	}
}

// "Run with a sample event" shows the result, the console and the time,
// and writes nothing.
func TestScriptTryShowsResult(t *testing.T) {
	a, _, _ := newScriptApp(t)
	id := addScriptHook(t, a, tsForm("echo", `export default (e: any) => { console.log("hello", e.payload.user.standard_attributes.phone_number); return { type: e.type }; }`, hooks.UserCreated))
	var before int
	_ = a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&before)
	a.get("/portal/hooks/" + id)
	r := a.post("/portal/hooks/"+id+"/try", nil)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "Succeeded", "log: hello +14155550100", html.EscapeString(`"type": "user.created"`), "Time")
	var after int
	_ = a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&after)
	if after != before || a.countUsers() != 0 {
		t.Fatalf("events %d -> %d, %d users", before, after, a.countUsers())
	}
	// Editing: a compile error saves nothing, valid code is saved.
	r = a.post("/portal/hooks/"+id+"/script", tsForm("echo", "export default (", hooks.UserCreated))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "line 1, column")
	r = a.post("/portal/hooks/"+id+"/script", tsForm("echo 2", "export default () => 1;", hooks.UserCreated))
	wantStatus(t, r, http.StatusSeeOther)
	page := a.get("/portal/hooks/" + id)
	wantContains(t, page.Body, "echo 2", "export default () =&gt; 1;")
	list := a.get("/portal/hooks")
	wantContains(t, list.Body, "echo 2", "TypeScript")
}

const blockedHook = `import { HookEvent, HookResponse } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";

export default async function (e: HookEvent): Promise<HookResponse> {
  const email = e.payload.user.standard_attributes.email ?? "";
  if (email.endsWith("@blocked.example")) {
    return { is_allowed: false, title: "Not here", reason: "Addresses at blocked.example cannot have an account." };
  }
  return { is_allowed: true };
}
`

// A blocking TypeScript hook that refuses @blocked.example stops Create
// User in the portal and createUser in the Admin API with its reason, and
// writes nothing.
func TestBlockingScriptStopsPortalAndAPI(t *testing.T) {
	a, _, token := newScriptApp(t)
	f := tsForm("no blocked.example", blockedHook)
	f.Set("kind", "blocking")
	f.Set("timeout", "5")
	addScriptHook(t, a, f)
	var events int
	_ = a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events)

	wantStatus(t, a.get("/portal/users/new"), http.StatusOK)
	r := a.post("/portal/users", createForm("email", "eve@blocked.example", "manual", "s3cret-Passw0rd", false, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Not here: Addresses at blocked.example cannot have an account.")

	body, _ := json.Marshal(map[string]any{"query": `mutation { createUser(input: {definition: {loginID: {key: "email", value: "mallory@blocked.example"}}, password: "s3cret-Passw0rd"}) { user { id } } }`})
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	err = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if err != nil || len(out.Errors) != 1 {
		t.Fatalf("answer %+v (%v)", out, err)
	}
	e := out.Errors[0]
	reasons, _ := e.Extensions["info"].(map[string]any)["reasons"].([]any)
	if e.Message != "Not here: Addresses at blocked.example cannot have an account." || e.Extensions["errorName"] != "Forbidden" ||
		e.Extensions["reason"] != hooks.ReasonDisallowed || len(reasons) != 1 {
		t.Fatalf("error %+v", e)
	}

	if n := a.countUsers(); n != 0 {
		t.Fatalf("%d users after two refusals", n)
	}
	var after, deliveries int
	_ = a.store.Direct().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&after)
	_ = a.store.Direct().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&deliveries)
	if after != events || deliveries != 0 {
		t.Fatalf("events %d -> %d, %d deliveries after refusals", events, after, deliveries)
	}
	// Anyone else gets in.
	wantStatus(t, a.get("/portal/users/new"), http.StatusOK)
	wantStatus(t, a.post("/portal/users", createForm("email", "ok@example.com", "manual", "s3cret-Passw0rd", false, true)), http.StatusSeeOther)
}
