package oidc

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/crypto/chacha20poly1305"
)

// tokenCrypto makes the opaque strings the library hands out for
// authorization codes and access tokens (its Crypto): base64url of a
// random 24-byte nonce and the XChaCha20-Poly1305 sealing of the
// library's "tokenID:subject". It replaces the library's default, a JWE
// (A256GCMKW + A256GCM) built afresh for each token, which cost a key
// wrap, two GCM set-ups and JSON per token; this one is set up once.
// The 24-byte random nonce also has no practical limit on how many
// tokens one key can seal (96-bit GCM nonces do).
//
// Tokens made by the library's default (before this change) still open,
// through legacy, until they expire.
type tokenCrypto struct {
	aead   cipher.AEAD
	legacy op.Crypto
}

// tokenAD binds sealed tokens to their use.
var tokenAD = []byte("latchkey oidc token v1")

func newTokenCrypto(key [32]byte, legacy op.Crypto) (*tokenCrypto, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, err
	}
	return &tokenCrypto{aead: aead, legacy: legacy}, nil
}

func (c *tokenCrypto) Encrypt(s string) (string, error) {
	buf := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(s)+chacha20poly1305.Overhead)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(buf, buf, []byte(s), tokenAD)), nil
}

var errTokenOpen = errors.New("oidc: token does not open")

func (c *tokenCrypto) Decrypt(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && len(b) >= chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		n := chacha20poly1305.NonceSizeX
		if out, err := c.aead.Open(nil, b[:n], b[n:], tokenAD); err == nil {
			return string(out), nil
		}
		return "", errTokenOpen
	}
	if c.legacy != nil {
		return c.legacy.Decrypt(s)
	}
	return "", errTokenOpen
}
