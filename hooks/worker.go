package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"latchkey/metrics"
	"latchkey/outbound"
	"latchkey/store"
)

// lease is how long a claimed delivery stays hidden from other claims: one
// attempt's timeout (a webhook's, or a TypeScript hook's 60 s at most) plus
// room. A crash mid-send makes it due again after.
func (s *Service) lease() time.Duration {
	if s.cfg.Lease > 0 {
		return s.cfg.Lease
	}
	return max(s.cfg.Timeout, MaxScriptTimeout) + 20*time.Second
}

// Run delivers queued webhooks until ctx is done: at start (so deliveries
// left by a previous process go out), whenever Record wakes it after a
// commit, whenever an attempt ends, and when the next retry is due. It
// returns once in-flight attempts have ended.
func (s *Service) Run(ctx context.Context) {
	defer s.inflight.Wait()
	// Commits that queue deliveries, here or on another instance sharing
	// the PostgreSQL database, wake the worker through this.
	notified := s.store.Listen(ctx, store.ChannelDeliveries)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.hb.Beat()
		s.deliverDue(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := time.Minute
		if busy := s.busyWebhooks(); len(busy) < s.cfg.Concurrency {
			if next, err := s.store.NextDeliveryDue(ctx, busy); err != nil {
				if ctx.Err() == nil {
					s.log.Error("webhook worker: next due", "err", err)
				}
			} else if next != nil {
				wait = min(max(next.Sub(s.Now()), 10*time.Millisecond), time.Minute)
			}
		} // else: every slot is busy; the first attempt to end wakes us.
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-notified:
		case <-timer.C:
		}
	}
}

// deliverDue starts attempts for due deliveries while a slot is free: at
// most Concurrency attempts run at once, and at most one per webhook, so
// a slow or dead endpoint holds one slot and never delays the other
// webhooks' deliveries; each webhook gets its events one at a time, in
// order (retries aside).
func (s *Service) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		skip := s.busyWebhooks() // one attempt at a time per webhook
		free := s.cfg.Concurrency - len(skip)
		if free <= 0 {
			return
		}
		var claimed []store.ClaimedDelivery
		err := s.store.InTx(ctx, func(tx *store.Tx) error {
			var err error
			claimed, err = tx.ClaimDueDeliveries(ctx, s.Now(), s.lease(), free, skip)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("webhook worker: claim", "err", err)
			}
			return
		}
		if len(claimed) == 0 {
			return
		}
		for _, c := range claimed {
			s.inflight.Add(1)
			s.busyMu.Lock()
			s.busyHooks[c.WebhookID] = true
			s.busyMu.Unlock()
			go func() {
				defer func() {
					s.busyMu.Lock()
					delete(s.busyHooks, c.WebhookID)
					s.busyMu.Unlock()
					s.inflight.Done()
					s.Wake()
				}()
				s.runHook(ctx, c)
			}()
		}
		if len(claimed) < free {
			return // every webhook with a due delivery now has its attempt
		}
	}
}

// maxChain is how many deliveries one hook gets in a row, without going
// back to the worker's loop, when every slot is busy and other hooks may
// be waiting for one.
const maxChain = 16

// Batches: a hook's runner claims its next deliveries in the transaction
// that records the previous ones, and loads them with two reads, so the
// queue's cost per delivery falls as the batch grows. A batch is sized
// to take about batchTarget at the pace of the slowest attempt of the one
// before (one delivery at first, at most maxBatch), so a slow endpoint
// gets one delivery at a time and nothing waits long for its record.
const (
	maxBatch    = 64
	batchTarget = 250 * time.Millisecond
)

// runHook delivers one webhook's due deliveries, first c, one at a time
// and in order, in batches: each batch's outcomes are recorded in one
// write transaction that also claims the next batch. Every delivery is
// recorded after its attempt, so a crash repeats an attempt (after its
// lease) but never loses one: at least once, as before.
func (s *Service) runHook(ctx context.Context, c store.ClaimedDelivery) {
	hookID := c.WebhookID
	batch := []held{{HeldDelivery: store.HeldDelivery{ID: c.ID}, until: s.Now().Add(s.lease())}}
	size, n := 1, 0
	for len(batch) > 0 {
		outs, back, slowest, ok := s.attemptBatch(ctx, hookID, batch)
		if !ok {
			return // the claims come due again when their lease ends
		}
		n += len(outs)
		size = max(1, min(maxBatch, int(batchTarget/max(slowest, time.Millisecond))))
		want := size
		switch {
		case ctx.Err() != nil || len(back) > 0:
			want = 0
		case len(s.busyWebhooks()) >= s.cfg.Concurrency:
			// Other hooks may be waiting for a slot: this one gets at
			// most maxChain in a row.
			want = min(want, maxChain-n)
		}
		batch = s.recordBatch(ctx, hookID, outs, back, want)
	}
}

// held is a claimed delivery and the end of its claim's lease.
type held struct {
	store.HeldDelivery
	until time.Time
}

// outcome is one attempt's record: the delivery, what to write, the
// script's console output (nil: leave it), and why it failed.
type outcome struct {
	d       *store.Delivery
	res     store.DeliveryResult
	output  *string
	sendErr error
}

