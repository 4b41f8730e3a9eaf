package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"latchkey/account"
	"latchkey/store"
)

// Signing algorithms Latchkey can make keys for.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// keyRecheck is how often a running server looks for a rotation made by
// another process (`latchkey keys rotate`): one indexed read.
const keyRecheck = 30 * time.Second

// signingKey is a private key in memory; it satisfies op.SigningKey and op.Key.
type signingKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	// fast, when set, signs in place of priv (OpenSSL for RS256).
	fast jose.OpaqueSigner
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) ID() string                                  { return k.id }

// Key is what signs: the OpenSSL signer when there is one, else the
// private key.
func (k *signingKey) Key() any {
	if k.fast != nil {
		return k.fast
	}
	return k.priv
}

// publicKey is a published key (JWKS).
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.priv.Public() }

// keySet is what the keyring holds in memory: the key that signs and
// every key that is published.
type keySet struct {
	active    *signingKey
	published []*signingKey
	algs      []jose.SignatureAlgorithm
}

// Keyring keeps the signing keys in memory, loaded from the store, where
// they sit sealed with the server secret. JWKS and discovery are served
// from memory; the store is read again at most every keyRecheck, to pick
// up a rotation made by another process.
type Keyring struct {
	store  *store.Store
	sealer *account.Sealer
	// keep is how long a retired key stays published: the lifetime of the
	// longest-lived token it can have signed.
	keep time.Duration
	now  func() time.Time

	set       atomic.Pointer[keySet]
	checkedAt atomic.Int64
	mu        sync.Mutex

	// rsaSigner is LATCHKEY_RSA_SIGNER: "auto" (OpenSSL when libcrypto
	// loads, else Go), "openssl" (required) or "go".
	rsaSigner string
	// signerNote says what signs RS256 and, when Go does, why.
	signerNote atomic.Pointer[string]
}

// RSASignerModes are the values LATCHKEY_RSA_SIGNER takes.
var RSASignerModes = []string{"auto", "openssl", "go"}

// NewKeyring loads the signing keys, generating the first one (alg) when
// there is none.
func NewKeyring(ctx context.Context, st *store.Store, secret []byte, alg string, keep time.Duration) (*Keyring, error) {
	sealer, err := account.NewSealer(secret, "oidc-signing-keys")
	if err != nil {
		return nil, err
	}
	mode := strings.ToLower(strings.TrimSpace(os.Getenv("LATCHKEY_RSA_SIGNER")))
	if mode == "" {
		mode = "auto"
	}
	if !slices.Contains(RSASignerModes, mode) {
		return nil, fmt.Errorf("oidc: LATCHKEY_RSA_SIGNER=%q: use one of %v", mode, RSASignerModes)
	}
	kr := &Keyring{store: st, sealer: sealer, keep: keep, rsaSigner: mode, now: func() time.Time { return time.Now().UTC() }}
	if err := kr.load(ctx); err != nil {
		return nil, err
	}
	if kr.set.Load().active == nil {
		if _, err := kr.Rotate(ctx, alg); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

func newKey(alg string) (*signingKey, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	k := &signingKey{id: hex.EncodeToString(id)}
	var err error
	switch alg {
	case AlgRS256, "":
		k.alg = jose.RS256
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		k.alg = jose.ES256
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("oidc: signing algorithm %q is not supported (use RS256 or ES256)", alg)
	}
	return k, err
}

// Rotate makes a new active key (RS256 unless alg is ES256) and retires
// the current one, which stays in JWKS until the tokens it signed expire.
// It returns the new key's ID.
func (kr *Keyring) Rotate(ctx context.Context, alg string) (string, error) {
	return kr.rotate(ctx, alg, nil)
}

// rotate is Rotate with inTx run in the same transaction (the event).
func (kr *Keyring) rotate(ctx context.Context, alg string, inTx func(tx *store.Tx, kid, alg string) error) (string, error) {
	k, err := newKey(alg)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return "", err
	}
	sealed, err := kr.sealer.Seal(der, []byte(k.id))
	if err != nil {
		return "", err
	}
	now := kr.now()
	err = kr.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteOIDCKeysRetiredBefore(ctx, now.Add(-kr.keep)); err != nil {
			return err
		}
		if err := tx.RetireOIDCKeys(ctx, now); err != nil {
			return err
		}
		if err := tx.InsertOIDCKey(ctx, &store.OIDCKey{ID: k.id, Alg: string(k.alg), PrivateKey: sealed, CreatedAt: now}); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(tx, k.id, string(k.alg))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("oidc: rotate signing key: %w", err)
	}
	return k.id, kr.load(ctx)
}

