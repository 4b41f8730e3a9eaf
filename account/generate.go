package account

import (
	"crypto/rand"
	"errors"
	"math/big"
)

// The generator's alphabets leave out characters that look alike in
// many fonts (0/O/o, 1/l/I, and | among the symbols), so a password read
// from an email or a screen is typed right the first time.
const (
	lowerChars  = "abcdefghijkmnpqrstuvwxyz"
	upperChars  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	digitChars  = "23456789"
	symbolChars = "-~!@#$%^&*_+=`(){}[:;\"'<>,.?]"
)

// errGenerate is returned when no policy-compliant password came out of the
// generator's tries, which only an impossible policy causes.
var errGenerate = errors.New("account: could not generate a password that satisfies the policy")

// GeneratePassword makes a random password that satisfies p, the way the
// reference product does: length max(min_length, 8), or 32 when a guessable
// level is required; one character of each required class; the rest from
// letters and digits (and symbols when required); shuffled with crypto/rand;
// checked against the policy and retried up to 10 times.
func GeneratePassword(p Policy) (string, error) {
	length := max(p.MinLength, 8)
	if p.MinimumGuessableLevel > 0 {
		length = max(length, 32)
	}
	for range 10 {
		var out []byte
		if p.LowercaseRequired || p.AlphabetRequired {
			out = append(out, pick(lowerChars))
		}
		if p.UppercaseRequired {
			out = append(out, pick(upperChars))
		}
		if p.DigitRequired {
			out = append(out, pick(digitChars))
		}
		if p.SymbolRequired {
			out = append(out, pick(symbolChars))
		}
		pool := lowerChars + upperChars + digitChars
		if p.SymbolRequired {
			pool += symbolChars
		}
		for len(out) < length {
			out = append(out, pick(pool))
		}
		shuffle(out)
		pw := string(out)
		if len(p.Check(pw)) == 0 {
			return pw, nil
		}
	}
	return "", errGenerate
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("account: crypto/rand failed: " + err.Error())
	}
	return int(v.Int64())
}

func pick(chars string) byte { return chars[randInt(len(chars))] }

func shuffle(b []byte) {
	for i := len(b) - 1; i > 0; i-- {
		j := randInt(i + 1)
		b[i], b[j] = b[j], b[i]
	}
}
