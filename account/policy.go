package account

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// Policy is the password policy, with the reference product's fields and
// defaults, plus Latchkey's expiry and lockout settings.
type Policy struct {
	MinLength             int      `json:"min_length"`
	UppercaseRequired     bool     `json:"uppercase_required"`
	LowercaseRequired     bool     `json:"lowercase_required"`
	AlphabetRequired      bool     `json:"alphabet_required"`
	DigitRequired         bool     `json:"digit_required"`
	SymbolRequired        bool     `json:"symbol_required"`
	MinimumGuessableLevel int      `json:"minimum_guessable_level"`
	ExcludedKeywords      []string `json:"excluded_keywords"`
	HistorySize           int      `json:"history_size"`
	HistoryDays           int      `json:"history_days"`
	// MaxAgeDays forces a change once a password is this old (0: never).
	MaxAgeDays int `json:"max_age_days"`
	// TemporaryExpiryDays: a password set by an admin with "Ask user to
	// change password on login" stops working after this many days (0: never).
	TemporaryExpiryDays int `json:"temporary_expiry_days"`
	// LockoutThreshold locks an account after this many consecutive failed
	// sign-ins (0: never).
	LockoutThreshold int `json:"lockout_threshold"`
	// LockoutMinutes is how long the first lock lasts; each further lock
	// doubles it, up to 24 hours (0: LockBase, 1 minute).
	LockoutMinutes int `json:"lockout_minutes,omitempty"`
}

// LockDuration is the first lock's length under p.
func (p Policy) LockDuration() time.Duration {
	if p.LockoutMinutes <= 0 {
		return LockBase
	}
	return time.Duration(p.LockoutMinutes) * time.Minute
}

// DefaultPolicy is the policy of a new installation.
func DefaultPolicy() Policy {
	return Policy{MinLength: 8, TemporaryExpiryDays: 7, LockoutThreshold: 10}
}

// Cause names one failing policy rule, by the reference product's name.
type Cause struct {
	Kind string         `json:"kind"`
	Info map[string]any `json:"data,omitempty"`
}

// The policy rule names, as the reference product reports them.
const (
	CausePasswordTooShort                   = "PasswordTooShort"
	CausePasswordUppercaseRequired          = "PasswordUppercaseRequired"
	CausePasswordLowercaseRequired          = "PasswordLowercaseRequired"
	CausePasswordAlphabetRequired           = "PasswordAlphabetRequired"
	CausePasswordDigitRequired              = "PasswordDigitRequired"
	CausePasswordSymbolRequired             = "PasswordSymbolRequired"
	CausePasswordContainingExcludedKeywords = "PasswordContainingExcludedKeywords"
	CausePasswordBelowGuessableLevel        = "PasswordBelowGuessableLevel"
	CausePasswordReused                     = "PasswordReused"
	CausePasswordTooLong                    = "PasswordTooLong"
)

// Rule is one line of the policy checklist shown next to password fields.
type Rule struct {
	Kind  string
	Label string
}

// Rules lists the policy's rules in the order the checklist shows them.
func (p Policy) Rules() []Rule {
	var r []Rule
	r = append(r, Rule{CausePasswordTooShort, "At least " + itoa(p.minLength()) + " characters"})
	if p.UppercaseRequired {
		r = append(r, Rule{CausePasswordUppercaseRequired, "An uppercase letter (A-Z)"})
	}
	if p.LowercaseRequired {
		r = append(r, Rule{CausePasswordLowercaseRequired, "A lowercase letter (a-z)"})
	}
	if p.AlphabetRequired {
		r = append(r, Rule{CausePasswordAlphabetRequired, "A letter (a-z or A-Z)"})
	}
	if p.DigitRequired {
		r = append(r, Rule{CausePasswordDigitRequired, "A digit (0-9)"})
	}
	if p.SymbolRequired {
		r = append(r, Rule{CausePasswordSymbolRequired, "A symbol (e.g. !@#$)"})
	}
	if len(p.ExcludedKeywords) > 0 {
		r = append(r, Rule{CausePasswordContainingExcludedKeywords, "None of the excluded keywords"})
	}
	if p.MinimumGuessableLevel > 0 {
		r = append(r, Rule{CausePasswordBelowGuessableLevel, "Hard enough to guess (strength " + itoa(p.MinimumGuessableLevel) + " of 5)"})
	}
	return r
}

