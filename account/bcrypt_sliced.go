package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/blowfish"
)

// bcrypt in slices.
//
// A bcrypt verification is 60-100 ms of one core with no point where the
// goroutine waits, so Go's scheduler takes the processor from it only
// when sysmon preempts it, every 10 ms. With both cores verifying, a
// request that needs a moment of CPU (the sign-in page, a refusal with
// 503, a token exchange) waits for that preemption at each step: a busy
// refusal took 30 ms at the median and 64-80 ms at p99 under 64 clients.
// Here bcrypt yields the processor (runtime.Gosched) every yieldRounds of
// its 2^cost key-expansion rounds, about 2 ms: waiting short work runs
// first and the verification goes on right after, so the cores stay as
// busy as before.
//
// It is x/crypto/bcrypt's own algorithm over the same x/crypto/blowfish
// primitives (expensiveBlowfishSetup and the 64 encryptions of
// "OrpheanBeholderScryDoubt"), with x/crypto/bcrypt still parsing and
// checking stored hashes (bcrypt.Cost); tests hold the two byte for byte
// equal for every cost and for random passwords and salts.

// yieldRounds is the number of key-expansion rounds between yields: at
// cost 10 a round takes about 65 µs here, so a slice is about 2 ms.
// Measured from outside at 64 clients (signinbench, alternated runs),
// slices of 0.5 ms (8 rounds) cost a few percent of the sign-in rate
// (0.81-0.93 of the raw rate against 0.87-0.95) for the same refusal
// latency (p99 14-19 ms).
const yieldRounds = 32

// yield gives the processor to waiting goroutines (a variable for tests).
var yield = runtime.Gosched

var bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// magicCipherData is "OrpheanBeholderScryDoubt".
var magicCipherData = [24]byte{
	0x4f, 0x72, 0x70, 0x68, 0x65, 0x61, 0x6e, 0x42,
	0x65, 0x68, 0x6f, 0x6c, 0x64, 0x65, 0x72, 0x53,
	0x63, 0x72, 0x79, 0x44, 0x6f, 0x75, 0x62, 0x74,
}

const (
	encodedSaltLen = 22
	encodedHashLen = 31
)

// bcryptSliced computes bcrypt's 31-character hash of password with the
// encoded salt (22 characters) at cost, yielding the processor between
// slices.
func bcryptSliced(password []byte, cost int, encodedSalt []byte) ([]byte, error) {
	salt, err := bcryptEncoding.DecodeString(string(encodedSalt))
	if err != nil || len(salt) != 16 {
		return nil, fmt.Errorf("account: bad bcrypt salt")
	}
	// As C bcrypt, the key includes its trailing NUL.
	key := append(password[:len(password):len(password)], 0)
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil {
		return nil, err
	}
	rounds := uint64(1) << uint(cost)
	for i := uint64(0); i < rounds; i++ {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
		if i%yieldRounds == yieldRounds-1 {
			yield()
		}
	}
	data := magicCipherData
	for i := 0; i < 24; i += 8 {
		for j := 0; j < 64; j++ {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	// As C bcrypt, only 23 of the 24 bytes are encoded.
	return []byte(bcryptEncoding.EncodeToString(data[:23])), nil
}

// bcryptPrefixLen is the length of "$2a$10$" (or "$2$10$") in hash.
func bcryptPrefixLen(hash []byte) int {
	if len(hash) > 2 && hash[2] == '$' {
		return 6
	}
	return 7
}

// compareBcrypt is bcrypt.CompareHashAndPassword == nil, computed in
// slices.
func compareBcrypt(hash, password []byte) bool {
	cost, err := bcrypt.Cost(hash) // checks the form, the version and the cost
	if err != nil {
		return false
	}
	n := bcryptPrefixLen(hash)
	if len(hash) < n+encodedSaltLen+encodedHashLen {
		return false
	}
	got, err := bcryptSliced(password, cost, hash[n:n+encodedSaltLen])
	if err != nil {
		return false
	}
	// As x/crypto/bcrypt, which re-encodes the stored hash at its fixed
	// length: anything past the 31 hash characters is not compared.
	want := hash[n+encodedSaltLen : n+encodedSaltLen+encodedHashLen]
	return subtle.ConstantTimeCompare(want, got) == 1
}

// generateBcrypt is bcrypt.GenerateFromPassword, computed in slices.
func generateBcrypt(password []byte, cost int) ([]byte, error) {
	if len(password) > 72 {
		return nil, bcrypt.ErrPasswordTooLong
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, bcrypt.InvalidCostError(cost)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	salt := []byte(bcryptEncoding.EncodeToString(raw))
	h, err := bcryptSliced(password, cost, salt)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "$2a$%02d$%s%s", cost, salt, h), nil
}
