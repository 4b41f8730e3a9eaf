package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"latchkey/account"
	"latchkey/store"
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
}

// recordingMailer stands in for the outbox in tests of the form itself;
// the mail package's tests cover delivery over real SMTP.
type recordingMailer struct{ sent []account.PasswordMail }

func (m *recordingMailer) QueuePassword(_ context.Context, _ *store.Tx, pm account.PasswordMail) error {
	m.sent = append(m.sent, pm)
	return nil
}
func (m *recordingMailer) QueueForgotPassword(context.Context, *store.Tx, account.ForgotPasswordMail) error {
	return nil
}

func TestCreateUserEveryModeAndKind(t *testing.T) {
	loginIDs := map[string]string{"email": "mode@example.com", "phone": "+14155550123", "username": "mode.user"}
	type want struct {
		status     int
		password   bool
		mustChange bool
		mailed     bool
		errText    string
	}
	cases := []struct {
		kind, mode   string
		send, expire bool
		want         want
	}{
		{"email", "manual", false, true, want{303, true, true, false, ""}},
		{"email", "manual", true, false, want{303, true, false, true, ""}},
		{"email", "auto", false, true, want{303, true, true, true, ""}},
		{"email", "auto", false, false, want{303, true, false, true, ""}},
		{"email", "none", true, true, want{303, false, false, false, ""}},
		{"phone", "manual", false, true, want{303, true, true, false, ""}},
		{"phone", "manual", true, true, want{303, true, true, true, ""}},
		{"phone", "auto", false, true, want{303, true, true, true, ""}},
		{"phone", "auto", false, false, want{303, true, false, true, ""}},
		{"phone", "none", false, false, want{303, false, false, false, ""}},
		{"username", "manual", false, false, want{303, true, false, false, ""}},
		{"username", "manual", true, false, want{422, false, false, false, "The password can only be sent to an email address"}},
		{"username", "auto", false, true, want{422, false, false, false, "Only an email or phone login ID can get an automatically created password."}},
		{"username", "none", false, true, want{303, false, false, false, ""}},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.mode, func(t *testing.T) {
			a := newTestApp(t)
			m := &recordingMailer{}
			a.acct.SetMailer(m)
			a.loginAdmin()
			a.get("/portal/users/new")
			r := a.post("/portal/users", createForm(c.kind, loginIDs[c.kind], c.mode, "typed-Passw0rd", c.send, c.expire))
			wantStatus(t, r, c.want.status)
			if c.want.status != http.StatusSeeOther {
				wantContains(t, r.Body, c.want.errText)
				if strings.Contains(r.Body, "typed-Passw0rd") {
					t.Error("typed password echoed back in the form")
				}
				if n := a.countUsers(); n != 0 || len(m.sent) != 0 {
					t.Fatalf("refused form wrote %d users, %d mails", n, len(m.sent))
				}
				return
			}
			id, err := a.store.IdentityByNorm(context.Background(), loginIDs[c.kind])
			if err != nil {
				t.Fatal(err)
			}
			u, err := a.acct.GetUser(context.Background(), id.UserID)
			if err != nil {
				t.Fatal(err)
			}
			if (u.Password != nil) != c.want.password {
				t.Fatalf("has password = %v, want %v", u.Password != nil, c.want.password)
			}
			if got := u.PasswordExpired(a.acct.Now()); got != c.want.mustChange {
				t.Errorf("must change = %v, want %v", got, c.want.mustChange)
			}
			if (len(m.sent) == 1) != c.want.mailed {
				t.Fatalf("mails = %d, want mailed %v", len(m.sent), c.want.mailed)
			}
			if c.want.mailed {
				wantChannel := map[string]string{"email": "", "phone": store.ChannelSMS}[c.kind]
				if m.sent[0].To != loginIDs[c.kind] || m.sent[0].Channel != wantChannel || !a.acct.Hasher().Verify(u.Password.Hash, m.sent[0].Password) {
					t.Errorf("mail %+v does not carry the stored password", m.sent[0])
				}
			}
			if c.mode == "manual" && c.want.password && !a.acct.Hasher().Verify(u.Password.Hash, "typed-Passw0rd") {
				t.Error("typed password not stored")
			}
			page := a.get(r.Location)
			if c.mode == "auto" && m.sent[0].Password != "" && strings.Contains(page.Body, m.sent[0].Password) {
				t.Error("generated password shown to the admin")
			}
		})
	}
}

