package account

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"latchkey/store"
)

// TestAppendExportJSONMatchesEncodingJSON: the hand-written NDJSON line is
// byte for byte what encoding/json writes for the export record, for
// users with every field set or empty and strings that need escaping.
func TestAppendExportJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	tricky := []string{"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f", "\b\f", "<script>&amp;",
		"ünïcødé ✓ 日本", "bad \xff utf8 \xc3", "line\u2028para\u2029", "emoji 🙂", "=cmd|' /C calc'!A0", "\ufffd"}
	var users []store.UserSummary
	for i, s := range tricky {
		u := store.UserSummary{}
		u.ID = "id-" + s
		u.Name, u.GivenName, u.FamilyName, u.DisableReason = s, tricky[(i+1)%len(tricky)], tricky[(i+2)%len(tricky)], tricky[(i+3)%len(tricky)]
		u.CreatedAt, u.UpdatedAt = now.Add(-time.Duration(i)*time.Hour), now.Add(time.Duration(i)*time.Minute)
		if i%2 == 0 {
			u.LastLoginAt = &past
		}
		u.IsDisabled, u.HasPassword, u.Locked, u.EmailFailed = i%2 == 0, i%3 == 0, i%4 == 0, i%5 == 0
		switch i % 3 {
		case 0:
			u.ExpireAfter = &past
		case 1:
			u.ExpireAfter = &future
		}
		for k := range i % 5 {
			u.LoginIDKinds = append(u.LoginIDKinds, []string{KindEmail, KindPhone, KindUsername, "other"}[k%4])
			u.LoginIDs = append(u.LoginIDs, tricky[(i+k)%len(tricky)])
		}
		users = append(users, u)
	}
	for i := range users {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(newExportRecord(&users[i], now)); err != nil {
			t.Fatal(err)
		}
		if got := appendExportJSON(nil, &users[i], now); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("user %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
}