// attemptBatch makes the batch's attempts in order. It stops early (and
// returns the rest to hand back) when shutdown begins or when a
// delivery's lease has too little left for a whole attempt: a hook that
// turned slow mid-batch must not run past its claim.
func (s *Service) attemptBatch(ctx context.Context, hookID string, batch []held) (outs []outcome, back []store.HeldDelivery, slowest time.Duration, ok bool) {
	ids := make([]int64, len(batch))
	for i, h := range batch {
		ids[i] = h.ID
	}
	// Loaded even when shutdown has begun, so that claims made just
	// before are handed back below rather than left hidden until their
	// lease ends.
	ds, evs, err := s.store.DeliveriesWithEvents(context.Background(), ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("webhook worker: load deliveries", "webhook_id", hookID, "err", err)
		}
		return nil, nil, 0, false
	}
	w, werr := s.store.WebhookByID(ctx, hookID)
	var sc *store.HookScript
	if werr == nil {
		sc, werr = s.scriptFor(ctx, w)
	}
	// Each attempt needs the lease to outlast it by a margin.
	need := s.lease() - 15*time.Second
	for i, h := range batch {
		d := ds[h.ID]
		if d == nil {
			continue // deleted with its webhook
		}
		if ctx.Err() != nil || (i > 0 && h.until.Sub(s.Now()) < need) {
			for _, r := range batch[i:] {
				back = append(back, r.HeldDelivery)
			}
			return outs, back, slowest, true
		}
		start := time.Now()
		o := s.attemptWhileFlushing(ctx, hookID, h.until, outs, d, w, sc, evs[d.EventSeq], werr, h.Due)
		if o.flushed > 0 {
			outs = outs[o.flushed:]
		}
		slowest = max(slowest, time.Since(start))
		outs = append(outs, o.outcome)
	}
	return outs, back, slowest, true
}

// flushAfter is how long an attempt may run before the batch's earlier
// outcomes are recorded without waiting for it: a receiver that stalls
// mid-batch must not leave answered attempts unrecorded, where a crash
// would send them again.
const flushAfter = 100 * time.Millisecond

// flushingOutcome is an attempt's outcome and how many of the batch's
// earlier outcomes were recorded while it ran.
type flushingOutcome struct {
	outcome
	flushed int
}

// attemptWhileFlushing makes one attempt; if it runs past flushAfter, it
// records the outcomes before it (pending) meanwhile, keeping the webhook
// marked busy until the attempt's lease ends (until).
func (s *Service) attemptWhileFlushing(ctx context.Context, hookID string, until time.Time, pending []outcome, d *store.Delivery, w *store.Webhook, sc *store.HookScript, ev *store.Event, werr error, due time.Time) flushingOutcome {
	if len(pending) == 0 {
		return flushingOutcome{outcome: s.attemptOne(ctx, d, w, sc, ev, werr, due)}
	}
	done := make(chan outcome, 1)
	go func() { done <- s.attemptOne(ctx, d, w, sc, ev, werr, due) }()
	timer := time.NewTimer(flushAfter)
	defer timer.Stop()
	select {
	case o := <-done:
		return flushingOutcome{outcome: o}
	case <-timer.C:
	}
	flushed := 0
	if s.flushOutcomes(hookID, pending, until) {
		flushed = len(pending)
	}
	return flushingOutcome{outcome: <-done, flushed: flushed}
}

// flushOutcomes records outcomes of a batch still in progress, in one
// write transaction that keeps the webhook busy for other instances
// until until. It reports whether they were recorded (if not, the batch's
// final record writes them).
func (s *Service) flushOutcomes(hookID string, outs []outcome, until time.Time) bool {
	err := s.store.InTx(context.Background(), func(tx *store.Tx) error {
		if err := s.recordOutcomes(tx, outs); err != nil {
			return err
		}
		return tx.KeepWebhookBusy(context.Background(), hookID, until)
	})
	if err != nil {
		s.log.Warn("webhook worker: record attempts early", "webhook_id", hookID, "deliveries", len(outs), "err", err)
		return false
	}
	s.logFailures(outs)
	return true
}

