package account

import (
	"strconv"
	"time"
	"unicode/utf8"

	"latchkey/store"
)

// appendExportJSON appends u's NDJSON line (with its newline) to dst:
// exactly what encoding/json writes for newExportRecord(u, now) with HTML
// escaping off (a test holds it to that), without reflection or a record
// per user, since a million users go through it.
func appendExportJSON(dst []byte, u *store.UserSummary, now time.Time) []byte {
	email, phone, username := firstOfKinds(u)
	dst = append(dst, `{"sub":`...)
	dst = appendJSONString(dst, u.ID)
	field := func(name, v string) {
		if v != "" {
			dst = append(dst, `,"`...)
			dst = append(dst, name...)
			dst = append(dst, `":`...)
			dst = appendJSONString(dst, v)
		}
	}
	field("email", email)
	field("phone_number", phone)
	field("preferred_username", username)
	field("name", u.Name)
	field("given_name", u.GivenName)
	field("family_name", u.FamilyName)
	dst = append(dst, `,"created_at":"`...)
	dst = u.CreatedAt.AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","updated_at":"`...)
	dst = u.UpdatedAt.AppendFormat(dst, time.RFC3339)
	dst = append(dst, '"')
	if u.LastLoginAt != nil {
		dst = append(dst, `,"last_login_at":"`...)
		dst = u.LastLoginAt.AppendFormat(dst, time.RFC3339)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"is_disabled":`...)
	dst = strconv.AppendBool(dst, u.IsDisabled)
	field("disable_reason", u.DisableReason)
	dst = append(dst, `,"has_password":`...)
	dst = strconv.AppendBool(dst, u.HasPassword)
	dst = append(dst, `,"must_change_password":`...)
	dst = strconv.AppendBool(dst, ExpiredAt(u.ExpireAfter, now))
	dst = append(dst, `,"locked":`...)
	dst = strconv.AppendBool(dst, u.Locked)
	dst = append(dst, `,"password_email_failed":`...)
	dst = strconv.AppendBool(dst, u.EmailFailed)
	dst = append(dst, `,"identities":[`...)
	for i, v := range u.LoginIDs {
		k := u.LoginIDKinds[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"type":"login_id","login_id":{"key":`...)
		dst = appendJSONString(dst, k)
		dst = append(dst, `,"type":`...)
		dst = appendJSONString(dst, k)
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, v)
		dst = append(dst, `},"claims":{`...)
		if v != "" {
			switch k {
			case KindEmail:
				dst = append(dst, `"email":`...)
			case KindPhone:
				dst = append(dst, `"phone_number":`...)
			default:
				dst = append(dst, `"preferred_username":`...)
			}
			dst = appendJSONString(dst, v)
		}
		dst = append(dst, "}}"...)
	}
	return append(dst, "]}\n"...)
}

// appendJSONString appends s as a JSON string as encoding/json writes it
// without HTML escaping: quotes, backslashes and control characters
// escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
