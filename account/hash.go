package account

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Hash formats, written as a prefix so that other formats can be verified
// later (imports bring plain bcrypt hashes).
const (
	formatBcryptSHA512 = "bcrypt-sha512$"
	formatBcrypt       = "bcrypt$"
)

// MaxPasswordLength is the longest password accepted, in characters.
const MaxPasswordLength = 8192

// Hasher hashes passwords with bcrypt over a SHA-512 pre-hash, so long
// passwords are not silently truncated at bcrypt's 72 bytes.
type Hasher struct {
	Cost int

	dummyOnce sync.Once
	dummy     string
}

func prehash(password string) []byte {
	sum := sha512.Sum512([]byte(password))
	return sum[:]
}

// Hash returns the stored form of password.
func (h *Hasher) Hash(password string) (string, error) {
	cost := h.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	b, err := generateBcrypt(prehash(password), cost)
	if err != nil {
		return "", fmt.Errorf("account: hash password: %w", err)
	}
	return formatBcryptSHA512 + string(b), nil
}

// Verify reports whether password matches the stored hash. Unknown formats
// never match.
func (h *Hasher) Verify(stored, password string) bool {
	switch {
	case strings.HasPrefix(stored, formatBcryptSHA512):
		return compareBcrypt([]byte(stored[len(formatBcryptSHA512):]), prehash(password))
	case strings.HasPrefix(stored, formatBcrypt):
		return compareBcrypt([]byte(stored[len(formatBcrypt):]), []byte(password))
	}
	// No usable hash (an invited admin who has not chosen a password, a
	// user with none): spend a verification's time anyway, so timing does
	// not tell such an account from one with a password.
	h.VerifyDummy(password)
	return false
}

// VerifyDummy spends the same time as a real verification, so that an
// unknown login ID cannot be told from a wrong password by timing.
func (h *Hasher) VerifyDummy(password string) {
	h.dummyOnce.Do(func() {
		h.dummy, _ = h.Hash("latchkey-dummy-password")
	})
	_ = h.Verify(h.dummy, password)
}

// MaxImportBcryptCost is the highest bcrypt cost an imported hash may
// have: each sign-in verifies it, and a cost of 31 would take a day of CPU
// per attempt, for anyone who types the login ID.
const MaxImportBcryptCost = 14

// ErrBcryptCostTooHigh is returned for imported hashes above MaxImportBcryptCost.
var ErrBcryptCostTooHigh = errors.New("account: bcrypt cost too high")

// ImportBcryptHash wraps an externally made bcrypt hash in Latchkey's format.
func ImportBcryptHash(hash string) (string, error) {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return "", errors.New("account: not a bcrypt hash")
	}
	if cost > MaxImportBcryptCost {
		return "", ErrBcryptCostTooHigh
	}
	return formatBcrypt + hash, nil
}

// cost is the bcrypt cost new hashes get.
func (h *Hasher) cost() int {
	if h.Cost == 0 {
		return bcrypt.DefaultCost
	}
	return h.Cost
}

// MaxImportCost is the highest bcrypt cost an imported hash may have: the
// configured cost plus 2 (four times the work of a native hash). A
// higher cost would make a wrong password for that account take far
// longer than for an unknown one, telling the two apart, and give anyone
// who types the login ID a lever on the server's CPU.
func (h *Hasher) MaxImportCost() int { return min(h.cost()+2, MaxImportBcryptCost) }

// ImportHash wraps an externally made bcrypt hash in Latchkey's format,
// refusing (ErrBcryptCostTooHigh) a cost above MaxImportCost.
func (h *Hasher) ImportHash(hash string) (string, error) {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return "", errors.New("account: not a bcrypt hash")
	}
	if cost > h.MaxImportCost() {
		return "", ErrBcryptCostTooHigh
	}
	return formatBcrypt + hash, nil
}

// NeedsRehash reports whether a stored hash is not in the current format
// at the current cost: an imported plain bcrypt hash, or one made before
// the cost was changed. Sign-in replaces it once the password is known.
func (h *Hasher) NeedsRehash(stored string) bool {
	if !strings.HasPrefix(stored, formatBcryptSHA512) {
		return true
	}
	cost, err := bcrypt.Cost([]byte(stored[len(formatBcryptSHA512):]))
	return err != nil || cost != h.cost()
}

// equalSecret compares two secrets in constant time.
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
