package account_test

import (
	"testing"

	"latchkey/account"
)

// BenchmarkHasherVerify is raw password verification at the production
// cost (10), in parallel over all cores: the ceiling for sign-ins/s.
func BenchmarkHasherVerify(b *testing.B) {
	h := &account.Hasher{Cost: 10}
	hash, err := h.Hash("bench-Passw0rd-1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !h.Verify(hash, "bench-Passw0rd-1") {
				b.Error("verify failed")
			}
		}
	})
}

// BenchmarkLoginWrongVsUnknown compares the work of a wrong password and
// an unknown login ID through Service.Login: their ns/op should match,
// since both spend one bcrypt verification.
func BenchmarkLoginWrongVsUnknown(b *testing.B) {
	s := newAuthService(b, 10)
	mkAuthUser(b, s, "known@example.com", "right-Passw0rd")
	p := s.Policy()
	p.LockoutThreshold = 0
	if err := s.SavePolicy(b.Context(), account.SystemActor, p); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, id string }{{"wrong-password", "known@example.com"}, {"unknown-user", "unknown@example.com"}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Login(b.Context(), account.Actor{}, account.LoginInput{LoginID: tc.id, Password: "wrong"}); err != account.ErrBadCredentials {
					b.Fatal(err)
				}
			}
		})
	}
}
