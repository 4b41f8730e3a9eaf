package views

import (
	"strings"
	"testing"
	"time"
)

func TestUsersTotalAndRelTime(t *testing.T) {
	for _, tc := range []struct {
		n     int
		exact bool
		want  string
	}{{0, true, "0 users"}, {1, true, "1 user"}, {1234, true, "1,234 users"}, {1234567, true, "1,234,567 users"}, {10000, false, "More than 10,000 users"}} {
		if got := UsersTotal(tc.n, tc.exact); got != tc.want {
			t.Errorf("UsersTotal(%d, %v) = %q, want %q", tc.n, tc.exact, got, tc.want)
		}
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{10 * time.Second: "just now", time.Minute: "1 minute ago", 3 * time.Hour: "3 hours ago",
		50 * time.Hour: "2 days ago", 90 * 24 * time.Hour: "2025-12-01"} {
		if got := relTime(now.Add(-d), now); got != want {
			t.Errorf("relTime(-%s) = %q, want %q", d, got, want)
		}
	}
	if got := displayLoginID("phone", "+12125550110"); got != "+1 212-555-0110" {
		t.Errorf("phone shown as %q", got)
	}
	if got := displayLoginID("email", "a@b.co"); got != "a@b.co" {
		t.Errorf("email shown as %q", got)
	}
}

func TestPasswordEmailSaysExpiry(t *testing.T) {
	d := PasswordEmail{AppName: "Acme", LoginID: "a@b.co", Password: "x", MustChange: true, ExpiresAt: "2026-03-04 12:00 UTC"}
	for _, text := range []string{NewUserEmailText(d), PasswordResetEmailText(d)} {
		if !strings.Contains(text, "stops working on 2026-03-04 12:00 UTC") {
			t.Errorf("no expiry in:\n%s", text)
		}
	}
	d.ExpiresAt = ""
	if strings.Contains(NewUserEmailText(d), "stops working") {
		t.Error("expiry shown without one")
	}
}
