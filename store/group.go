package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Group commit.
//
// SQLite has one writer. When many requests each make a small write at
// the same moment (an OpenID Connect token exchange marks its code used and
// stores two tokens), the writer's turn, BEGIN and COMMIT (the WAL frames
// for the same few pages, again and again) cost more than the writes, and
// every hand-over of the writer waits for a goroutine to be scheduled
// while the CPU may sit idle. InTxGrouped lets the writes that queue up
// meanwhile share one transaction: each runs in its own SAVEPOINT, so an
// error undoes only that caller's writes and is returned only to it; one
// COMMIT makes them all durable together.
//
// One goroutine per Store, the group writer, runs the batches: it takes
// every waiting request (up to maxGroup), runs them on the write
// connection, commits, answers them, and goes on while requests wait. It
// keeps the writer busy without a hand-over between batches; a caller
// waits for at most the batch in front of it and its own.

// maxGroup bounds a batch: the time one COMMIT makes the callers wait.
const maxGroup = 64

type groupReq struct {
	ctx   context.Context
	fn    func(tx *Tx) error
	after []func()
	err   error
	// panicked is what fn panicked with: re-raised on the caller's
	// goroutine, where the HTTP server recovers it, not on the writer's.
	panicked any
	done     chan struct{}
}

type groupQueue struct {
	mu      sync.Mutex
	wake    *sync.Cond
	pending []*groupReq
	running bool // the group writer goroutine is started
	closed  bool
	exited  chan struct{}
	// batches counts the transactions run, for tests and metrics.
	batches atomic.Int64
}

// errGroupAborted is what the other callers of a batch get when one
// caller's error ended the whole transaction (SQLite rolls back on a full
// disk, an I/O error or an interrupted write): nothing of theirs was
// written, and trying again is safe.
var errGroupAborted = errors.New("the shared write transaction was rolled back")

// InTxGrouped is InTx for small, frequent writes: fn may share its
// transaction with other InTxGrouped callers (group commit), isolated from
// them by a savepoint. fn sees its own writes and those committed before;
// its error rolls back only its own writes. After-commit functions run as
// in InTx; a panic in fn is raised again in the caller. fn runs on the
// group writer's goroutine: it must be quick and touch nothing but tx (a
// write through the Store itself, InTx or InTxGrouped, would wait for the
// writer that is running fn). A caller waits at most the write budget in
// the queue, then gets ErrBusy; its context ending while it waits
// withdraws it. On PostgreSQL, which has many writers, it is InTx.
func (s *Store) InTxGrouped(ctx context.Context, fn func(tx *Tx) error) error {
	if s.pg {
		return s.InTx(ctx, fn)
	}
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	g := &s.group
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errors.New("store: closed")
	}
	if !g.running {
		g.running = true
		g.wake = sync.NewCond(&g.mu)
		g.exited = make(chan struct{})
		go s.groupWriter()
	}
	g.pending = append(g.pending, r)
	g.wake.Signal()
	g.mu.Unlock()
	// Wait for the answer. A caller whose context ends, or who has waited
	// the write budget, leaves the queue if its request is still there;
	// once taken into a batch, it waits for the batch (at most one
	// transaction), so what it is told is what happened.
	t := time.NewTimer(s.writeTimeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-ctx.Done():
		if s.group.withdraw(r) {
			return fmt.Errorf("store: wait for the writer: %w", ctx.Err())
		}
		<-r.done
	case <-t.C:
		if s.group.withdraw(r) {
			return fmt.Errorf("%w: no turn on the write connection within %s", ErrBusy, s.writeTimeout)
		}
		<-r.done
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	if r.err != nil {
		return r.err
	}
	for _, f := range r.after {
		f()
	}
	return nil
}

// withdraw takes r out of the queue; false when the group writer has
// already taken it into a batch.
func (g *groupQueue) withdraw(r *groupReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, p := range g.pending {
		if p == r {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			return true
		}
	}
	return false
}

