package handlers

import (
	"testing"
	"time"
)

func TestLimiterSlidingWindow(t *testing.T) {
	l := NewLimiter(3, time.Minute)
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("ip"); !ok {
			t.Fatalf("hit %d refused", i+1)
		}
	}
	ok, wait := l.Allow("ip")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("4th hit: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("keys are not independent")
	}
	// Just after the window turns, the previous window still counts almost
	// fully: no burst of 2x the limit at the boundary.
	now = now.Add(61 * time.Second)
	if ok, _ := l.Allow("ip"); ok {
		t.Fatal("allowed right after the window turned, though the last minute had 3 hits")
	}
	now = now.Add(2 * time.Minute)
	if ok, _ := l.Allow("ip"); !ok {
		t.Fatal("still refused after the window passed")
	}
	l.Reset("ip")
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("ip"); !ok {
			t.Fatalf("after reset, hit %d refused", i+1)
		}
	}
}
