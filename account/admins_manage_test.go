package account

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"latchkey/store"
)

// newAdminTestService is a service with a server secret, a clock the test
// moves, and one admin (returned).
func newAdminTestService(t *testing.T) (*Service, *store.Admin, *time.Time) {
	t.Helper()
	s, _ := newTestService(t)
	if err := s.SetSecret([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := s.BootstrapAdmin(ctx, "first@example.com", "first admin password"); err != nil {
		t.Fatal(err)
	}
	a, err := s.store.AdminByEmail(ctx, "first@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return s, a, &now
}

// enrol turns TOTP on for the admin and returns the secret and recovery codes.
func enrol(t *testing.T, s *Service, adminID string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	e, err := s.BeginTOTPEnrolment(ctx, adminID, "Latchkey")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.QRPNG) < 100 || string(e.QRPNG[1:4]) != "PNG" {
		t.Fatalf("QR is not a PNG: %d bytes", len(e.QRPNG))
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/") {
		t.Fatalf("URL %q", e.URL)
	}
	// Reloading the page shows the same secret.
	again, err := s.BeginTOTPEnrolment(ctx, adminID, "Latchkey")
	if err != nil || again.Secret != e.Secret {
		t.Fatalf("second begin: %v, secret changed: %v", err, again.Secret != e.Secret)
	}
	if on, _ := s.AdminHasTOTP(ctx, adminID); on {
		t.Fatal("TOTP on before confirmation")
	}
	code, _ := totp.GenerateCode(e.Secret, s.Now())
	codes, err := s.ConfirmTOTPEnrolment(ctx, admin, adminID, code)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d recovery codes", len(codes))
	}
	if on, _ := s.AdminHasTOTP(ctx, adminID); !on {
		t.Fatal("TOTP off after confirmation")
	}
	return e.Secret, codes
}

func TestTOTPCodesAcceptedOnceAndWrongOnesThrottled(t *testing.T) {
	s, a, now := newAdminTestService(t)
	ctx := context.Background()
	secret, _ := enrol(t, s, a.ID)

	// The enrolment code's step is used: the same code is refused at sign-in.
	code, _ := totp.GenerateCode(secret, *now)
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, code); !errors.Is(err, ErrTOTPReused) {
		t.Fatalf("replayed enrolment code: %v", err)
	}
	*now = now.Add(30 * time.Second)
	code, _ = totp.GenerateCode(secret, *now)
	if rec, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, code[:3]+" "+code[3:]); err != nil || rec {
		t.Fatalf("fresh code: recovery=%v err=%v", rec, err)
	}
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, code); !errors.Is(err, ErrTOTPReused) {
		t.Fatalf("same code twice: %v", err)
	}
	// A code from the step before the last accepted one is refused too.
	old, _ := totp.GenerateCode(secret, now.Add(-30*time.Second))
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, old); err == nil {
		t.Fatal("older code accepted after a newer one")
	}

	// Wrong codes: after TOTPMaxFailures in the window even a right one is refused.
	*now = now.Add(TOTPFailureWindow) // the replays above age out
	for i := 0; i < TOTPMaxFailures; i++ {
		if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, "000000"); !errors.Is(err, ErrTOTPCode) && !errors.Is(err, ErrTOTPReused) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	*now = now.Add(30 * time.Second)
	good, _ := totp.GenerateCode(secret, *now)
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, good); !errors.Is(err, ErrTOTPTooMany) {
		t.Fatalf("right code while throttled: %v", err)
	}
	*now = now.Add(TOTPFailureWindow)
	good, _ = totp.GenerateCode(secret, *now)
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, good); err != nil {
		t.Fatalf("right code after the window: %v", err)
	}
}

func TestTOTPSameCodeFromParallelRequestsAcceptedOnce(t *testing.T) {
	s, a, now := newAdminTestService(t)
	secret, _ := enrol(t, s, a.ID)
	*now = now.Add(time.Minute)
	code, _ := totp.GenerateCode(secret, *now)
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := s.VerifyAdminSecondFactor(context.Background(), SystemActor, a.ID, code); err == nil {
				ok.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 8 parallel uses of one code accepted, want 1", ok.Load())
	}
}

