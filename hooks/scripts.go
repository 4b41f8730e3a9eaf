package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/script"
	"latchkey/store"
)

// TypeScript hooks: a webhook row whose code lives in hook_scripts. They
// share everything with webhooks but the transport: the same events, the
// same durable delivery queue (one delivery per event, retried with
// backoff for 3 days, Redeliver), the same blocking path and errors. Where
// a webhook POSTs the event, a TypeScript hook's default export is called
// with it, in the script engine.

// Time limits of TypeScript hooks: a blocking hook at most 5 s (and all
// blocking hooks of one event 10 s, Config.BlockingTotal), a non-blocking
// one at most 60 s.
const (
	MaxScriptTimeoutBlocking = 5 * time.Second
	MaxScriptTimeout         = 60 * time.Second
	maxScriptName            = 100
	maxTryTimeout            = 45 * time.Second
)

// ScriptInput is the TypeScript hook form.
type ScriptInput struct {
	Name      string
	Source    string
	Blocking  bool
	AllEvents bool
	Events    []string
	Enabled   bool
	// Timeout is the run's time limit; 0 takes the largest allowed.
	Timeout time.Duration
}

// scriptCache keeps, per hook and version, whether the hook has code and
// its compiled form, so a run neither queries the code again nor hashes
// the JavaScript; the worker processes keep the goja programs.
type scriptCache struct {
	mu sync.Mutex
	m  map[string]cachedScript
}

type cachedScript struct {
	version time.Time // webhooks.updated_at
	sc      *store.HookScript
	c       *script.Compiled
}

func (sc *scriptCache) lookup(w *store.Webhook) (*store.HookScript, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	c, ok := sc.m[w.ID]
	if !ok || !c.version.Equal(w.UpdatedAt) {
		return nil, false
	}
	return c.sc, true
}

func (sc *scriptCache) remember(w *store.Webhook, h *store.HookScript) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.m == nil {
		sc.m = map[string]cachedScript{}
	}
	if len(sc.m) > 10000 { // hooks deleted over a long uptime
		clear(sc.m)
	}
	sc.m[w.ID] = cachedScript{version: w.UpdatedAt, sc: h}
}

// get returns the compiled form of h.
func (sc *scriptCache) get(h *store.HookScript) *script.Compiled {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	key := "code:" + h.WebhookID
	if c, ok := sc.m[key]; ok && c.version.Equal(h.UpdatedAt) {
		return c.c
	}
	c := script.FromJS(h.Compiled)
	if sc.m == nil {
		sc.m = map[string]cachedScript{}
	}
	sc.m[key] = cachedScript{version: h.UpdatedAt, c: c}
	return c
}

// Scripts is the engine that runs TypeScript hooks, for other features
// that run scripts (the custom SMS script): it fetches through the same
// client as webhooks.
func (s *Service) Scripts() *script.Engine { return s.scripts }

// WarmScripts starts a script worker when TypeScript hooks exist, so the
// first one to run after a start does not wait for a process.
func (s *Service) WarmScripts(ctx context.Context) {
	names, err := s.store.HookScriptNames(ctx)
	if err != nil || len(names) == 0 {
		return
	}
	if err := s.scripts.Warm(); err != nil {
		s.log.Warn("script worker did not start", "err", err)
	}
}

// Close stops the script engine's worker processes.
func (s *Service) Close() { s.scripts.Close() }

// scriptFor returns the code of hook w when it is a TypeScript hook, nil
// when it is an HTTP webhook. The answer is kept per hook and version
// (webhooks.updated_at, which every change of the code also sets), so a
// delivery or a blocking call costs no extra query.
func (s *Service) scriptFor(ctx context.Context, w *store.Webhook) (*store.HookScript, error) {
	if sc, ok := s.compiled.lookup(w); ok {
		return sc, nil
	}
	sc, err := s.store.HookScript(ctx, w.ID)
	if errors.Is(err, store.ErrNotFound) {
		sc, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.compiled.remember(w, sc)
	return sc, nil
}

// HookScript finds a TypeScript hook's code.
func (s *Service) HookScript(ctx context.Context, id string) (*store.HookScript, error) {
	return s.store.HookScript(ctx, id)
}

// ScriptNames maps the TypeScript hooks' IDs to their names.
func (s *Service) ScriptNames(ctx context.Context) (map[string]string, error) {
	return s.store.HookScriptNames(ctx)
}

// DeliveryOutputs returns the console output of script deliveries.
func (s *Service) DeliveryOutputs(ctx context.Context, ids []int64) (map[int64]string, error) {
	return s.store.DeliveryOutputs(ctx, ids)
}

func fieldErr(field, msg string) *account.Error {
	return &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: field, Message: msg}
}

