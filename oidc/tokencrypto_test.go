package oidc

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// TestTokenCrypto: a sealed token opens to what was sealed, only with its
// key, not once changed; two seals of one value differ; a token from the
// library's former JWE format still opens (legacy), and garbage does not.
func TestTokenCrypto(t *testing.T) {
	key, other := sha256.Sum256([]byte("k1")), sha256.Sum256([]byte("k2"))
	legacy := op.NewAES256GCMCrypto(sha256.Sum256([]byte("legacy")), "lk1")
	c, err := newTokenCrypto(key, legacy)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newTokenCrypto(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	const v = "0f6e7c1e6d7b4c559a383c6c1b8f2e11:4b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
	a, err := c.Encrypt(v)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Encrypt(v)
	if a == b || strings.Contains(a, "0f6e7c1e") || strings.ContainsAny(a, ".=+/") {
		t.Fatalf("sealed tokens %q and %q", a, b)
	}
	if got, err := c.Decrypt(a); err != nil || got != v {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := d.Decrypt(a); err == nil {
		t.Fatal("opened with another key")
	}
	flipped := []byte(a)
	if flipped[40] == 'A' {
		flipped[40] = 'B'
	} else {
		flipped[40] = 'A'
	}
	if _, err := c.Decrypt(string(flipped)); err == nil {
		t.Fatal("a changed token opened")
	}
	old, err := legacy.Encrypt(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(old); err != nil || got != v {
		t.Fatalf("legacy token: %q %v", got, err)
	}
	for _, bad := range []string{"", "x", "a.b.c.d.e", strings.Repeat("A", 200)} {
		if _, err := c.Decrypt(bad); err == nil {
			t.Fatalf("%q opened", bad)
		}
	}
}
