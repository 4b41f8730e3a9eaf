package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/sms"
	"latchkey/sms/smstest"
)

// clock is a test clock the account service reads; Set moves it.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Set(t time.Time)  { c.t.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) time.Time {
	return time.Unix(0, c.t.Add(int64(d))).UTC()
}

func (a *apiApp) countSMSRefusals() (rows, attempts int) {
	a.t.Helper()
	if err := a.store.DB().QueryRowContext(context.Background(), `SELECT COUNT(*), COALESCE(SUM(attempts), 0) FROM sms_refusals`).Scan(&rows, &attempts); err != nil {
		a.t.Fatal(err)
	}
	return rows, attempts
}

// forgot asks for a forgot-password code as a stranger would.
func (a *apiApp) forgot(loginID string) response {
	a.t.Helper()
	a.get("/forgot-password")
	return a.post("/forgot-password", url.Values{"login_id": {loginID}})
}

// TestForgotRefusalShownOnUserPage: a forgot-password text refused by the
// per-phone limit (the default 3 an hour) tells the person why (429) and
// shows on the user page as "Text not sent: 3 texts an hour limit for this
// number reached, HH:MM UTC". Fifty refused requests make one row with a
// count, not fifty; an unknown number records nothing.
func TestForgotRefusalShownOnUserPage(t *testing.T) {
	texts := mail.NewDevMailbox(0)
	a, _ := newSMSApp(t, texts, account.SMSLimits{})
	ctx := context.Background()
	u, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550160", Password: ptr("Old-passw0rd-160")})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(time.Date(2026, 3, 1, 13, 50, 0, 0, time.UTC))
	a.acct.Now = clk.Now
	// Three codes, two minutes apart (past the one-minute cooldown).
	for i := 0; i < 3; i++ {
		clk.Add(2 * time.Minute)
		wantStatus(t, a.forgot("+14155550160"), http.StatusSeeOther)
	}
	clk.Set(time.Date(2026, 3, 1, 14, 2, 0, 0, time.UTC))
	for i := 0; i < 50; i++ {
		r := a.forgot("+1 415 555 0160")
		wantStatus(t, r, http.StatusTooManyRequests)
		if i == 0 {
			wantContains(t, r.Body, "Too many text messages were sent to this phone number in the last hour (at most 3)")
		}
		clk.Add(30 * time.Second)
	}
	if rows, attempts := a.countSMSRefusals(); rows != 1 || attempts != 50 {
		t.Fatalf("%d refusal rows with %d attempts, want 1 row counting 50", rows, attempts)
	}
	// An unknown number: the same answer as ever, and nothing recorded.
	wantStatus(t, a.forgot("+14155550199"), http.StatusSeeOther)
	if rows, _ := a.countSMSRefusals(); rows != 1 {
		t.Fatalf("%d refusal rows after an unknown number, want 1", rows)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(texts.List()); n != 3 {
		t.Fatalf("%d texts sent, want 3", n)
	}
	a.loginAdmin()
	page := a.get("/portal/users/" + u.ID)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Text messages not sent", "Text not sent: 3 texts an hour limit for this number reached, 14:02 UTC",
		"Password reset code to +14155550160", "50 requests refused in that hour, the last at 14:26 UTC")
	// Another user's page shows nothing of it.
	other, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550161", Password: ptr("Old-passw0rd-161")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.get("/portal/users/"+other.ID).Body, "Text not sent") {
		t.Error("another user's page shows the refusal")
	}
	// The next hour's refusals are a row of their own.
	clk.Set(time.Date(2026, 3, 1, 15, 1, 0, 0, time.UTC))
	a.acct.Now = clk.Now
	// 15:01: the three sends of 13:52-13:56 are more than an hour old, so
	// the hour limit lets texts through again; the day limit (10) holds.
	for i := 0; i < 3; i++ {
		wantStatus(t, a.forgot("+14155550160"), http.StatusSeeOther)
		clk.Add(2 * time.Minute)
	}
	wantStatus(t, a.forgot("+14155550160"), http.StatusTooManyRequests)
	if rows, attempts := a.countSMSRefusals(); rows != 2 || attempts != 51 {
		t.Fatalf("%d rows, %d attempts, want 2 and 51", rows, attempts)
	}
}

