package views

import (
	"strings"
	"testing"
)

func TestPasswordTextFitsOneSMS(t *testing.T) {
	d := PasswordText{AppName: "Latchkey", PublicURL: "https://id.example.com", LoginID: "+14155550100", Password: "Ab3dEf7h"}
	plain := NewUserText(d)
	want := "Hello, a new account has been created for you on Latchkey. Visit https://id.example.com/login to sign in. Your user ID is +14155550100, password: Ab3dEf7h"
	if plain != want {
		t.Fatalf("text %q, want the guide's wording %q", plain, want)
	}
	d.ValidDays = 7
	withDays := NewUserText(d)
	if n, gsm := SMSLength(withDays); !gsm || n > 160 || !strings.Contains(withDays, "7 days") || !strings.Contains(withDays, "password: Ab3dEf7h ") {
		t.Fatalf("with expiry: %d chars (gsm %v): %q", n, gsm, withDays)
	}
	// A long app name cannot fit: the full wording is kept, in two SMS.
	d.AppName = strings.Repeat("Acme Corporation ", 4)
	if long := NewUserText(d); !strings.HasPrefix(long, "Hello, a new account") || !strings.HasSuffix(long, "It stops working in 7 days.") {
		t.Fatalf("long app name: %q", long)
	}
	d.ValidDays = 1
	if r := PasswordResetText(d); !strings.Contains(r, "administrator has reset your password") || !strings.Contains(r, "1 day") {
		t.Fatalf("reset text %q", r)
	}
	if f := ForgotPasswordText("Acme", "012345", 5); f != "012345 is your Acme password reset code. It expires in 5 minutes. Do not share it with anyone." {
		t.Fatalf("forgot text %q", f)
	}
}

func TestSMSLength(t *testing.T) {
	for s, want := range map[string][2]int{"abc": {3, 1}, "a{b}": {6, 1}, "€5": {3, 1}, "Grüße": {5, 1}, "façade": {6, 0}, "日本": {2, 0}, "": {0, 1}} {
		n, gsm := SMSLength(s)
		if n != want[0] || gsm != (want[1] == 1) {
			t.Errorf("%q: %d, %v; want %d, %v", s, n, gsm, want[0], want[1] == 1)
		}
	}
}
