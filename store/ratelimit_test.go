package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The database counter behaves as the in-memory limiter: limit hits per
// window, refusals not counted, the previous window weighted by its
// overlap, undo, reset and pruning; on both databases.
func TestRateLimitCounter(t *testing.T) {
	forEachBackend(t, tRateLimitCounter)
}

func tRateLimitCounter(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC) // on a minute boundary
	ip := RateHit{Key: []byte("login_ip:192.0.2.1"), Limit: 3, Window: time.Minute}
	other := RateHit{Key: []byte("login_ip:192.0.2.2"), Limit: 3, Window: time.Minute}
	hit := func(at time.Time, h RateHit) RateCount {
		t.Helper()
		c, err := s.HitRateLimits(ctx, at, []RateHit{h})
		if err != nil {
			t.Fatal(err)
		}
		return c[0]
	}
	for i := 1; i <= 3; i++ {
		if c := hit(now.Add(time.Duration(i)*time.Second), ip); !c.Allowed || c.Curr != i || c.Prev != 0 || !c.WindowStart.Equal(now) {
			t.Fatalf("hit %d: %+v", i, c)
		}
	}
	if c := hit(now.Add(10*time.Second), ip); c.Allowed || c.Curr != 3 {
		t.Fatalf("4th hit: %+v (want refused and not counted)", c)
	}
	if c := hit(now.Add(10*time.Second), other); !c.Allowed || c.Curr != 1 {
		t.Fatalf("another key: %+v", c)
	}
	// Just after the window turns the last minute's 3 hits still count
	// almost fully: no burst of twice the limit at the boundary.
	if c := hit(now.Add(61*time.Second), ip); c.Allowed || c.Prev != 3 || c.Curr != 0 || !c.WindowStart.Equal(now.Add(time.Minute)) {
		t.Fatalf("just after the window turned: %+v", c)
	}
	// 40 s into the next window a third of the previous one overlaps: 1
	// hit's worth, so two more fit (1 + 2 = 3) and a third does not.
	at := now.Add(100 * time.Second)
	if a, b, c := hit(at, ip), hit(at, ip), hit(at, ip); !a.Allowed || !b.Allowed || c.Allowed {
		t.Fatalf("40 s into the next window: %+v %+v %+v", a, b, c)
	}
	// Undo gives back a hit of the current window only.
	if err := s.UndoRateHit(ctx, ip.Key, at); err != nil {
		t.Fatal(err)
	}
	if c, err := s.RateLimitCount(ctx, ip.Key); err != nil || c.Curr != 1 || c.Prev != 3 {
		t.Fatalf("after undo: %+v, %v", c, err)
	}
	if err := s.UndoRateHit(ctx, ip.Key, at.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.RateLimitCount(ctx, ip.Key); c.Curr != 1 {
		t.Fatalf("undo in a later window took back an old hit: %+v", c)
	}
	// Two windows later everything is forgotten.
	if c := hit(now.Add(4*time.Minute), ip); !c.Allowed || c.Prev != 0 || c.Curr != 1 {
		t.Fatalf("two windows later: %+v", c)
	}
	if err := s.ResetRateLimit(ctx, ip.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RateLimitCount(ctx, ip.Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after reset: %v", err)
	}

	// Several counters in one statement, each with its own limit; the
	// answer follows the order asked, whatever the key order.
	acct := RateHit{Key: []byte("acct:a@example.com"), Limit: 1, Window: time.Minute}
	cs, err := s.HitRateLimits(ctx, now, []RateHit{other, acct})
	if err != nil || len(cs) != 2 || !cs[0].Allowed || cs[0].Curr != 2 || !cs[1].Allowed || cs[1].Curr != 1 {
		t.Fatalf("two counters: %+v, %v", cs, err)
	}
	cs, err = s.HitRateLimits(ctx, now, []RateHit{other, acct})
	if err != nil || !cs[0].Allowed || cs[0].Curr != 3 || cs[1].Allowed || cs[1].Curr != 1 {
		t.Fatalf("two counters, the second over: %+v, %v", cs, err)
	}
	if _, err := s.HitRateLimits(ctx, now, []RateHit{acct, acct}); err == nil {
		t.Fatal("the same key twice was accepted")
	}
	if _, err := s.HitRateLimits(ctx, now, []RateHit{{Key: []byte("k"), Limit: 1}}); err == nil {
		t.Fatal("a zero window was accepted")
	}

	// Pruning drops counters two windows old, and only those.
	if _, err := s.HitRateLimits(ctx, now.Add(90*time.Second), []RateHit{acct}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneRateLimits(ctx, now.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v (want other's counter only)", n, err)
	}
	if _, err := s.RateLimitCount(ctx, acct.Key); err != nil {
		t.Fatalf("a live counter was pruned: %v", err)
	}
	if _, err := s.RateLimitCount(ctx, other.Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an old counter survived: %v", err)
	}
}

// Two instances (two store handles on one PostgreSQL database) share one
// limit: hits alternated between them are refused at the limit, not at
// twice the limit; and the window rolls for both.
func TestPostgresRateLimitSharedByInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	if !a.SharesRateLimits() || !b.SharesRateLimits() {
		t.Fatal("PostgreSQL does not share rate limits")
	}
	const limit = 10
	h := RateHit{Key: []byte("login_acct_ip:someone@example.com|192.0.2.9"), Limit: limit, Window: time.Minute}
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < limit+3; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		c, err := s.HitRateLimits(ctx, now.Add(time.Duration(i)*time.Second), []RateHit{h})
		if err != nil {
			t.Fatal(err)
		}
		if want := i < limit; c[0].Allowed != want {
			t.Fatalf("attempt %d (instance %d): allowed %v, want %v (%+v)", i+1, i%2, c[0].Allowed, want, c[0])
		}
	}
	// The window rolls: two windows later the other instance is allowed
	// again, and the count starts over.
	c, err := b.HitRateLimits(ctx, now.Add(2*time.Minute+time.Second), []RateHit{h})
	if err != nil || !c[0].Allowed || c[0].Curr != 1 || c[0].Prev != 0 {
		t.Fatalf("after the window rolled: %+v, %v", c, err)
	}
	// SQLite keeps counters in memory.
	if openTest(t).SharesRateLimits() {
		t.Fatal("SQLite claims to share rate limits")
	}
}

// Hits from two instances at once never pass the limit together: 2 × 60
// goroutines over two pools hit one counter of limit 25, and exactly 25
// are allowed; the counter holds 25.
func TestPostgresRateLimitConcurrentInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	var stores []*Store
	for range 2 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const limit, per = 25, 60
	h := RateHit{Key: []byte("forgot_ip:198.51.100.7"), Limit: limit, Window: time.Minute}
	// A second counter in the same statement, in the other key order on
	// each instance: no deadlock.
	h2 := RateHit{Key: []byte("aaa:198.51.100.7"), Limit: 1000, Window: time.Minute}
	now := time.Now()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for i, s := range stores {
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hits := []RateHit{h, h2}
				if i == 1 {
					hits = []RateHit{h2, h}
				}
				c, err := s.HitRateLimits(ctx, now, hits)
				if err != nil {
					errs <- err
					return
				}
				if c[i].Allowed {
					allowed.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != limit {
		t.Fatalf("%d hits allowed across two instances, want exactly %d", n, limit)
	}
	if c, err := stores[0].RateLimitCount(ctx, h.Key); err != nil || c.Curr != limit {
		t.Fatalf("counter: %+v, %v", c, err)
	}
	if c, err := stores[1].RateLimitCount(ctx, h2.Key); err != nil || c.Curr != 2*per {
		t.Fatalf("second counter: %+v, %v (want %d)", c, err, 2*per)
	}
}

// BenchmarkRateLimitHit is the cost of one sign-in's rate-limit check in
// the database: two counters (per IP, per account and IP) in one
// statement, one round trip.
func BenchmarkRateLimitHit(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var s *Store
			if backend == "sqlite" {
				s = openTest(b)
			} else {
				s = openPGTest(b)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					ip := fmt.Sprintf("ip:%d", i%500)
					hits := []RateHit{{Key: []byte(ip), Limit: 1 << 30, Window: time.Minute},
						{Key: []byte(fmt.Sprintf("acct:%d|%s", i, ip)), Limit: 10, Window: time.Minute}}
					if _, err := s.HitRateLimits(ctx, time.Now(), hits); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
