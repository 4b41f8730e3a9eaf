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
				// Chain: each attempt's record also claims the hook's
				// next due delivery, while no other hook waits for a slot
				// (or for maxChain deliveries when one may).
				for n, id := 1, c.ID; id != 0; n++ {
					id = s.attemptNext(ctx, id, c.WebhookID, n < maxChain || len(s.busyWebhooks()) < s.cfg.Concurrency)
				}
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

// attempt makes one delivery attempt and records its outcome.
func (s *Service) attempt(ctx context.Context, id int64) {
	s.attemptNext(ctx, id, "", false)
}

// attemptNext makes one delivery attempt and records its outcome; when
// chain is set it claims, in the same write transaction, the next due
// delivery of the same webhook (hookID, which stays busy throughout, so
// no other claim can take it) and returns its ID, 0 when there is none.
func (s *Service) attemptNext(ctx context.Context, id int64, hookID string, chain bool) int64 {
	// Loaded even when shutdown has begun, so that a claim made just before
	// is handed back below rather than left hidden until its lease ends.
	d, err := s.store.DeliveryByID(context.Background(), id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			s.log.Error("webhook worker: load delivery", "delivery_id", id, "err", err)
		}
		return 0
	}
	res := store.DeliveryResult{Attempts: d.Attempts + 1}
	code, latency, sendErr := s.send(ctx, d)
	if ctx.Err() != nil {
		// Shutting down: hand the claim back so the next start sends it at once.
		_ = s.store.FinishDeliveryAttempt(context.Background(), id, store.DeliveryResult{Status: store.DeliveryPending,
			Attempts: d.Attempts, NextAt: ptr(s.Now()), StatusCode: d.LastStatusCode, Latency: d.LastLatency, Error: d.LastError, At: s.Now()})
		return 0
	}
	now := s.Now()
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
	var next int64
	// The record survives a shutdown that began during the attempt.
	err = s.store.InTx(context.Background(), func(tx *store.Tx) error {
		if err := tx.FinishDeliveryAttempt(context.Background(), id, res); err != nil {
			return err
		}
		if !chain || hookID != d.WebhookID || ctx.Err() != nil {
			return nil
		}
		var err error
		next, err = tx.ClaimNextDelivery(ctx, hookID, s.Now(), s.lease())
		return err
	})
	if err != nil {
		s.log.Error("webhook worker: record attempt", "delivery_id", id, "err", err)
		return 0
	}
	if sendErr != nil {
		s.log.Warn("webhook delivery failed", "delivery_id", id, "webhook_id", d.WebhookID, "event", EventID(d.EventSeq),
			"attempts", res.Attempts, "status", res.Status, "err", sendErr.Error())
	}
	return next
}

func ptr[T any](v T) *T { return &v }

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

// send POSTs the delivery's event, signed, and reports the status code,
// the latency and why it failed (nil on a 2xx).
func (s *Service) send(ctx context.Context, d *store.Delivery) (int, time.Duration, error) {
	w, err := s.store.WebhookByID(ctx, d.WebhookID)
	if err != nil {
		return 0, 0, err
	}
	if !w.Enabled {
		return 0, 0, errHookGone
	}
	ev, err := s.store.EventBySeq(ctx, d.EventSeq)
	if err != nil {
		return 0, 0, err
	}
	if sc, err := s.scriptFor(ctx, w); err != nil {
		return 0, 0, err
	} else if sc != nil {
		return s.sendScript(ctx, d, sc, ev)
	}
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
