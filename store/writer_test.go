package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOneWriterQueueAndBudget: while one write transaction runs, reads
// through the Store answer at once (read pool, WAL) and see the last
// commit; a second write waits its turn and fails with ErrBusy once its
// budget is spent; the read pool refuses writes.
func TestOneWriterQueueAndBudget(t *testing.T) {
	ctx := context.Background()
	s, err := OpenOptions(ctx, filepath.Join(t.TempDir(), "w.db"), Options{WriteTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.InTx(ctx, func(tx *Tx) error {
		return tx.InsertUser(ctx, &User{ID: "u1", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}

	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx *Tx) error {
			if err := tx.InsertUser(ctx, &User{ID: "u2", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside

	start := time.Now()
	if _, err := s.UserByID(ctx, "u1"); err != nil {
		t.Fatalf("read during a write: %v", err)
	}
	if _, err := s.UserByID(ctx, "u2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read saw an uncommitted row: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("reads waited %v for the writer", d)
	}

	start = time.Now()
	err = s.InTx(ctx, func(tx *Tx) error { return nil })
	if !errors.Is(err, ErrBusy) || !IsBusy(err) {
		t.Fatalf("second writer: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Fatalf("second writer gave up after %v, want the 150ms budget", d)
	}
	// An autocommit write outside a transaction queues the same way.
	if _, err := s.ReserveLoginAttempt(ctx, "u1", 10, now); !errors.Is(err, ErrBusy) {
		t.Fatalf("autocommit write while the writer is held: %v", err)
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(ctx, "u2"); err != nil {
		t.Fatalf("committed row not visible to reads: %v", err)
	}
	if ok, err := s.ReserveLoginAttempt(ctx, "u1", 10, now); err != nil || !ok {
		t.Fatalf("autocommit write after: %v %v", ok, err)
	}
	if _, err := s.rdb.Exec(`DELETE FROM users`); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

// TestLockHeldByAnotherProcessIsErrBusy: SQLite's own lock, held by
// another connection past the budget, surfaces as ErrBusy.
func TestLockHeldByAnotherProcessIsErrBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	s, err := OpenOptions(ctx, path, Options{WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = s.InTx(ctx, func(tx *Tx) error { return nil })
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("InTx under another process's lock: %v", err)
	}
	if _, err := s.ReserveLoginAttempt(ctx, "nobody", 10, time.Now()); !errors.Is(err, ErrBusy) {
		t.Fatalf("autocommit write under another process's lock: %v", err)
	}
}

// TestScrubWALNeverWaitsForAReader: with a read transaction open on
// another connection, ScrubWAL reports false at once instead of waiting
// out the busy timeout; once the reader ends it truncates the WAL.
func TestScrubWALNeverWaitsForAReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := OpenOptions(ctx, path, Options{WriteTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reader, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rtx, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.InTx(ctx, func(tx *Tx) error {
		return tx.InsertUser(ctx, &User{ID: "after-reader", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ok, err := s.ScrubWAL(ctx)
	if err != nil || ok {
		t.Fatalf("scrub with a reader open: %v %v, want false", ok, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("scrub waited %v for the reader", d)
	}
	// Writers are not held behind it.
	if _, err := s.ReserveLoginAttempt(ctx, "after-reader", 10, now); err != nil {
		t.Fatal(err)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ScrubWAL(ctx); err != nil || !ok {
		t.Fatalf("scrub after the reader: %v %v", ok, err)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 {
		t.Fatalf("WAL after the scrub: %d bytes, want 0", fi.Size())
	}
}
