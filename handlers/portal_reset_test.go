package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"latchkey/account"
)

func (a *apiApp) createUser(kind, loginID, password string) *account.User {
	a.t.Helper()
	pw := password
	u, err := a.acct.CreateUser(context.Background(), account.SystemActor, account.CreateUserInput{LoginIDKey: kind, LoginIDValue: loginID, Password: &pw})
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

func (a *apiApp) user(id string) *account.User {
	a.t.Helper()
	u, err := a.acct.GetUser(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

func TestPortalResetPasswordScreen(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("email", "carol@example.com", "old-passw0rd")

	page := a.get("/portal/users/" + u.ID)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `href="/portal/users/`+u.ID+`/reset-password"`, "Reset password", "Require password change", "Delete user")

	page = a.get("/portal/users/" + u.ID + "/reset-password")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Reset Password", `value="carol@example.com" readonly`, "Enter a password",
		"Automatically create a password and send to the user", "Send the password to user", "Ask user to change password on login")
	if !regexp.MustCompile(`id="setPasswordExpired" name="setPasswordExpired" value="true" checked`).MatchString(page.Body) {
		t.Error(`"Ask user to change password on login" is not checked by default`)
	}
	if !regexp.MustCompile(`id="mode-manual" name="passwordMode" value="manual" checked`).MatchString(page.Body) {
		t.Error(`"Enter a password" is not the default`)
	}
	if strings.Contains(page.Body, "No email identity found") {
		t.Error("user with an email shown as without")
	}

	t.Run("manual, bad password re-renders and changes nothing", func(t *testing.T) {
		before := a.snapshot()
		r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"short"}, "sendPassword": {"true"}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, "Password must be at least 8 characters long.")
		if strings.Contains(r.Body, `value="short"`) {
			t.Error("typed password echoed")
		}
		a.wantUnchanged(before)
	})

	t.Run("manual, not sent, not expired", func(t *testing.T) {
		r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"typed-passw0rd"}})
		wantStatus(t, r, http.StatusSeeOther)
		got := a.user(u.ID)
		if !a.acct.Hasher().Verify(got.Password.Hash, "typed-passw0rd") || got.PasswordExpired(a.acct.Now()) || !got.Password.SetByAdmin {
			t.Error("manual reset: wrong password state")
		}
		if n := len(a.mail.all()); n != 0 {
			t.Errorf("%d mails sent without send checked", n)
		}
		wantContains(t, a.get(r.Location).Body, "Password reset.")
	})

	t.Run("manual, sent and expired", func(t *testing.T) {
		a.get("/portal/users/" + u.ID + "/reset-password")
		r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"typed-passw0rd-2"},
			"sendPassword": {"true"}, "setPasswordExpired": {"true"}})
		wantStatus(t, r, http.StatusSeeOther)
		mails := a.mail.all()
		if len(mails) != 1 || mails[0].Kind != account.MailPasswordReset || mails[0].Password != "typed-passw0rd-2" || !mails[0].MustChange || mails[0].To != "carol@example.com" {
			t.Fatalf("mails %+v", mails)
		}
		if !a.user(u.ID).PasswordExpired(a.acct.Now()) {
			t.Error("not expired")
		}
		wantContains(t, a.get(r.Location).Body, "on its way to carol@example.com", "Must change password at next login", "Cancel password change requirement")
	})

	t.Run("auto always sends, even with the checkbox off", func(t *testing.T) {
		a.get("/portal/users/" + u.ID + "/reset-password")
		r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"auto"}, "password": {"ignored-passw0rd"}})
		wantStatus(t, r, http.StatusSeeOther)
		mails := a.mail.all()
		if len(mails) != 2 || mails[1].Password == "" || mails[1].Password == "ignored-passw0rd" || mails[1].MustChange {
			t.Fatalf("mails %+v", mails)
		}
		if !a.acct.Hasher().Verify(a.user(u.ID).Password.Hash, mails[1].Password) {
			t.Error("generated password not stored")
		}
		if body := a.get(r.Location).Body; strings.Contains(body, mails[1].Password) {
			t.Error("generated password shown in the portal")
		}
	})
}

