package account

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// Sealer encrypts small secrets at rest (passwords queued for email,
// webhook signing keys) with AES-GCM, under a key derived from the server
// secret for one purpose, so no two features share a key.
type Sealer struct{ aead cipher.AEAD }

// NewSealer makes the Sealer for purpose.
func NewSealer(secret []byte, purpose string) (*Sealer, error) {
	block, err := aes.NewCipher(DeriveKey(secret, purpose))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns nonce || ciphertext. aad is bound to it: opening with other
// aad fails, so a sealed secret cannot be moved to another row.
func (s *Sealer) Seal(plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, aad), nil
}

// Open reverses Seal with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("account: sealed secret too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], aad)
}
