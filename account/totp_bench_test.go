package account

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"latchkey/store"
)

// newAdminBenchService is newAdminTestService for a benchmark: a service
// with a server secret, a movable clock and one admin with TOTP on.
func newAdminBenchService(b *testing.B) (*Service, *store.Admin, *time.Time, string) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "a.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s, err := New(ctx, st, Config{BcryptCost: 4}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetSecret([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.BootstrapAdmin(ctx, "first@example.com", "first admin password"); err != nil {
		b.Fatal(err)
	}
	a, err := st.AdminByEmail(ctx, "first@example.com")
	if err != nil {
		b.Fatal(err)
	}
	e, err := s.BeginTOTPEnrolment(ctx, a.ID, "Latchkey")
	if err != nil {
		b.Fatal(err)
	}
	code, _ := totp.GenerateCode(e.Secret, now)
	if _, err := s.ConfirmTOTPEnrolment(ctx, SystemActor, a.ID, code); err != nil {
		b.Fatal(err)
	}
	return s, a, &now, e.Secret
}

// BenchmarkTwoFactorGate is what every signed-in portal request pays for
// the "require two-factor" rule: the setting and the admin's enrolment.
func BenchmarkTwoFactorGate(b *testing.B) {
	s, a, _, _ := newAdminBenchService(b)
	ctx := context.Background()
	if err := s.SetRequire2FA(ctx, SystemActor, true); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if on, err := s.Require2FA(ctx); err != nil || !on {
			b.Fatal(on, err)
		}
		if _, err := s.AdminHasTOTP(ctx, a.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAdminSecondFactor is one accepted sign-in code: the
// transaction that checks it, advances the step and records nothing else.
func BenchmarkVerifyAdminSecondFactor(b *testing.B) {
	s, a, now, secret := newAdminBenchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		*now = now.Add(30 * time.Second)
		code, _ := totp.GenerateCode(secret, *now)
		if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, code); err != nil {
			b.Fatal(err)
		}
	}
}