// validateScript checks the form and compiles the code: a compile error is
// a field error on "code" that says where, and nothing is saved.
func (s *Service) validateScript(ctx context.Context, in *ScriptInput) (*script.Compiled, []string, error) {
	var errs []*account.Error
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		errs = append(errs, fieldErr("name", "Give the hook a name."))
	case utf8.RuneCountInString(in.Name) > maxScriptName:
		errs = append(errs, fieldErr("name", fmt.Sprintf("The name can be at most %d characters.", maxScriptName)))
	}
	max := MaxScriptTimeout
	if in.Blocking {
		max = MaxScriptTimeoutBlocking
	}
	if in.Timeout == 0 {
		in.Timeout = max
	}
	if in.Timeout < time.Second || in.Timeout > max {
		errs = append(errs, fieldErr("timeout", fmt.Sprintf("The timeout is 1 to %d seconds.", int(max.Seconds()))))
	}
	var events []string
	if in.Blocking {
		events = []string{UserPreCreate}
	} else if !in.AllEvents {
		allowed := map[string]bool{}
		for _, ti := range WebhookTypes() {
			allowed[ti.Type] = true
		}
		for _, t := range in.Events {
			if !allowed[t] {
				errs = append(errs, fieldErr("events", "Unknown event type "+t+"."))
				break
			}
			if !slices.Contains(events, t) {
				events = append(events, t)
			}
		}
		if len(in.Events) == 0 {
			errs = append(errs, fieldErr("events", "Choose at least one event, or All events."))
		}
	}
	c, err := script.Compile(in.Source)
	if err != nil {
		var ce *script.CompileError
		if !errors.As(err, &ce) {
			return nil, nil, err
		}
		errs = append(errs, fieldErr("code", ce.Error()))
	} else if err := s.scripts.Check(ctx, c); err != nil {
		var re *script.RunError
		if !errors.As(err, &re) {
			return nil, nil, err
		}
		errs = append(errs, fieldErr("code", "The module does not load: "+re.Message))
	}
	if err := account.JoinErrors(errs); err != nil {
		return nil, nil, err
	}
	return c, events, nil
}

func scriptPayload(w *store.Webhook, name string) map[string]any {
	p := webhookPayload(w)
	hook := p["webhook"].(map[string]any)
	hook["runtime"], hook["name"] = "typescript", name
	delete(hook, "url")
	return p
}

// CreateScript validates, compiles and adds a TypeScript hook.
func (s *Service) CreateScript(ctx context.Context, actor account.Actor, in ScriptInput) (*store.Webhook, error) {
	c, events, err := s.validateScript(ctx, &in)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	w := store.Webhook{ID: uuid.NewString(), Kind: store.WebhookNonBlocking, AllEvents: in.AllEvents && !in.Blocking, Events: events,
		Enabled: in.Enabled, Secret: []byte{}, CreatedAt: now, UpdatedAt: now}
	if in.Blocking {
		w.Kind = store.WebhookBlocking
	}
	sc := store.HookScript{WebhookID: w.ID, Name: in.Name, Source: in.Source, Compiled: c.JS, Timeout: in.Timeout, UpdatedAt: now}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertWebhook(ctx, w); err != nil {
			return err
		}
		if err := tx.InsertHookScript(ctx, sc); err != nil {
			return err
		}
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookCreated, Payload: scriptPayload(&w, in.Name)})
	})
	if err != nil {
		return nil, fmt.Errorf("hooks: create script: %w", err)
	}
	return &w, nil
}

// UpdateScript saves a TypeScript hook's name, code, events, timeout and
// enabled flag; its kind (blocking or not) stays. Invalid code saves
// nothing.
func (s *Service) UpdateScript(ctx context.Context, actor account.Actor, id string, in ScriptInput) error {
	w, err := s.store.WebhookByID(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.store.HookScript(ctx, id); err != nil {
		return err
	}
	in.Blocking = w.Kind == store.WebhookBlocking
	c, events, err := s.validateScript(ctx, &in)
	if err != nil {
		return err
	}
	now := s.Now()
	if !now.After(w.UpdatedAt.Add(time.Millisecond)) {
		now = w.UpdatedAt.Add(time.Millisecond) // a new version, even when the clock stands still
	}
	w.AllEvents, w.Events, w.Enabled, w.UpdatedAt = in.AllEvents && !in.Blocking, events, in.Enabled, now
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateHookScript(ctx, store.HookScript{WebhookID: id, Name: in.Name, Source: in.Source, Compiled: c.JS,
			Timeout: in.Timeout, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.UpdateWebhookEvents(ctx, id, w.AllEvents, w.Events, w.Enabled, now); err != nil {
			return err
		}
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookUpdated, Payload: scriptPayload(w, in.Name)})
	})
}

