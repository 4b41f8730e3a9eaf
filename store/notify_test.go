package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitWake reports whether c receives within d.
func waitWake(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// drain empties c (a wake pending from an earlier step).
func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// In one process (both databases): a committed Notify wakes the listeners
// on its channel and no other; a rolled-back one wakes nobody; a listener
// whose context ended is not woken.
func TestNotifyInProcess(t *testing.T) { forEachBackend(t, tNotifyInProcess) }

func tNotifyInProcess(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outbox := s.Listen(ctx, ChannelOutbox)
	deliveries := s.Listen(ctx, ChannelDeliveries)
	waitListening(t, s)
	drain(outbox)
	drain(deliveries)

	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.Notify(ctx, ChannelOutbox); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if waitWake(outbox, 300*time.Millisecond) {
		t.Fatal("a rolled-back transaction's notify woke the listener")
	}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.Notify(ctx, ChannelOutbox) }); err != nil {
		t.Fatal(err)
	}
	if !waitWake(outbox, 2*time.Second) {
		t.Fatal("committed notify did not wake the listener")
	}
	if waitWake(deliveries, 300*time.Millisecond) {
		t.Fatal("a notify on another channel woke the deliveries listener")
	}
	// Outside a transaction it notifies at once.
	if err := s.Notify(ctx, ChannelDeliveries); err != nil {
		t.Fatal(err)
	}
	if !waitWake(deliveries, 2*time.Second) {
		t.Fatal("notify outside a transaction did not wake the listener")
	}
	lctx, lcancel := context.WithCancel(ctx)
	gone := s.Listen(lctx, ChannelOutbox)
	lcancel()
	time.Sleep(50 * time.Millisecond) // the unsubscribe runs after ctx ends
	drain(gone)
	if err := s.Notify(ctx, ChannelOutbox); err != nil {
		t.Fatal(err)
	}
	if waitWake(gone, 300*time.Millisecond) {
		t.Fatal("a listener whose context ended was woken")
	}
}

// waitListening waits until s's PostgreSQL listener has connected (at
// once on SQLite).
func waitListening(t *testing.T, s *Store) {
	t.Helper()
	if !s.pg {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.n.pid.Load() == 0 || !s.n.listens(ChannelOutbox, ChannelDeliveries) {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two instances on one PostgreSQL database: a commit on A wakes B's
// listener (PostgreSQL delivers the NOTIFY), not before the commit; and
// after B's listening connection is killed, B reconnects and the next
// notify from A wakes it again.
func TestPostgresNotifyAcrossInstances(t *testing.T) {
	url := pgURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var a, b *Store
	for _, p := range []**Store{&a, &b} {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		*p = s
	}
	woken := b.Listen(ctx, ChannelOutbox)
	otherB := b.Listen(ctx, ChannelDeliveries)
	waitListening(t, b)
	drain(woken)
	drain(otherB)

	// The notify is sent inside A's transaction; B hears of it only once
	// it commits.
	release := make(chan struct{})
	committed := make(chan error, 1)
	go func() {
		committed <- a.InTx(ctx, func(tx *Tx) error {
			if err := tx.Notify(ctx, ChannelOutbox); err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	if waitWake(woken, 500*time.Millisecond) {
		t.Fatal("B woken before A's transaction committed")
	}
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if !waitWake(woken, 2*time.Second) {
		t.Fatal("A's committed notify did not wake B within 2 s")
	}
	if waitWake(otherB, 200*time.Millisecond) {
		t.Fatal("B's deliveries listener woken by an outbox notify")
	}

	// Kill B's listening connection from the server side.
	pid := b.n.pid.Load()
	connects := b.n.connects.Load()
	var killed bool
	if err := a.db.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate listener %d: %v, %v", pid, killed, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.n.connects.Load() == connects || b.n.pid.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.n.pid.Load() == pid {
		t.Fatal("same backend after the kill")
	}
	// The reconnect itself wakes listeners (notifications may have been
	// lost meanwhile); then a new notify from A wakes B again.
	if !waitWake(woken, 2*time.Second) {
		t.Fatal("reconnect did not wake the listener")
	}
	time.Sleep(100 * time.Millisecond)
	drain(woken)
	if err := a.InTx(ctx, func(tx *Tx) error { return tx.Notify(ctx, ChannelOutbox) }); err != nil {
		t.Fatal(err)
	}
	if !waitWake(woken, 2*time.Second) {
		t.Fatal("after the reconnect, A's notify did not wake B within 2 s")
	}
}

// Quiet periods do not cost the listener its connection: after several
// keep-alive pings it is still on its first connection, and a notify from
// another instance still wakes it.
func TestPostgresListenerSurvivesQuiet(t *testing.T) {
	url := pgURL(t)
	listenPingEvery = 100 * time.Millisecond
	defer func() { listenPingEvery = 30 * time.Second }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := openURL(t, url)
	b, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	woken := b.Listen(ctx, ChannelDeliveries)
	deadline := time.Now().Add(10 * time.Second)
	for b.n.pid.Load() == 0 || !b.n.listens(ChannelDeliveries) {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // about ten quiet waits and pings
	drain(woken)
	if err := a.Notify(ctx, ChannelDeliveries); err != nil {
		t.Fatal(err)
	}
	if !waitWake(woken, 2*time.Second) {
		t.Fatal("after quiet waits, a notify from A did not wake B")
	}
	if c := b.n.connects.Load(); c != 1 {
		t.Fatalf("listener connected %d times during quiet waits, want 1", c)
	}
	b.Close() // before listenPingEvery is restored: its goroutine reads it
}
