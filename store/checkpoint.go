package store

import (
	"context"
	"database/sql"
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
// (measured: 6–14 % I/O wait and a quarter of both cores idle under token
// exchange load). Latchkey's write connection never checkpoints; a
// background goroutine does, on a connection of its own, with PASSIVE
// checkpoints (they never wait for readers or writers and never block
// them), while writes happen (see checkpointEvery). Commits themselves do
// not fsync (synchronous=NORMAL in WAL mode), so the writer no longer
// waits for the disk at all.

// writerDriver is the SQLite driver of the write connection: it turns
// automatic checkpoints off on every connection it opens.
const writerDriver = "sqlite3_latchkey_writer"

var registerWriter sync.Once

func writerDriverName() string {
	registerWriter.Do(func() {
		sql.Register(writerDriver, &sqlite3.SQLiteDriver{
			ConnectHook: func(c *sqlite3.SQLiteConn) error {
				_, err := c.Exec("PRAGMA wal_autocheckpoint = 0", nil)
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
		var busy, frames, done int
		_ = c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
	}
}

// close stops the checkpointer and closes its connection; closing the
// last connection checkpoints what is left.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
