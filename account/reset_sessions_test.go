package account

import (
	"context"
	"testing"
)

// TestAdminResetEndsSessions: after an admin resets a password, sessions
// opened with the old one no longer work.
func TestAdminResetEndsSessions(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "sess@example.com", Password: ptr("old-Passw0rd")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Login(ctx, Actor{IP: "127.0.0.1"}, LoginInput{LoginID: "sess@example.com", Password: "old-Passw0rd"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, res.Session); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	if _, err := s.ResetPassword(ctx, admin, ResetPasswordInput{UserID: u.ID, Password: ptr("new-Passw0rd")}); err != nil {
		t.Fatal(err)
	}
	if sess, err := s.Session(ctx, res.Session); err == nil && sess != nil {
		t.Fatal("session from before the admin reset still works")
	}
}
