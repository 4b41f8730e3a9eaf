package script

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func guideHook(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/guide_hook.ts")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The test copy of the guide's hook is the guide's text: when the guide is
// beside the repository (../shared/reference, as in CI), the lines from its
// import to the end of the function, plus the one closing brace the page
// lost, must be the test copy exactly.
func TestGuideCopyIsVerbatim(t *testing.T) {
	var guide []byte
	for _, p := range []string{"../../shared/reference/000_1c957d4f3438a140.txt", "../../../shared/reference/000_1c957d4f3438a140.txt"} {
		if b, err := os.ReadFile(p); err == nil {
			guide = b
			break
		}
	}
	if guide == nil {
		t.Skip("the guide is not beside the repository; testdata/guide_hook.ts is used as is")
	}
	text := string(guide)
	start := strings.Index(text, `import { HookEvent } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";`)
	end := strings.Index(text, "The message you send to new users")
	if start < 0 || end < start {
		t.Fatal("the guide's hook was not found in the guide")
	}
	want := strings.TrimRight(text[start:end], "\n") + "\n}\n"
	if got := guideHook(t); got != want {
		t.Fatalf("testdata/guide_hook.ts differs from the guide:\n%q\nwant\n%q", got, want)
	}
	if Example() != want {
		t.Fatal("example.ts (the new hook's starting code) differs from the guide")
	}
}

func mustCompile(t *testing.T, src string) *Compiled {
	t.Helper()
	c, err := Compile(src)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

func newEngine(t *testing.T, lim Limits) *Engine {
	t.Helper()
	e := NewEngine(nil, lim)
	t.Cleanup(e.Close)
	return e
}

const createdEvent = `{"id":"0000000000000001","seq":1,"type":"user.created","payload":{"user":{"id":"u1","standard_attributes":{"phone_number":"+14155550100"}}},"context":{"triggered_by":"admin_api","timestamp":1}}`

// The guide's hook, as printed (plus the closing brace the page lost),
// compiles with no network and runs without error.
func TestGuideHookCompilesAndRuns(t *testing.T) {
	src := guideHook(t)
	if !strings.Contains(src, `import { HookEvent } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";`) {
		t.Fatal("testdata is not the guide's hook")
	}
	c := mustCompile(t, src)
	if strings.Contains(c.JS, "deno.land") || strings.Contains(c.JS, "HookEvent") {
		t.Fatalf("the type-only import left code behind:\n%s", c.JS)
	}
	e := newEngine(t, Limits{})
	if err := e.Check(context.Background(), c); err != nil {
		t.Fatalf("check: %v", err)
	}
	res, err := e.Run(context.Background(), c, json.RawMessage(createdEvent), 5*time.Second)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Value != nil {
		t.Fatalf("value = %s, want none", res.Value)
	}
}

// The shipped types resolve: a hook that imports them by name and type
// checks nothing at run time still compiles, and importing anything else
// does not.
func TestImports(t *testing.T) {
	ok := `import type { HookEvent, HookResponse, EventUserCreated, CustomSMSGatewayPayload } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";
export default function (e: HookEvent): HookResponse { const p: CustomSMSGatewayPayload | null = null; const c = e as EventUserCreated; return { is_allowed: true }; }`
	mustCompile(t, ok)
	for _, src := range []string{
		`import { x } from "https://deno.land/std/mod.ts"; export default function () { return x; }`,
		`import fs from "node:fs"; export default function () { return fs.readFileSync("/etc/passwd"); }`,
		`import { y } from "./other.ts"; export default function () { return y; }`,
	} {
		_, err := Compile(src)
		var ce *CompileError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "cannot import") {
			t.Errorf("compile(%q) = %v, want a cannot-import error", src, err)
		}
	}
}

func TestSyntaxErrorHasLineAndColumn(t *testing.T) {
	src := "export default function (e: any) {\n  const x = ;\n}\n"
	_, err := Compile(src)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CompileError", err)
	}
	if ce.Line != 2 || ce.Column != 13 {
		t.Fatalf("at %d:%d (%q), want 2:13", ce.Line, ce.Column, ce.Message)
	}
	if !strings.Contains(ce.Error(), "line 2, column 13") {
		t.Fatalf("message %q does not say where", ce.Error())
	}
}

