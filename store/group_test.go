package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func groupTable(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.db.Exec(`CREATE TABLE gtest (k TEXT PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
}

func groupRows(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT k FROM gtest`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out[k] = true
	}
	return out
}

// holdGroupWriter starts the group writer and keeps it inside a batch
// until release is called: grouped requests made meanwhile queue.
func holdGroupWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.InTxGrouped(context.Background(), func(tx *Tx) error { close(held); <-hold; return nil })
	}()
	<-held
	var once sync.Once
	return func() { once.Do(func() { close(hold) }) }
}

// waitPending waits until n grouped requests are queued.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.group.mu.Lock()
		got := len(s.group.pending)
		s.group.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Requests that queue while the writer is busy share one transaction; a
// failing request's writes are undone and its error is its own, the
// others commit, and after-commit functions run only for those that did.
func TestInTxGroupedSharesACommitAndIsolatesErrors(t *testing.T) {
	s := openTest(t)
	groupTable(t, s)
	ctx := context.Background()
	release := holdGroupWriter(t, s)
	before := s.group.batches.Load()

	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	var afterMu sync.Mutex
	after := map[int]bool{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InTxGrouped(ctx, func(tx *Tx) error {
				if _, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES (?)`, fmt.Sprint(i)); err != nil {
					return err
				}
				tx.AfterCommit(func() {
					afterMu.Lock()
					after[i] = true
					afterMu.Unlock()
				})
				if i%3 == 0 {
					// A second insert of the same key: a constraint error
					// after a write that must be undone with it.
					_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES (?)`, fmt.Sprint(i))
					return mapErr("insert", err)
				}
				return nil
			})
		}()
	}
	waitPending(t, s, n)
	release()
	wg.Wait()

	got := groupRows(t, s)
	for i := 0; i < n; i++ {
		k := fmt.Sprint(i)
		if i%3 == 0 {
			if !errors.Is(errs[i], ErrConflict) || got[k] || after[i] {
				t.Errorf("request %d: err %v, row %v, after-commit ran %v; want ErrConflict, no row, no after-commit", i, errs[i], got[k], after[i])
			}
			continue
		}
		if errs[i] != nil || !got[k] || !after[i] {
			t.Errorf("request %d: err %v, row %v, after-commit ran %v; want it committed", i, errs[i], got[k], after[i])
		}
	}
	// 40 requests queued at once: one batch of 40 (maxGroup is 64), after
	// the batch that held the writer (counted when it ended).
	if b := s.group.batches.Load() - before - 1; b != 1 {
		t.Errorf("%d requests took %d transactions, want 1", n, b)
	}
}

// When one request's error ends the whole transaction, nobody's writes
// stay, every other request is told so with a busy error (safe to try
// again), and the next batch works.
func TestInTxGroupedAbortedTransaction(t *testing.T) {
	s := openTest(t)
	groupTable(t, s)
	ctx := context.Background()
	release := holdGroupWriter(t, s)
	insert := func(k string) func(tx *Tx) error {
		return func(tx *Tx) error {
			_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES (?)`, k)
			return err
		}
	}
	boom := errors.New("boom")
	results := make([]error, 3)
	var wg sync.WaitGroup
	for i, fn := range []func(tx *Tx) error{
		insert("a"),
		func(tx *Tx) error {
			if err := insert("b")(tx); err != nil {
				return err
			}
			// What SQLite does on a full disk or an interrupted write.
			if _, err := tx.q.ExecContext(ctx, `ROLLBACK`); err != nil {
				return err
			}
			return boom
		},
		insert("c"),
	} {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = s.InTxGrouped(ctx, fn) }()
		waitPending(t, s, i+1) // arrival order is batch order
	}
	release()
	wg.Wait()
	if !errors.Is(results[1], boom) {
		t.Errorf("the failing request got %v, want its own error", results[1])
	}
	for _, i := range []int{0, 2} {
		if !errors.Is(results[i], errGroupAborted) || !IsBusy(results[i]) {
			t.Errorf("request %d got %v, want the aborted-batch busy error", i, results[i])
		}
	}
	if got := groupRows(t, s); len(got) != 0 {
		t.Fatalf("rows %v survived an aborted batch", got)
	}
	if err := s.InTxGrouped(ctx, insert("d")); err != nil {
		t.Fatalf("next batch: %v", err)
	}
	if got := groupRows(t, s); !got["d"] || len(got) != 1 {
		t.Fatalf("rows %v, want only d", got)
	}
}

// A caller whose context ends before its turn gets the context's error
// and writes nothing; after Close, InTxGrouped refuses.
func TestInTxGroupedCancelledAndClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	groupTable(t, s)
	release := holdGroupWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ran := false
	go func() {
		done <- s.InTxGrouped(ctx, func(tx *Tx) error { ran = true; return nil })
	}()
	waitPending(t, s, 1)
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled request: err %v, ran %v", err, ran)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.InTxGrouped(context.Background(), func(tx *Tx) error { return nil }); err == nil {
		t.Fatal("InTxGrouped after Close succeeded")
	}
}

// Many concurrent grouped writers: every write lands, under -race.
func TestInTxGroupedConcurrent(t *testing.T) {
	s := openTest(t)
	groupTable(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				k := fmt.Sprintf("%d-%d", g, i)
				if err := s.InTxGrouped(ctx, func(tx *Tx) error {
					_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES (?)`, k)
					return err
				}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := groupRows(t, s); len(got) != 500 {
		t.Fatalf("%d rows, want 500", len(got))
	}
}