func TestPortalResetPasswordNoEmail(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("username", "no.target", "old-passw0rd")
	page := a.get("/portal/users/" + u.ID + "/reset-password")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "No email identity found", "No email or phone identity found")
	if !regexp.MustCompile(`id="sendPassword" name="sendPassword" value="true" disabled`).MatchString(page.Body) {
		t.Error("send checkbox not disabled for a user without email")
	}
	if !regexp.MustCompile(`id="mode-auto" name="passwordMode" value="auto" disabled`).MatchString(page.Body) {
		t.Error("auto mode not disabled for a user without email")
	}

	for name, form := range map[string]url.Values{
		"auto":        {"passwordMode": {"auto"}},
		"forged send": {"passwordMode": {"manual"}, "password": {"typed-passw0rd"}, "sendPassword": {"true"}},
	} {
		t.Run(name, func(t *testing.T) {
			before := a.snapshot()
			r := a.post("/portal/users/"+u.ID+"/reset-password", form)
			wantStatus(t, r, http.StatusUnprocessableEntity)
			wantContains(t, strings.ToLower(r.Body), "no email")
			a.wantUnchanged(before)
		})
	}
	// Without sending, a reset works.
	r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"typed-passw0rd"}, "setPasswordExpired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	if !a.acct.Hasher().Verify(a.user(u.ID).Password.Hash, "typed-passw0rd") {
		t.Error("reset without email did not store the password")
	}
}