func TestModuleTooLarge(t *testing.T) {
	src := "export default function () {}\n// " + strings.Repeat("x", 200<<10) + "\n"
	_, err := Compile(src)
	var ce *CompileError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "at most 100 KiB") {
		t.Fatalf("err = %v, want a too-large error", err)
	}
	// Exactly at the limit is fine.
	ok := "export default function () {}\n//" + strings.Repeat("x", MaxSource-len("export default function () {}\n//")-1) + "\n"
	if len(ok) != MaxSource {
		t.Fatalf("test module is %d bytes", len(ok))
	}
	mustCompile(t, ok)
}

func TestNoDefaultExport(t *testing.T) {
	c := mustCompile(t, "export const x = 1;")
	err := newEngine(t, Limits{}).Check(context.Background(), c)
	var re *RunError
	if !errors.As(err, &re) || re.Kind != ErrInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
}

// expectRunError runs src and checks the run failed with kind and a
// message containing want; then the same engine still runs a trivial hook.
func expectRunError(t *testing.T, e *Engine, src string, timeout time.Duration, kind, want string) *Result {
	t.Helper()
	res, err := e.Run(context.Background(), mustCompile(t, src), json.RawMessage(createdEvent), timeout)
	var re *RunError
	if !errors.As(err, &re) || re.Kind != kind || !strings.Contains(re.Message, want) {
		t.Fatalf("err = %#v, want kind %q with %q", err, kind, want)
	}
	ok, err := e.Run(context.Background(), mustCompile(t, `export default () => ({ is_allowed: true })`), nil, time.Second)
	if err != nil || string(ok.Value) != `{"is_allowed":true}` {
		t.Fatalf("after the failure the engine answered %v, %v", ok, err)
	}
	return res
}

func TestEndlessLoopTimesOut(t *testing.T) {
	e := newEngine(t, Limits{})
	start := time.Now()
	expectRunError(t, e, `export default function () { while (true) {} }`, 300*time.Millisecond, ErrTimeout, "did not finish within 300ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s to stop", d)
	}
	// An async loop that keeps yielding to timers is stopped too.
	expectRunError(t, e, `export default async function () { for (;;) { await new Promise(r => setTimeout(r, 1)); } }`, 300*time.Millisecond, ErrTimeout, "did not finish")
}

// A long call inside a built-in (which goja's Interrupt cannot stop) is
// still stopped: the worker is killed.
func TestLongBuiltinKilled(t *testing.T) {
	e := newEngine(t, Limits{Memory: 2 << 30})
	expectRunError(t, e, `export default function () { const a = []; for (let i = 0; i < 3000000; i++) a.push(i); for (;;) a.sort((x, y) => 0); }`,
		200*time.Millisecond, ErrTimeout, "did not finish")
}

func TestRunawayAllocationStopped(t *testing.T) {
	e := newEngine(t, Limits{Memory: 64 << 20})
	expectRunError(t, e, `export default function () { const a = []; for (;;) a.push({ n: a.length, s: "x" + a.length }); }`,
		20*time.Second, ErrMemory, "more than 64 MiB")
	expectRunError(t, e, `export default function () { let s = "xy"; const keep = []; for (;;) { s = s + s; keep.push(s); } }`,
		20*time.Second, ErrMemory, "more than 64 MiB")
}

func TestHugeSingleAllocationStopped(t *testing.T) {
	if raceEnabled {
		t.Skip("RLIMIT_AS is not set under the race detector")
	}
	e := newEngine(t, Limits{Memory: 64 << 20})
	expectRunError(t, e, `export default function () { return new ArrayBuffer(8 * 1024 * 1024 * 1024).byteLength; }`,
		20*time.Second, ErrMemory, "memory")
}

