package account

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"latchkey/store"
)

// BenchmarkForgotPassword compares the answer time of a known account
// (a reset row and a queued email) and an unknown one: both wait out
// ForgotPasswordMinTime, so they should match.
func BenchmarkForgotPassword(b *testing.B) {
	s, _ := newTestServiceB(b)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "known@example.com"}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s.Now = func() time.Time { return now }
	for _, id := range []string{"known@example.com", "unknown@example.com"} {
		b.Run(id, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				now = now.Add(2 * ResetCooldown) // past the cooldown: a new email each time
				if err := s.ForgotPassword(ctx, Actor{IP: "127.0.0.1"}, id, "http://localhost/reset"); err != nil {
					b.Fatal(fmt.Sprint(i, err))
				}
			}
		})
	}
}

func newTestServiceB(b *testing.B) (*Service, *recordingMailer) {
	b.Helper()
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "a.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m := &recordingMailer{}
	s, err := New(context.Background(), st, Config{BcryptCost: 4}, m, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	return s, m
}
