package mail

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// Start puts messages a previous process left in sending back in the
// queue, makes every queued message due now, and starts the worker.
func (o *Outbox) Start(ctx context.Context) error {
	o.runMu.Lock()
	defer o.runMu.Unlock()
	if o.done != nil {
		return errors.New("mail: outbox worker already running")
	}
	var n int
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.RequeueAtStart(ctx, o.Now())
		return err
	})
	if err != nil {
		return err
	}
	if n > 0 {
		o.log.Warn("mail: requeued messages left in sending by an earlier run; they may arrive twice", "count", n)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.cancel, o.done = cancel, make(chan struct{})
	go o.run(runCtx, o.done)
	o.Wake()
	return nil
}

// Stop stops taking new messages, waits (up to ctx) for the ones being
// sent, and scrubs the WAL. Messages still queued wait for the next Start.
func (o *Outbox) Stop(ctx context.Context) error {
	o.runMu.Lock()
	cancel, done := o.cancel, o.done
	o.cancel, o.done = nil, nil
	o.runMu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *Outbox) lease() time.Duration { return 2*o.cfg.SendTimeout + time.Minute }

// run is the worker: it claims due messages while it has free senders,
// and otherwise sleeps until woken by a commit, a finished send, the next
// due time or the poll interval.
func (o *Outbox) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	conc := o.cfg.Concurrency
	finished := make(chan struct{}, conc)
	inflight := 0
	var wiped atomic.Bool
	timer := time.NewTimer(o.cfg.PollInterval)
	defer timer.Stop()
	for {
		o.hb.beat()
		if ctx.Err() != nil {
			break
		}
		sleep := o.cfg.PollInterval
		if inflight < conc {
			rows, err := o.claim(conc - inflight)
			if err != nil {
				o.log.Error("mail: claim messages", "err", err)
				sleep = 5 * time.Second
			}
			for _, r := range rows {
				inflight++
				go func() {
					if o.deliver(r) {
						wiped.Store(true)
					}
					finished <- struct{}{}
				}()
			}
			if len(rows) > 0 {
				continue
			}
			if err == nil {
				if next, err := o.st.NextOutboxDue(context.Background()); err == nil && next != nil {
					sleep = min(sleep, max(next.Sub(o.Now()), time.Millisecond))
				}
			}
			if inflight == 0 && wiped.Swap(false) {
				o.scrub()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(sleep)
		select {
		case <-finished:
			inflight--
		case <-o.wake:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	for ; inflight > 0; inflight-- {
		<-finished
	}
	if wiped.Load() {
		o.scrub()
	}
}

// scrub truncates the WAL after secrets were wiped, so their old page
// images do not stay in it (secure_delete takes care of the main file).
func (o *Outbox) scrub() {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	if ok, err := o.st.ScrubWAL(context.Background()); err != nil {
		o.log.Error("mail: scrub WAL", "err", err)
	} else if !ok {
		o.log.Debug("mail: WAL scrub postponed by readers")
	}
}

func (o *Outbox) claim(limit int) ([]store.OutboxMessage, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	var rows []store.OutboxMessage
	ctx := context.Background()
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		now := o.Now()
		var err error
		rows, err = tx.ClaimOutbox(ctx, now, now.Add(o.lease()), limit)
		return err
	})
	return rows, err
}

// deliver sends one claimed message and records the outcome. It reports
// whether the secret was wiped (delivered or abandoned).
func (o *Outbox) deliver(m store.OutboxMessage) bool {
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.SendTimeout)
	defer cancel()
	msg, err := o.render(ctx, &m)
	if err != nil {
		err = &PermanentError{err}
	} else {
		err = o.senderFor(&m).Send(ctx, o.cfg.From, msg)
	}
	wiped, rerr := o.record(m, err)
	if rerr != nil {
		// The claim's lease runs out and the message is tried again.
		o.log.Error("mail: record delivery outcome", "message_id", m.ID, "err", rerr)
	}
	return wiped
}

// record stores the outcome of an attempt and its event in one transaction.
func (o *Outbox) record(m store.OutboxMessage, sendErr error) (bool, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	ctx := context.Background()
	now := o.Now()
	wiped := false
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		payload := map[string]any{"message_id": m.ID, "kind": m.Kind, "recipient": m.Recipient, "attempts": m.Attempts}
		if sendErr == nil {
			ok, err := tx.MarkOutboxDelivered(ctx, m.ID, m.Attempts, now)
			if err != nil || !ok {
				return err
			}
			wiped = true
			o.log.Info("mail: delivered", "message_id", m.ID, "kind", m.Kind, "attempts", m.Attempts)
			return o.events.Record(ctx, tx, account.SystemActor, account.Event{Type: sentEvent(m.Channel), UserID: m.UserID, Payload: payload})
		}
		reason := sendErr.Error()
		next := now.Add(o.backoff(m.Attempts))
		if !IsPermanent(sendErr) && next.Sub(m.CreatedAt) <= o.cfg.GiveUpAfter {
			ok, err := tx.MarkOutboxRetry(ctx, m.ID, m.Attempts, next, reason, now)
			if ok {
				o.log.Warn("mail: temporary failure, will retry", "message_id", m.ID, "attempts", m.Attempts, "next", next, "err", reason)
			}
			return err
		}
		if !IsPermanent(sendErr) {
			reason = "Gave up after " + o.cfg.GiveUpAfter.String() + " of retries. Last error: " + reason
		}
		ok, err := tx.MarkOutboxFailed(ctx, m.ID, m.Attempts, reason, now)
		if err != nil || !ok {
			return err
		}
		wiped = true
		o.log.Warn("mail: failed", "message_id", m.ID, "kind", m.Kind, "attempts", m.Attempts, "err", reason)
		payload["error"] = reason
		return o.events.Record(ctx, tx, account.SystemActor, account.Event{Type: failedEvent(m.Channel), UserID: m.UserID, Payload: payload})
	})
	return wiped, err
}
