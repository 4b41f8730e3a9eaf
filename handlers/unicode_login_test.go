package handlers

import (
	"net/http"
	"testing"
)

// TestUnicodeSpellingsSignInToOneAccount: NFC, NFD and fullwidth
// spellings of a login ID reach the same account through the sign-in
// page, and the Kelvin sign is no way into a different one.
func TestUnicodeSpellingsSignInToOneAccount(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("jos\u00e9@example.com", userPW, false)
	for _, id := range []string{"jose\u0301@example.com", "ＪＯＳ\u00c9＠example.com", "JOS\u00c9@EXAMPLE.COM"} {
		r := signIn(a.browser(), id, userPW, "")
		wantStatus(t, r, http.StatusSeeOther)
	}
	if n := a.sessions(u.ID); n != 3 {
		t.Fatalf("%d sessions for the account, want 3", n)
	}
	kate := a.createUser("\u212Aate@example.com", userPW, false)
	if got := a.user(kate.ID).Identities[0].Value; got != "Kate@example.com" {
		t.Fatalf("Kelvin-sign login ID stored as %q", got)
	}
	wantStatus(t, signIn(a.browser(), "kate@example.com", userPW, ""), http.StatusSeeOther)
}