func TestCreateUserDuplicatesAndInvalid(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	for _, f := range []url.Values{
		createForm("email", "Bob@Example.com", "none", "", false, false),
		createForm("username", "Carol", "none", "", false, false),
		createForm("phone", "+1 415 555 0100", "none", "", false, false),
	} {
		a.get("/portal/users/new")
		wantStatus(t, a.post("/portal/users", f), http.StatusSeeOther)
	}
	cases := []struct {
		form url.Values
		msg  string
	}{
		{createForm("email", "bob@EXAMPLE.COM", "none", "", false, false), "Duplicated identity"},
		{createForm("username", "CAROL", "none", "", false, false), "Duplicated identity"},
		{createForm("phone", "(415) 555-0100", "none", "", false, false), "Duplicated identity"},
		{createForm("email", "not-an-email", "none", "", false, false), "Enter a valid email address"},
		{createForm("phone", "12345", "none", "", false, false), "Enter a valid phone number"},
		{createForm("username", "x", "none", "", false, false), "A username has 3 to 40 characters"},
		{createForm("fax", "123", "none", "", false, false), "Choose Email, Phone or Username."},
		{createForm("email", "ok@example.com", "sometimes", "", false, false), "Choose how to set up the password."},
		{createForm("email", "ok@example.com", "manual", "", false, false), "Enter a password, or click Generate."},
	}
	for _, c := range cases {
		a.get("/portal/users/new")
		r := a.post("/portal/users", c.form)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.Body, c.msg)
		// The form keeps what was typed.
		wantContains(t, r.Body, `value="`+c.form.Get("loginID")+`"`)
	}
	if n := a.countUsers(); n != 3 {
		t.Fatalf("users = %d, want 3", n)
	}
}

func TestCreateUserWeakPasswordListsEveryRule(t *testing.T) {
	a := newTestApp(t)
	if err := a.acct.SavePolicy(context.Background(), account.SystemActor, account.Policy{
		MinLength: 12, UppercaseRequired: true, DigitRequired: true, SymbolRequired: true, ExcludedKeywords: []string{"acme"},
	}); err != nil {
		t.Fatal(err)
	}
	a.loginAdmin()
	page := a.get("/portal/users/new")
	// The checklist shows the policy's rules.
	wantContains(t, page.Body, `data-rule="PasswordTooShort"`, `data-rule="PasswordUppercaseRequired"`, `data-rule="PasswordSymbolRequired"`)
	r := a.post("/portal/users", createForm("email", "weak@example.com", "manual", "acme", false, true))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body,
		"Password must be at least 12 characters long.",
		"Password must contain an uppercase letter.",
		"Password must contain a digit.",
		"Password must contain a symbol.",
		"Password must not contain an excluded keyword.")
	if n := a.countUsers(); n != 0 {
		t.Fatal("weak password created a user")
	}
}