// groupWriter runs batches until the Store closes.
func (s *Store) groupWriter() {
	g := &s.group
	defer close(g.exited)
	for {
		g.mu.Lock()
		for len(g.pending) == 0 && !g.closed {
			g.wake.Wait()
		}
		if len(g.pending) == 0 {
			g.mu.Unlock()
			return
		}
		n := min(len(g.pending), maxGroup)
		batch := make([]*groupReq, n)
		copy(batch, g.pending)
		g.pending = append(g.pending[:0], g.pending[n:]...)
		g.mu.Unlock()

		s.runGroup(batch)
		g.batches.Add(1)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// closeGroup stops the group writer once the requests already queued are
// answered.
func (s *Store) closeGroup() {
	g := &s.group
	g.mu.Lock()
	g.closed = true
	running := g.running
	if running {
		g.wake.Broadcast()
	}
	g.mu.Unlock()
	if running {
		<-g.exited
	}
}

// runGroup runs batch in one transaction and sets each request's result.
func (s *Store) runGroup(batch []*groupReq) {
	failAll := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
			r.after = nil
		}
	}
	// The writer's turn and the statements that frame the batch belong to
	// no single caller: a caller that gives up must not cut the others'.
	bg := context.Background()
	release, err := s.acquireWrite(bg)
	if err != nil {
		failAll(err)
		return
	}
	defer release()
	connCtx, cancel := context.WithTimeout(bg, s.writeTimeout)
	conn, err := s.db.Conn(connCtx)
	cancel()
	if err != nil {
		failAll(fmt.Errorf("store: the write connection: %w: %w", err, ErrBusy))
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		failAll(mapErr("begin", err))
		return
	}
	abort := func(cause error) {
		_, _ = conn.ExecContext(bg, "ROLLBACK")
		failAll(fmt.Errorf("store: %w (%v): %w", errGroupAborted, cause, ErrBusy))
	}
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("store: wait for the writer: %w", err)
			continue
		}
		if _, err := conn.ExecContext(bg, "SAVEPOINT grouped"); err != nil {
			abort(err)
			return
		}
		var after []func()
		tx := &Tx{q: detached{conn}, inTx: true, afterCommit: &after, n: s.n}
		if err := r.run(tx); err != nil {
			r.err = err
			if !inTransaction(conn) {
				// SQLite ended the whole transaction: everyone's writes
				// so far are gone.
				abort(err)
				return
			}
			if _, err := conn.ExecContext(bg, "ROLLBACK TO grouped"); err != nil {
				// The failed request's writes could not be undone alone.
				abort(err)
				return
			}
			if _, err := conn.ExecContext(bg, "RELEASE grouped"); err != nil {
				abort(err)
				return
			}
			continue
		}
		if !inTransaction(conn) {
			// fn went on after SQLite had ended the transaction (it
			// swallowed an error): its later statements committed on
			// their own, which the batch cannot undo or vouch for.
			abort(errors.New("the transaction ended inside a grouped write"))
			return
		}
		if _, err := conn.ExecContext(bg, "RELEASE grouped"); err != nil {
			abort(err)
			return
		}
		r.after = after
	}
	if !inTransaction(conn) {
		abort(errors.New("transaction ended early"))
		return
	}
	if _, err := conn.ExecContext(bg, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(bg, "ROLLBACK")
		failAll(mapErr("commit", err))
	}
}

// run calls fn, turning a panic into an error for the batch and keeping
// the panic for the caller.
func (r *groupReq) run(tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("store: grouped write panicked: %v", p)
		}
	}()
	return r.fn(tx)
}

// inTransaction reports whether the write connection is inside a
// transaction (SQLite's autocommit flag is off).
func inTransaction(conn *sql.Conn) bool {
	in := false
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			in = !c.AutoCommit()
		}
		return nil
	})
	return in
}

// detached runs a grouped caller's statements without its context's
// cancellation: a caller that gives up mid-batch must not interrupt the
// shared transaction (SQLite rolls back a whole transaction when a write
// in it is interrupted), and a statement with a cancellable context costs
// the driver a goroutine and two hand-overs, on the writer's critical path.
type detached struct{ q queryer }

func (d detached) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.q.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.q.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.q.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}
