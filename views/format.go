package views

import (
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// fmtTime shows a time the same way on every page (UTC).
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// fmtTimePtr shows an optional time, or "Never".
func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "Never"
	}
	return fmtTime(*t)
}

// relTime says how long ago t was, in words: "just now", "5 minutes
// ago", "3 hours ago", "2 days ago", else the date.
func relTime(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return strconv.Itoa(n) + " " + unit + "s ago"
	}
	switch {
	case d < 0:
		return fmtTime(t)
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d < 30*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	}
	return t.UTC().Format("2006-01-02")
}

// displayLoginID shows a login ID for people: phone numbers in
// international format (+1 212-555-0110), the rest as stored.
func displayLoginID(kind, value string) string {
	if kind != "phone" {
		return value
	}
	num, err := phonenumbers.Parse(value, "")
	if err != nil {
		return value
	}
	return phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
}

// displayTitle shows a user's title (their first login ID) for people: a
// phone number (E.164, starting with '+') in international format.
func displayTitle(title string) string {
	if len(title) > 1 && title[0] == '+' {
		return displayLoginID("phone", title)
	}
	return title
}