// load reads the keys from the store into memory.
func (kr *Keyring) load(ctx context.Context) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	rows, err := kr.store.ListOIDCKeys(ctx)
	if err != nil {
		return err
	}
	now := kr.now()
	set := &keySet{}
	seen := map[jose.SignatureAlgorithm]bool{}
	for _, r := range rows {
		if r.RetiredAt != nil && now.Sub(*r.RetiredAt) > kr.keep {
			continue
		}
		der, err := kr.sealer.Open(r.PrivateKey, []byte(r.ID))
		if err != nil {
			return fmt.Errorf("oidc: open signing key %s (was LATCHKEY_SECRET_KEY changed?): %w", r.ID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("oidc: parse signing key %s: %w", r.ID, err)
		}
		if rk, ok := priv.(*rsa.PrivateKey); ok {
			// The CRT values make each signature about three times cheaper;
			// the parser fills them, and this keeps it so whatever the
			// key's source (a no-op when they are there).
			rk.Precompute()
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return errors.New("oidc: signing key is not a signer")
		}
		k := &signingKey{id: r.ID, alg: jose.SignatureAlgorithm(r.Alg), priv: signer}
		if rk, ok := priv.(*rsa.PrivateKey); ok && k.alg == jose.RS256 && kr.rsaSigner != "go" {
			fast, err := newOpenSSLRSA(k.id, rk)
			switch {
			case err == nil:
				k.fast = fast
				kr.noteSigner("OpenSSL libcrypto")
			case kr.rsaSigner == "openssl":
				return fmt.Errorf("oidc: LATCHKEY_RSA_SIGNER=openssl: %w", err)
			default:
				kr.noteSigner("Go crypto/rsa (OpenSSL: " + err.Error() + ")")
			}
		} else if k.alg == jose.RS256 {
			kr.noteSigner("Go crypto/rsa (LATCHKEY_RSA_SIGNER=go)")
		}
		if r.RetiredAt == nil && set.active == nil {
			set.active = k
		}
		set.published = append(set.published, k)
		if !seen[k.alg] {
			seen[k.alg] = true
			set.algs = append(set.algs, k.alg)
		}
	}
	kr.set.Store(set)
	kr.checkedAt.Store(now.UnixNano())
	return nil
}

func (kr *Keyring) noteSigner(s string) { kr.signerNote.Store(&s) }

// RSASigner says what signs RS256 tokens: "OpenSSL libcrypto", or Go's
// crypto/rsa and why. Empty when no RS256 key is loaded.
func (kr *Keyring) RSASigner() string {
	if s := kr.signerNote.Load(); s != nil {
		return *s
	}
	return ""
}

// current returns the keys in memory, reloading them when another process
// has rotated (checked at most every keyRecheck) or a retired key's
// publication has run out.
func (kr *Keyring) current(ctx context.Context) *keySet {
	set := kr.set.Load()
	now := kr.now()
	last := kr.checkedAt.Load()
	if now.UnixNano()-last < int64(keyRecheck) || !kr.checkedAt.CompareAndSwap(last, now.UnixNano()) {
		return set
	}
	id, err := kr.store.ActiveOIDCKeyID(ctx)
	if err == nil && (set.active == nil || id != set.active.id || len(set.published) > 1) {
		_ = kr.load(ctx) // on failure keep serving the keys in memory
	}
	return kr.set.Load()
}

// ActiveKeyID is the ID (kid) of the key that signs now.
func (kr *Keyring) ActiveKeyID(ctx context.Context) string {
	if k := kr.current(ctx).active; k != nil {
		return k.id
	}
	return ""
}

// PublishedKeys lists the kid and algorithm of every key in JWKS, the
// active one first.
func (kr *Keyring) PublishedKeys(ctx context.Context) []KeyInfo {
	set := kr.current(ctx)
	out := make([]KeyInfo, 0, len(set.published))
	for _, k := range set.published {
		out = append(out, KeyInfo{ID: k.id, Alg: string(k.alg), Active: k == set.active})
	}
	return out
}

// KeyInfo describes a published signing key for the portal.
type KeyInfo struct {
	ID     string
	Alg    string
	Active bool
}

// RS256Signer returns the RS256 signing the server uses for k under the
// current LATCHKEY_RSA_SIGNER (OpenSSL when it loads, else crypto/rsa),
// and what it is: benchmarks measure the same signature as the server's
// bound.
func RS256Signer(k *rsa.PrivateKey) (func(payload []byte) ([]byte, error), string) {
	mode := strings.ToLower(strings.TrimSpace(os.Getenv("LATCHKEY_RSA_SIGNER")))
	if mode != "go" {
		if fast, err := newOpenSSLRSA("bench", k); err == nil {
			return func(p []byte) ([]byte, error) { return fast.SignPayload(p, jose.RS256) }, "OpenSSL libcrypto"
		}
	}
	k.Precompute()
	return func(p []byte) ([]byte, error) {
		h := sha256.Sum256(p)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	}, "Go crypto/rsa"
}