// The background checkpointer copies the WAL into the database file
// while writes go on, long before the write connection's backstop (4,000
// pages) would.
func TestCheckpointsOffTheWritePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.db.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != walBackstopPages {
		t.Fatalf("write connection wal_autocheckpoint = %d (%v), want the backstop %d", auto, err, walBackstopPages)
	}
	groupTable(t, s)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	start := fi.Size()
	blob := make([]byte, 4000)
	ctx := context.Background()
	for i := 0; i < 600; i++ { // about 2.4 MB, 600 commits
		if err := s.InTx(ctx, func(tx *Tx) error {
			_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k, v) VALUES (?, ?)`, fmt.Sprint(i), blob)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= start+2_000_000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (was %d): the WAL was not checkpointed in the background", fi.Size(), start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close may be called twice, as deferred cleanups in callers do.
func TestCloseTwice(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "twice.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InTxGrouped(context.Background(), func(tx *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_ = s.Close()
}

// A panic in a grouped write is raised in its caller (where the HTTP
// server recovers it), not on the group writer's goroutine, which would
// end the process; the other requests of its batch commit.
func TestInTxGroupedPanicReachesItsCaller(t *testing.T) {
	s := openTest(t)
	groupTable(t, s)
	ctx := context.Background()
	release := holdGroupWriter(t, s)
	var wg sync.WaitGroup
	var recovered any
	var okErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer func() { recovered = recover() }()
		_ = s.InTxGrouped(ctx, func(tx *Tx) error {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES ('panicked')`); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	waitPending(t, s, 1)
	go func() {
		defer wg.Done()
		okErr = s.InTxGrouped(ctx, func(tx *Tx) error {
			_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k) VALUES ('ok')`)
			return err
		})
	}()
	waitPending(t, s, 2)
	release()
	wg.Wait()
	if recovered != "boom" {
		t.Fatalf("caller recovered %v, want the panic", recovered)
	}
	if got := groupRows(t, s); okErr != nil || !got["ok"] || got["panicked"] {
		t.Fatalf("rows %v, other request's error %v: want only ok", got, okErr)
	}
}

// A caller that waits past the write budget in the queue leaves it with
// ErrBusy, and its write never runs.
func TestInTxGroupedQueueTimeout(t *testing.T) {
	s, err := OpenOptions(context.Background(), filepath.Join(t.TempDir(), "q.db"), Options{WriteTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	groupTable(t, s)
	ctx := context.Background()
	release := holdGroupWriter(t, s)
	ran := make(chan bool, 1)
	err = s.InTxGrouped(ctx, func(tx *Tx) error { ran <- true; return nil })
	release()
	if !IsBusy(err) {
		t.Fatalf("queued past the budget: %v, want ErrBusy", err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(ran) != 0 {
		t.Fatal("a withdrawn request ran")
	}
}

// Under writes without a pause the WAL stays bounded: the background
// checkpoints alone never let the log rewind (the writer keeps appending
// while they copy), the write connection's backstop does.
func TestWALBoundedUnderSustainedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	groupTable(t, s)
	ctx := context.Background()
	blob := make([]byte, 4000)
	const perTx = 50 // about 200 KB of pages per transaction
	bound := int64(walBackstopPages)*4096 + 8<<20
	var written, largest int64
	for written < 3*bound {
		if err := s.InTx(ctx, func(tx *Tx) error {
			for k := 0; k < perTx; k++ {
				if _, err := tx.q.ExecContext(ctx, `INSERT OR REPLACE INTO gtest (k, v) VALUES (?, ?)`, fmt.Sprint(k), blob); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		written += perTx * 4096
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	if largest > bound {
		t.Fatalf("the WAL grew to %d bytes while %d were written (bound %d)", largest, written, bound)
	}
	t.Logf("WAL at most %.1f MB while %.0f MB were written", float64(largest)/1e6, float64(written)/1e6)
}

// HoldCheckpoints keeps the database file unchanged while writes go on
// (they stay in the WAL); Close works with a hold in place, and after
// resume the background copies again.
func TestHoldCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	groupTable(t, s)
	ctx := context.Background()
	write := func(n int) {
		for i := 0; i < n; i++ {
			if err := s.InTx(ctx, func(tx *Tx) error {
				_, err := tx.q.ExecContext(ctx, `INSERT INTO gtest (k, v) VALUES (?, ?)`, fmt.Sprint(time.Now().UnixNano()), make([]byte, 4000))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(3 * checkpointEvery) // the table's creation checkpointed
	resume := s.HoldCheckpoints()
	before := size()
	write(100) // 100 write transactions: the checkpointer would run
	time.Sleep(1500 * time.Millisecond)
	if got := size(); got != before {
		t.Fatalf("the database file changed from %d to %d bytes during a hold", before, got)
	}
	resume()
	write(40)
	deadline := time.Now().Add(3 * time.Second)
	for size() == before {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after the hold ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A second hold, never resumed, must not stop Close.
	_ = s.HoldCheckpoints()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung while checkpoints were held")
	}
}
