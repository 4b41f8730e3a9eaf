package account_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"latchkey/account"
	"latchkey/store"
)

// failingMailer fails every queue call after writing nothing.
type failingMailer struct{ calls int }

func (m *failingMailer) QueuePassword(context.Context, *store.Tx, account.PasswordMail) error {
	m.calls++
	return errors.New("outbox full")
}

func (m *failingMailer) QueueForgotPassword(context.Context, *store.Tx, account.ForgotPasswordMail) error {
	return errors.New("outbox full")
}

// failingEvents fails Record for one event type; writes the others to a
// settings row in the transaction, so a rollback is visible.
type failingEvents struct{ failOn string }

func (e failingEvents) Record(ctx context.Context, tx *store.Tx, _ account.Actor, ev account.Event) error {
	if ev.Type == e.failOn {
		return errors.New("event store down")
	}
	return tx.PutSetting(ctx, "test_event_"+ev.Type, []byte("1"))
}

func (failingEvents) Blocking(context.Context, account.Actor, account.Event) error { return nil }

func newService(t *testing.T) (*account.Service, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func strp(s string) *string { return &s }

func TestResetPasswordRollsBackWhenMailFails(t *testing.T) {
	s, st := newService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "a@example.com", Password: strp("old-passw0rd")})
	if err != nil {
		t.Fatal(err)
	}
	m := &failingMailer{}
	s.SetMailer(m)
	_, err = s.ResetPassword(ctx, account.SystemActor, account.ResetPasswordInput{UserID: u.ID, Password: strp("new-passw0rd"), SendPassword: true, SetPasswordExpired: true})
	if err == nil || m.calls != 1 {
		t.Fatalf("err %v, calls %d", err, m.calls)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if !s.Hasher().Verify(got.Password.Hash, "old-passw0rd") || got.Password.ExpireAfter != nil {
		t.Error("password changed although the mail could not be queued")
	}
	if h, _ := st.PasswordHistory(ctx, u.ID, 10, got.CreatedAt); len(h) != 1 {
		t.Errorf("history has %d rows, want 1", len(h))
	}
}

func TestDeleteUserRollsBackWhenEventFails(t *testing.T) {
	s, st := newService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s.SetEvents(failingEvents{failOn: "admin_api.mutation.delete_user.executed"})
	if _, err := s.DeleteUser(ctx, account.SystemActor, u.ID); err == nil {
		t.Fatal("delete succeeded although its event failed")
	}
	if _, err := s.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("user gone after a failed delete: %v", err)
	}
	if _, err := st.Setting(ctx, "test_event_user.deleted"); !errors.Is(err, store.ErrNotFound) {
		t.Error("user.deleted event kept after rollback")
	}
	// With events working, user.deleted is written and the user is gone.
	s.SetEvents(failingEvents{})
	if _, err := s.DeleteUser(ctx, account.SystemActor, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Setting(ctx, "test_event_user.deleted"); err != nil {
		t.Error("user.deleted not recorded")
	}
	if _, err := st.IdentityByNorm(ctx, "b@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Error("identity survived the delete")
	}
}

func TestResetPasswordUnknownUser(t *testing.T) {
	s, _ := newService(t)
	_, err := s.ResetPassword(context.Background(), account.SystemActor, account.ResetPasswordInput{UserID: "nope"})
	if e, ok := account.AsError(err); !ok || e.Reason != account.ReasonUserNotFound {
		t.Fatalf("err %v", err)
	}
}

func TestAPIKeyAuthentication(t *testing.T) {
	s, st := newService(t)
	ctx := context.Background()
	k, err := s.CreateAPIKey(ctx, account.SystemActor, "ci")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := st.APIKeyByID(ctx, k.Key.ID)
	if stored.SecretHash == "" || len(stored.SecretHash) != 64 {
		t.Fatalf("stored hash %q", stored.SecretHash)
	}
	got, err := s.AuthenticateAPIKey(ctx, k.Token, "10.0.0.1")
	if err != nil || got.ID != k.Key.ID || got.LastUsedAt == nil {
		t.Fatalf("good token: %v %+v", err, got)
	}
	for _, bad := range []string{"", k.Token[:len(k.Token)-1], k.Token + "A", "lk_" + k.Key.ID, "xx" + k.Token[2:]} {
		if _, err := s.AuthenticateAPIKey(ctx, bad, "10.0.0.1"); !errors.Is(err, account.ErrInvalidAPIKey) {
			t.Errorf("token %q: err %v", bad, err)
		}
	}
	if err := s.RevokeAPIKey(ctx, account.SystemActor, k.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, k.Token, "10.0.0.1"); !errors.Is(err, account.ErrInvalidAPIKey) {
		t.Errorf("revoked: %v", err)
	}
}
