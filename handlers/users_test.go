package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"latchkey/account"
)

func createForm(kind, loginID, mode, password string, send, expire bool) url.Values {
	f := url.Values{"loginIDKey": {kind}, "loginID": {loginID}, "passwordMode": {mode}, "password": {password}}
	if send {
		f.Set("sendPassword", "true")
	}
	if expire {
		f.Set("setPasswordExpired", "true")
	}
	return f
}

func TestCreateUserManualPassword(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	wantStatus(t, a.get("/portal/users/new"), http.StatusOK)
	r := a.post("/portal/users", createForm("email", "  Alice@Example.COM ", "manual", "s3cret-Passw0rd", false, true))
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Location, "/portal/users/") {
		t.Fatalf("redirect to %q", r.Location)
	}
	page := a.get(r.Location)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Alice@example.com", "Set by an admin on", "Must change password at next login", "User created.")
	if strings.Contains(page.Body, "s3cret-Passw0rd") {
		t.Error("typed password echoed on the user page")
	}
	id, err := a.store.IdentityByNorm(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.acct.GetUser(context.Background(), id.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if !a.acct.Hasher().Verify(u.Password.Hash, "s3cret-Passw0rd") {
		t.Error("stored hash does not verify the typed password")
	}
	if !u.PasswordExpired(a.acct.Now()) {
		t.Error("password should be expired (must change at first login)")
	}
	_ = account.KindEmail
}