// attemptOne makes one delivery attempt and says what to record.
func (s *Service) attemptOne(ctx context.Context, d *store.Delivery, w *store.Webhook, sc *store.HookScript, ev *store.Event, werr error, due time.Time) outcome {
	o := outcome{d: d, res: store.DeliveryResult{Attempts: d.Attempts + 1}}
	var code int
	var latency time.Duration
	var sendErr error
	switch {
	case werr != nil:
		sendErr = werr
	case !w.Enabled:
		sendErr = errHookGone
	case ev == nil:
		sendErr = store.ErrNotFound
	case sc != nil:
		code, latency, o.output, sendErr = s.sendScript(ctx, d, sc, ev)
	default:
		code, latency, sendErr = s.sendHTTP(ctx, w, ev)
	}
	if ctx.Err() != nil {
		// Shutting down: hand the claim back so the next start sends it
		// at once, in its place.
		next := s.Now()
		if !due.IsZero() && due.Before(next) {
			next = due
		}
		o.res = store.DeliveryResult{Status: store.DeliveryPending, Attempts: d.Attempts, NextAt: &next,
			StatusCode: d.LastStatusCode, Latency: d.LastLatency, Error: d.LastError, At: s.Now()}
		o.output = nil
		return o
	}
	now := s.Now()
	res := &o.res
	res.StatusCode, res.Latency, res.At = code, latency, now
	switch {
	case sendErr == nil:
		res.Status = store.DeliverySucceeded
	case errors.Is(sendErr, errHookGone):
		res.Status, res.Error = store.DeliveryFailed, sendErr.Error()
	default:
		res.Error = sendErr.Error()
		next := now.Add(s.backoff(res.Attempts))
		if next.After(d.CreatedAt.Add(s.cfg.RetryFor)) {
			res.Status = store.DeliveryFailed
			res.Error = fmt.Sprintf("Gave up after %d attempts: %s", res.Attempts, sendErr.Error())
		} else {
			res.Status, res.NextAt = store.DeliveryPending, &next
		}
	}
	metrics.WebhookAttempt(sendErr == nil)
	o.sendErr = sendErr
	return o
}

// recordBatch records the batch's outcomes, hands back what was not
// attempted, and claims up to want next deliveries of the hook, in one
// write transaction (which survives a shutdown that began during the
// batch). It returns the new claims.
func (s *Service) recordBatch(ctx context.Context, hookID string, outs []outcome, back []store.HeldDelivery, want int) []held {
	var next []store.HeldDelivery
	var claimedAt time.Time
	err := s.store.InTx(context.Background(), func(tx *store.Tx) error {
		if err := s.recordOutcomes(tx, outs); err != nil {
			return err
		}
		if err := tx.ReleaseDeliveries(context.Background(), back, s.Now()); err != nil {
			return err
		}
		if want <= 0 || ctx.Err() != nil {
			return nil
		}
		var err error
		claimedAt = s.Now()
		next, err = tx.ClaimNextDeliveries(ctx, hookID, claimedAt, s.lease(), want)
		return err
	})
	if err != nil {
		s.log.Error("webhook worker: record attempts", "webhook_id", hookID, "deliveries", len(outs), "err", err)
		return nil
	}
	s.logFailures(outs)
	out := make([]held, len(next))
	for i, h := range next {
		out[i] = held{HeldDelivery: h, until: claimedAt.Add(s.lease())}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// recordOutcomes writes attempts' outcomes (and scripts' console output).
func (s *Service) recordOutcomes(tx *store.Tx, outs []outcome) error {
	for _, o := range outs {
		if err := tx.FinishDeliveryAttempt(context.Background(), o.d.ID, o.res); err != nil {
			return err
		}
		if o.output != nil {
			if err := tx.SetDeliveryOutput(context.Background(), o.d.ID, *o.output); err != nil {
				return err
			}
		}
	}
	return nil
}

// logFailures logs the failed attempts among recorded outcomes.
func (s *Service) logFailures(outs []outcome) {
	for _, o := range outs {
		if o.sendErr != nil {
			s.log.Warn("webhook delivery failed", "delivery_id", o.d.ID, "webhook_id", o.d.WebhookID, "event", EventID(o.d.EventSeq),
				"attempts", o.res.Attempts, "status", o.res.Status, "err", o.sendErr.Error())
		}
	}
}

// backoff is the delay before retry n (n >= 1): RetryBase doubled per
// attempt, capped at RetryMax.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.RetryBase
	for i := 1; i < n && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.RetryMax)
}

var errHookGone = errors.New("The webhook is disabled; enable it and use Redeliver to send this event.")

// sendHTTP POSTs the event to webhook w, signed, and reports the status
// code, the latency and why it failed (nil on a 2xx).
func (s *Service) sendHTTP(ctx context.Context, w *store.Webhook, ev *store.Event) (int, time.Duration, error) {
	key, err := s.sealer.Open(w.Secret, []byte(w.ID))
	if err != nil {
		return 0, 0, fmt.Errorf("the signing secret could not be decrypted (was LATCHKEY_SECRET_KEY changed?)")
	}
	env := EnvelopeOf(ev)
	body, err := json.Marshal(env)
	if err != nil {
		return 0, 0, err
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("bad URL: %w", err)
	}
	signRequest(req, key, env.ID, s.Now(), body)
	start := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return 0, time.Since(start), fmt.Errorf("no answer within %s", s.cfg.Timeout)
		}
		if errors.Is(err, outbound.ErrRefused) {
			return 0, time.Since(start), errors.New("refused: the URL leads to a loopback, private, link-local or reserved address, which webhooks may not reach")
		}
		return 0, time.Since(start), fmt.Errorf("request failed: %w", unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	latency := time.Since(start)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, latency, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return res.StatusCode, latency, nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// busyWebhooks lists the webhooks with an attempt running now.
func (s *Service) busyWebhooks() []string {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	ids := make([]string, 0, len(s.busyHooks))
	for id := range s.busyHooks {
		ids = append(ids, id)
	}
	return ids
}
