package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Notification channels: a commit that queues work notifies one, and the
// worker that does the work listens on it.
const (
	// ChannelOutbox: email or SMS messages are due in the outbox.
	ChannelOutbox = "latchkey_outbox"
	// ChannelDeliveries: webhook or hook deliveries are due.
	ChannelDeliveries = "latchkey_deliveries"
)

// Listener tuning: the first reconnect delay, doubled per failure up to
// the most; and how long the listener waits for a notification before it
// checks that its connection is still alive.
const (
	listenRetryFirst = 100 * time.Millisecond
	listenRetryMax   = 30 * time.Second
)

var listenPingEvery = 30 * time.Second // a variable for tests

// Notify tells every instance's listeners on channel that there is work,
// once the transaction commits (at once outside one). It is how a commit
// that queues outbox rows or deliveries wakes the workers:
//
//   - in this process, listeners are woken in Go after the commit;
//   - on PostgreSQL it also runs pg_notify inside the transaction, which
//     PostgreSQL delivers to the other instances' listeners only if the
//     transaction commits, and not before the rows are visible. The
//     payload names this instance, whose own listener ignores it (it was
//     woken in Go already).
//
// A notification is a hint: workers still poll, so one lost while a
// listener reconnects delays work by at most a poll interval.
func (t *Tx) Notify(ctx context.Context, channel string) error {
	if t.pg() {
		id := ""
		if t.n != nil {
			id = t.n.id
		}
		if _, err := t.q.ExecContext(ctx, `SELECT pg_notify(?, ?)`, channel, id); err != nil {
			return mapErr("notify "+channel, err)
		}
	}
	if n := t.n; n != nil {
		t.AfterCommit(func() { n.publish(channel) })
	}
	return nil
}

// Listen returns a channel that receives a value whenever Notify was
// called on channel and its transaction committed, in this process or, on
// PostgreSQL, in any instance on the same database; several
// notifications may be folded into one. It also receives one each time
// the PostgreSQL listener (re)connects, since notifications may have been
// missed while it was down. The channel is never closed; it stops
// receiving when ctx ends.
//
// On PostgreSQL the notifications arrive on one dedicated connection per
// Store (not from the pool), LISTENing on every channel asked for, and
// reconnecting with backoff when it drops.
func (s *Store) Listen(ctx context.Context, channel string) <-chan struct{} {
	c := make(chan struct{}, 1)
	s.n.subscribe(channel, c)
	context.AfterFunc(ctx, func() { s.n.unsubscribe(channel, c) })
	return c
}

// SetLog sets the logger of the store's background work (the PostgreSQL
// notification listener reports lost connections there).
func (s *Store) SetLog(l *slog.Logger) { s.n.log.Store(l) }

func (n *notifier) logger() *slog.Logger {
	if l := n.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// notifier fans notifications out to this process's listeners and, on
// PostgreSQL, runs the LISTEN connection.
type notifier struct {
	id  string // this instance, in pg_notify payloads
	url string // PostgreSQL: where the listener connects; "" on SQLite

	mu      sync.Mutex
	subs    map[string]map[chan struct{}]bool
	running bool
	changed chan struct{} // a channel was added: LISTEN on it
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	// For tests and logs: the listener's backend process while connected
	// (0 otherwise), and how many times it has connected.
	pid      atomic.Uint32
	connects atomic.Int64
	log      atomic.Pointer[slog.Logger] // SetLog; slog.Default() until set
	active   map[string]bool             // the channels LISTENed on the current connection
}

func newNotifier(pgURL string) *notifier {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{id: hex.EncodeToString(b[:]), url: pgURL, subs: map[string]map[chan struct{}]bool{},
		changed: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

func (n *notifier) subscribe(channel string, c chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[channel] == nil {
		n.subs[channel] = map[chan struct{}]bool{}
	}
	n.subs[channel][c] = true
	if n.url == "" || n.ctx.Err() != nil {
		return
	}
	if !n.running {
		n.running = true
		go n.run()
	}
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

func (n *notifier) unsubscribe(channel string, c chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.subs[channel], c)
}

// publish wakes this process's listeners on channel.
func (n *notifier) publish(channel string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.subs[channel] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (n *notifier) publishAll() {
	for _, ch := range n.channels() {
		n.publish(ch)
	}
}

func (n *notifier) channels() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.subs))
	for ch := range n.subs {
		out = append(out, ch)
	}
	return out
}

// close stops the listener and waits for it.
func (n *notifier) close() {
	n.mu.Lock()
	running := n.running
	n.cancel()
	n.mu.Unlock()
	if running {
		<-n.done
	}
}

// run keeps a LISTEN connection up until close, reconnecting with
// backoff; a connection that worked resets the backoff.
func (n *notifier) run() {
	defer close(n.done)
	delay := listenRetryFirst
	for {
		connected, err := n.session()
		n.pid.Store(0)
		if n.ctx.Err() != nil {
			return
		}
		if connected {
			delay = listenRetryFirst
		}
		n.logger().Warn("store: notification listener lost its connection; workers poll until it is back", "err", err, "retry_in", delay)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(delay):
		}
		if !connected {
			delay = min(2*delay, listenRetryMax)
		}
	}
}

