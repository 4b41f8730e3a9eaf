package views

import "time"

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
