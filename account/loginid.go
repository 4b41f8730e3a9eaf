package account

import (
	"net/mail"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Login ID kinds, as the Admin API's loginID.key names them.
const (
	KindEmail    = "email"
	KindPhone    = "phone"
	KindUsername = "username"
)

var usernameRE = regexp.MustCompile(`^[a-z0-9._-]{3,40}$`)

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
func NormalizeLoginID(kind, raw, region string) (LoginID, error) {
	v := strings.TrimSpace(raw)
	switch kind {
	case KindEmail:
		if v == "" {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter an email address.", map[string]any{"kind": "required"})
		}
		addr, err := mail.ParseAddress(v)
		if err != nil || addr.Address != v || addr.Name != "" || !validEmailDomain(v) {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "Enter a valid email address, like name@example.com.", map[string]any{"kind": "format", "format": "email"})
		}
		at := strings.LastIndexByte(v, '@')
		// The domain part is case-insensitive everywhere; the local part is
		// matched case-insensitively too, as users expect.
		v = v[:at] + "@" + strings.ToLower(v[at+1:])
		return LoginID{KindEmail, v, strings.ToLower(v)}, nil
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
		lv := strings.ToLower(v)
		if !usernameRE.MatchString(lv) {
			return LoginID{}, fieldErr("loginID", "ValidationFailed", "A username has 3 to 40 characters: letters a-z, digits, '.', '_' or '-'.", map[string]any{"kind": "format", "format": "username"})
		}
		return LoginID{KindUsername, lv, lv}, nil
	}
	return LoginID{}, fieldErr("loginIDKey", "ValidationFailed", "Choose Email, Phone or Username.", map[string]any{"kind": "enum", "key": kind})
}

// ParseAnyLoginID normalises what a user typed into an "Email, phone or
// username" field: '@' means email, a leading '+' or digits mean phone,
// anything else a username. The first kind that parses wins.
func ParseAnyLoginID(raw, region string) (LoginID, error) {
	v := strings.TrimSpace(raw)
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