func TestRecoveryCodesWorkOnce(t *testing.T) {
	s, a, _ := newAdminTestService(t)
	ctx := context.Background()
	_, codes := enrol(t, s, a.ID)
	if rec, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, strings.ToUpper(codes[3])); err != nil || !rec {
		t.Fatalf("recovery code: recovery=%v err=%v", rec, err)
	}
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, codes[3]); !errors.Is(err, ErrTOTPCode) {
		t.Fatalf("recovery code reused: %v", err)
	}
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, codes[4]); err != nil {
		t.Fatalf("another recovery code: %v", err)
	}
	// Renewed codes replace the old ones; a wrong password renews nothing.
	if _, err := s.RenewRecoveryCodes(ctx, SystemActor, a.ID, "wrong"); err == nil {
		t.Fatal("renewed with a wrong password")
	}
	fresh, err := s.RenewRecoveryCodes(ctx, SystemActor, a.ID, "first admin password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, codes[5]); err == nil {
		t.Fatal("old recovery code works after renewal")
	}
	if _, err := s.VerifyAdminSecondFactor(ctx, SystemActor, a.ID, fresh[0]); err != nil {
		t.Fatalf("renewed code: %v", err)
	}
}

func TestRemoveAdminNeverTheLast(t *testing.T) {
	s, a, _ := newAdminTestService(t)
	ctx := context.Background()
	if err := s.RemoveAdmin(ctx, admin, a.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("removing the only admin: %v", err)
	}
	// An invited admin without a password does not count as someone who can sign in.
	inv, err := s.InviteAdmin(ctx, admin, "second@example.com", false, "http://x/portal/invite")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAdmin(ctx, admin, a.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("removing the only admin with a password: %v", err)
	}
	token := inv.Link[strings.Index(inv.Link, "token=")+6:]
	if _, err := s.AcceptAdminInvite(ctx, SystemActor, token, "short"); err == nil {
		t.Fatal("accepted a password the policy refuses")
	}
	if _, err := s.AcceptAdminInvite(ctx, SystemActor, token, "second admin password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcceptAdminInvite(ctx, SystemActor, token, "another admin password"); err == nil {
		t.Fatal("invite link worked twice")
	}
	if err := s.RemoveAdmin(ctx, admin, a.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.store.CountAdmins(ctx); n != 1 {
		t.Fatalf("%d admins, want 1", n)
	}
}

func TestChangeAdminPasswordNeedsTheCurrentOne(t *testing.T) {
	s, a, _ := newAdminTestService(t)
	ctx := context.Background()
	err := s.ChangeAdminPassword(ctx, admin, a.ID, "", "wrong password", "a new admin password")
	if fe := FieldErrors(err); fe["current_password"] == "" {
		t.Fatalf("wrong current password: %v", err)
	}
	after, _ := s.store.AdminByID(ctx, a.ID)
	if after.PasswordHash != a.PasswordHash {
		t.Fatal("password changed with a wrong current password")
	}
	if err := s.ChangeAdminPassword(ctx, admin, a.ID, "", "first admin password", "a new admin password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminLogin(ctx, "first@example.com", "a new admin password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestAdminInviteExpires(t *testing.T) {
	s, _, now := newAdminTestService(t)
	ctx := context.Background()
	inv, err := s.InviteAdmin(ctx, admin, "late@example.com", false, "http://x/portal/invite")
	if err != nil {
		t.Fatal(err)
	}
	token := inv.Link[strings.Index(inv.Link, "token=")+6:]
	*now = now.Add(AdminInviteTTL - time.Second)
	if _, err := s.CheckAdminInvite(ctx, token); err != nil {
		t.Fatalf("link just before expiry: %v", err)
	}
	*now = now.Add(time.Second)
	if _, err := s.AcceptAdminInvite(ctx, SystemActor, token, "late admin password"); !errors.Is(err, errInviteInvalid) {
		t.Fatalf("expired link: %v", err)
	}
	a, _ := s.store.AdminByEmail(ctx, "late@example.com")
	if a.PasswordHash != "" {
		t.Fatal("an expired link set a password")
	}
	// Sending email without a mailer that can is a field error, and makes nothing.
	s.mailer = nil
	if _, err := s.InviteAdmin(ctx, admin, "mail@example.com", true, "http://x"); FieldErrors(err)["send_email"] == "" {
		t.Fatalf("invite by email without a mailer: %v", err)
	}
	if _, err := s.store.AdminByEmail(ctx, "mail@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("admin made anyway: %v", err)
	}
}
