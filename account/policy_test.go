package account

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func causeKinds(cs []Cause) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

func TestPolicyCheckReportsEveryFailingRule(t *testing.T) {
	p := Policy{MinLength: 12, UppercaseRequired: true, LowercaseRequired: true, DigitRequired: true,
		SymbolRequired: true, ExcludedKeywords: []string{"acme"}, MinimumGuessableLevel: 4}
	got := causeKinds(p.Check("acme"))
	want := []string{CausePasswordTooShort, CausePasswordUppercaseRequired, CausePasswordDigitRequired,
		CausePasswordSymbolRequired, CausePasswordContainingExcludedKeywords, CausePasswordBelowGuessableLevel}
	if !slices.Equal(got, want) {
		t.Fatalf("causes = %v, want %v", got, want)
	}
	short := p.Check("acme")[0]
	if short.Info["min_length"] != 12 || short.Info["pw_length"] != 4 {
		t.Errorf("PasswordTooShort info = %v", short.Info)
	}
	if c := p.Check("Tr0ub4dor&3-horse-Staple!"); len(c) != 0 {
		t.Errorf("strong password fails: %v", causeKinds(c))
	}
}

func TestPolicyCheckCountsRunesAndAlphabet(t *testing.T) {
	p := Policy{MinLength: 4, AlphabetRequired: true}
	if c := p.Check("ééé1"); len(c) != 1 || c[0].Kind != CausePasswordAlphabetRequired {
		// 4 runes (long enough), but é is not an ASCII letter.
		t.Fatalf("causes = %v", causeKinds(c))
	}
	if c := p.Check("日本語"); !slices.Contains(causeKinds(c), CausePasswordTooShort) {
		t.Fatalf("3 runes should be too short: %v", causeKinds(c))
	}
	if c := p.Check(strings.Repeat("a", MaxPasswordLength+1)); !slices.Contains(causeKinds(c), CausePasswordTooLong) {
		t.Fatal("an over-long password passes")
	}
}

// TestGeneratedPasswordsPassTheirPolicy is the property test: 1,000
// generated passwords under each of several policies all pass it.
func TestGeneratedPasswordsPassTheirPolicy(t *testing.T) {
	policies := []Policy{
		DefaultPolicy(),
		{MinLength: 8, UppercaseRequired: true, LowercaseRequired: true, DigitRequired: true, SymbolRequired: true},
		{MinLength: 20, DigitRequired: true, ExcludedKeywords: []string{"latch", "key"}},
		{MinLength: 1, AlphabetRequired: true},
		{MinLength: 64, SymbolRequired: true, UppercaseRequired: true},
		{MinLength: 8, MinimumGuessableLevel: 5, SymbolRequired: true},
	}
	for i, p := range policies {
		seen := map[string]bool{}
		n := 1000
		if p.MinimumGuessableLevel > 0 {
			n = 200 // zxcvbn is slow; 200 still makes the point
		}
		for range n {
			pw, err := GeneratePassword(p)
			if err != nil {
				t.Fatalf("policy %d: %v", i, err)
			}
			if c := p.Check(pw); len(c) > 0 {
				t.Fatalf("policy %d: generated %q fails %v", i, pw, causeKinds(c))
			}
			if len(pw) < max(p.MinLength, 8) {
				t.Fatalf("policy %d: %q shorter than %d", i, pw, max(p.MinLength, 8))
			}
			if seen[pw] {
				t.Fatalf("policy %d: generated %q twice", i, pw)
			}
			seen[pw] = true
		}
	}
}

func TestGenerateImpossiblePolicyFails(t *testing.T) {
	// Every generated character is excluded: no try can pass.
	p := Policy{MinLength: 8, ExcludedKeywords: strings.Split("abcdefghijklmnopqrstuvwxyz0123456789", "")}
	if _, err := GeneratePassword(p); err == nil {
		t.Fatal("want an error for a policy no password can meet")
	}
}

func TestHasherNoTruncationAndFormats(t *testing.T) {
	h := &Hasher{Cost: 4}
	long := strings.Repeat("x", 100)
	stored, err := h.Hash(long)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "bcrypt-sha512$") {
		t.Fatalf("stored %q has no format prefix", stored)
	}
	if !h.Verify(stored, long) {
		t.Fatal("password does not verify")
	}
	// Plain bcrypt would ignore everything after byte 72.
	if h.Verify(stored, strings.Repeat("x", 72)+"different-tail-0000000000000") {
		t.Fatal("a password that differs after byte 72 verifies")
	}
	if h.Verify("md5$abc", "abc") || h.Verify("", "") {
		t.Fatal("unknown format verifies")
	}
	imported, err := ImportBcryptHash("$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	if err != nil {
		t.Fatal(err)
	}
	if h.Verify(imported, "wrong") {
		t.Fatal("wrong password verifies against an imported hash")
	}
	if _, err := ImportBcryptHash("not-a-hash"); err == nil {
		t.Fatal("ImportBcryptHash accepts garbage")
	}
}

func TestImportBcryptHashRefusesHighCost(t *testing.T) {
	// A syntactically valid cost-17 hash (salt and digest of the right size).
	high := "$2a$17$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	if _, err := ImportBcryptHash(high); !errors.Is(err, ErrBcryptCostTooHigh) {
		t.Fatalf("cost 17: %v, want ErrBcryptCostTooHigh", err)
	}
	ok := "$2a$14$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	if _, err := ImportBcryptHash(ok); err != nil {
		t.Fatalf("cost 14: %v", err)
	}
}
