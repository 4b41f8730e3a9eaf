package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestImportedHashCostCappedAndRehashedAtSignIn: an imported bcrypt hash
// may cost at most the server's cost plus 2, and the first successful
// sign-in replaces it with a hash in the current format at the current
// cost, so a wrong password no longer takes longer than for an unknown user.
func TestImportedHashCostCappedAndRehashedAtSignIn(t *testing.T) {
	a, token := newImportApp(t) // bcrypt cost 4
	tooDear, _ := bcrypt.GenerateFromPassword([]byte("Imported-Passw0rd"), 7)
	r := postImport(t, a, token, fmt.Sprintf(`{"records": [{"email": "dear@example.com", "password_hash": %q}]}`, tooDear))
	if r.Status != http.StatusOK || r.Summary["failed"] != 1 || len(r.Results) != 1 || r.Results[0].Error == nil ||
		!strings.Contains(r.Results[0].Error.Message, "cost over 6") {
		t.Fatalf("cost 7 import: %d %.400s", r.Status, r.Raw)
	}
	if a.countUsers() != 0 {
		t.Fatal("a user was created with a too costly hash")
	}

	ok, _ := bcrypt.GenerateFromPassword([]byte("Imported-Passw0rd"), 6)
	r = postImport(t, a, token, fmt.Sprintf(`{"records": [{"email": "cheap@example.com", "password_hash": %q}]}`, ok))
	if r.Status != http.StatusOK || r.Summary["created"] != 1 {
		t.Fatalf("cost 6 import: %d %.400s", r.Status, r.Raw)
	}
	ctx := context.Background()
	u, err := a.acct.GetUser(ctx, r.Results[0].UserID)
	if err != nil {
		t.Fatal(err)
	}
	before := u.Password.Hash
	if !a.acct.Hasher().NeedsRehash(before) {
		t.Fatalf("imported hash %q does not need a rehash", before)
	}
	// A wrong password changes nothing.
	wantStatus(t, signIn(browser(a), "cheap@example.com", "wrong", ""), http.StatusUnauthorized)
	if u, _ = a.acct.GetUser(ctx, u.ID); u.Password.Hash != before {
		t.Fatal("a wrong password replaced the hash")
	}
	wantStatus(t, signIn(browser(a), "cheap@example.com", "Imported-Passw0rd", ""), http.StatusSeeOther)
	u, _ = a.acct.GetUser(ctx, u.ID)
	if u.Password.Hash == before || a.acct.Hasher().NeedsRehash(u.Password.Hash) || !strings.HasPrefix(u.Password.Hash, "bcrypt-sha512$$2a$04$") {
		t.Fatalf("hash after sign-in %q", u.Password.Hash)
	}
	// The new hash signs in as well.
	wantStatus(t, signIn(browser(a), "cheap@example.com", "Imported-Passw0rd", ""), http.StatusSeeOther)
}
