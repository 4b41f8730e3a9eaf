package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func lockoutStore(t *testing.T) (*Store, time.Time) {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lockoutSeed(t, s)
}

// lockoutSeed adds user u1 to s and returns the tests' fixed now.
func lockoutSeed(t *testing.T, s *Store) time.Time {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.InsertUser(ctx, &User{ID: "u1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return now
}

func reserveN(t *testing.T, s *Store, n, threshold int, now time.Time) int {
	t.Helper()
	granted := 0
	for i := 0; i < n; i++ {
		ok, err := s.ReserveLoginAttempt(context.Background(), "u1", threshold, now)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			granted++
		}
	}
	return granted
}

// Reservations that are never settled (their request died) hold the
// account only for AttemptSettleWindow, never for good.
func TestUnsettledReservationsLapse(t *testing.T) {
	forEachBackend(t, tUnsettledReservationsLapse)
}

func tUnsettledReservationsLapse(t *testing.T, s *Store) {
	now := lockoutSeed(t, s)
	if got := reserveN(t, s, 10, 10, now); got != 10 {
		t.Fatalf("granted %d of 10", got)
	}
	if got := reserveN(t, s, 1, 10, now.Add(AttemptSettleWindow-time.Millisecond)); got != 0 {
		t.Fatal("an 11th attempt was granted while 10 are in flight")
	}
	if got := reserveN(t, s, 1, 10, now.Add(AttemptSettleWindow+time.Millisecond)); got != 1 {
		t.Fatal("unsettled reservations still hold the account after the settle window")
	}
	l, err := s.LockoutByUser(context.Background(), "u1")
	if err != nil || l.Pending != 1 || l.Failures != 0 {
		t.Fatalf("lockout %+v, %v", l, err)
	}
}

// Settled failures are not forgotten with time: a slow guesser is still
// locked at the threshold.
func TestSettledFailuresDoNotLapse(t *testing.T) {
	forEachBackend(t, tSettledFailuresDoNotLapse)
}

func tSettledFailuresDoNotLapse(t *testing.T, s *Store) {
	ctx := context.Background()
	now := lockoutSeed(t, s)
	var until *time.Time
	for i := 0; i < 5; i++ {
		now = now.Add(2 * AttemptSettleWindow)
		if reserveN(t, s, 1, 5, now) != 1 {
			t.Fatalf("attempt %d refused", i+1)
		}
		var err error
		if until, err = s.FailLoginAttempt(ctx, "u1", 5, now, time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if until == nil {
		t.Fatal("five slow failures did not lock")
	}
}

// A threshold lowered below an account's failures leaves it one attempt.
func TestLoweredThresholdDoesNotStrand(t *testing.T) {
	forEachBackend(t, tLoweredThresholdDoesNotStrand)
}

func tLoweredThresholdDoesNotStrand(t *testing.T, s *Store) {
	ctx := context.Background()
	now := lockoutSeed(t, s)
	for i := 0; i < 7; i++ {
		if reserveN(t, s, 1, 10, now) != 1 {
			t.Fatal("refused")
		}
		if _, err := s.FailLoginAttempt(ctx, "u1", 10, now, time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Threshold now 3: 7 failures, no lock. One more try, then a lock.
	if reserveN(t, s, 2, 3, now) != 1 {
		t.Fatal("want exactly one attempt under the lowered threshold")
	}
	until, err := s.FailLoginAttempt(ctx, "u1", 3, now, time.Minute, time.Hour)
	if err != nil || until == nil {
		t.Fatalf("no lock after the attempt under the lowered threshold: %v %v", until, err)
	}
	// Or the right password clears it.
	now = until.Add(time.Second)
	if reserveN(t, s, 1, 3, now) != 1 {
		t.Fatal("refused after the lock ended")
	}
	if err := s.ClearLoginFailures(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	l, _ := s.LockoutByUser(ctx, "u1")
	if l.Failures != 0 || l.Pending != 0 || l.LockedUntil != nil {
		t.Fatalf("after success: %+v", l)
	}
}

// A row stuck by the old code (failures at the threshold, no lock, no
// pending column) is usable again.
func TestStuckRowFromOldCodeRecovers(t *testing.T) {
	forEachBackend(t, tStuckRowFromOldCodeRecovers)
}

func tStuckRowFromOldCodeRecovers(t *testing.T, s *Store) {
	ctx := context.Background()
	now := lockoutSeed(t, s)
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO login_lockouts (user_id, failures) VALUES ('u1', 10)`); err != nil {
		t.Fatal(err)
	}
	if reserveN(t, s, 1, 10, now) != 1 {
		t.Fatal("the stuck account is still refused")
	}
}

func TestAdminLockout(t *testing.T) {
	forEachBackend(t, tAdminLockout)
}

func tAdminLockout(t *testing.T, s *Store) {
	ctx := context.Background()
	now := lockoutSeed(t, s)
	if err := s.InsertAdmin(ctx, Admin{ID: "a1", Email: "a@example.com", PasswordHash: "x", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ok, err := s.ReserveAdminAttempt(ctx, "a1", 3, now)
		if err != nil || !ok {
			t.Fatalf("attempt %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.ReserveAdminAttempt(ctx, "a1", 3, now); ok {
		t.Fatal("4th admin attempt granted")
	}
	var until *time.Time
	for i := 0; i < 3; i++ {
		until, _ = s.FailAdminAttempt(ctx, "a1", 3, now, time.Minute, time.Hour)
	}
	if until == nil || until.Sub(now) != time.Minute {
		t.Fatalf("admin lock: %v", until)
	}
	// The user lockout is separate.
	if _, err := s.LockoutByUser(ctx, "u1"); err == nil {
		t.Fatal("admin failures counted against a user")
	}
	l, err := s.AdminLockout(ctx, "a1")
	if err != nil || !l.Locked(now) {
		t.Fatalf("admin lockout %+v %v", l, err)
	}
}
