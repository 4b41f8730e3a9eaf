package store

import (
	"context"
	"testing"
	"time"
)

func TestLockoutCountsLocksGrowsAndCaps(t *testing.T) {
	forEachBackend(t, tLockoutCountsLocksGrowsAndCaps)
}

func tLockoutCountsLocksGrowsAndCaps(t *testing.T, s *Store) {
	ctx := context.Background()
	var err error
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &User{ID: "u1", CreatedAt: now, UpdatedAt: now}
	if err := s.InsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	const threshold = 3
	base, max := time.Minute, 5*time.Minute
	lockOnce := func() *time.Time {
		t.Helper()
		for i := 0; i < threshold; i++ {
			ok, err := s.ReserveLoginAttempt(ctx, "u1", threshold, now)
			if err != nil || !ok {
				t.Fatalf("attempt %d refused: %v", i+1, err)
			}
		}
		if ok, _ := s.ReserveLoginAttempt(ctx, "u1", threshold, now); ok {
			t.Fatal("a reservation past the threshold was granted")
		}
		var until *time.Time
		for i := 0; i < threshold; i++ {
			u, err := s.FailLoginAttempt(ctx, "u1", threshold, now, base, max)
			if err != nil {
				t.Fatal(err)
			}
			if u != nil && until == nil {
				until = u
			}
		}
		if until == nil {
			t.Fatal("no lock after the threshold")
		}
		return until
	}
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		until := lockOnce()
		if got := until.Sub(now); got != want {
			t.Fatalf("lock %d lasts %v, want %v", i+1, got, want)
		}
		if ok, _ := s.ReserveLoginAttempt(ctx, "u1", threshold, now.Add(want-time.Millisecond)); ok {
			t.Fatalf("lock %d: attempt allowed before it ends", i+1)
		}
		now = until.Add(time.Millisecond)
	}
	// A success forgets failures and locks: the next lock is short again.
	if err := s.ClearLoginFailures(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if got := lockOnce().Sub(now); got != time.Minute {
		t.Fatalf("lock after a success lasts %v, want 1m", got)
	}
	had, err := s.DeleteLockout(ctx, "u1")
	if err != nil || !had {
		t.Fatalf("delete lockout: %v %v", had, err)
	}
	if _, err := s.LockoutByUser(ctx, "u1"); err == nil {
		t.Fatal("lockout still there")
	}
}
