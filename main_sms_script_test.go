package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// smsReceiver is an SMS provider's API as a custom SMS script would call
// it: it keeps every {to, body} posted to it.
type smsReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []map[string]string
}

func startSMSReceiver(t *testing.T) *smsReceiver {
	r := &smsReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		var m map[string]string
		if req.Method != http.MethodPost || req.Header.Get("Authorization") != "Bearer provider-key" || json.NewDecoder(req.Body).Decode(&m) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, m)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sid":"SM1"}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *smsReceiver) messages() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.got...)
}

// smsScript is a custom SMS script as an admin would write it: the
// reference's CustomSMSGatewayPayload in, a fetch to the provider's API,
// a throw when the provider does not accept the text.
func smsScript(receiver string) string {
	return `import { CustomSMSGatewayPayload } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";

export default async function (payload: CustomSMSGatewayPayload): Promise<void> {
  const res = await fetch("` + receiver + `", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer provider-key" },
    body: JSON.stringify({ to: payload.to, body: payload.body, template: payload.template_name }),
  });
  if (!res.ok) {
    throw new Error("the SMS provider answered " + res.status + ": " + (await res.text()));
  }
}
`
}

// TestSMSScriptProviderFromPortal: LATCHKEY_SMS_URL=script://sms-gateway
// names a TypeScript hook that does not exist yet; the admin first saves a
// version with a syntax error (refused, with line and column, nothing
// saved), then the working script, disabled so it gets no events. Creating
// a phone user with a generated password sends exactly one text through
// the script's fetch, with the password that signs in.
func TestSMSScriptProviderFromPortal(t *testing.T) {
	recv := startSMSReceiver(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMS_URL": "script://sms-gateway"})
	p := newPortalClient(t, app.URL)
	p.signIn()

	p.get("/portal/hooks/new/typescript")
	bad := strings.Replace(smsScript(recv.URL), "if (!res.ok) {", "if (!res.ok {", 1)
	code, body, _ := p.post("/portal/hooks/typescript", url.Values{"name": {"sms-gateway"}, "code": {bad}, "events_mode": {"chosen"},
		"events": {"user.created"}, "timeout": {"20"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "line 9, column 15") {
		t.Fatalf("syntax error: %d, want 422 naming line 9, column 15; body has %q", code, firstMatch(body, `(?s)Line[^<]{0,80}|line[^<]{0,80}`))
	}
	if _, list, _ := p.get("/portal/hooks"); strings.Contains(list, "sms-gateway") {
		t.Fatal("the hook with a syntax error was saved")
	}
	code, _, loc := p.post("/portal/hooks/typescript", url.Values{"name": {"sms-gateway"}, "code": {smsScript(recv.URL)}, "events_mode": {"chosen"},
		"events": {"user.created"}, "timeout": {"20"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/portal/hooks/") {
		t.Fatalf("save the SMS script: %d %q", code, loc)
	}

	const phone = "+14155550166"
	p.get("/portal/users/new")
	if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"phone"}, "loginID": {phone}, "passwordMode": {"auto"},
		"setPasswordExpired": {"true"}}); code != http.StatusSeeOther {
		t.Fatalf("create user: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(recv.messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the SMS script sent nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := recv.messages()[0]
	if m["to"] != phone || m["template"] != "new_user_sms.txt" {
		t.Fatalf("text %v", m)
	}
	pw := regexp.MustCompile(`password: (\S+?)(?:\s|$)`).FindStringSubmatch(m["body"])
	if pw == nil || !strings.Contains(m["body"], phone) {
		t.Fatalf("no password for %s in %q", phone, m["body"])
	}
	wantStoredPassword(t, app, phone, pw[1])
	time.Sleep(500 * time.Millisecond) // a second send, or an event delivered to the disabled hook, would show by now
	if n := len(recv.messages()); n != 1 {
		t.Fatalf("%d requests reached the provider, want exactly 1", n)
	}

	// "Run with a sample event" on this hook runs it with a sample text
	// ({to, body, ...}), not a user.created event, and its fetch goes out.
	p.get(loc)
	code, body, _ = p.post(loc+"/try", url.Values{})
	if code != http.StatusOK || !strings.Contains(body, "Sample text (CustomSMSGatewayPayload)") || !strings.Contains(body, "Succeeded") ||
		!strings.Contains(body, html.EscapeString(`"to": "+14155550100"`)) || strings.Contains(body, html.EscapeString(`"type": "user.created"`)) {
		t.Fatalf("sample run of the SMS script: %d %q", code, firstMatch(body, `(?s)<section class="card stack" id="try-result">.*?</section>`))
	}
	if ms := recv.messages(); len(ms) != 2 || ms[1]["to"] != "+14155550100" || ms[1]["template"] != "new_user_sms.txt" {
		t.Fatalf("the sample text did not reach the provider as a text: %v", ms)
	}
}

func firstMatch(s, re string) string { return regexp.MustCompile(re).FindString(s) }
