package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"latchkey/store"
)

// recordingMailer keeps what CreateUser queued, inside the transaction.
type recordingMailer struct {
	mu     sync.Mutex
	sent   []PasswordMail
	forgot []ForgotPasswordMail
	fail   error
}

func (m *recordingMailer) QueuePassword(_ context.Context, _ *store.Tx, pm PasswordMail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, pm)
	return nil
}

func (m *recordingMailer) QueueForgotPassword(_ context.Context, _ *store.Tx, fm ForgotPasswordMail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgot = append(m.forgot, fm)
	return nil
}

func newTestService(t *testing.T) (*Service, *recordingMailer) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &recordingMailer{}
	s, err := New(context.Background(), st, Config{BcryptCost: 4}, m, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

var admin = Actor{Kind: "admin", ID: "a1", TriggeredBy: "admin_api"}

func ptr(s string) *string { return &s }

func TestCreateUserPasswordSemantics(t *testing.T) {
	s, m := newTestService(t)
	ctx := context.Background()

	// nil: no password.
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindUsername, LoginIDValue: "nopass"})
	if err != nil || u.Password != nil {
		t.Fatalf("nil password: %+v, %v", u, err)
	}
	// "": generated, sent, never returned.
	u, err = s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "gen@example.com", Password: ptr(""), SendPassword: true, SetPasswordExpired: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 || m.sent[0].To != "gen@example.com" || m.sent[0].Kind != MailNewUser || !m.sent[0].MustChange {
		t.Fatalf("mail = %+v", m.sent)
	}
	if !s.Hasher().Verify(u.Password.Hash, m.sent[0].Password) {
		t.Fatal("the mailed password does not verify against the stored hash")
	}
	if len(m.sent[0].Password) < 8 {
		t.Fatalf("generated password %q too short", m.sent[0].Password)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if !got.PasswordExpired(s.Now()) || !got.Password.SetByAdmin {
		t.Fatalf("password state = %+v", got.Password)
	}
	// a value: that password.
	u, err = s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindPhone, LoginIDValue: "+1 415 555 0100", Password: ptr("typed-Passw0rd")})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Hasher().Verify(u.Password.Hash, "typed-Passw0rd") || u.Password.ExpireAfter != nil {
		t.Fatalf("typed password state = %+v", u.Password)
	}
}

func TestCreateUserFailuresChangeNothing(t *testing.T) {
	s, m := newTestService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "Taken@Example.com", Password: ptr("abcdefgh1")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		in     CreateUserInput
		reason string
	}{
		{"send to phone without a password", CreateUserInput{LoginIDKey: KindPhone, LoginIDValue: "+14155550101", SendPassword: true}, ReasonValidationFailed},
		{"send to username", CreateUserInput{LoginIDKey: KindUsername, LoginIDValue: "someone", Password: ptr("abcdefgh1"), SendPassword: true}, ReasonSendPasswordNoTarget},
		{"duplicate other case", CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "taken@EXAMPLE.com", Password: ptr("")}, ReasonInvariantViolated},
		{"bad email", CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "nope", Password: ptr("abcdefgh1")}, ReasonValidationFailed},
		{"weak password", CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "weak@example.com", Password: ptr("short")}, ReasonPasswordPolicyViolated},
		{"expire without password", CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "x@example.com", SetPasswordExpired: true}, ReasonValidationFailed},
	}
	for _, c := range cases {
		_, err := s.CreateUser(ctx, admin, c.in)
		e, ok := AsError(err)
		if !ok || e.Reason != c.reason {
			t.Errorf("%s: error %v, want reason %s", c.name, err, c.reason)
		}
	}
	if n, _ := s.Store().CountUsers(ctx); n != 1 {
		t.Errorf("users = %d, want 1: a failed create wrote something", n)
	}
	if len(m.sent) != 0 {
		t.Errorf("mail queued by failed creates: %+v", m.sent)
	}
	// A mailer failure rolls the whole creation back.
	m.fail = errors.New("outbox full")
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "rollback@example.com", Password: ptr(""), SendPassword: true}); err == nil {
		t.Fatal("want the mailer's error")
	}
	if _, err := s.Store().IdentityByNorm(ctx, "rollback@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user exists without their queued email: %v", err)
	}
}

func TestPolicyViolationListsEveryCause(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	if err := s.SavePolicy(ctx, admin, Policy{MinLength: 10, UppercaseRequired: true, DigitRequired: true, SymbolRequired: true}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "p@example.com", Password: ptr("abc")})
	e, ok := AsError(err)
	if !ok || e.Reason != ReasonPasswordPolicyViolated {
		t.Fatalf("err = %v", err)
	}
	want := []string{CausePasswordTooShort, CausePasswordUppercaseRequired, CausePasswordDigitRequired, CausePasswordSymbolRequired}
	if got := causeKinds(e.Causes); len(got) != len(want) {
		t.Fatalf("causes = %v, want %v", got, want)
	}
	// The policy survives a restart of the service.
	s2, err := New(ctx, s.Store(), Config{BcryptCost: 4}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Policy().MinLength != 10 || !s2.Policy().SymbolRequired {
		t.Fatalf("reloaded policy = %+v", s2.Policy())
	}
	if err := s.SavePolicy(ctx, admin, Policy{MinLength: 0, MinimumGuessableLevel: 9}); err == nil {
		t.Fatal("an invalid policy was saved")
	}
}

func TestDuplicateUnderRace(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindUsername, LoginIDValue: "racer"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if e, isE := AsError(err); !isE || e.Reason != ReasonInvariantViolated {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creations succeeded, want exactly 1", ok)
	}
}

// TestBadEmailWithGeneratedPasswordIsOneError: an invalid email with
// "generate and send" reports the email, not also a missing email target.
func TestBadEmailWithGeneratedPasswordIsOneError(t *testing.T) {
	s, _ := newTestService(t)
	_, err := s.CreateUser(context.Background(), admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "nope", Password: ptr(""), SendPassword: true})
	fe := FieldErrors(err)
	if len(fe) != 1 || fe["loginID"] == "" {
		t.Fatalf("field errors = %v, want only loginID", fe)
	}
}