func TestPasswordCheckAndGenerateEndpoints(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/users/new")
	r := a.post("/portal/password/check", url.Values{"password": {"abc"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.Body, "PasswordTooShort")
	r = a.post("/portal/password/check", url.Values{"password": {"long enough"}})
	wantContains(t, r.Body, `"failing":[]`)
	r = a.post("/portal/password/generate", nil)
	wantStatus(t, r, http.StatusOK)
	var out struct{ Password string }
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil || len(out.Password) < 8 {
		t.Fatalf("generate = %s (%v)", r.Body, err)
	}
	if c := a.acct.Policy().Check(out.Password); len(c) != 0 {
		t.Fatalf("generated password breaks the policy: %v", c)
	}
	wantStatus(t, a.postRaw("/portal/password/generate", url.Values{}), http.StatusForbidden)
}

func TestUsersListSearchAndPaging(t *testing.T) {
	a := newTestApp(t)
	ctx := context.Background()
	for i := 0; i < 120; i++ {
		if _, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: fmt.Sprintf("user%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "Zed@Example.com", Password: ptr("abcdefgh1"), SetPasswordExpired: true}); err != nil {
		t.Fatal(err)
	}
	u, _ := a.store.IdentityByNorm(ctx, "user007")
	if _, err := a.acct.SetDisabledStatus(ctx, account.SystemActor, u.UserID, true, "left"); err != nil {
		t.Fatal(err)
	}
	a.loginAdmin()
	seen := map[string]bool{}
	next := "/portal/users"
	pages := 0
	for next != "" {
		r := a.get(next)
		wantStatus(t, r, http.StatusOK)
		if pages == 0 {
			wantContains(t, r.Body, "Create User", "Zed@example.com", "Must change password")
			if strings.Index(r.Body, "Zed@example.com") > strings.Index(r.Body, "user119") {
				t.Error("newest user is not first")
			}
		}
		rows := strings.Count(r.Body, "data-user-id=")
		if rows > 50 {
			t.Fatalf("page has %d rows", rows)
		}
		for _, m := range regexp.MustCompile(`data-user-id="([^"]+)"`).FindAllStringSubmatch(r.Body, -1) {
			if seen[m[1]] {
				t.Fatalf("user %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="(/portal/users\?after=[^"]+)" rel="next"`).FindStringSubmatch(r.Body); m != nil {
			next = html.UnescapeString(m[1])
		}
		pages++
	}
	if len(seen) != 121 || pages != 3 {
		t.Fatalf("saw %d users over %d pages, want 121 over 3", len(seen), pages)
	}
	r := a.get("/portal/users?q=ZED")
	wantContains(t, r.Body, "Zed@example.com")
	if strings.Count(r.Body, "data-user-id=") != 1 {
		t.Fatal("case-insensitive search should find exactly Zed")
	}
	r = a.get("/portal/users?q=user00")
	if n := strings.Count(r.Body, "data-user-id="); n != 10 {
		t.Fatalf("prefix user00 found %d users, want 10", n)
	}
	wantContains(t, r.Body, "Disabled")
	r = a.get("/portal/users?q=nobody")
	wantContains(t, r.Body, "No user has a login ID starting with")
}

func TestPasswordPolicySettings(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	a.get("/portal/settings/password-policy")
	r := a.post("/portal/settings/password-policy", url.Values{"min_length": {"0"}, "minimum_guessable_level": {"7"}, "history_size": {"x"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "Enter a whole number.")
	if a.acct.Policy().MinLength != 8 {
		t.Fatal("invalid policy changed the policy")
	}
	r = a.post("/portal/settings/password-policy", url.Values{"min_length": {"14"}, "symbol_required": {"true"},
		"excluded_keywords": {"acme\r\nlatchkey\r\n"}, "temporary_expiry_days": {"3"}, "lockout_threshold": {"5"}})
	wantStatus(t, r, http.StatusSeeOther)
	p := a.acct.Policy()
	if p.MinLength != 14 || !p.SymbolRequired || len(p.ExcludedKeywords) != 2 || p.TemporaryExpiryDays != 3 || p.LockoutThreshold != 5 {
		t.Fatalf("policy = %+v", p)
	}
	wantContains(t, a.get("/portal/settings/password-policy").Body, "Password policy saved.", `value="14"`)
}

func TestUserPageNotFound(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	r := a.get("/portal/users/does-not-exist")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r.Body, "There is no such user.")
}

func ptr(s string) *string { return &s }
