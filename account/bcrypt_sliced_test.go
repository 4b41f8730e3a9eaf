package account

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The sliced bcrypt computes exactly x/crypto/bcrypt's hash: for each cost
// from 4 to 8 and random passwords (empty, with NULs, longer than 72
// bytes) and x/crypto's own random salts, the hash recomputed from the
// salt is byte for byte x/crypto's; each side's hash verifies with the
// other; a changed password or hash does not.
func TestSlicedBcryptMatchesXCrypto(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for cost := bcrypt.MinCost; cost <= 8; cost++ {
		for i := 0; i < 12; i++ {
			pw := make([]byte, r.IntN(72))
			_, _ = rand.Read(pw)
			if i == 0 {
				pw = nil
			}
			ref, err := bcrypt.GenerateFromPassword(pw, cost)
			if err != nil {
				t.Fatal(err)
			}
			n := bcryptPrefixLen(ref)
			got, err := bcryptSliced(pw, cost, ref[n:n+encodedSaltLen])
			if err != nil {
				t.Fatal(err)
			}
			if want := ref[n+encodedSaltLen:]; !bytes.Equal(got, want) {
				t.Fatalf("cost %d password %x: sliced %s, x/crypto %s", cost, pw, got, want)
			}
			if !compareBcrypt(ref, pw) {
				t.Fatalf("x/crypto's hash does not verify with the sliced bcrypt")
			}
			mine, err := generateBcrypt(pw, cost)
			if err != nil {
				t.Fatal(err)
			}
			if err := bcrypt.CompareHashAndPassword(mine, pw); err != nil {
				t.Fatalf("the sliced hash %s does not verify with x/crypto: %v", mine, err)
			}
			other := append(append([]byte(nil), pw...), 'x')
			if compareBcrypt(ref, other) || compareBcrypt(mine, other) {
				t.Fatal("a different password verified")
			}
			flipped := append([]byte(nil), ref...)
			flipped[len(flipped)-2] ^= 1
			if compareBcrypt(flipped, pw) != (bcrypt.CompareHashAndPassword(flipped, pw) == nil) {
				t.Fatal("a changed hash is judged differently from x/crypto")
			}
		}
	}
	// Past 72 bytes only the first 72 count, as in x/crypto's comparison.
	long := bytes.Repeat([]byte("p"), 100)
	ref, _ := bcrypt.GenerateFromPassword(long[:72], 4)
	if !compareBcrypt(ref, long) || (bcrypt.CompareHashAndPassword(ref, long) == nil) != compareBcrypt(ref, long) {
		t.Fatal("a password past 72 bytes is judged differently from x/crypto")
	}
	if _, err := generateBcrypt(long, 4); err != bcrypt.ErrPasswordTooLong {
		t.Fatalf("generate past 72 bytes: %v", err)
	}
	if _, err := generateBcrypt([]byte("p"), 3); err == nil {
		t.Fatal("cost 3 accepted")
	}
	// The $2b$ and $2y$ prefixes other implementations write, and junk.
	for _, v := range []string{"$2b$", "$2y$"} {
		h := append([]byte(v), ref[4:]...)
		if !compareBcrypt(h, long) {
			t.Fatalf("%s hash not verified", v)
		}
	}
	for _, junk := range []string{"", "$2a$04$short", "$3a$04$" + string(ref[7:]), "$2a$99$" + string(ref[7:]), string(ref[:58])} {
		if compareBcrypt([]byte(junk), long) {
			t.Fatalf("junk hash %q verified", junk)
		}
	}
}

// A verification yields the processor every yieldRounds key-expansion
// rounds (32 times at cost 10), so short work waits for a slice of about
// 2 ms, not for Go's 10 ms preemption of the whole hash;
// the effect on refusals is measured from outside (task
// bench-signin-http).
func TestSlicedBcryptYields(t *testing.T) {
	var n atomic.Int64
	yield = func() { n.Add(1); runtime.Gosched() }
	defer func() { yield = runtime.Gosched }()
	h := &Hasher{Cost: 10}
	stored, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Swap(0); got != 1024/yieldRounds {
		t.Fatalf("hashing yielded %d times, want %d", got, 1024/yieldRounds)
	}
	if !h.Verify(stored, "correct horse") {
		t.Fatal("verify failed")
	}
	if got := n.Load(); got != 1024/yieldRounds {
		t.Fatalf("verifying yielded %d times, want %d", got, 1024/yieldRounds)
	}
}

func BenchmarkVerifyCost10(b *testing.B) {
	ref, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	b.Run("x-crypto", func(b *testing.B) {
		for range b.N {
			_ = bcrypt.CompareHashAndPassword(ref, []byte("pw"))
		}
	})
	b.Run("sliced", func(b *testing.B) {
		for range b.N {
			_ = compareBcrypt(ref, []byte("pw"))
		}
	})
}

// BenchmarkVerifyCost10Parallel verifies on every processor at once, as
// under sign-in load.
func BenchmarkVerifyCost10Parallel(b *testing.B) {
	ref, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	b.Run("x-crypto", func(b *testing.B) {
		b.SetParallelism(2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = bcrypt.CompareHashAndPassword(ref, []byte("pw"))
			}
		})
	})
	b.Run("sliced", func(b *testing.B) {
		b.SetParallelism(2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = compareBcrypt(ref, []byte("pw"))
			}
		})
	})
}
