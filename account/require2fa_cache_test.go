package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"latchkey/store"
)

// TestRequire2FACached: the portal's gate reads the setting from the
// cache, a change on this instance applies to the very next read, and a
// change made by another instance on the same database (a second
// Service) is seen within require2FACacheTTL.
func TestRequire2FACached(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(ctx, st, Config{BcryptCost: 4}, nil, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, st, Config{BcryptCost: 4}, nil, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := func(s *Service, on bool, msg string) {
		t.Helper()
		if got, err := s.Require2FA(ctx); err != nil || got != on {
			t.Fatalf("%s: Require2FA = %v, %v; want %v", msg, got, err, on)
		}
	}
	want(a, false, "a, at start")
	want(b, false, "b, at start")
	// Cached: a change behind the service's back is not read at once.
	if err := st.PutSetting(ctx, require2FASetting, []byte("1")); err != nil {
		t.Fatal(err)
	}
	want(a, false, "a, cached")
	// This instance's own change applies at once, both ways.
	if err := a.SetRequire2FA(ctx, SystemActor, true); err != nil {
		t.Fatal(err)
	}
	want(a, true, "a, after turning it on")
	if err := a.SetRequire2FA(ctx, SystemActor, false); err != nil {
		t.Fatal(err)
	}
	want(a, false, "a, after turning it off")
	// Another instance's change is seen within the TTL.
	want(b, false, "b, cached")
	if err := a.SetRequire2FA(ctx, SystemActor, true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		on, err := b.Require2FA(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			break
		}
		if time.Since(start) > require2FACacheTTL+time.Second {
			t.Fatalf("b still sees the old setting after %s", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSettingCacheStaleLoad: a load that began before an invalidate does
// not store its answer, and errors are not cached.
func TestSettingCacheStaleLoad(t *testing.T) {
	var c settingCache
	loads := 0
	v, err := c.get(func() (bool, error) {
		loads++
		c.invalidate() // the setting changed while this read ran
		return false, nil
	})
	if err != nil || v {
		t.Fatal(v, err)
	}
	v, _ = c.get(func() (bool, error) { loads++; return true, nil })
	if !v || loads != 2 {
		t.Fatalf("after a stale load: %v, %d loads; want a fresh load that says true", v, loads)
	}
	v, _ = c.get(func() (bool, error) { loads++; return false, nil })
	if !v || loads != 2 {
		t.Fatalf("fresh value not reused: %v, %d loads", v, loads)
	}
	c.invalidate()
	if _, err := c.get(func() (bool, error) { return true, errors.New("db down") }); err == nil {
		t.Fatal("the load's error was lost")
	}
	v, _ = c.get(func() (bool, error) { loads++; return true, nil })
	if !v || loads != 3 {
		t.Fatalf("an error was cached: %v, %d loads", v, loads)
	}
}
