package views

import (
	"fmt"
	"strings"
)

// PasswordText is what the new-user and password-reset text messages say.
type PasswordText struct {
	AppName   string
	PublicURL string
	LoginID   string
	Password  string
	// ValidDays, when set, is how long the temporary password works.
	ValidDays int
}

// smsSegment is the length of one GSM-7 SMS.
const smsSegment = 160

// firstFitting returns the first candidate that fits one SMS, or the first
// one when none does.
func firstFitting(candidates ...string) string {
	for _, c := range candidates {
		if n, gsm := SMSLength(c); gsm && n <= smsSegment {
			return c
		}
	}
	return candidates[0]
}

func passwordText(intro string, d PasswordText) string {
	body := fmt.Sprintf("%s Visit %s/login to sign in. Your user ID is %s, password: %s", intro, d.PublicURL, d.LoginID, d.Password)
	if d.ValidDays <= 0 {
		return body
	}
	days := fmt.Sprintf("%d days", d.ValidDays)
	if d.ValidDays == 1 {
		days = "1 day"
	}
	short := strings.TrimPrefix(body, "Hello, ")
	if short != body {
		short = strings.ToUpper(short[:1]) + short[1:]
	}
	shorter := strings.Replace(short, "Visit "+d.PublicURL+"/login to sign in.", "Sign in at "+d.PublicURL+"/login.", 1)
	return firstFitting(body+" It stops working in "+days+".", body+" Valid "+days+".", short+" Valid "+days+".", shorter+" Valid "+days+".")
}

// NewUserText is the text that gives a new phone user their password, in
// the guide's wording. A note on how long a temporary password works is
// added; when the whole would not fit one SMS, "Hello, " and then "Visit
// {URL}/login to sign in." give way to shorter forms, as far as that helps.
func NewUserText(d PasswordText) string {
	return passwordText("Hello, a new account has been created for you on "+d.AppName+".", d)
}

// PasswordResetText is the text that gives a phone user the password an
// administrator set for them.
func PasswordResetText(d PasswordText) string {
	return passwordText("Hello, an administrator has reset your password on "+d.AppName+".", d)
}

// ForgotPasswordText is the forgot-password text: the code only, never a
// link (links in texts are a phishing pattern, and the code page is where
// the person already is).
func ForgotPasswordText(appName, code string, minutes int) string {
	return fmt.Sprintf("%s is your %s password reset code. It expires in %d minutes. Do not share it with anyone.", code, appName, minutes)
}

// gsm7 is the GSM 03.38 basic character set; gsm7ext costs two units.
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7ext = "^{}\\[~]|€\f"
)

// SMSLength counts s in GSM-7 units (an extension character counts two);
// gsm is false when s needs UCS-2, where one SMS holds 70 characters.
func SMSLength(s string) (n int, gsm bool) {
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsm7, r):
			n++
		case strings.ContainsRune(gsm7ext, r):
			n += 2
		default:
			return len([]rune(s)), false
		}
	}
	return n, true
}
