package hooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/metrics"
	"latchkey/outbound"
	"latchkey/script"
	"latchkey/store"
)

// Config tunes the hooks service. Zero values take the documented defaults.
type Config struct {
	// AppID is context.app_id (LATCHKEY_APP_ID, default "latchkey").
	AppID string
	// Timeout bounds one webhook delivery attempt (10 s).
	Timeout time.Duration
	// BlockingTimeout bounds one blocking hook call (5 s); BlockingTotal
	// bounds all blocking hooks of one event together (10 s).
	BlockingTimeout time.Duration
	BlockingTotal   time.Duration
	// RetryBase is the first retry delay (30 s); each retry doubles it, up
	// to RetryMax (12 h). A delivery is given up RetryFor (3 days) after
	// its event.
	RetryBase time.Duration
	RetryMax  time.Duration
	RetryFor  time.Duration
	// Concurrency is how many deliveries are sent at once (4).
	Concurrency int
	// Lease, when > 0, is how long a claimed delivery stays hidden from
	// other claims before it is due again (LATCHKEY_WORKER_LEASE); by
	// default an attempt's longest timeout plus 20 s.
	Lease time.Duration
	// Outbound is the address policy for webhook URLs, checked when a
	// webhook is saved and at every connection. The zero value refuses
	// loopback, private and link-local addresses.
	Outbound outbound.Policy
}

func (c *Config) defaults() {
	if c.AppID == "" {
		c.AppID = "latchkey"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.BlockingTimeout, 5*time.Second)
	def(&c.BlockingTotal, 10*time.Second)
	def(&c.RetryBase, 30*time.Second)
	def(&c.RetryMax, 12*time.Hour)
	def(&c.RetryFor, 72*time.Hour)
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
}

// Service implements account.Events: it records events and queues their
// webhook deliveries in the caller's transaction, runs blocking hooks, and
// (Run) delivers the queue.
type Service struct {
	store  *store.Store
	cfg    Config
	log    *slog.Logger
	sealer *account.Sealer
	client *http.Client
	wake   chan struct{}
	// Now is the clock; tests move it.
	Now func() time.Time

	// scripts runs TypeScript hooks; its fetch uses client.
	scripts  *script.Engine
	compiled scriptCache
	// smsRef names the hook LATCHKEY_SMS_URL=script://REF sends texts
	// with (sms_script_try.go); nil when texts go another way.
	smsRef atomic.Pointer[string]

	inflight sync.WaitGroup
	busyMu   sync.Mutex
	// busyHooks are the webhooks with an attempt running now.
	busyHooks map[string]bool

	hb metrics.Heartbeat // the worker's last round, for /readyz
}

var _ account.Events = (*Service)(nil)

// New makes the service. serverSecret is the server secret; the key that
// encrypts signing secrets at rest is derived from it.
func New(st *store.Store, serverSecret []byte, cfg Config, log *slog.Logger) (*Service, error) {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	sl, err := account.NewSealer(serverSecret, "webhook")
	if err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	s := &Service{
		store:  st,
		cfg:    cfg,
		log:    log,
		sealer: sl,
		// Redirects are not followed: a 3xx is not a 2xx.
		client:    cfg.Outbound.Client(outbound.Options{Timeout: max(cfg.Timeout, cfg.BlockingTimeout)}),
		wake:      make(chan struct{}, 1),
		Now:       func() time.Time { return time.Now().UTC() },
		busyHooks: map[string]bool{},
	}
	s.scripts = script.NewEngine(s.client, script.Limits{})
	return s, nil
}

// Outbound is the address policy of the service's outbound calls, for
// other callers an admin configures (a script's fetch) to build their
// client with.
func (s *Service) Outbound() outbound.Policy { return s.cfg.Outbound }

// notify wakes the delivery workers once tx commits: this process's and,
// on PostgreSQL, every other instance's (store.Tx.Notify).
func (s *Service) notify(ctx context.Context, tx *store.Tx) error {
	return tx.Notify(ctx, store.ChannelDeliveries)
}

// Wake tells the delivery worker that new deliveries may be due.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Bounds on what a request's headers may put into an event: a stranger
// controls User-Agent and Accept-Language, and every failed sign-in is an event.
const (
	maxUserAgent   = 512
	maxLanguages   = 10
	maxLanguageTag = 35 // BCP 47 tags in practice stay well under this
)

