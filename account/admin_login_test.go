package account

import (
	"context"
	"strings"
	"testing"
	"time"

	"latchkey/store"
)

// TestAdminSignInRehashesOldCost: an admin whose hash has another cost
// (the server's cost was changed) gets a current hash at the next
// successful sign-in, and only then.
func TestAdminSignInRehashesOldCost(t *testing.T) {
	s, _ := newTestService(t) // cost 4
	ctx := context.Background()
	old, err := (&Hasher{Cost: 6}).Hash("admin-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store().InsertAdmin(ctx, store.Admin{ID: "a1", Email: "root@example.com", PasswordHash: old, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSignIn(ctx, Actor{IP: "127.0.0.1"}, "root@example.com", "wrong"); err != ErrBadCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if a, _ := s.Admin(ctx, "a1"); a.PasswordHash != old {
		t.Fatal("a wrong password replaced the hash")
	}
	if _, err := s.AdminSignIn(ctx, Actor{IP: "127.0.0.1"}, "ROOT@example.com", "admin-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Admin(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a.PasswordHash == old || !strings.HasPrefix(a.PasswordHash, "bcrypt-sha512$$2a$04$") || !s.Hasher().Verify(a.PasswordHash, "admin-Passw0rd") {
		t.Fatalf("hash after sign-in %q", a.PasswordHash)
	}
}