// ScriptTry is the outcome of "Run with a sample event".
type ScriptTry struct {
	Event    json.RawMessage
	Value    json.RawMessage
	Console  []string
	Duration time.Duration
	// Error says why the run failed; "" when it did not.
	Error string
	// SMS is set when the hook is the custom SMS script: Event is then a
	// sample text ({to, body, ...}), not an event.
	SMS bool
}

// TryScript runs a saved TypeScript hook against a sample event
// (user.pre_create for a blocking hook, user.created otherwise; for the
// hook that sends texts, LATCHKEY_SMS_URL=script://…, a sample text in
// the CustomSMSGatewayPayload shape, judged as a send is), with its
// own time limit. Nothing is written: no event, no delivery, no user;
// the hook's own fetch calls do go out.
func (s *Service) TryScript(ctx context.Context, actor account.Actor, id string) (*ScriptTry, error) {
	w, err := s.store.WebhookByID(ctx, id)
	if err != nil {
		return nil, err
	}
	sc, err := s.store.HookScript(ctx, id)
	if err != nil {
		return nil, err
	}
	typ := UserCreated
	if w.Kind == store.WebhookBlocking {
		typ = UserPreCreate
	}
	sms := s.IsSMSScript(ctx, id)
	timeout := min(sc.Timeout, maxTryTimeout)
	var body json.RawMessage
	if sms {
		// The custom SMS script gets a text to send, not an event.
		body, err = json.Marshal(sampleSMS(s.cfg.AppID))
		timeout = min(sc.Timeout, script.SMSTimeout)
	} else {
		body, err = s.sampleEvent(actor, typ)
	}
	if err != nil {
		return nil, err
	}
	// The answer must reach the browser before the server's 60 s write timeout.
	res, err := s.scripts.Run(ctx, s.compiled.get(sc), body, timeout)
	t := &ScriptTry{Event: body, Value: res.Value, Console: res.Console, Duration: res.Duration, SMS: sms}
	var re *script.RunError
	if errors.As(err, &re) {
		t.Error = re.Message
	} else if err != nil {
		return nil, err
	}
	switch {
	case err != nil:
	case sms:
		if msg := script.SMSAnswerError(res.Value); msg != "" {
			t.Error = "The text would count as not sent: " + msg + "."
		}
	case typ == UserPreCreate:
		if _, msg := parseBlockingAnswer(res.Value, body); msg != "" {
			t.Error = msg
		}
	}
	return t, nil
}

// sampleEvent is a made-up event of type typ about a made-up phone user.
func (s *Service) sampleEvent(actor account.Actor, typ string) (json.RawMessage, error) {
	now := s.Now()
	u := &account.User{}
	u.ID = "00000000-0000-4000-8000-000000000000"
	u.CreatedAt, u.UpdatedAt = now, now
	u.Identities = []store.Identity{{ID: "00000000-0000-4000-8000-000000000001", UserID: u.ID, Kind: account.KindPhone,
		Value: "+14155550100", CreatedAt: now}}
	payload, err := marshalPayload(account.UserPayload(u))
	if err != nil {
		return nil, err
	}
	cx, err := json.Marshal(s.context(actor, u.ID, now))
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{ID: "0000000000000000", Type: typ, Payload: payload, Context: cx})
}

// sendScript is a delivery's attempt for a TypeScript hook: it calls the
// hook with the event and returns its console output for the delivery
// log (nil when there is nothing to record or clear: a first attempt
// that logged nothing). A throw or a timeout fails the attempt, to be
// retried like a webhook's.
func (s *Service) sendScript(ctx context.Context, d *store.Delivery, sc *store.HookScript, ev *store.Event) (int, time.Duration, *string, error) {
	body, err := json.Marshal(EnvelopeOf(ev))
	if err != nil {
		return 0, 0, nil, err
	}
	res, runErr := s.scripts.Run(ctx, s.compiled.get(sc), body, min(sc.Timeout, MaxScriptTimeout))
	if ctx.Err() != nil {
		return 0, res.Duration, nil, ctx.Err()
	}
	var output *string
	if out := strings.Join(res.Console, "\n"); out != "" || d.Attempts > 0 {
		output = &out
	}
	var re *script.RunError
	if errors.As(runErr, &re) {
		return 0, res.Duration, output, errors.New(re.Message)
	}
	return 0, res.Duration, output, runErr
}