func (s *Service) context(actor account.Actor, userID string, now time.Time) Context {
	var langs []string
	for _, l := range actor.Languages {
		if len(langs) == maxLanguages {
			break
		}
		if l != "" && len(l) <= maxLanguageTag {
			langs = append(langs, l)
		}
	}
	c := Context{
		Timestamp:          now.Unix(),
		UserID:             userID,
		TriggeredBy:        actor.TriggeredBy,
		IPAddress:          actor.IP,
		UserAgent:          truncateUTF8(actor.UserAgent, maxUserAgent),
		AppID:              s.cfg.AppID,
		Language:           "en",
		PreferredLanguages: append([]string{}, langs...),
	}
	if c.TriggeredBy == "" {
		c.TriggeredBy = "system"
	}
	if len(langs) > 0 {
		c.Language = langs[0]
	}
	kind := actor.Kind
	if kind == "" {
		kind = "system"
	}
	c.AuditContext = &AuditContext{ActorKind: kind, ActorID: actor.ID, ActorName: actor.Name}
	return c
}

// Record writes ev to the event log inside tx and queues one delivery per
// enabled non-blocking webhook that wants it, so the change, its event and
// its deliveries commit (or roll back) together. The worker is woken after
// commit.
func (s *Service) Record(ctx context.Context, tx *store.Tx, actor account.Actor, ev account.Event) error {
	_, err := s.record(ctx, tx, actor, ev, "")
	return err
}

// record writes the event; with only set, the event goes to that webhook
// alone (the test event), otherwise to every webhook that wants it.
func (s *Service) record(ctx context.Context, tx *store.Tx, actor account.Actor, ev account.Event, only string) (int64, error) {
	if ev.Type == "" {
		return 0, errors.New("hooks: record: event without a type")
	}
	now := s.Now()
	payload, err := marshalPayload(ev.Payload)
	if err != nil {
		return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
	}
	cx, err := json.Marshal(s.context(actor, ev.UserID, now))
	if err != nil {
		return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
	}
	// The webhooks are read before the event is written: on PostgreSQL
	// the event insert serialises event writers until commit
	// (store.InsertEvent), so as little as possible follows it.
	targets := []string{only}
	if only == "" {
		targets = nil
		if !AuditOnly(ev.Type) && !IsBlocking(ev.Type) && ev.Type != WebhookTest {
			hooks, err := tx.EnabledWebhooks(ctx, store.WebhookNonBlocking)
			if err != nil {
				return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
			}
			for _, h := range hooks {
				if h.AllEvents || slices.Contains(h.Events, ev.Type) {
					targets = append(targets, h.ID)
				}
			}
		}
	}
	e := store.Event{Type: ev.Type, UserID: ev.UserID, CreatedAt: now, Payload: payload, Context: cx}
	if err := tx.InsertEvent(ctx, &e); err != nil {
		return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
	}
	queued := false
	for _, id := range targets {
		if _, err := tx.InsertDelivery(ctx, id, e.Seq, now); err != nil {
			return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
		}
		queued = true
	}
	if queued {
		if err := s.notify(ctx, tx); err != nil {
			return 0, fmt.Errorf("hooks: record %s: %w", ev.Type, err)
		}
	}
	return e.Seq, nil
}

// Blocking error reasons, as the reference product names them.
const (
	ReasonDisallowed      = "WebHookDisallowed"
	ReasonInvalidResponse = "WebHookInvalidResponse"
	ReasonTimeout         = "WebHookDeliveryTimeout"
)

// blockingAnswer is what a blocking hook answers.
type blockingAnswer struct {
	IsAllowed *bool  `json:"is_allowed"`
	Reason    string `json:"reason"`
	Title     string `json:"title"`
}

// Blocking runs the enabled blocking hooks for ev, one after another,
// before anything is written. A veto ({"is_allowed": false}), a non-2xx
// answer, an answer that is not the expected JSON, or a timeout (5 s per
// hook, 10 s in all) aborts the operation with an *account.Error whose
// message says why; the caller then writes nothing.
//
// A blocking event is not stored (a vetoed change must leave no trace), so
// it has no seq: its id is 16 random hex digits and its seq is 0.
func (s *Service) Blocking(ctx context.Context, actor account.Actor, ev account.Event) error {
	if !IsBlocking(ev.Type) {
		return nil
	}
	hooks, err := s.store.EnabledWebhooks(ctx, store.WebhookBlocking)
	if err != nil {
		return fmt.Errorf("hooks: blocking %s: %w", ev.Type, err)
	}
	hooks = slices.DeleteFunc(hooks, func(h store.Webhook) bool { return !h.AllEvents && !slices.Contains(h.Events, ev.Type) })
	if len(hooks) == 0 {
		return nil
	}
	payload, err := marshalPayload(ev.Payload)
	if err != nil {
		return fmt.Errorf("hooks: blocking %s: %w", ev.Type, err)
	}
	now := s.Now()
	cx, err := json.Marshal(s.context(actor, ev.UserID, now))
	if err != nil {
		return err
	}
	rnd := make([]byte, 8)
	_, _ = rand.Read(rnd)
	id := hex.EncodeToString(rnd)
	body, err := json.Marshal(Envelope{ID: id, Type: ev.Type, Payload: payload, Context: cx})
	if err != nil {
		return err
	}
	total, cancel := context.WithTimeout(ctx, s.cfg.BlockingTotal)
	defer cancel()
	for _, h := range hooks {
		sc, err := s.scriptFor(ctx, &h)
		if err != nil {
			return fmt.Errorf("hooks: blocking %s: %w", ev.Type, err)
		}
		if sc != nil {
			err = s.callScriptBlocking(total, h, sc, body)
		} else {
			err = s.callBlocking(total, h, id, body)
		}
		metrics.BlockingHook(blockingResult(err))
		if err != nil {
			s.log.Warn("blocking hook stopped the operation", "event", ev.Type, "webhook_id", h.ID, "err", err.Error())
			return err
		}
	}
	return nil
}

