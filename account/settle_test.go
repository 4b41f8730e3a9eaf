package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"latchkey/store"
	"latchkey/store/testdb"
)

// flakyEvents fails Record for its event type the first fails times,
// then records (counting) like a working event store.
type flakyEvents struct {
	NopEvents
	typ string
	mu  sync.Mutex
	// fails is how many Records of typ still fail; recorded counts
	// those that committed.
	fails, recorded int
}

func (e *flakyEvents) Record(ctx context.Context, tx *store.Tx, _ Actor, ev Event) error {
	if ev.Type != e.typ {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fails > 0 {
		e.fails--
		return errors.New("event store down")
	}
	tx.AfterCommit(func() { e.mu.Lock(); e.recorded++; e.mu.Unlock() })
	return nil
}

func (e *flakyEvents) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recorded
}

// settleService is a service over a SQLite file at path with a short
// write budget, so that a held lock fails a write quickly.
func settleService(t *testing.T, path string, cost int, ev Events) *Service {
	t.Helper()
	st, err := store.OpenOptions(context.Background(), path, store.Options{WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(context.Background(), st, Config{BcryptCost: cost}, nil, ev, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailedSettlementIsRetried: the write that settles a wrong password
// (the failure counted and its event) fails once. The sign-in answers
// with that error, and the settlement lands in the background: the
// reservation is released, the failure counted once, its event recorded
// once.
func TestFailedSettlementIsRetried(t *testing.T) {
	ev := &flakyEvents{typ: EventAuthPasswordFailed, fails: 1}
	s := settleService(t, filepath.Join(t.TempDir(), "a.db"), 4, ev)
	ctx := context.Background()
	pw := "right-Passw0rd"
	u, err := s.CreateUser(ctx, SystemActor, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "eve@example.com", Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Login(ctx, Actor{IP: "127.0.0.1"}, LoginInput{LoginID: "eve@example.com", Password: "wrong"})
	if err == nil || errors.Is(err, ErrBadCredentials) {
		t.Fatalf("Login with the event store down: %v, want its error", err)
	}
	waitUntil(t, "the settlement to be retried", func() bool {
		l, err := s.Lockout(ctx, u.ID)
		return err == nil && l != nil && l.Pending == 0
	})
	l, err := s.Lockout(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Failures != 1 {
		t.Fatalf("lockout after the retried settlement: %+v, want 1 failure", l)
	}
	if n := ev.count(); n != 1 {
		t.Fatalf("%d failure events, want 1", n)
	}
}

// TestSettlementSurvivesALockedDatabase: another process takes the
// database's write lock while a wrong password is being checked (the
// attempt already reserved), past the write budget. The sign-in answers
// busy; once the lock is gone the failure is settled without anyone
// signing in again. The same for a portal admin.
func TestSettlementSurvivesALockedDatabase(t *testing.T) {
	for _, who := range []string{"user", "admin"} {
		t.Run(who, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.db")
			// Cost 11: the check takes a few hundred milliseconds, long
			// enough to take the lock after the reservation.
			s := settleService(t, path, 11, nil)
			ctx := context.Background()
			pw := "right-Passw0rd"
			var id string
			var signIn func() error
			var lockout func() (*store.Lockout, error)
			if who == "user" {
				u, err := s.CreateUser(ctx, SystemActor, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "eve@example.com", Password: &pw})
				if err != nil {
					t.Fatal(err)
				}
				id = u.ID
				signIn = func() error {
					_, err := s.Login(ctx, Actor{IP: "127.0.0.1"}, LoginInput{LoginID: "eve@example.com", Password: "wrong"})
					return err
				}
				lockout = func() (*store.Lockout, error) { return s.Lockout(ctx, id) }
			} else {
				if _, err := s.BootstrapAdmin(ctx, "root@example.com", pw); err != nil {
					t.Fatal(err)
				}
				a, err := s.Store().AdminByEmail(ctx, "root@example.com")
				if err != nil {
					t.Fatal(err)
				}
				id = a.ID
				signIn = func() error {
					_, err := s.AdminSignIn(ctx, Actor{IP: "127.0.0.1"}, "root@example.com", "wrong")
					return err
				}
				lockout = func() (*store.Lockout, error) { return s.Store().AdminLockout(ctx, id) }
			}
			pending := func() int {
				l, err := lockout()
				if errors.Is(err, store.ErrNotFound) {
					return 0
				} else if err != nil {
					t.Fatal(err)
				}
				if l == nil {
					return 0
				}
				return l.Pending
			}
			done := make(chan error, 1)
			go func() { done <- signIn() }()
			waitUntil(t, "the attempt to be reserved", func() bool { return pending() == 1 })
			release := testdb.HoldSQLiteWriteLock(t, path)
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the sign-in did not answer while the database was locked")
			}
			if !store.IsBusy(err) {
				t.Fatalf("sign-in with the database locked: %v, want busy", err)
			}
			if p := pending(); p != 1 {
				t.Fatalf("pending %d while the database is locked, want 1", p)
			}
			release()
			waitUntil(t, "the failure to be settled after the lock", func() bool { return pending() == 0 })
			l, err := lockout()
			if err != nil {
				t.Fatal(err)
			}
			if l.Failures != 1 {
				t.Fatalf("lockout %+v, want one settled failure", l)
			}
		})
	}
}