func TestPortalUserActions(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("email", "dave@example.com", "old-passw0rd")
	a.get("/portal/users/" + u.ID)
	r := a.post("/portal/users/"+u.ID+"/password-expired", url.Values{"expired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	if !a.user(u.ID).PasswordExpired(a.acct.Now()) {
		t.Fatal("Require password change did not expire the password")
	}
	page := a.get(r.Location)
	wantContains(t, page.Body, "Cancel password change requirement", "must change their password")
	r = a.post("/portal/users/"+u.ID+"/password-expired", url.Values{"expired": {"false"}})
	wantStatus(t, r, http.StatusSeeOther)
	if a.user(u.ID).PasswordExpired(a.acct.Now()) {
		t.Fatal("Cancel did not clear the requirement")
	}

	// Delete: a POST without the confirm step goes to the confirm page.
	a.get("/portal/users/" + u.ID)
	r = a.post("/portal/users/"+u.ID+"/delete", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Location != "/portal/users/"+u.ID+"/delete" || a.countUsers() != 1 {
		t.Fatalf("unconfirmed delete: to %q, users %d", r.Location, a.countUsers())
	}
	page = a.get(r.Location)
	wantContains(t, page.Body, "Delete dave@example.com?", "cannot be undone")
	r = a.post("/portal/users/"+u.ID+"/delete", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	if a.countUsers() != 0 {
		t.Fatal("user not deleted")
	}
	wantContains(t, a.get(r.Location).Body, "User dave@example.com deleted.")
	wantStatus(t, a.get("/portal/users/"+u.ID), http.StatusNotFound)
	wantTypes(t, a.events.types(), "user.deleted")
	for _, e := range a.events.all() {
		if e.Actor.Kind != "system" && (e.Actor.Kind != "admin" || e.Actor.Name != testAdminEmail || e.Actor.TriggeredBy != "admin_api") {
			t.Errorf("portal event %s by %+v", e.Event.Type, e.Actor)
		}
	}
	// CSRF is required.
	v := a.createUser("email", "erin@example.com", "old-passw0rd")
	r = a.postRaw("/portal/users/"+v.ID+"/delete", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusForbidden)
}

func TestPortalBulkRequirePasswordChange(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	ctx := context.Background()
	ids := insertUsers(t, a.store, 450, "bulk")
	others := insertUsers(t, a.store, 30, "other")
	if _, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "bulknopw@example.com"}); err != nil {
		t.Fatal(err)
	}
	expired := func(id string) bool { return a.user(id).PasswordExpired(a.acct.Now()) }

	page := a.get("/portal/users")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `id="bulk-form"`, `form="bulk-form"`, "Require password change", "All users")

	t.Run("selected", func(t *testing.T) {
		a.get("/portal/users")
		r := a.post("/portal/users/bulk/require-password-change", url.Values{"scope": {"selected"}, "user_id": {ids[0], ids[1]}})
		wantStatus(t, r, http.StatusSeeOther)
		if !expired(ids[0]) || !expired(ids[1]) || expired(ids[2]) {
			t.Error("selected users not (only) expired")
		}
		wantContains(t, a.get(r.Location).Body, "2 users must change their password")
	})

	t.Run("nothing selected", func(t *testing.T) {
		before := a.snapshot()
		r := a.post("/portal/users/bulk/require-password-change", url.Values{"scope": {"selected"}})
		wantStatus(t, r, http.StatusSeeOther)
		wantContains(t, a.get(r.Location).Body, "Select at least one user")
		a.wantUnchanged(before)
	})

	t.Run("all matching a search", func(t *testing.T) {
		page := a.get("/portal/users?q=bulk")
		wantContains(t, page.Body, "All users matching “bulk”")
		nEvents := len(a.events.all())
		r := a.post("/portal/users/bulk/require-password-change", url.Values{"scope": {"all"}, "q": {"bulk"}})
		wantStatus(t, r, http.StatusSeeOther)
		if r.Location != "/portal/users?q=bulk" {
			t.Errorf("back to %q", r.Location)
		}
		for _, id := range ids {
			if !expired(id) {
				t.Fatalf("user %s matching the search not expired", id)
			}
		}
		for _, id := range others {
			if expired(id) {
				t.Fatalf("user %s outside the search expired", id)
			}
		}
		wantContains(t, a.get(r.Location).Body, "448 users must change their password", "3 skipped")
		var perUser int
		for _, e := range a.events.all()[nEvents:] {
			if e.Event.Type == "password.expired.set" {
				perUser++
			}
		}
		if perUser != 448 {
			t.Errorf("%d password.expired.set events, want one per changed user (448)", perUser)
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		r := a.postRaw("/portal/users/bulk/require-password-change", url.Values{"scope": {"all"}})
		wantStatus(t, r, http.StatusForbidden)
		if expired(others[0]) {
			t.Error("forged bulk request changed users")
		}
	})
}

func TestPortalAPIKeys(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	page := a.get("/portal/api-keys")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Create a key", "test key", "Never")

	r := a.post("/portal/api-keys", url.Values{"name": {"  "}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Give the key a name")

	r = a.post("/portal/api-keys", url.Values{"name": {"billing-sync"}})
	wantStatus(t, r, http.StatusCreated)
	m := regexp.MustCompile(`<code class="token" id="new-api-key">(lk_[0-9a-f]{32}_[A-Za-z0-9_-]{43})</code>`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no token shown: %s", r.Body)
	}
	token := m[1]
	// Shown once: the list page does not have it.
	page = a.get("/portal/api-keys")
	if strings.Contains(page.Body, token) || strings.Contains(page.Body, token[36:]) {
		t.Error("token shown again")
	}
	// It works, and the page shows when it was last used.
	if res := a.gqlAuth("Bearer "+token, `{ users { totalCount } }`, nil); res.Status != http.StatusOK {
		t.Fatalf("new key: %d %s", res.Status, res.Raw)
	}
	page = a.get("/portal/api-keys")
	row := regexp.MustCompile(`(?s)<tr data-key-id="[0-9a-f]+"><td>billing-sync<br>.*?</tr>`).FindString(page.Body)
	if row == "" || strings.Contains(row, "Never") || !strings.Contains(row, "from 127.0.0.1") {
		t.Errorf("row after use: %s", row)
	}
	id := token[3:35]
	r = a.post("/portal/api-keys/"+id+"/revoke", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "API key revoked", "Revoked")
	if res := a.gqlAuth("Bearer "+token, `{ users { totalCount } }`, nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", res.Status)
	}
	// The other key still works.
	if res := a.gql(`{ users { totalCount } }`, nil); res.Status != http.StatusOK {
		t.Fatalf("other key: %d", res.Status)
	}
}
