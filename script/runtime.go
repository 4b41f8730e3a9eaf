package script

import (
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/google/uuid"
)

//go:embed prelude.js
var preludeJS string

var preludeProgram = goja.MustCompile("prelude.js", preludeJS, false)

// Per-run caps inside the worker.
const (
	maxConsole     = 64 << 10 // bytes of console output kept per run
	maxResult      = 64 << 10 // bytes of the JSON result
	maxRequestBody = 1 << 20  // bytes a hook may send in one fetch
	maxFetches     = 50       // fetch calls per run
	maxTimers      = 1000     // timers set per run
	maxCallStack   = 2000     // call depth before a RangeError
)

// interruption is what Interrupt carries, so the run knows why it stopped.
type interruption struct{ kind, msg string }

// run is one hook run inside the worker: a fresh goja runtime (nothing
// survives from one run to the next), its timers and fetches, and the
// event loop that waits for them.
type run struct {
	vm      *goja.Runtime
	send    func(message)
	inbox   <-chan message
	jobs    chan func()
	pending int // timers and fetches not yet done
	fetches map[int64]func(message)
	timers  map[int64]*time.Timer
	nextID  *int64
	nFetch  int
	nTimer  int

	console   []string
	consoleN  int
	truncated bool

	fatal      error // an uncaught error in a timer callback
	installErr error
}

// newRun makes a fresh runtime with the globals installed. The worker
// makes the next one while it waits, so a run does not pay for it.
func newRun(send func(message), inbox <-chan message, ids *int64) *run {
	vm := goja.New()
	vm.SetMaxCallStackSize(maxCallStack)
	r := &run{vm: vm, send: send, inbox: inbox, jobs: make(chan func(), 64), fetches: map[int64]func(message){},
		timers: map[int64]*time.Timer{}, nextID: ids}
	r.installErr = r.install()
	return r
}

func (r *run) log(level string, args []goja.Value) {
	if r.truncated {
		return
	}
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, r.format(a))
	}
	line := level + ": " + strings.Join(parts, " ")
	if r.consoleN+len(line) > maxConsole {
		r.console = append(r.console, "(console output cut at 64 KiB)")
		r.truncated = true
		return
	}
	r.consoleN += len(line)
	r.console = append(r.console, line)
}

func (r *run) format(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if o, ok := v.(*goja.Object); ok {
		if _, isFn := goja.AssertFunction(o); isFn {
			return "[Function]"
		}
		if o.ClassName() == "Error" {
			return o.String()
		}
		if b, err := o.MarshalJSON(); err == nil {
			if len(b) > maxConsole {
				b = b[:maxConsole]
			}
			return string(b)
		}
	}
	return v.String()
}

func (r *run) typeError(format string, a ...any) *goja.Object {
	return r.vm.NewTypeError(fmt.Sprintf(format, a...))
}

