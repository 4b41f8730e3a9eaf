package store

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Checkpoints off the write path.
//
// By default SQLite checkpoints from the connection that commits when the
// WAL passes 1,000 pages: that commit copies the pages into the database
// file and waits for two fsyncs while it holds the one write connection,
// so every write queued behind it waits too, and the CPU sits idle
// (measured: 6-14 % I/O wait and a quarter of both cores idle under token
// exchange load). Here a background goroutine checkpoints, on a
// connection of its own, with PASSIVE checkpoints (they never wait for
// readers or writers and never block them) while writes happen.
//
// A checkpoint beside a busy writer cannot let the WAL start over: SQLite
// rewinds the log only when a write begins and every frame has been
// copied, and the writer keeps appending while the background copy runs.
// So the write connection keeps a backstop: when the WAL reaches
// walBackstopPages it checkpoints in its commit, as SQLite does by
// default, but by then the background has copied all but the last
// frames, so the commit copies few pages, and the next write rewinds the
// log. journal_size_limit then cuts the file back. Commits themselves do
// not fsync (synchronous=NORMAL in WAL mode).

// walBackstopPages is when the write connection checkpoints itself (16 MB
// of 4 KB pages): at 1,000 token exchanges a second about once a second,
// against five times a second with SQLite's default of 1,000.
const walBackstopPages = 4000

// walSizeLimit is what the WAL file is cut back to when the log rewinds.
const walSizeLimit = 64 << 20

// writerDriver is the SQLite driver of the write connection: it sets the
// backstop and the WAL size limit on every connection it opens.
const writerDriver = "sqlite3_latchkey_writer"

var registerWriter sync.Once

func writerDriverName() string {
	registerWriter.Do(func() {
		sql.Register(writerDriver, &sqlite3.SQLiteDriver{
			ConnectHook: func(c *sqlite3.SQLiteConn) error {
				_, err := c.Exec("PRAGMA wal_autocheckpoint = "+strconv.Itoa(walBackstopPages)+
					"; PRAGMA journal_size_limit = "+strconv.Itoa(walSizeLimit), nil)
				return err
			},
		})
	})
	return writerDriver
}

// The checkpointer looks every checkpointEvery and checkpoints when
// checkpointAfterWrites write transactions have committed since the last
// run, or checkpointIdle has passed with fewer. At 1,000 token exchanges
// a second (about 100 grouped transactions) that is every 0.3 s; at 30
// sign-ins a second, every second.
const (
	checkpointEvery       = 100 * time.Millisecond
	checkpointAfterWrites = 32
	checkpointIdle        = time.Second
)

type checkpointer struct {
	db     *sql.DB
	writes atomic.Int64 // bumped each time the write connection is released
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	err    error
	// mu is held while a checkpoint runs; held pauses them
	// (HoldCheckpoints).
	mu   sync.Mutex
	held atomic.Int32
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	seen, last := c.writes.Load(), time.Now()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// Often enough to keep the WAL short under load, seldom enough
		// that a trickle of writes does not pay a checkpoint each.
		n := c.writes.Load()
		if n == seen || (n-seen < checkpointAfterWrites && time.Since(last) < checkpointIdle) {
			continue
		}
		seen, last = n, time.Now()
		c.checkpoint()
	}
}

// checkpoint runs one PASSIVE checkpoint unless checkpoints are held.
func (c *checkpointer) checkpoint() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held.Load() > 0 {
		return
	}
	var busy, frames, done int
	_ = c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
}

// close stops the checkpointer and closes its connection; closing the
// last connection checkpoints what is left.
// Closing twice is safe (Store.Close may be called more than once).
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}

// HoldCheckpoints stops the background checkpoints (waiting for one that
// is running) until the returned function is called: for a reader that
// needs the database file and its WAL unchanged while no one writes, such
// as a test comparing the files before and after a copy. The write
// connection's backstop still checkpoints when the WAL reaches its size.
func (s *Store) HoldCheckpoints() (resume func()) {
	if s.ckpt == nil {
		return func() {}
	}
	s.ckpt.held.Add(1)
	// Wait for a checkpoint that is running; the next ones see held. The
	// checkpointer never waits for the hold, so Close works while one
	// is in place.
	s.ckpt.mu.Lock()
	s.ckpt.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { s.ckpt.held.Add(-1) }) }
}
