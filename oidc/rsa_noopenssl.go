//go:build !(cgo && linux)

package oidc

import (
	"crypto/rsa"
	"errors"

	jose "github.com/go-jose/go-jose/v4"
)

// Without cgo on Linux there is no OpenSSL signer: crypto/rsa signs.
func newOpenSSLRSA(id string, k *rsa.PrivateKey) (jose.OpaqueSigner, error) {
	return nil, errors.New("OpenSSL signing needs cgo on Linux")
}