// blockingResult names a blocking hook's outcome for the metrics: allowed,
// disallowed (a veto), or failed (timeout, unreachable, bad answer,
// script error): the hook did not decide.
func blockingResult(err error) string {
	if err == nil {
		return "allowed"
	}
	if e, ok := account.AsError(err); ok && e.Reason == ReasonDisallowed {
		return "disallowed"
	}
	return "failed"
}

func (s *Service) callBlocking(ctx context.Context, h store.Webhook, id string, body []byte) error {
	key, err := s.sealer.Open(h.Secret, []byte(h.ID))
	if err != nil {
		return fmt.Errorf("hooks: webhook %s: open secret: %w", h.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.BlockingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return blockingFailed(ReasonInvalidResponse, "The blocking hook's URL is not valid.", h)
	}
	signRequest(req, key, id, s.Now(), body)
	res, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return blockingFailed(ReasonTimeout, "The blocking hook did not answer in time, so nothing was changed. Try again, or disable the hook in Webhooks.", h)
		}
		if errors.Is(err, outbound.ErrRefused) {
			return blockingFailed(ReasonInvalidResponse, "The blocking hook's URL leads to a loopback, private or link-local address, which hooks may not reach, so nothing was changed. Change or disable the hook in Webhooks.", h)
		}
		return blockingFailed(ReasonInvalidResponse, "The blocking hook could not be reached, so nothing was changed. Try again, or disable the hook in Webhooks.", h)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		if ctx.Err() != nil {
			return blockingFailed(ReasonTimeout, "The blocking hook did not answer in time, so nothing was changed. Try again, or disable the hook in Webhooks.", h)
		}
		return blockingFailed(ReasonInvalidResponse, "The blocking hook's answer could not be read, so nothing was changed.", h)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return blockingFailed(ReasonInvalidResponse, fmt.Sprintf("The blocking hook answered HTTP %d, so nothing was changed.", res.StatusCode), h)
	}
	var ans blockingAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.IsAllowed == nil {
		return blockingFailed(ReasonInvalidResponse, `The blocking hook's answer was not {"is_allowed": true|false, ...}, so nothing was changed.`, h)
	}
	if !*ans.IsAllowed {
		return disallowed(ans)
	}
	return nil
}

func blockingFailed(reason, msg string, h store.Webhook) *account.Error {
	return &account.Error{Name: "ServiceUnavailable", Reason: reason, Message: msg, Info: map[string]any{"webhook_id": h.ID}}
}

// WebhookInput is the Add webhook form.
type WebhookInput struct {
	URL       string
	Blocking  bool
	AllEvents bool
	Events    []string
}

// CreateWebhook validates and adds a webhook. It returns the signing
// secret, the only time it is ever shown. The secret is stored encrypted.
func (s *Service) CreateWebhook(ctx context.Context, actor account.Actor, in WebhookInput) (*store.Webhook, string, error) {
	w, err := s.webhookFromInput(ctx, in)
	if err != nil {
		return nil, "", err
	}
	w.ID = uuid.NewString()
	key, err := newSecretKey()
	if err != nil {
		return nil, "", err
	}
	if w.Secret, err = s.sealer.Seal(key, []byte(w.ID)); err != nil {
		return nil, "", err
	}
	w.CreatedAt, w.UpdatedAt = s.Now(), s.Now()
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertWebhook(ctx, w); err != nil {
			return err
		}
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookCreated, Payload: webhookPayload(&w)})
	})
	if err != nil {
		return nil, "", fmt.Errorf("hooks: create webhook: %w", err)
	}
	return &w, FormatSecret(key), nil
}