func TestThrowIsReported(t *testing.T) {
	e := newEngine(t, Limits{})
	res := expectRunError(t, e, `export default async function () { console.log("before"); throw new Error("no SMS today"); }`,
		time.Second, ErrThrown, "Error: no SMS today")
	if len(res.Console) != 1 || res.Console[0] != "log: before" {
		t.Fatalf("console = %q", res.Console)
	}
	expectRunError(t, e, `export default function () { return new Promise(() => {}); }`, time.Second, ErrThrown, "never settled")
	expectRunError(t, e, `export default function () { setTimeout(() => { throw new TypeError("late"); }, 1); return new Promise(r => setTimeout(r, 50)); }`,
		time.Second, ErrThrown, "TypeError: late")
	expectRunError(t, e, `function f(n) { return f(n + 1); } export default function () { f(0); }`, time.Second, ErrThrown, "call stack")
}

func TestFetchToHangingServerFails(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	e := newEngine(t, Limits{FetchTimeout: 300 * time.Millisecond})
	expectRunError(t, e, `export default async function () { await fetch("`+srv.URL+`"); }`, 5*time.Second, ErrThrown, "no answer within 300ms")
	// Without a fetch timeout shorter than the hook's, the hook's own limit stops it.
	e2 := newEngine(t, Limits{FetchTimeout: time.Minute})
	expectRunError(t, e2, `export default async function () { await fetch("`+srv.URL+`"); }`, 300*time.Millisecond, ErrTimeout, "did not finish")
}

func TestFetchResponseCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("a", 2<<20)))
	}))
	defer srv.Close()
	e := newEngine(t, Limits{})
	expectRunError(t, e, `export default async function () { const r = await fetch("`+srv.URL+`"); return (await r.text()).length; }`,
		5*time.Second, ErrThrown, "larger than 1024 KiB")
}

// fetch sends method, headers and body and reads status, headers and JSON;
// console, crypto, TextEncoder, URL and setTimeout work.
func TestRuntimeAPIs(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type") + " " + string(b))
		w.Header().Set("X-Reply", "yes")
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"sid":"SM1"}`))
	}))
	defer srv.Close()
	src := `
export default async function (e: any) {
  const u = new URL("/send?x=1", "` + srv.URL + `");
  u.searchParams.set("to", e.payload.user.standard_attributes.phone_number);
  const res = await fetch(u, { method: "post", headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
    body: JSON.stringify({ hello: "wörld" }) });
  const data = await res.json();
  console.log("sent", data);
  console.warn({ n: 1 });
  console.error("oops");
  await new Promise((r) => setTimeout(r, 10));
  const id = crypto.randomUUID();
  const bytes = new TextEncoder().encode("é");
  return { status: res.status, ok: res.ok, reply: res.headers.get("x-reply"), sid: data.sid,
    uuid: /^[0-9a-f-]{36}$/.test(id), bytes: Array.from(bytes), back: new TextDecoder().decode(bytes),
    host: u.host.startsWith("127.0.0.1:"), search: u.search };
}`
	e := newEngine(t, Limits{})
	res, err := e.Run(context.Background(), mustCompile(t, src), json.RawMessage(createdEvent), 5*time.Second)
	if err != nil {
		t.Fatalf("run: %v (console %q)", err, res.Console)
	}
	var v map[string]any
	if err := json.Unmarshal(res.Value, &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": 201.0, "ok": true, "reply": "yes", "sid": "SM1", "uuid": true, "back": "é", "host": true,
		"search": "?x=1&to=%2B14155550100"}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v", k, v[k], w)
		}
	}
	if b, _ := json.Marshal(v["bytes"]); string(b) != "[195,169]" {
		t.Errorf("bytes = %s", b)
	}
	if g, _ := got.Load().(string); g != `POST /send?x=1&to=%2B14155550100 Bearer t application/json {"hello":"wörld"}` {
		t.Errorf("receiver got %q", g)
	}
	wantConsole := []string{`log: sent {"sid":"SM1"}`, `warn: {"n":1}`, `error: oops`}
	if strings.Join(res.Console, "\n") != strings.Join(wantConsole, "\n") {
		t.Errorf("console = %q, want %q", res.Console, wantConsole)
	}
}

// A hook sees no environment, no file system and no Node or Deno APIs.
func TestNoAmbientAuthority(t *testing.T) {
	t.Setenv("LATCHKEY_SECRET_KEY", "do-not-leak")
	src := `export default function () { return [typeof process, typeof Deno, typeof globalThis.require, typeof __lk, typeof os, typeof globalThis.fs]; }`
	res, err := newEngine(t, Limits{}).Run(context.Background(), mustCompile(t, src), nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Value) != `["undefined","undefined","undefined","undefined","undefined","undefined"]` {
		t.Fatalf("globals = %s", res.Value)
	}
}

func TestConsoleCapped(t *testing.T) {
	res, err := newEngine(t, Limits{}).Run(context.Background(), mustCompile(t, `export default function () { for (let i = 0; i < 100000; i++) console.log("line " + i); }`), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range res.Console {
		n += len(l)
	}
	if n > 65<<10 || res.Console[len(res.Console)-1] != "(console output cut at 64 KiB)" {
		t.Fatalf("console is %d bytes, last line %q", n, res.Console[len(res.Console)-1])
	}
}

func TestRunSMS(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	defer srv.Close()
	e := newEngine(t, Limits{})
	ok := mustCompile(t, `import { CustomSMSGatewayPayload } from "https://deno.land/x/authgear_deno_hook@v1.3.0/mod.ts";