// session connects, LISTENs on every channel asked for, wakes every
// listener (notifications may have been missed while disconnected), and
// relays notifications until the connection fails or close is called.
func (n *notifier) session() (connected bool, err error) {
	cfg, err := pgx.ParseConfig(n.url)
	if err != nil {
		return false, err
	}
	cfg.RuntimeParams["application_name"] = "latchkey-listener"
	cctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	listening := map[string]bool{}
	defer func() {
		n.mu.Lock()
		n.active = nil
		n.mu.Unlock()
	}()
	for {
		added := false
		for _, ch := range n.channels() {
			if listening[ch] {
				continue
			}
			if _, err := conn.Exec(n.ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return connected, fmt.Errorf("listen %s: %w", ch, err)
			}
			listening[ch], added = true, true
			n.mu.Lock()
			n.active = maps.Clone(listening)
			n.mu.Unlock()
		}
		if !connected {
			connected = true
			n.pid.Store(conn.PgConn().PID())
			n.connects.Add(1)
			n.publishAll()
		} else if added {
			n.publishAll()
		}
		msg, err := n.wait(conn)
		switch {
		case n.ctx.Err() != nil:
			return connected, nil
		case errors.Is(err, errListenChanged):
			continue
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: make sure the connection is alive, since
			// a dead peer may not close it.
			pctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return connected, fmt.Errorf("ping: %w", err)
			}
			continue
		case err != nil:
			return connected, err
		}
		if msg.Payload != n.id {
			n.publish(msg.Channel)
		}
	}
}

var errListenChanged = errors.New("store: listen: channels changed")

// wait waits for one notification, at most listenPingEvery (then
// context.DeadlineExceeded), and returns errListenChanged early when a
// new channel is asked for.
func (n *notifier) wait(conn *pgx.Conn) (*pgconnNotification, error) {
	ctx, cancel := context.WithTimeout(n.ctx, listenPingEvery)
	defer cancel()
	var changed atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-n.changed:
			changed.Store(true)
			cancel()
		case <-stop:
		}
	}()
	note, err := conn.WaitForNotification(ctx)
	if err == nil {
		if changed.Load() {
			// It arrived as the wait was cancelled: pass the change on to
			// the next round.
			select {
			case n.changed <- struct{}{}:
			default:
			}
		}
		return note, nil
	}
	switch {
	case n.ctx.Err() != nil:
		return nil, err
	case changed.Load():
		return nil, errListenChanged
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, context.DeadlineExceeded
	}
	return nil, err
}

type pgconnNotification = pgconn.Notification

// listens reports whether the listener has LISTENed on every one of
// channels on its current connection (tests wait for it).
func (n *notifier) listens(channels ...string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range channels {
		if !n.active[ch] {
			return false
		}
	}
	return true
}
