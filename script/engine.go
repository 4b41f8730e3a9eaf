package script

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits bound every run. Zero values take DefaultLimits.
type Limits struct {
	// Memory is the heap a worker may hold while a hook runs (128 MiB).
	Memory int64
	// FetchTimeout bounds one fetch (10 s); FetchMaxBody is the largest
	// response body a fetch reads (1 MiB).
	FetchTimeout time.Duration
	FetchMaxBody int64
	// Workers is how many hooks may run at once (8): each runs in a worker
	// process of its own. MaxIdle workers are kept warm (2).
	Workers int
	MaxIdle int
}

// DefaultLimits are the limits of a run unless the caller says otherwise.
func DefaultLimits() Limits {
	return Limits{Memory: 128 << 20, FetchTimeout: 10 * time.Second, FetchMaxBody: 1 << 20, Workers: 8, MaxIdle: 2}
}

func (l *Limits) defaults() {
	d := DefaultLimits()
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.FetchTimeout <= 0 {
		l.FetchTimeout = d.FetchTimeout
	}
	if l.FetchMaxBody <= 0 {
		l.FetchMaxBody = d.FetchMaxBody
	}
	if l.Workers <= 0 {
		l.Workers = d.Workers
	}
	if l.MaxIdle <= 0 {
		l.MaxIdle = d.MaxIdle
	}
}

// Result is what a run gives back, whether it succeeded or not.
type Result struct {
	// Value is the JSON of what the default export returned (or resolved
	// to); nil for undefined.
	Value json.RawMessage
	// Console is what the hook wrote with console.*, one line each,
	// prefixed "log: ", "warn: " or "error: ".
	Console  []string
	Duration time.Duration
}

// RunError is a run that failed: Kind is one of the Err* kinds, Message
// says what happened in words an admin can act on.
type RunError struct {
	Kind    string
	Message string
}

func (e *RunError) Error() string { return e.Message }

// Engine runs compiled hooks in worker processes: the server's own binary
// started again as a worker (see init in worker.go). A process per running
// hook is what makes the limits hard: a hook past its time is killed
// however it spends it (even inside a long built-in call, which goja's
// Interrupt cannot stop), and a hook's memory is its worker's, capped by a
// heap watchdog and by RLIMIT_AS, so a runaway hook takes nothing from the
// server or from other hooks. Idle workers are reused, so a run costs a
// round trip over a pipe, not a process start.
//
// fetch goes through the *http.Client the caller gives, so hooks obey the
// same outbound-address policy as webhooks.
type Engine struct {
	client *http.Client
	lim    Limits
	exe    string

	slots chan struct{}
	mu    sync.Mutex
	idle  []*worker
	all   map[*worker]bool
	done  bool
}

// NewEngine makes an engine. client makes every fetch (nil: a client that
// follows no redirects). No worker starts until the first run.
func NewEngine(client *http.Client, lim Limits) *Engine {
	lim.defaults()
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return &Engine{client: client, lim: lim, exe: exe, slots: make(chan struct{}, lim.Workers), all: map[*worker]bool{}}
}

// Limits reports the engine's limits.
func (e *Engine) Limits() Limits { return e.lim }

// Close stops every worker. Runs in progress fail.
func (e *Engine) Close() {
	e.mu.Lock()
	e.done = true
	ws := make([]*worker, 0, len(e.all))
	for w := range e.all {
		ws = append(ws, w)
	}
	e.idle = nil
	e.mu.Unlock()
	for _, w := range ws {
		w.kill()
	}
}

// Warm starts a worker now, if none is idle, so the first run does not
// pay for a process start (a blocking hook's first Create User).
func (e *Engine) Warm() error {
	w, _, err := e.worker()
	if err != nil {
		return err
	}
	e.release(w)
	return nil
}

// Run calls the hook's default export with input (JSON) and waits for it
// for at most timeout. The error is a *RunError for anything the hook did
// (threw, timed out, used too much memory); Result is filled either way.
func (e *Engine) Run(ctx context.Context, c *Compiled, input json.RawMessage, timeout time.Duration) (*Result, error) {
	return e.run(ctx, c, input, timeout, false)
}

// Check loads the module and checks that its default export is a
// function, running nothing else: what saving a hook asks.
func (e *Engine) Check(ctx context.Context, c *Compiled) error {
	_, err := e.run(ctx, c, nil, 5*time.Second, true)
	return err
}

