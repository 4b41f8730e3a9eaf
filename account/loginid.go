package account

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
)

// Login ID kinds, as the Admin API's loginID.key names them.
const (
	KindEmail    = "email"
	KindPhone    = "phone"
	KindUsername = "username"
)

// LoginID is a normalised login ID: Value is what is stored and shown,
// Norm the lowercased key that makes it unique in any case variant.
type LoginID struct {
	Kind  string
	Value string
	Norm  string
}

// NormalizeLoginID validates a login ID of the given kind and returns its
// normal form: emails trimmed and matched case-insensitively, phone numbers
// in E.164 (parsed with region as the default), usernames lowercased.
// Unicode is normalised first (normalizeEmail, normalizeUsername), so
// that NFC and NFD spellings, fullwidth look-alikes and the Kelvin sign
// are one login ID, never two accounts.
func NormalizeLoginID(kind, raw, region string) (LoginID, error) {
	v := strings.TrimSpace(raw)
	switch kind {
	case KindEmail:
		if v == "" {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter an email address.", map[string]any{"kind": "required"})
		}
		value, key, ok := normalizeEmail(v)
		if !ok {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter a valid email address, like name@example.com.", map[string]any{"kind": "format", "format": "email"})
		}
		return LoginID{KindEmail, value, key}, nil
	case KindPhone:
		if v == "" {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter a phone number.", map[string]any{"kind": "required"})
		}
		num, err := phonenumbers.Parse(v, region)
		if err != nil || !phonenumbers.IsValidNumber(num) {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter a valid phone number, like +14155550100.", map[string]any{"kind": "format", "format": "phone"})
		}
		e164 := phonenumbers.Format(num, phonenumbers.E164)
		return LoginID{KindPhone, e164, e164}, nil
	case KindUsername:
		lv, err := normalizeUsername(v)
		if err != nil {
			return LoginID{}, err
		}
		return LoginID{KindUsername, lv, lv}, nil
	}
	return LoginID{}, fieldErr("loginIDKey", "ValidationFailed", "Choose Email, Phone or Username.", map[string]any{"kind": "enum", "key": kind})
}

// ParseAnyLoginID normalises what a user typed into an "Email, phone or
// username" field: '@' means email, a leading '+' or digits mean phone,
// anything else a username. The first kind that parses wins.
func ParseAnyLoginID(raw, region string) (LoginID, error) {
	// Compatibility forms first, so a fullwidth '＠' or '＋' is read as
	// the ASCII sign it looks like.
	v := strings.TrimSpace(norm.NFKC.String(raw))
	if strings.Contains(v, "@") {
		return NormalizeLoginID(KindEmail, v, region)
	}
	if strings.HasPrefix(v, "+") || (v != "" && strings.Trim(v, "0123456789 ()-") == "") {
		if id, err := NormalizeLoginID(KindPhone, v, region); err == nil {
			return id, nil
		}
	}
	return NormalizeLoginID(KindUsername, v, region)
}

func validEmailDomain(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return false
	}
	domain := addr[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return false
	}
	return len(addr) <= 254
}