// install puts the runtime's globals in place: console, fetch, timers,
// crypto, TextEncoder/TextDecoder, URL, URLSearchParams, Headers.
func (r *run) install() error {
	vm := r.vm
	lk := vm.NewObject()
	console := vm.NewObject()
	for _, level := range []string{"log", "info", "debug", "warn", "error"} {
		name := level
		if level == "info" || level == "debug" {
			name = "log"
		}
		_ = console.Set(level, func(c goja.FunctionCall) goja.Value { r.log(name, c.Arguments); return goja.Undefined() })
	}
	set := func(name string, v any) { _ = lk.Set(name, v) }
	set("console", console)
	set("utf8encode", func(s string) goja.ArrayBuffer { return vm.NewArrayBuffer([]byte(s)) })
	set("utf8decode", func(v goja.Value) string {
		b := r.bytesOf(v)
		if b == nil {
			panic(r.typeError("TextDecoder.decode takes an ArrayBuffer or a typed array."))
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	})
	set("randomUUID", uuid.NewString)
	set("randomFill", func(v goja.Value) {
		b := r.bytesOf(v)
		if b == nil || len(b) > 65536 {
			panic(r.typeError("crypto.getRandomValues takes a typed array of at most 65536 bytes."))
		}
		_, _ = rand.Read(b)
	})
	set("parseURL", func(raw, base string) map[string]any {
		u, err := parseURL(raw, base)
		if err != nil {
			panic(r.typeError("Invalid URL: %s", raw))
		}
		return u
	})
	set("timer", r.setTimer)
	set("clearTimer", r.clearTimer)
	set("fetch", r.fetch)
	if err := vm.Set("__lk", lk); err != nil {
		return err
	}
	_, err := vm.RunProgram(preludeProgram)
	return err
}

// bytesOf returns the bytes behind an ArrayBuffer or a typed array (shared,
// not copied), or nil.
func (r *run) bytesOf(v goja.Value) []byte {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	switch x := v.Export().(type) {
	case goja.ArrayBuffer:
		return x.Bytes()
	case []byte:
		return x
	}
	return nil
}

func parseURL(raw, base string) (map[string]any, error) {
	var u *url.URL
	var err error
	if base != "" {
		b, err := url.Parse(base)
		if err != nil || b.Scheme == "" {
			return nil, errors.New("bad base")
		}
		ref, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		u = b.ResolveReference(ref)
	} else {
		u, err = url.Parse(raw)
		if err != nil {
			return nil, err
		}
	}
	if u.Scheme == "" {
		return nil, errors.New("no scheme")
	}
	out := map[string]any{"protocol": u.Scheme + ":", "username": u.User.Username(), "hostname": u.Hostname(), "port": u.Port(),
		"pathname": u.EscapedPath(), "search": "", "hash": "", "opaque": u.Opaque}
	if p, ok := u.User.Password(); ok {
		out["password"] = p
	} else {
		out["password"] = ""
	}
	if u.RawQuery != "" || u.ForceQuery {
		out["search"] = "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out["hash"] = "#" + u.EscapedFragment()
	}
	if u.Opaque == "" && out["pathname"] == "" && u.Host != "" {
		out["pathname"] = "/"
	}
	return out, nil
}

func (r *run) newID() int64 { *r.nextID++; return *r.nextID }

func (r *run) setTimer(fn goja.Value, ms float64, args []goja.Value, repeat bool) int64 {
	call, ok := goja.AssertFunction(fn)
	if !ok {
		panic(r.typeError("setTimeout takes a function."))
	}
	r.nTimer++
	if r.nTimer > maxTimers {
		panic(r.typeError("A hook can set at most %d timers.", maxTimers))
	}
	if ms != ms || ms < 0 { // NaN or negative
		ms = 0
	}
	d := time.Duration(ms * float64(time.Millisecond))
	if repeat && d < time.Millisecond {
		d = time.Millisecond
	}
	id := r.newID()
	r.pending++
	var fire func()
	fire = func() {
		if _, live := r.timers[id]; !live {
			return
		}
		if repeat {
			r.nTimer++
			if r.nTimer > maxTimers {
				r.fatal = errors.New("a hook can set at most 1000 timers (setInterval counts each tick)")
				return
			}
			r.timers[id] = time.AfterFunc(d, func() { r.jobs <- fire })
		} else {
			delete(r.timers, id)
			r.pending--
		}
		if _, err := call(goja.Undefined(), args...); err != nil && r.fatal == nil {
			r.fatal = err
		}
	}
	r.timers[id] = time.AfterFunc(d, func() { r.jobs <- fire })
	return id
}

func (r *run) clearTimer(id int64) {
	if t, ok := r.timers[id]; ok {
		t.Stop()
		delete(r.timers, id)
		r.pending--
	}
}

func (r *run) fetch(rawURL, method string, headers map[string]string, body goja.Value) *goja.Promise {
	p, resolve, reject := r.vm.NewPromise()
	r.nFetch++
	if r.nFetch > maxFetches {
		_ = reject(r.typeError("A hook can call fetch at most %d times in one run.", maxFetches))
		return p
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		_ = reject(r.typeError("fetch: %q is not an absolute http:// or https:// URL.", rawURL))
		return p
	}
	var b []byte
	if body != nil && !goja.IsNull(body) && !goja.IsUndefined(body) {
		if bb := r.bytesOf(body); bb != nil {
			b = append([]byte{}, bb...)
		} else {
			b = []byte(body.String())
		}
	}
	if len(b) > maxRequestBody {
		_ = reject(r.typeError("fetch: the request body is larger than 1 MiB."))
		return p
	}
	id := r.newID()
	r.pending++
	r.fetches[id] = func(m message) {
		if m.Err != "" {
			if err := reject(r.typeError("fetch %s: %s", rawURL, m.Err)); err != nil {
				r.fatal = err
			}
			return
		}
		res := r.vm.NewObject()
		_ = res.Set("status", m.Status)
		_ = res.Set("statusText", m.StatusText)
		_ = res.Set("url", rawURL)
		h := r.vm.NewObject()
		for k, v := range m.Headers {
			_ = h.Set(k, v)
		}
		_ = res.Set("headers", h)
		_ = res.Set("body", r.vm.NewArrayBuffer(m.Body))
		if err := resolve(res); err != nil {
			r.fatal = err
		}
	}
	r.send(message{T: msgFetch, FID: id, Method: method, URL: rawURL, Headers: headers, Body: b})
	return p
}

// execute runs prog and calls its default export with the input, waiting
// for the promise it returns, for at most timeout. check only loads the
// module and checks that its default export is a function.
func (r *run) execute(prog *goja.Program, input json.RawMessage, timeout time.Duration, check bool) message {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	stop := time.AfterFunc(timeout, func() { r.vm.Interrupt(interruption{ErrTimeout, ""}) })
	defer stop.Stop()
	defer func() {
		for _, t := range r.timers {
			t.Stop()
		}
	}()

	done := func(kind, msg string) message {
		return message{T: msgDone, ErrKind: kind, Err: msg, Console: r.console}
	}
	fail := func(err error) message {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			if in, ok := ie.Value().(interruption); ok {
				return done(in.kind, in.msg)
			}
		}
		var so *goja.StackOverflowError
		if errors.As(err, &so) {
			return done(ErrThrown, "RangeError: Maximum call stack size exceeded")
		}
		var ex *goja.Exception
		if errors.As(err, &ex) {
			return done(ErrThrown, describe(ex.Value()))
		}
		return done(ErrThrown, err.Error())
	}

	if r.installErr != nil {
		return fail(r.installErr)
	}
	if _, err := r.vm.RunProgram(prog); err != nil {
		return fail(err)
	}
	exports := r.vm.Get(globalName)
	var def goja.Callable
	if o, ok := exports.(*goja.Object); ok {
		def, _ = goja.AssertFunction(o.Get("default"))
	}
	if def == nil {
		return done(ErrInvalid, "The module has no default export function: write `export default async function (e) { ... }`.")
	}
	if check {
		return done("", "")
	}
	parse, _ := goja.AssertFunction(r.vm.Get("JSON").(*goja.Object).Get("parse"))
	ev, err := parse(goja.Undefined(), r.vm.ToValue(string(input)))
	if err != nil {
		return fail(err)
	}
	ret, err := def(goja.Undefined(), ev)
	if err != nil {
		return fail(err)
	}
	if r.fatal != nil {
		return fail(r.fatal)
	}
	if p, ok := ret.Export().(*goja.Promise); ok {
		for p.State() == goja.PromiseStatePending {
			if r.fatal != nil {
				return fail(r.fatal)
			}
			if r.pending == 0 {
				return done(ErrThrown, "The hook's promise never settled: it awaits something that never happens.")
			}
			select {
			case m, ok := <-r.inbox:
				if !ok {
					return done(ErrCrashed, "engine gone")
				}
				if m.T == msgFetchRes {
					if cb, live := r.fetches[m.FID]; live {
						delete(r.fetches, m.FID)
						r.pending--
						cb(m)
					}
				}
			case job := <-r.jobs:
				job()
			case <-deadline.C:
				return done(ErrTimeout, "")
			}
		}
		if r.fatal != nil {
			return fail(r.fatal)
		}
		if p.State() == goja.PromiseStateRejected {
			return done(ErrThrown, describe(p.Result()))
		}
		ret = p.Result()
	}
	out := message{T: msgDone, Console: r.console}
	if ret == nil || goja.IsUndefined(ret) {
		return out
	}
	stringify, _ := goja.AssertFunction(r.vm.Get("JSON").(*goja.Object).Get("stringify"))
	s, err := stringify(goja.Undefined(), ret)
	if err != nil {
		return done(ErrOutput, "The hook's result could not be turned into JSON: "+describeErr(err))
	}
	if goja.IsUndefined(s) {
		return out
	}
	if str := s.String(); len(str) > maxResult {
		return done(ErrOutput, fmt.Sprintf("The hook's result is %d KiB of JSON; at most 64 KiB is allowed.", len(str)>>10))
	} else {
		out.Value = json.RawMessage(str)
	}
	return out
}

func describeErr(err error) string {
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return describe(ex.Value())
	}
	return err.Error()
}

// describe says what was thrown: "Error: message" for an Error, the value
// otherwise.
func describe(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined was thrown"
	}
	s := v.String()
	if o, ok := v.(*goja.Object); ok && o.ClassName() != "Error" {
		if b, err := o.MarshalJSON(); err == nil {
			s = string(b)
		}
	}
	if len(s) > 2000 {
		s = s[:2000]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}