export default async function (p: CustomSMSGatewayPayload) {
  await fetch("`+srv.URL+`", { method: "POST", body: JSON.stringify({ to: p.to, text: p.body }) });
}`)
	if err := e.RunSMSWithin(context.Background(), ok, SMSPayload{To: "+14155550100", Body: "Your code is 123456"}, SMSTimeout); err != nil {
		t.Fatal(err)
	}
	if g, _ := got.Load().(string); g != `{"to":"+14155550100","text":"Your code is 123456"}` {
		t.Fatalf("gateway got %q", g)
	}
	if err := e.RunSMSWithin(context.Background(), mustCompile(t, `export default () => { throw new Error("gateway down"); }`), SMSPayload{To: "x"}, SMSTimeout); err == nil || !strings.Contains(err.Error(), "gateway down") {
		t.Fatalf("throw: err = %v", err)
	}
	if err := e.RunSMSWithin(context.Background(), mustCompile(t, `export default () => ({ code: "rate_limited" })`), SMSPayload{To: "x"}, SMSTimeout); err == nil || !strings.Contains(err.Error(), "rate_limited") {
		t.Fatalf("code: err = %v", err)
	}
}

// Runs in parallel use several workers; a slow hook does not hold up others.
func TestConcurrentRuns(t *testing.T) {
	e := newEngine(t, Limits{})
	slow := mustCompile(t, `export default () => new Promise(r => setTimeout(r, 1500))`)
	fast := mustCompile(t, `export default (e: any) => e.n * 2`)
	done := make(chan error, 1)
	go func() { _, err := e.Run(context.Background(), slow, nil, 5*time.Second); done <- err }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	for i := 0; i < 5; i++ {
		res, err := e.Run(context.Background(), fast, json.RawMessage(`{"n":21}`), time.Second)
		if err != nil || string(res.Value) != "42" {
			t.Fatalf("fast run: %s, %v", res.Value, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("fast runs waited %s behind the slow one", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// refusing is an outbound policy: it refuses every request, as the
// webhook client refuses a private address.
type refusing struct{ hits atomic.Int64 }

func (r *refusing) RoundTrip(req *http.Request) (*http.Response, error) {
	r.hits.Add(1)
	return nil, errors.New("outbound policy: " + req.URL.Host + " is not allowed")
}

// fetch goes through the client the engine was given, and only through it.
func TestFetchUsesCallersClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("the request bypassed the client") }))
	defer srv.Close()
	pol := &refusing{}
	e := NewEngine(&http.Client{Transport: pol}, Limits{})
	t.Cleanup(e.Close)
	expectRunError(t, e, `export default async function () { await fetch("`+srv.URL+`/x"); }`, 5*time.Second, ErrThrown,
		"outbound policy: "+strings.TrimPrefix(srv.URL, "http://")+" is not allowed")
	if pol.hits.Load() != 1 {
		t.Fatalf("policy saw %d requests", pol.hits.Load())
	}
}

// More distinct hooks than a worker caches still run: the worker asks for
// code it has dropped.
func TestManyHooksOneWorker(t *testing.T) {
	e := newEngine(t, Limits{Workers: 1, MaxIdle: 1})
	var cs []*Compiled
	for i := range 70 {
		cs = append(cs, mustCompile(t, "export default () => "+strconv.Itoa(i)+";"))
	}
	for round := range 2 {
		for i, c := range cs {
			res, err := e.Run(context.Background(), c, nil, 5*time.Second)
			if err != nil || string(res.Value) != strconv.Itoa(i) {
				t.Fatalf("round %d hook %d: %s, %v", round, i, res.Value, err)
			}
		}
	}
}

// A worker that lacks a program the engine thinks it has asks for it.
func TestWorkerAsksForMissingCode(t *testing.T) {
	e := newEngine(t, Limits{Workers: 1, MaxIdle: 1})
	if _, err := e.Run(context.Background(), mustCompile(t, "export default () => 1;"), nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c := mustCompile(t, "export default () => 2;")
	e.mu.Lock()
	e.idle[0].seen[c.Key] = true // the worker has never seen it
	e.mu.Unlock()
	res, err := e.Run(context.Background(), c, nil, 5*time.Second)
	if err != nil || string(res.Value) != "2" {
		t.Fatalf("%s, %v", res.Value, err)
	}
}

func TestWarm(t *testing.T) {
	e := newEngine(t, Limits{})
	if err := e.Warm(); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	n := len(e.idle)
	e.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d idle workers after Warm", n)
	}
	start := time.Now()
	if _, err := e.Run(context.Background(), mustCompile(t, "export default () => 1"), nil, time.Second); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	n = len(e.idle)
	e.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d idle workers after a run on the warm one (took %s)", n, time.Since(start))
	}
}

// While one hook allocates without bound and another loops forever, other
// hooks keep running, and the server process's own heap does not grow: the
// runaway memory is the worker's.
func TestRunawayHooksLeaveServerAndOthersAlone(t *testing.T) {
	e := newEngine(t, Limits{Memory: 96 << 20})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	errs := make(chan error, 2)
	go func() {
		_, err := e.Run(context.Background(), mustCompile(t, `export default function () { const a = []; for (;;) a.push({ n: a.length, s: "x" + a.length }); }`), nil, 20*time.Second)
		errs <- err
	}()
	go func() {
		_, err := e.Run(context.Background(), mustCompile(t, `export default function () { for (;;) {} }`), nil, 2*time.Second)
		errs <- err
	}()
	trivial := mustCompile(t, `export default (e: any) => e.n + 1`)
	var maxHeap uint64
	for i := 0; i < 20; i++ {
		res, err := e.Run(context.Background(), trivial, json.RawMessage(`{"n":1}`), time.Second)
		if err != nil || string(res.Value) != "2" {
			t.Fatalf("run %d beside the runaways: %s, %v", i, res.Value, err)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		maxHeap = max(maxHeap, m.HeapAlloc)
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		var re *RunError
		if err := <-errs; !errors.As(err, &re) || (re.Kind != ErrMemory && re.Kind != ErrTimeout) {
			t.Fatalf("runaway ended with %v", err)
		}
	}
	if grew := int64(maxHeap) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Fatalf("the server's heap grew by %d MiB while hooks ran away", grew>>20)
	}
}