// callScriptBlocking runs a blocking TypeScript hook: it vetoes like a
// blocking webhook, and a throw, a timeout or an answer that is not
// {"is_allowed": ...} stops the operation as a failing webhook does.
func (s *Service) callScriptBlocking(ctx context.Context, h store.Webhook, sc *store.HookScript, body []byte) error {
	timeout := min(sc.Timeout, s.cfg.BlockingTimeout)
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return blockingFailed(ReasonTimeout, "The blocking hooks did not answer in time, so nothing was changed. Try again, or disable the hook in Webhooks.", h)
	}
	res, err := s.scripts.Run(ctx, s.compiled.get(sc), body, timeout)
	if err != nil {
		var re *script.RunError
		if errors.As(err, &re) && re.Kind == script.ErrTimeout {
			return blockingFailed(ReasonTimeout, "The blocking TypeScript hook "+sc.Name+" did not finish in time, so nothing was changed. Try again, or disable the hook.", h)
		}
		return blockingFailed(ReasonInvalidResponse, "The blocking TypeScript hook "+sc.Name+" failed, so nothing was changed: "+err.Error(), h)
	}
	ans, msg := parseBlockingAnswer(res.Value, body)
	if msg != "" {
		return blockingFailed(ReasonInvalidResponse, "The blocking TypeScript hook "+sc.Name+" answered wrongly, so nothing was changed: "+msg, h)
	}
	if !*ans.IsAllowed {
		return disallowed(ans)
	}
	return nil
}

// scriptAnswer is a blocking TypeScript hook's answer.
type scriptAnswer struct {
	blockingAnswer
	Mutations *struct {
		User *struct {
			StandardAttributes map[string]json.RawMessage `json:"standard_attributes"`
			CustomAttributes   map[string]json.RawMessage `json:"custom_attributes"`
		} `json:"user"`
	} `json:"mutations"`
}

// parseBlockingAnswer reads a blocking hook's answer; msg says what is
// wrong with it. Mutations may only restate what the user has: Latchkey's
// standard attributes all come from the user's login IDs, which a hook
// cannot change, and it keeps no custom attributes.
func parseBlockingAnswer(value, event json.RawMessage) (blockingAnswer, string) {
	var ans scriptAnswer
	if len(value) == 0 || json.Unmarshal(value, &ans) != nil || ans.IsAllowed == nil {
		return ans.blockingAnswer, `the hook must return {"is_allowed": true} or {"is_allowed": false, "title": "...", "reason": "..."}`
	}
	if m := ans.Mutations; m != nil && m.User != nil && *ans.IsAllowed {
		if len(m.User.CustomAttributes) > 0 {
			return ans.blockingAnswer, "mutations.user.custom_attributes: Latchkey keeps no custom attributes"
		}
		var ev struct {
			Payload struct {
				User struct {
					StandardAttributes map[string]json.RawMessage `json:"standard_attributes"`
				} `json:"user"`
			} `json:"payload"`
		}
		_ = json.Unmarshal(event, &ev)
		for k, v := range m.User.StandardAttributes {
			if have, ok := ev.Payload.User.StandardAttributes[k]; !ok || !jsonEqual(have, v) {
				return ans.blockingAnswer, "mutations.user.standard_attributes." + k + ": Latchkey takes standard attributes from the login IDs, which a hook cannot change"
			}
		}
	}
	return ans.blockingAnswer, ""
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// disallowed is the error of a veto: Forbidden / WebHookDisallowed with
// info.reasons, as the reference product answers.
func disallowed(ans blockingAnswer) *account.Error {
	msg := strings.TrimSpace(ans.Reason)
	if t := strings.TrimSpace(ans.Title); t != "" && msg != "" {
		msg = t + ": " + msg
	} else if t != "" {
		msg = t
	}
	if msg == "" {
		msg = "A blocking hook did not allow this."
	}
	return &account.Error{Name: "Forbidden", Reason: ReasonDisallowed, Message: msg,
		Info: map[string]any{"reasons": []map[string]any{{"reason": ans.Reason, "title": ans.Title}}}}
}