// webhookFromInput validates in and returns the webhook it describes
// (without ID, secret or times): CreateWebhook and UpdateWebhook share it.
func (s *Service) webhookFromInput(ctx context.Context, in WebhookInput) (store.Webhook, error) {
	var errs []*account.Error
	u := strings.TrimSpace(in.URL)
	if msg := s.cfg.Outbound.CheckURL(ctx, u); msg != "" {
		errs = append(errs, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "url", Message: msg})
	}
	w := store.Webhook{URL: u, Kind: store.WebhookNonBlocking, Enabled: true}
	if in.Blocking {
		w.Kind = store.WebhookBlocking
		w.Events = []string{UserPreCreate}
	} else if in.AllEvents {
		w.AllEvents = true
	} else {
		allowed := map[string]bool{}
		for _, ti := range WebhookTypes() {
			allowed[ti.Type] = true
		}
		for _, t := range in.Events {
			if !allowed[t] {
				errs = append(errs, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "events", Message: "Unknown event type " + t + "."})
				break
			}
			if !slices.Contains(w.Events, t) {
				w.Events = append(w.Events, t)
			}
		}
		if len(in.Events) == 0 {
			errs = append(errs, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "events", Message: "Choose at least one event, or All events."})
		}
	}
	return w, account.JoinErrors(errs)
}

func webhookPayload(w *store.Webhook) map[string]any {
	return map[string]any{"webhook": map[string]any{"id": w.ID, "url": w.URL, "kind": w.Kind, "all_events": w.AllEvents,
		"events": append([]string{}, w.Events...), "enabled": w.Enabled}}
}

// Webhooks lists every webhook.
func (s *Service) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	return s.store.ListWebhooks(ctx)
}

// Webhook finds one webhook.
func (s *Service) Webhook(ctx context.Context, id string) (*store.Webhook, error) {
	return s.store.WebhookByID(ctx, id)
}

// SetEnabled enables or disables a webhook. Deliveries already queued for
// a disabled webhook are not sent (they show as failed; Redeliver sends
// them once it is enabled again).
func (s *Service) SetEnabled(ctx context.Context, actor account.Actor, id string, enabled bool) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		w, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		if w.Enabled == enabled {
			return nil
		}
		if err := tx.SetWebhookEnabled(ctx, id, enabled, s.Now()); err != nil {
			return err
		}
		w.Enabled = enabled
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookUpdated, Payload: webhookPayload(w)})
	})
}

// DeleteWebhook removes a webhook and its delivery log.
func (s *Service) DeleteWebhook(ctx context.Context, actor account.Actor, id string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		w, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteWebhook(ctx, id); err != nil {
			return err
		}
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookDeleted, Payload: webhookPayload(w)})
	})
}

// ErrNotDeliverable is returned when a test event or a redelivery is asked
// of a webhook that cannot take it.
var ErrNotDeliverable = errors.New("hooks: webhook cannot take deliveries")

// SendTest records a webhook.test event and queues it for this webhook
// alone. It returns the event's seq.
func (s *Service) SendTest(ctx context.Context, actor account.Actor, id string) (int64, error) {
	var seq int64
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		w, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		if !w.Enabled || w.Kind != store.WebhookNonBlocking {
			return ErrNotDeliverable
		}
		seq, err = s.record(ctx, tx, actor, account.Event{Type: WebhookTest, Payload: map[string]any{
			"webhook_id": w.ID, "message": "This is a test event from Latchkey. Your endpoint received it."}}, w.ID)
		return err
	})
	return seq, err
}

// Redeliver queues a delivery's event again for its webhook. The new
// delivery carries the same webhook-id (the event id), so a receiver that
// drops duplicates by ID drops it if it already has the event.
func (s *Service) Redeliver(ctx context.Context, actor account.Actor, webhookID string, deliveryID int64) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.DeliveryByID(ctx, deliveryID)
		if err != nil {
			return err
		}
		if d.WebhookID != webhookID {
			return fmt.Errorf("hooks: redeliver: %w", store.ErrNotFound)
		}
		w, err := tx.WebhookByID(ctx, webhookID)
		if err != nil {
			return err
		}
		if !w.Enabled {
			return ErrNotDeliverable
		}
		if _, err := tx.InsertDelivery(ctx, webhookID, d.EventSeq, s.Now()); err != nil {
			return err
		}
		return s.notify(ctx, tx)
	})
}

// Deliveries lists a webhook's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, webhookID string, before int64, limit int) ([]store.Delivery, error) {
	return s.store.ListDeliveries(ctx, webhookID, before, limit)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