// TestForgotRefusalEachLimitShown: every limit a stranger can hit names
// itself on the user page in the admin's words.
func TestForgotRefusalEachLimitShown(t *testing.T) {
	cases := []struct {
		name   string
		limits account.SMSLimits
		phone  string
		want   string
	}{
		{"phone day", account.SMSLimits{PerPhoneHour: 100, PerPhoneDay: 1}, "+14155550170", "Text not sent: 1 text a day limit for this number reached"},
		{"ip", account.SMSLimits{PerIPHour: 1}, "+14155550171", "Text not sent: 1 text an hour limit for the asking IP address (127.0.0.1) reached"},
		{"country", account.SMSLimits{PerCountryDay: map[string]int{"1": 1}}, "+14155550172", "Text not sent: 1 text a day limit for +1 numbers (LATCHKEY_SMS_COUNTRY_LIMITS) reached"},
		{"global", account.SMSLimits{DailyTotal: 1}, "+14155550173", "Text not sent: 1 text a day limit for all texts (LATCHKEY_SMS_DAILY_LIMIT) reached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, _ := newSMSApp(t, mail.NewDevMailbox(0), c.limits)
			ctx := context.Background()
			// The first text goes to someone else, so only the limit under test refuses.
			first := "+14155550180"
			if c.name == "phone day" {
				first = c.phone
			}
			phones := []string{c.phone}
			if first != c.phone {
				phones = append(phones, first)
			}
			for _, p := range phones {
				if _, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: p, Password: ptr("Old-passw0rd-17x")}); err != nil {
					t.Fatal(err)
				}
			}
			u := a.userByLoginID(c.phone)
			clk := newClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			a.acct.Now = clk.Now
			wantStatus(t, a.forgot(first), http.StatusSeeOther)
			clk.Add(2 * time.Minute)
			wantStatus(t, a.forgot(c.phone), http.StatusTooManyRequests)
			a.loginAdmin()
			wantContains(t, a.get("/portal/users/"+u.ID).Body, c.want+", 09:02 UTC")
		})
	}
}

// TestAdminSendsOverLimitShownOnUserPage: Reset Password in the portal and
// the Admin API's resetPassword with sendPassword, refused by an SMS
// limit, still reset the password and show on the user page that the
// text was not sent and why.
func TestAdminSendsOverLimitShownOnUserPage(t *testing.T) {
	hook := smstest.StartWebhook(t)
	provider, err := sms.Open(hook.WebhookURL(), sms.Config{AppID: "acme", WebhookSecret: smstest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newSMSApp(t, provider, account.SMSLimits{PerPhoneHour: 1})
	ctx := context.Background()
	u, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "phone", LoginIDValue: "+14155550190", Password: ptr(""), SendPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	hook.MessageTo("+14155550190", 10*time.Second)
	a.loginAdmin()
	a.get("/portal/users/" + u.ID + "/reset-password")
	r := a.post("/portal/users/"+u.ID+"/reset-password", url.Values{"passwordMode": {"manual"}, "password": {"Portal-reset-190"}, "sendPassword": {"true"}})
	wantStatus(t, r, http.StatusSeeOther)
	page := a.get(r.Location)
	wantContains(t, page.Body, "The password text was not sent.", "Not sent: Too many text messages were sent to this phone number in the last hour (at most 1).")
	if !a.acct.Hasher().Verify(a.userByLoginID("+14155550190").Password.Hash, "Portal-reset-190") {
		t.Fatal("the refused text undid the reset")
	}
	d := a.gqlOK(`mutation($id: ID!) { resetPassword(input: {userID: $id, password: "Api-reset-passw0rd-190", sendPassword: true}) { user { id } } }`, map[string]any{"id": nodeID(u.ID)})
	if path(d, "resetPassword", "user", "id") != nodeID(u.ID) {
		t.Fatalf("resetPassword: %v", d)
	}
	page = a.get("/portal/users/" + u.ID)
	if n := strings.Count(page.Body, "Not sent: Too many text messages were sent to this phone number in the last hour"); n != 2 {
		t.Fatalf("the user page shows %d refused password texts, want 2", n)
	}
	time.Sleep(150 * time.Millisecond)
	if n := len(hook.Messages()); n != 1 {
		t.Fatalf("%d texts sent, want 1", n)
	}
}
