package account

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// LoginIDNormVersion names the rules normalizeEmail and normalizeUsername
// apply. RenormalizeLoginIDs brings rows stored under older rules up to
// it.
const LoginIDNormVersion = 2

// normalizeEmail returns the stored form and the key of an email address:
//   - the local part through NFKC (fullwidth and compatibility forms to
//     their plain letters, the Kelvin sign to K) and PRECIS
//     (RFC 8265 UsernameCasePreserved for the stored form,
//     UsernameCaseMapped for the key), which also refuses spaces,
//     control and unassigned characters;
//   - the domain through IDNA (UTS #46 lookup), stored in its ASCII form
//     (xn--…), which every mail server can deliver to.
//
// ok is false when the address is not valid.
func normalizeEmail(v string) (value, key string, ok bool) {
	v = norm.NFKC.String(v)
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || len(v) > 254 {
		return "", "", false
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || addr.Name != "" {
		return "", "", false
	}
	local, domain := v[:at], v[at+1:]
	localValue, err := precis.UsernameCasePreserved.String(local)
	if err != nil {
		return "", "", false
	}
	localKey, err := precis.UsernameCaseMapped.String(local)
	if err != nil {
		return "", "", false
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", "", false
	}
	ascii = strings.ToLower(ascii)
	value = localValue + "@" + ascii
	if !validEmailDomain(value) {
		return "", "", false
	}
	return value, localKey + "@" + ascii, true
}

// normalizeUsername maps a username to its one form: NFKC, then PRECIS
// UsernameCaseMapped (lowercase, NFC). A username has 3 to 40 letters
// (any script), digits, '.', '_' or '-', and its letters come from one
// script (or Latin with Han, kana or Hangul, as Japanese, Chinese and
// Korean are written), so "pаypal" with a Cyrillic "а" cannot pass for
// "paypal".
func normalizeUsername(v string) (string, error) {
	formatErr := fieldErr("loginID", "ValidationFailed", "A username has 3 to 40 characters: letters, digits, '.', '_' or '-'.",
		map[string]any{"kind": "format", "format": "username"})
	m, err := precis.UsernameCaseMapped.String(norm.NFKC.String(v))
	if err != nil {
		return "", formatErr
	}
	if n := utf8.RuneCountInString(m); n < 3 || n > 40 {
		return "", formatErr
	}
	for _, r := range m {
		if !(unicode.IsLetter(r) || unicode.Is(unicode.Nd, r) || unicode.IsMark(r) || r == '.' || r == '_' || r == '-') {
			return "", formatErr
		}
	}
	if mixedScripts(m) {
		return "", fieldErr("loginID", "ValidationFailed", "A username must not mix letters of different alphabets (like Latin and Cyrillic), which can look alike.",
			map[string]any{"kind": "format", "format": "username"})
	}
	return m, nil
}

// scriptTables are the scripts a username's letters are checked against.
var scriptTables = func() map[string]*unicode.RangeTable {
	out := map[string]*unicode.RangeTable{}
	for name, t := range unicode.Scripts {
		if name != "Common" && name != "Inherited" {
			out[name] = t
		}
	}
	return out
}()

// allowedMixes are the combinations of scripts real names are written in
// (UTS #39 "highly restrictive").
var allowedMixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// mixedScripts reports whether s has letters of more than one script
// beyond the allowed combinations. Digits and punctuation (Common) and
// combining marks (Inherited) go with any script.
func mixedScripts(s string) bool {
	seen := map[string]bool{}
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		if r < utf8.RuneSelf { // ASCII letters are Latin: skip the table walk
			seen["Latin"] = true
			continue
		}
		for name, t := range scriptTables {
			if unicode.Is(t, r) {
				seen[name] = true
				break
			}
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, mix := range allowedMixes {
		all := true
		for name := range seen {
			if !mix[name] {
				all = false
				break
			}
		}
		if all {
			return false
		}
	}
	return true
}