// SMSPayload is what a custom SMS script receives (the reference product's
// CustomSMSGatewayPayload): it sends Body to To itself, with fetch.
type SMSPayload struct {
	To           string         `json:"to"`
	Body         string         `json:"body"`
	AppID        string         `json:"app_id,omitempty"`
	TemplateName string         `json:"template_name,omitempty"`
	LanguageTag  string         `json:"language_tag,omitempty"`
	Variables    map[string]any `json:"template_variables,omitempty"`
}

// SMSTimeout bounds one custom SMS script run.
const SMSTimeout = 30 * time.Second

// RunSMSWithin runs a custom SMS script within the time limit of the hook
// that holds it (at most SMSTimeout; 0 is SMSTimeout): nil when it returned
// (or resolved) without throwing and, if it answered {code}, the code was
// "ok". A throw, a timeout or another code is a failed send, for the SMS
// outbox to retry.
func (e *Engine) RunSMSWithin(ctx context.Context, c *Compiled, p SMSPayload, timeout time.Duration) error {
	if timeout <= 0 || timeout > SMSTimeout {
		timeout = SMSTimeout
	}
	in, err := json.Marshal(p)
	if err != nil {
		return err
	}
	res, err := e.Run(ctx, c, in, timeout)
	if err != nil {
		return fmt.Errorf("script: sms: %w", err)
	}
	if msg := SMSAnswerError(res.Value); msg != "" {
		return errors.New("script: sms: " + msg)
	}
	return nil
}

// SMSAnswerError says why a custom SMS script's answer (the JSON it
// returned) is a failed send: it answered {code} other than "ok". ""
// when the answer is a success (no answer, or no code, is one).
func SMSAnswerError(value json.RawMessage) string {
	if len(value) == 0 || value[0] != '{' {
		return ""
	}
	var ans struct {
		Code              string `json:"code"`
		ProviderErrorCode string `json:"provider_error_code"`
	}
	if json.Unmarshal(value, &ans) != nil || ans.Code == "" || ans.Code == "ok" {
		return ""
	}
	msg := "the script answered " + ans.Code
	if ans.ProviderErrorCode != "" {
		msg += " (" + ans.ProviderErrorCode + ")"
	}
	return msg
}

// grace is how long past its time limit a run may take to report before
// its worker is killed.
const grace = 500 * time.Millisecond

// workerStartAllowance is added to the backstop of a run on a worker
// process that was started for it.
const workerStartAllowance = 15 * time.Second

func (e *Engine) run(ctx context.Context, c *Compiled, input json.RawMessage, timeout time.Duration, check bool) (*Result, error) {
	res := &Result{}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return res, &RunError{ErrTimeout, "No worker was free to run the hook in time."}
	}
	defer func() { <-e.slots }()
	if len(input) == 0 {
		input = json.RawMessage("null")
	}

	m := message{T: msgRun, Key: c.Key, Input: input, TimeoutMS: timeout.Milliseconds(), Check: check}
	var w *worker
	var fresh bool
	for try := 0; ; try++ {
		var err error
		if w, fresh, err = e.worker(); err != nil {
			return res, &RunError{ErrCrashed, "The hook runner could not start: " + err.Error()}
		}
		m.Code = ""
		if !w.seen[c.Key] {
			m.Code = c.JS
		}
		if err = w.send(m); err == nil {
			break
		}
		w.kill() // an idle worker that died: take another, once
		if try == 1 {
			return res, &RunError{ErrCrashed, "The hook runner stopped: " + err.Error()}
		}
	}
	if len(w.seen) >= 64 {
		clear(w.seen) // the worker keeps 64 programs at most too
	}
	w.seen[c.Key] = true
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The worker enforces the time limit itself from when the run starts;
	// this timer is the backstop that kills it. A worker just started
	// still has to start its runtime first (seconds on a busy machine, or
	// under the race detector), which is not the hook's time.
	backstop := timeout + grace
	if fresh {
		backstop += workerStartAllowance
	}
	hard := time.NewTimer(backstop)
	defer hard.Stop()
	for {
		select {
		case m := <-w.msgs:
			switch m.T {
			case msgFetch:
				go func() { _ = w.send(e.fetch(runCtx, m)) }()
			case msgDone:
				if m.ErrKind == errUncached {
					if err := w.send(message{T: msgRun, Key: c.Key, Code: c.JS, Input: input, TimeoutMS: timeout.Milliseconds(), Check: check}); err != nil {
						w.kill()
						return res, &RunError{ErrCrashed, "The hook runner stopped: " + err.Error()}
					}
					continue
				}
				res.Console = m.Console
				res.Value = m.Value
				e.release(w)
				if m.ErrKind != "" {
					return res, runError(m.ErrKind, m.Err, timeout)
				}
				return res, nil
			}
		case <-w.exited:
			if strings.Contains(w.stderr.String(), "out of memory") {
				return res, runError(ErrMemory, fmt.Sprintf("The hook used more than %d MiB of memory and was stopped.", e.lim.Memory>>20), timeout)
			}
			return res, &RunError{ErrCrashed, "The hook runner stopped unexpectedly: " + firstLine(w.stderr.String())}
		case <-hard.C:
			w.kill()
			return res, runError(ErrTimeout, "", timeout)
		case <-ctx.Done():
			w.kill()
			return res, runError(ErrTimeout, "", timeout)
		}
	}
}