func (p Policy) minLength() int {
	if p.MinLength < 1 {
		return 1
	}
	return p.MinLength
}

// Check returns every rule password breaks, except history, which needs
// the store (see Service.checkHistory). A nil result means it passes.
func (p Policy) Check(password string) []Cause {
	var causes []Cause
	n := utf8.RuneCountInString(password)
	if n < p.minLength() {
		causes = append(causes, Cause{CausePasswordTooShort, map[string]any{"min_length": p.minLength(), "pw_length": n}})
	}
	if n > MaxPasswordLength {
		causes = append(causes, Cause{CausePasswordTooLong, map[string]any{"max_length": MaxPasswordLength, "pw_length": n}})
	}
	var upper, lower, digit, symbol bool
	for _, r := range password {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			symbol = true
		}
	}
	if p.UppercaseRequired && !upper {
		causes = append(causes, Cause{Kind: CausePasswordUppercaseRequired})
	}
	if p.LowercaseRequired && !lower {
		causes = append(causes, Cause{Kind: CausePasswordLowercaseRequired})
	}
	if p.AlphabetRequired && !upper && !lower {
		causes = append(causes, Cause{Kind: CausePasswordAlphabetRequired})
	}
	if p.DigitRequired && !digit {
		causes = append(causes, Cause{Kind: CausePasswordDigitRequired})
	}
	if p.SymbolRequired && !symbol {
		causes = append(causes, Cause{Kind: CausePasswordSymbolRequired})
	}
	if len(p.ExcludedKeywords) > 0 {
		lp := strings.ToLower(password)
		for _, k := range p.ExcludedKeywords {
			k = strings.ToLower(strings.TrimSpace(k))
			if k != "" && strings.Contains(lp, k) {
				causes = append(causes, Cause{Kind: CausePasswordContainingExcludedKeywords})
				break
			}
		}
	}
	if p.MinimumGuessableLevel > 0 && n <= 256 {
		// zxcvbn is quadratic in length; passwords past 256 characters are
		// beyond any guessing attack, so they count as the top level.
		level := zxcvbn.PasswordStrength(password, nil).Score + 1
		if level < p.MinimumGuessableLevel {
			causes = append(causes, Cause{CausePasswordBelowGuessableLevel, map[string]any{"min_level": p.MinimumGuessableLevel, "pw_level": level}})
		}
	}
	return causes
}

// CauseMessage says in words what a failing rule asks for.
func CauseMessage(c Cause) string {
	switch c.Kind {
	case CausePasswordTooShort:
		return "Password must be at least " + anyItoa(c.Info["min_length"]) + " characters long."
	case CausePasswordTooLong:
		return "Password must be at most " + itoa(MaxPasswordLength) + " characters long."
	case CausePasswordUppercaseRequired:
		return "Password must contain an uppercase letter."
	case CausePasswordLowercaseRequired:
		return "Password must contain a lowercase letter."
	case CausePasswordAlphabetRequired:
		return "Password must contain a letter."
	case CausePasswordDigitRequired:
		return "Password must contain a digit."
	case CausePasswordSymbolRequired:
		return "Password must contain a symbol."
	case CausePasswordContainingExcludedKeywords:
		return "Password must not contain an excluded keyword."
	case CausePasswordBelowGuessableLevel:
		return "Password is too easy to guess."
	case CausePasswordReused:
		return "Password was used recently; choose another one."
	}
	return c.Kind
}

func anyItoa(v any) string {
	if n, ok := v.(int); ok {
		return itoa(n)
	}
	return "?"
}

func itoa(n int) string { return strconv.Itoa(n) }
