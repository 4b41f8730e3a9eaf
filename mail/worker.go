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
	o.cancel, o.done, o.stop = cancel, make(chan struct{}), make(chan struct{})
	// Commits that queue messages, here or on another instance sharing
	// the PostgreSQL database, wake the worker through this.
	notified := o.st.Listen(runCtx, store.ChannelOutbox)
	go o.run(runCtx, o.done, notified)
	o.Wake()
	return nil
}

// Stop stops taking new messages, waits (up to ctx) for the ones being
// sent, and scrubs the WAL. Messages still queued wait for the next Start.
func (o *Outbox) Stop(ctx context.Context) error {
	o.runMu.Lock()
	cancel, done := o.cancel, o.done
	o.cancel, o.done = nil, nil
	if done != nil {
		close(o.stop)
	}
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

func (o *Outbox) lease() time.Duration {
	if o.cfg.Lease > 0 {
		return o.cfg.Lease
	}
	return 2*o.cfg.SendTimeout + time.Minute
}

// scrubRetry is how soon a WAL scrub that readers kept from finishing is
// tried again.
const scrubRetry = 5 * time.Second

// warmer is a Sender that can open its connections before messages are
// claimed, so that a message is marked sending only once a connection is
// ready for it: a crash then catches fewer messages in sending, each of
// which may arrive twice after the restart.
type warmer interface {
	Warm(ctx context.Context, n int) error
}

// run is the worker: it claims due messages while it has free senders,
// and otherwise sleeps until woken by a commit (notified), a finished
// send, the next due time or the poll interval.
func (o *Outbox) run(ctx context.Context, done chan struct{}, notified <-chan struct{}) {
	defer close(done)
	conc := o.cfg.Concurrency
	finished := make(chan struct{}, conc)
	inflight := 0
	var wiped atomic.Bool
	scrubPending := false
	var lastScrub, scrubAfter, lastSweep time.Time
	timer := time.NewTimer(o.cfg.PollInterval)
	defer timer.Stop()
	for {
		o.hb.Beat()
		if ctx.Err() != nil {
			break
		}
		sleep := o.cfg.PollInterval
		if inflight < conc && o.unsettled.Load() == 0 {
			o.warm(ctx, conc-inflight)
			rows, err := o.claim(conc - inflight)
			if err != nil {
				o.log.Error("mail: claim messages", "err", err)
				sleep = 5 * time.Second
			}
			for _, r := range rows {
				if o.adopt(r) {
					continue
				}
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
		}
		if time.Since(lastSweep) >= min(time.Minute, o.cfg.KeepFailedFor) {
			lastSweep = time.Now()
			if o.wipeFailed() {
				scrubPending = true
			}
		}
		if wiped.Swap(false) {
			scrubPending = true
		}
		// Scrub when the worker is idle, or at least every scrubRetry
		// under a steady stream; one that readers postpone is retried.
		if scrubPending {
			now := time.Now()
			next := scrubAfter
			if inflight > 0 {
				next = later(next, lastScrub.Add(scrubRetry))
			}
			if !now.Before(next) {
				lastScrub = now
				if scrubPending = !o.scrub(); scrubPending {
					scrubAfter = now.Add(scrubRetry)
					next = scrubAfter
				}
			}
			if scrubPending {
				sleep = min(sleep, max(time.Until(next), 10*time.Millisecond))
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
		case <-notified:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	for ; inflight > 0; inflight-- {
		<-finished
	}
	if wiped.Load() || scrubPending {
		o.scrub()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scrub truncates the WAL after secrets were wiped, so their old page
// images do not stay in it (secure_delete takes care of the main file).
// It never waits for readers; it reports whether it finished.
func (o *Outbox) scrub() bool {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	ok, err := o.st.ScrubWAL(context.Background())
	if err != nil {
		o.log.Error("mail: scrub WAL", "err", err)
	} else if !ok {
		o.log.Debug("mail: WAL scrub postponed by an open read transaction; will retry", "in", scrubRetry)
	}
	return ok && err == nil
}

// wipeFailed wipes the secrets of messages failed longer than
// KeepFailedFor ago. It reports whether it wiped any.
func (o *Outbox) wipeFailed() bool {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	ctx := context.Background()
	var n int
	err := o.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		now := o.Now()
		n, err = tx.WipeFailedOutbox(ctx, now.Add(-o.cfg.KeepFailedFor), now)
		return err
	})
	if err != nil {
		o.log.Error("mail: wipe failed messages", "err", err)
		return false
	}
	if n > 0 {
		o.log.Info("mail: wiped the secrets of failed messages past the retry window", "count", n, "kept_for", o.cfg.KeepFailedFor)
	}
	return n > 0
}

// warm asks the sender to have n connections ready before messages are
// claimed, when something is due.
func (o *Outbox) warm(ctx context.Context, n int) {
	w, ok := o.sender.(warmer)
	if !ok {
		return
	}
	next, err := o.st.NextOutboxDue(ctx)
	if err != nil || next == nil || next.After(o.Now()) {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
	defer cancel()
	if err := w.Warm(wctx, n); err != nil {
		// The sends report it, message by message.
		o.log.Debug("mail: open connections", "err", err)
	}
}

func (o *Outbox) claim(limit int) ([]store.OutboxMessage, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	if o.unsettled.Load() > 0 {
		return nil, nil
	}
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
	// Two attempts' worth: a reused connection that turns out dead is
	// retried once on a new one, with its own deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*o.cfg.SendTimeout)
	defer cancel()
	msg, err := o.render(ctx, &m)
	if err != nil {
		err = &PermanentError{err}
	} else {
		err = o.senderFor(&m).Send(ctx, o.cfg.From, msg)
	}
	return o.settle(m, err)
}

// adopt registers a claimed message as being sent by this process. A
// message this process is still sending (its lease ran out while the
// outcome could not be recorded) is not sent again: its sender takes the
// new claim's fencing token and adopt reports true.
func (o *Outbox) adopt(m store.OutboxMessage) bool {
	o.activeMu.Lock()
	defer o.activeMu.Unlock()
	if o.active == nil {
		o.active = map[int64]int{}
	}
	if _, ok := o.active[m.ID]; ok {
		o.active[m.ID] = m.Attempts
		o.log.Warn("mail: lease ran out while the outcome was not recorded; not sending again", "message_id", m.ID)
		return true
	}
	o.active[m.ID] = m.Attempts
	return false
}

// token is the current claim's attempts value for a message being sent.
func (o *Outbox) token(m *store.OutboxMessage) {
	o.activeMu.Lock()
	defer o.activeMu.Unlock()
	if a, ok := o.active[m.ID]; ok {
		m.Attempts = a
	}
}

func (o *Outbox) forget(id int64) {
	o.activeMu.Lock()
	delete(o.active, id)
	o.activeMu.Unlock()
}

// errStaleClaim: the outcome was not recorded because the row's claim
// (its attempts token) is no longer the one the update named.
var errStaleClaim = errors.New("mail: the claim on the message is no longer held")

// Recording an outcome is retried with this backoff until it lands.
const (
	settleRetryFirst = 50 * time.Millisecond
	settleRetryMax   = 5 * time.Second
)

// settle records the outcome of an attempt, retrying until it lands: a
// message the server accepted must not be sent again because the
// database was locked or the disk full for a while. Until it lands the
// worker claims nothing (unsettled > 0), the lease is pushed forward
// whenever the database takes a write, and should the lease still run
// out, adopt keeps the message from being sent again by this process.
// Only Stop ends the retries (a restart then sends the message again:
// at-least-once).
func (o *Outbox) settle(m store.OutboxMessage, sendErr error) bool {
	delay := settleRetryFirst
	o.unsettled.Add(1)
	defer func() {
		o.unsettled.Add(-1)
		o.forget(m.ID)
	}()
	for try := 1; ; try++ {
		o.token(&m)
		held := m.Attempts
		wiped, err := o.record(m, sendErr)
		if errors.Is(err, errStaleClaim) {
			// The row was claimed again while the send was finishing (its
			// lease ran out): adopt hands this sender the new claim's
			// token. Record under it; only when no newer claim of ours
			// exists does the row belong to someone else.
			o.token(&m)
			if m.Attempts != held {
				continue
			}
			o.log.Warn("mail: the claim on a sent message was taken over; not recording", "message_id", m.ID)
			return false
		}
		if err == nil {
			if try > 1 {
				o.log.Info("mail: outcome recorded after retries", "message_id", m.ID, "tries", try)
			}
			return wiped
		}
		o.log.Error("mail: record delivery outcome; will retry", "message_id", m.ID, "sent", sendErr == nil, "try", try, "err", err)
		o.extendLease(m)
		select {
		case <-time.After(delay):
		case <-o.stopping():
			o.token(&m)
			if _, err := o.record(m, sendErr); err != nil {
				o.log.Error("mail: stopping with an outcome not recorded; the message may be sent again after the restart", "message_id", m.ID, "err", err)
				return false
			}
			return sendErr == nil || IsPermanent(sendErr)
		}
		delay = min(2*delay, settleRetryMax)
	}
}

// stopping is closed once Stop has begun.
func (o *Outbox) stopping() <-chan struct{} {
	o.runMu.Lock()
	defer o.runMu.Unlock()
	return o.stop
}

// extendLease pushes the claim's lease forward while its outcome waits.
func (o *Outbox) extendLease(m store.OutboxMessage) {
	o.token(&m)
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	ctx := context.Background()
	_ = o.st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExtendOutboxLease(ctx, m.ID, m.Attempts, o.Now().Add(o.lease()))
		return err
	})
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
			if err != nil {
				return err
			}
			if !ok {
				return errStaleClaim
			}
			wiped = true
			o.log.Info("mail: delivered", "message_id", m.ID, "kind", m.Kind, "attempts", m.Attempts)
			if _, failing := o.failing.Load(m.Channel); failing {
				// The server is back: the messages waiting out a backoff
				// for the same failure go now, not in up to an hour, on
				// every instance (the notify wakes them all).
				n, err := tx.ReleaseOutboxBackoff(ctx, m.Channel, now)
				if err != nil {
					return err
				}
				if n > 0 {
					if err := o.notify(ctx, tx); err != nil {
						return err
					}
				}
				tx.AfterCommit(func() {
					o.failing.Delete(m.Channel)
					if n > 0 {
						o.log.Info("mail: server accepts again; retrying waiting messages now", "count", n)
						o.Wake()
					}
				})
			}
			return o.events.Record(ctx, tx, account.SystemActor, account.Event{Type: sentEvent(m.Channel), UserID: m.UserID, Payload: payload})
		}
		reason := sendErr.Error()
		next := now.Add(o.backoff(m.Attempts))
		if !IsPermanent(sendErr) && next.Sub(m.CreatedAt) <= o.cfg.GiveUpAfter {
			ok, err := tx.MarkOutboxRetry(ctx, m.ID, m.Attempts, next, reason, now)
			if err == nil && !ok {
				return errStaleClaim
			}
			if ok {
				o.log.Warn("mail: temporary failure, will retry", "message_id", m.ID, "attempts", m.Attempts, "next", next, "err", reason)
				tx.AfterCommit(func() { o.failing.Store(m.Channel, true) })
			}
			return err
		}
		if !IsPermanent(sendErr) {
			reason = "Gave up after " + o.cfg.GiveUpAfter.String() + " of retries. Last error: " + reason
		}
		ok, err := tx.MarkOutboxFailed(ctx, m.ID, m.Attempts, reason, now)
		if err != nil {
			return err
		}
		if !ok {
			return errStaleClaim
		}
		o.log.Warn("mail: failed", "message_id", m.ID, "kind", m.Kind, "attempts", m.Attempts, "err", reason)
		payload["error"] = reason
		return o.events.Record(ctx, tx, account.SystemActor, account.Event{Type: failedEvent(m.Channel), UserID: m.UserID, Payload: payload})
	})
	return wiped, err
}
