package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/account"
)

var identityLinkRE = regexp.MustCompile(`/portal/users/[^/]+/identities/([^/"]+)/edit`)

// TestPortalIdentities: an admin adds an email to a phone user (and can
// then send them a password), changes it, is refused a duplicate and a
// bad value with 422 and nothing changed, and removes a login ID after a
// confirm step; the last one offers no Remove and cannot be removed.
func TestPortalIdentities(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("phone", "+12125550110", "Passw0rd-long")
	a.createUser("email", "taken@example.com", "Passw0rd-long")
	page := a.get("/portal/users/" + u.ID)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "+1 212-555-0110", "Add login ID", "/identities/new")
	if strings.Contains(page.Body, "/delete\" aria-label=\"Remove") {
		t.Error("the only login ID offers Remove")
	}
	// The reset page has no email to send to yet.
	wantContains(t, a.get("/portal/users/"+u.ID+"/reset-password").Body, "No email identity found")

	wantStatus(t, a.get("/portal/users/"+u.ID+"/identities/new"), http.StatusOK)
	r := a.post("/portal/users/"+u.ID+"/identities", url.Values{"kind": {"email"}, "value": {"not an email"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, `aria-invalid="true"`, "valid email address")
	r = a.post("/portal/users/"+u.ID+"/identities", url.Values{"kind": {"email"}, "value": {"Taken@EXAMPLE.com"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Duplicated identity")
	if got := a.user(u.ID); len(got.Identities) != 1 {
		t.Fatalf("failed adds changed identities: %v", got.Identities)
	}
	r = a.post("/portal/users/"+u.ID+"/identities", url.Values{"kind": {"email"}, "value": {"pat@example.com"}})
	wantStatus(t, r, http.StatusSeeOther)
	if got := a.user(u.ID); got.Email() != "pat@example.com" {
		t.Fatalf("email not added: %v", got.Identities)
	}
	if len(a.events.ofType("identity.email.added")) != 1 {
		t.Fatal("no identity.email.added event")
	}
	// Now a password can be sent.
	wantStatus(t, a.get("/portal/users/"+u.ID+"/reset-password"), http.StatusOK)
	r = a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	if len(a.mail.sent) == 0 || a.mail.sent[len(a.mail.sent)-1].To != "pat@example.com" {
		t.Fatalf("password not sent to the new email: %+v", a.mail.sent)
	}

	page = a.get("/portal/users/" + u.ID)
	links := identityLinkRE.FindAllStringSubmatch(page.Body, -1)
	if len(links) != 2 {
		t.Fatalf("want 2 Change links, got %d", len(links))
	}
	emailID := ""
	for _, i := range a.user(u.ID).Identities {
		if i.Kind == account.KindEmail {
			emailID = i.ID
		}
	}
	wantStatus(t, a.get("/portal/users/"+u.ID+"/identities/"+emailID+"/edit"), http.StatusOK)
	r = a.post("/portal/users/"+u.ID+"/identities/"+emailID, url.Values{"value": {"taken@example.com"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	r = a.post("/portal/users/"+u.ID+"/identities/"+emailID, url.Values{"value": {"pat.lee@Example.org"}})
	wantStatus(t, r, http.StatusSeeOther)
	if got := a.user(u.ID); got.Email() != "pat.lee@example.org" {
		t.Fatalf("email not changed: %v", got.Identities)
	}
	// Remove the phone, through the confirm page.
	phoneID := ""
	for _, i := range a.user(u.ID).Identities {
		if i.Kind == account.KindPhone {
			phoneID = i.ID
		}
	}
	confirm := a.get("/portal/users/" + u.ID + "/identities/" + phoneID + "/delete")
	wantStatus(t, confirm, http.StatusOK)
	wantContains(t, confirm.Body, "Remove login ID")
	r = a.post("/portal/users/"+u.ID+"/identities/"+phoneID+"/delete", url.Values{})
	wantStatus(t, r, http.StatusSeeOther)
	if len(a.user(u.ID).Identities) != 2 {
		t.Fatal("removed without confirm=yes")
	}
	r = a.post("/portal/users/"+u.ID+"/identities/"+phoneID+"/delete", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	if got := a.user(u.ID); len(got.Identities) != 1 || got.Phone() != "" {
		t.Fatalf("phone not removed: %v", got.Identities)
	}
	// The last one stays.
	a.get("/portal/users/" + u.ID)
	r = a.post("/portal/users/"+u.ID+"/identities/"+emailID+"/delete", url.Values{"confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	if len(a.user(u.ID).Identities) != 1 {
		t.Fatal("last login ID removed")
	}
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "only login ID")
	wantStatus(t, a.get("/portal/users/"+u.ID+"/identities/nope/edit"), http.StatusNotFound)
	// CSRF: a post without the token changes nothing.
	r = a.postRaw("/portal/users/"+u.ID+"/identities", url.Values{"kind": {"username"}, "value": {"sneaky"}})
	if r.Status != http.StatusForbidden {
		t.Fatalf("no CSRF token: status %d", r.Status)
	}
}

// TestPortalProfile: name attributes are shown, edited (422 on a bad
// value, nothing stored), and recorded as user.profile.updated.
func TestPortalProfile(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("email", "pat@example.com", "Passw0rd-long")
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "Profile", "Edit profile")
	wantStatus(t, a.get("/portal/users/"+u.ID+"/profile"), http.StatusOK)
	r := a.post("/portal/users/"+u.ID+"/profile", url.Values{"name": {strings.Repeat("x", 101)}, "given_name": {"Pat"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "At most 100 characters", `aria-describedby="name-error"`)
	if a.user(u.ID).GivenName != "" {
		t.Fatal("invalid form stored a value")
	}
	r = a.post("/portal/users/"+u.ID+"/profile", url.Values{"name": {"Pat Lee"}, "given_name": {"Pat"}, "family_name": {"Lee"}})
	wantStatus(t, r, http.StatusSeeOther)
	got := a.user(u.ID)
	if got.Name != "Pat Lee" || got.GivenName != "Pat" || got.FamilyName != "Lee" {
		t.Fatalf("profile %+v", got.User)
	}
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "Pat Lee")
	if len(a.events.ofType(account.EventUserProfileUpdated)) != 1 {
		t.Fatal("no user.profile.updated")
	}
}

// TestPortalSignsUserOut: the user page lists sessions; "Sign out" ends
// one, "Sign out all sessions" ends the rest, and the signed-out browser's
// next request is signed out.
func TestPortalSignsUserOut(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("sam@example.com", "Passw0rd-long", false)
	b1, b2 := a.browser(), a.browser()
	wantStatus(t, signIn(b1, "sam@example.com", "Passw0rd-long", ""), http.StatusSeeOther)
	wantStatus(t, signIn(b2, "sam@example.com", "Passw0rd-long", ""), http.StatusSeeOther)
	wantStatus(t, b1.get("/settings"), http.StatusOK)

	a.loginAdmin()
	page := a.get("/portal/users/" + u.ID)
	wantContains(t, page.Body, "Sessions", "Sign out all sessions")
	list, err := a.acct.UserSessions(context.Background(), u.ID, nil)
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions %v %v", list, err)
	}
	// Find b1's session: it is the one whose ID b1's settings page marks current.
	settings := b1.get("/settings")
	wantContains(t, settings.Body, "Your sessions", "This session")
	cur := regexp.MustCompile(`data-session-id="([0-9a-f]+)">\s*<td data-label="Browser">[^<]*<span class="badge badge-ok">This session`).FindStringSubmatch(settings.Body)
	if cur == nil {
		t.Fatalf("no current session marked:\n%s", settings.Body)
	}
	r := a.post("/portal/users/"+u.ID+"/sessions/"+cur[1]+"/revoke", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if res := b1.get("/settings"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/login") {
		t.Fatalf("signed-out browser still in: %d %s", res.Status, res.Location)
	}
	wantStatus(t, b2.get("/settings"), http.StatusOK)
	if len(a.events.ofType(account.EventUserSessionsRevoked)) != 1 {
		t.Fatal("no user.sessions.revoked")
	}
	// Unknown session: a flash, nothing else.
	a.get("/portal/users/" + u.ID)
	r = a.post("/portal/users/"+u.ID+"/sessions/"+cur[1]+"/revoke", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, a.get(r.Location).Body, "already ended")
	r = a.post("/portal/users/"+u.ID+"/sessions/revoke-all", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if res := b2.get("/settings"); res.Status != http.StatusSeeOther {
		t.Fatalf("after sign out all: %d", res.Status)
	}
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "Not signed in anywhere")
}

// TestSettingsSignOutOthers: /settings' "Sign out other sessions" keeps
// the current session and ends the others; ending the current one there
// is refused.
func TestSettingsSignOutOthers(t *testing.T) {
	a := newAuthApp(t, nil)
	u := a.createUser("kim@example.com", "Passw0rd-long", false)
	b1, b2 := a.browser(), a.browser()
	wantStatus(t, signIn(b1, "kim@example.com", "Passw0rd-long", ""), http.StatusSeeOther)
	wantStatus(t, signIn(b2, "kim@example.com", "Passw0rd-long", ""), http.StatusSeeOther)
	page := b1.get("/settings")
	wantContains(t, page.Body, "Sign out other sessions")
	r := b1.post("/settings/sessions/revoke-others", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if a.sessions(u.ID) != 1 {
		t.Fatalf("%d sessions left", a.sessions(u.ID))
	}
	wantStatus(t, b1.get("/settings"), http.StatusOK)
	if res := b2.get("/settings"); res.Status != http.StatusSeeOther {
		t.Fatalf("other browser still in: %d", res.Status)
	}
	// Without CSRF nothing happens.
	if r := b1.postRaw("/settings/sessions/revoke-others", url.Values{}); r.Status != http.StatusForbidden {
		t.Fatalf("no CSRF: %d", r.Status)
	}
}

func (r *recEvents) ofType(typ string) []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recordedEvent
	for _, e := range r.events {
		if e.Event.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestUserPageReviewFixes: the Reset Password screen of a phone user
// names the phone number; the user page says when a temporary password
// stops working.
func TestUserPageReviewFixes(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	u := a.createUser("phone", "+12125550110", "Passw0rd-long")
	r := a.get("/portal/users/" + u.ID + "/reset-password")
	wantContains(t, r.Body, `<strong id="reset-login-id">+1 212-555-0110</strong>`)
	p := a.acct.Policy()
	p.TemporaryExpiryDays = 3
	if err := a.acct.SavePolicy(context.Background(), account.SystemActor, p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.acct.ResetPassword(context.Background(), account.Actor{Kind: "admin"}, account.ResetPasswordInput{UserID: u.ID, Password: ptr("Another-passw0rd"), SetPasswordExpired: true}); err != nil {
		t.Fatal(err)
	}
	ends := a.acct.Now().Add(72 * time.Hour).UTC().Format("2006-01-02 15:04 UTC")
	wantContains(t, a.get("/portal/users/"+u.ID).Body, "This temporary password stops working on "+ends)
}

// TestAuditLogReadable: the audit log names the user by login ID, says
// whether the admin acted in the portal or through the API, describes
// the event type in words, and shows the IP.
func TestAuditLogReadable(t *testing.T) {
	a, _ := newEventsApp(t)
	a.loginAdmin()
	a.get("/portal/users/new")
	r := a.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"audit.me@example.com"}, "passwordMode": {"manual"},
		"password": {"Passw0rd-long"}})
	wantStatus(t, r, http.StatusSeeOther)
	page := a.get("/portal/audit-log?type=user.created")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "audit.me@example.com</a>", "A user was created", "via Portal", "IP 127.0.0.1")
	if regexp.MustCompile(`<code>[0-9a-f-]{36}</code></a>`).MatchString(page.Body) {
		t.Error("the user column shows a UUID where a login ID is known")
	}
}

// TestPolicySwitches: the policy page's on/off switches store 0 when off
// (whatever number is typed), need 1 or more when on, and the guessable
// levels are named.
func TestPolicySwitches(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	page := a.get("/portal/settings/password-policy")
	wantContains(t, page.Body, `role="switch"`, "3 – Somewhat guessable", "existing passwords keep working until they are changed")
	form := url.Values{"min_length": {"8"}, "minimum_guessable_level": {"3"},
		"history_size_switch": {"1"}, "history_size_on": {"true"}, "history_size": {"4"},
		"history_days_switch": {"1"}, "history_days": {"90"},
		"max_age_days_switch": {"1"}, "max_age_days": {"30"},
		"temporary_expiry_days_switch": {"1"}, "temporary_expiry_days_on": {"true"}, "temporary_expiry_days": {"2"},
		"lockout_threshold_switch": {"1"}, "lockout_threshold_on": {"true"}, "lockout_threshold": {"0"}}
	r := a.post("/portal/settings/password-policy", form)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Enter 1 or more, or turn this off.")
	if a.acct.Policy().HistorySize != 0 {
		t.Fatal("an invalid form changed the policy")
	}
	form.Set("lockout_threshold", "5")
	wantStatus(t, a.post("/portal/settings/password-policy", form), http.StatusSeeOther)
	p := a.acct.Policy()
	if p.HistorySize != 4 || p.HistoryDays != 0 || p.MaxAgeDays != 0 || p.TemporaryExpiryDays != 2 || p.LockoutThreshold != 5 || p.MinimumGuessableLevel != 3 {
		t.Fatalf("policy %+v", p)
	}
}