func runError(kind, msg string, timeout time.Duration) *RunError {
	if msg == "" {
		switch kind {
		case ErrTimeout:
			msg = "The hook did not finish within " + timeout.String() + " and was stopped."
		default:
			msg = "The hook failed."
		}
	}
	if kind == ErrThrown {
		msg = "The hook threw: " + msg
	}
	return &RunError{Kind: kind, Message: msg}
}

// fetch makes one request for a hook, with the engine's client, time
// limit and body cap, and answers the worker.
func (e *Engine) fetch(ctx context.Context, m message) message {
	out := message{T: msgFetchRes, FID: m.FID}
	ctx, cancel := context.WithTimeout(ctx, e.lim.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, m.Method, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		out.Err = "bad request: " + err.Error()
		return out
	}
	if len(m.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range m.Headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Latchkey-Hook/1")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			out.Err = "no answer within " + e.lim.FetchTimeout.String()
		} else {
			out.Err = unwrap(err).Error()
		}
		return out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, e.lim.FetchMaxBody+1))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			out.Err = "the response did not arrive within " + e.lim.FetchTimeout.String()
		} else {
			out.Err = "reading the response: " + unwrap(err).Error()
		}
		return out
	}
	if int64(len(body)) > e.lim.FetchMaxBody {
		out.Err = fmt.Sprintf("the response is larger than %d KiB", e.lim.FetchMaxBody>>10)
		return out
	}
	out.Status = resp.StatusCode
	out.StatusText = strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	out.Headers = map[string]string{}
	for k, v := range resp.Header {
		out.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	out.Body = body
	return out
}

func unwrap(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// worker is one worker process.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	sendMu sync.Mutex
	enc    *json.Encoder
	msgs   chan message
	exited chan struct{}
	dead   chan struct{} // closed by kill
	once   sync.Once
	stderr *tail
	seen   map[string]bool
}

func (w *worker) send(m message) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	return w.enc.Encode(m)
}

func (w *worker) kill() {
	w.once.Do(func() { close(w.dead) })
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// worker takes an idle worker or starts one.
func (e *Engine) worker() (w *worker, fresh bool, err error) {
	e.mu.Lock()
	if e.done {
		e.mu.Unlock()
		return nil, false, errors.New("engine closed")
	}
	for len(e.idle) > 0 {
		w := e.idle[len(e.idle)-1]
		e.idle = e.idle[:len(e.idle)-1]
		select {
		case <-w.exited:
			continue
		default:
		}
		e.mu.Unlock()
		return w, false, nil
	}
	e.mu.Unlock()
	w, err = e.start()
	return w, true, err
}

// release puts a worker back for the next run, or stops it when enough
// are idle.
func (e *Engine) release(w *worker) {
	e.mu.Lock()
	if !e.done && len(e.idle) < e.lim.MaxIdle {
		e.idle = append(e.idle, w)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	_ = w.stdin.Close() // the worker exits when its input ends
}

func (e *Engine) start() (*worker, error) {
	cmd := exec.Command(e.exe)
	cmd.Env = []string{workerEnv + "=1", workerMemEnv + "=" + strconv.FormatInt(e.lim.Memory, 10)}
	cmd.Dir = os.TempDir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &worker{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), msgs: make(chan message, 16),
		exited: make(chan struct{}), dead: make(chan struct{}), stderr: &tail{max: 4096}, seen: map[string]bool{}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.all[w] = true
	e.mu.Unlock()
	go func() {
		dec := json.NewDecoder(bufio.NewReaderSize(stdout, 256<<10))
		for {
			var m message
			if err := dec.Decode(&m); err != nil {
				break
			}
			select {
			case w.msgs <- m:
			case <-w.dead:
			}
		}
		_ = cmd.Wait()
		e.mu.Lock()
		delete(e.all, w)
		e.mu.Unlock()
		close(w.exited)
	}()
	return w, nil
}

// tail keeps the first max bytes written to it (a Go runtime crash says
// why on its first line, then prints stacks).
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.max - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// firstLine is the first line of a crash report.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "no message"
	}
	return s
}
