package account_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

func newAuthService(t testing.TB, cost int) *account.Service {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := account.New(ctx, st, account.Config{BcryptCost: cost}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mkAuthUser(t testing.TB, s *account.Service, email, pw string) *account.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), account.Actor{Kind: "admin"},
		account.CreateUserInput{LoginIDKey: account.KindEmail, LoginIDValue: email, Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLoginLockoutRace: 50 parallel wrong passwords against one account
// get at most LockoutThreshold real tries; the rest are refused as locked
// before any hashing.
func TestLoginLockoutRace(t *testing.T) {
	s := newAuthService(t, 10)
	// A fixed clock: a locked account's attempts now take a full hash
	// check too (so a lock looks like a wrong password), and on a loaded
	// machine under -race the fifty of them outlast the 1-minute lock.
	now := time.Now().UTC()
	s.Now = func() time.Time { return now }
	u := mkAuthUser(t, s, "race@example.com", "right-Passw0rd")
	threshold := s.Policy().LockoutThreshold // default 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	tried, locked := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Login(context.Background(), account.Actor{IP: "192.0.2.1"}, account.LoginInput{LoginID: "race@example.com", Password: "wrong"})
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, account.ErrBadCredentials) {
				tried++
			} else if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonAccountLocked {
				locked++
			} else {
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if tried > threshold || tried+locked != 50 {
		t.Fatalf("%d tries, %d locked; at most %d tries allowed", tried, locked, threshold)
	}
	l, err := s.Lockout(context.Background(), u.ID)
	if err != nil || !l.Locked(s.Now()) {
		t.Fatalf("not locked: %+v %v", l, err)
	}
	// Even the right password is refused while locked.
	_, err = s.Login(context.Background(), account.Actor{}, account.LoginInput{LoginID: "race@example.com", Password: "right-Passw0rd"})
	if ae, ok := account.AsError(err); !ok || ae.Reason != account.ReasonAccountLocked {
		t.Fatalf("right password while locked: %v", err)
	}
	t.Logf("%d tries, %d refused as locked", tried, locked)
}
