package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestResetCodeReservationExactlyMax: 60 reservations released together,
// over several requests, grant exactly max each time, and the daily cap
// across requests holds too. Deterministic: the count of granted
// reservations is the statement's own doing.
func TestResetCodeReservationExactlyMax(t *testing.T) {
	forEachBackend(t, tResetCodeReservationExactlyMax)
}

func tResetCodeReservationExactlyMax(t *testing.T, s *Store) {
	now := lockoutSeed(t, s)
	ctx := context.Background()
	const max, daily = 5, 12
	since := now.Add(-24 * time.Hour)
	for round := range 3 {
		id := fmt.Sprintf("r%d", round)
		if err := s.InsertPasswordReset(ctx, PasswordReset{ID: id, UserID: "u1", CodeHash: "c", LinkHash: id,
			CreatedAt: now, CodeExpiresAt: now.Add(time.Hour), LinkExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		var granted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := s.ReserveResetCodeAttemptCapped(ctx, id, "u1", max, daily, since)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		want := int32(max)
		if round == 2 {
			want = daily - 2*max // the daily cap leaves 2
		}
		if granted.Load() != want {
			t.Fatalf("round %d: %d reservations granted, want %d", round, granted.Load(), want)
		}
	}
}
