package oidc

import (
	"context"
	"crypto/rsa"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"latchkey/store"
)

func signerKeyring(t *testing.T, mode string) (*Keyring, error) {
	t.Helper()
	t.Setenv("LATCHKEY_RSA_SIGNER", mode)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewKeyring(ctx, st, []byte("0123456789abcdef0123456789abcdef"), AlgRS256, KeyKeep)
}

// signAndVerify signs a token the way the provider does (op.SignerFromKey)
// and verifies it against the published key with go-jose and crypto/rsa.
func signAndVerify(t *testing.T, kr *Keyring) any {
	t.Helper()
	k := kr.current(context.Background()).active
	signer, err := op.SignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"sub":"u1","aud":"app","nonce":"n"}`)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := parsed.Signatures[0].Header.KeyID; kid != k.id {
		t.Fatalf("kid %q, want %q", kid, k.id)
	}
	got, err := parsed.Verify(k.priv.Public().(*rsa.PublicKey))
	if err != nil || string(got) != string(payload) {
		t.Fatalf("signature does not verify against the published key: %v", err)
	}
	// A flipped payload byte must not verify: the check above can fail.
	tampered := []byte(compact)
	tampered[strings.IndexByte(compact, '.')+3] ^= 1
	if p, err := jose.ParseSigned(string(tampered), []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		if _, err := p.Verify(k.priv.Public()); err == nil {
			t.Fatal("a tampered token verified")
		}
	}
	return k.Key()
}

// By default RS256 tokens are signed by OpenSSL where libcrypto loads
// (it does on the machines Latchkey is built and tested on), and they
// verify with crypto/rsa against JWKS.
func TestRS256SignedByOpenSSL(t *testing.T) {
	kr, err := signerKeyring(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if kr.RSASigner() != "OpenSSL libcrypto" {
		if loadLibcrypto() != nil {
			t.Skipf("no libcrypto here: %s", kr.RSASigner())
		}
		t.Fatalf("signer %q although libcrypto loads", kr.RSASigner())
	}
	if _, ok := signAndVerify(t, kr).(jose.OpaqueSigner); !ok {
		t.Fatal("the active key does not sign through OpenSSL")
	}
	// LATCHKEY_RSA_SIGNER=openssl insists, and works here.
	if kr, err := signerKeyring(t, "openssl"); err != nil || kr.RSASigner() != "OpenSSL libcrypto" {
		t.Fatalf("openssl mode: %v, %q", err, kr.RSASigner())
	}
}

// LATCHKEY_RSA_SIGNER=go signs with crypto/rsa; a value that is not a
// mode is refused at start.
func TestRS256SignerModes(t *testing.T) {
	kr, err := signerKeyring(t, "go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kr.RSASigner(), "Go crypto/rsa") {
		t.Fatalf("signer %q", kr.RSASigner())
	}
	if _, ok := signAndVerify(t, kr).(*rsa.PrivateKey); !ok {
		t.Fatal("go mode does not sign with crypto/rsa")
	}
	if _, err := signerKeyring(t, "boringssl"); err == nil || !strings.Contains(err.Error(), "LATCHKEY_RSA_SIGNER") {
		t.Fatalf("an unknown mode was accepted: %v", err)
	}
}
