package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/sms/smstest"
	"latchkey/store"
)

func TestLoadConfigSMS(t *testing.T) {
	bad := map[string]map[string]string{
		"or script:// (a TypeScript hook)": {"LATCHKEY_SMS_URL": "https://sms.example.com"},
		"name or ID":                       {"LATCHKEY_SMS_URL": "script://"},
		"loopback":                         {"LATCHKEY_SMS_URL": "webhook+http://sms.example.com/send", "LATCHKEY_SMS_WEBHOOK_SECRET": "s"},
		"LATCHKEY_SMS_WEBHOOK_SECRET":      {"LATCHKEY_SMS_URL": "webhook+https://sms.example.com/send"},
		"exactly one of":                   {"LATCHKEY_SMS_URL": "twilio://AC1:tok@api.twilio.com"},
		"LATCHKEY_SMS_DAILY_LIMIT":         {"LATCHKEY_SMS_DAILY_LIMIT": "lots"},
		"LATCHKEY_SMS_COUNTRY_LIMITS":      {"LATCHKEY_SMS_COUNTRY_LIMITS": "44:50"},
	}
	for want, env := range bad {
		_, err := loadConfig(nil, func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want one naming %q", env, err, want)
		}
	}
	c, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_SMS_URL": "twilio://AC1:tok@api.twilio.com?from=%2B15551230000", "LATCHKEY_SMS_DAILY_LIMIT": "50",
			"LATCHKEY_SMS_COUNTRY_LIMITS": "1=40, +44=5, *=2", "LATCHKEY_SMS_PHONE_HOURLY_LIMIT": "2"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	l := c.SMS.Limits
	if l.DailyTotal != 50 || l.PerPhoneHour != 2 || l.PerCountryDay["1"] != 40 || l.PerCountryDay["44"] != 5 || l.PerCountryDay["*"] != 2 {
		t.Fatalf("limits %+v", l)
	}
	if c, err := loadConfig(nil, func(string) string { return "" }); err != nil || c.SMS.URL != "" || c.SMS.Limits.DailyTotal != 0 {
		t.Fatalf("defaults: %+v, %v (0 means account's default of 1000)", c.SMS, err)
	}
}

// TestQueuedTextSurvivesRestart: a phone user is created while the SMS
// provider refuses connections; Latchkey stops with the text queued; the
// provider comes up and Latchkey starts again on the same database: the
// text arrives exactly once, signed, and its password is the stored one.
func TestQueuedTextSurvivesRestart(t *testing.T) {
	hook := smstest.StartWebhook(t)
	hook.Stop()
	env := map[string]string{"LATCHKEY_SMS_URL": hook.WebhookURL(), "LATCHKEY_SMS_WEBHOOK_SECRET": smstest.Secret}
	app := startApp(t, env)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfRE := regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	post := func(page, path string, form url.Values) *http.Response {
		t.Helper()
		res, err := client.Get(app.URL + page)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		form.Set("_csrf", csrfRE.FindStringSubmatch(string(b))[1])
		res, err = client.PostForm(app.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post("/portal/login", "/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {e2eAdminPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	const phone = "+14155550177"
	res := post("/portal/users/new", "/portal/users", url.Values{"loginIDKey": {"phone"}, "loginID": {phone}, "passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: %d", res.StatusCode)
	}
	time.Sleep(200 * time.Millisecond) // the first attempt fails on the refused connection
	app.stop()
	if n := hook.Requests(); n != 0 {
		t.Fatalf("%d requests reached a stopped provider", n)
	}
	hook.Restart()
	env["LATCHKEY_DB"], env["LATCHKEY_ADDR"], env["LATCHKEY_PUBLIC_URL"] = app.DB, strings.TrimPrefix(app.URL, "http://"), app.URL
	app2 := startApp(t, env)
	m := hook.MessageTo(phone, 10*time.Second)
	pw := regexp.MustCompile(`password: (\S+?)(?:\s|$)`).FindStringSubmatch(m.Body)
	if pw == nil {
		t.Fatalf("no password in %q", m.Body)
	}
	wantStoredPassword(t, app2, phone, pw[1])
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.Messages()); n != 1 || hook.BadSignatures() != 0 {
		t.Fatalf("%d texts (bad signatures %d), want exactly 1", n, hook.BadSignatures())
	}
}

// TestSMSLimitsFromEnv: limits other than the defaults, set through the
// environment (1 text an hour per number, 2 a day in all), are what the
// running server enforces: the second text to one number and the third
// text of the day are refused, the admin is told why, and the provider
// gets exactly two texts.
func TestSMSLimitsFromEnv(t *testing.T) {
	hook := smstest.StartWebhook(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMS_URL": hook.WebhookURL(), "LATCHKEY_SMS_WEBHOOK_SECRET": smstest.Secret,
		"LATCHKEY_SMS_PHONE_HOURLY_LIMIT": "1", "LATCHKEY_SMS_DAILY_LIMIT": "2"})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfRE := regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	get := func(path string) string {
		t.Helper()
		res, err := client.Get(app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	// post submits a form from page and returns the page it redirects to.
	post := func(page, path string, form url.Values) string {
		t.Helper()
		form.Set("_csrf", csrfRE.FindStringSubmatch(get(page))[1])
		res, err := client.PostForm(app.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
		return get(res.Header.Get("Location"))
	}
	post("/portal/login", "/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {e2eAdminPassword}})
	create := func(phone string) string {
		return post("/portal/users/new", "/portal/users", url.Values{"loginIDKey": {"phone"}, "loginID": {phone}, "passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	}
	if page := create("+14155550260"); !strings.Contains(page, "on its way by text message") {
		t.Fatal("the first text was not queued")
	}
	hook.MessageTo("+14155550260", 10*time.Second)
	// The same number again within the hour: refused at 1, not the default 3.
	first := wantUser(t, app, "+14155550260")
	reset := "/portal/users/" + first + "/reset-password"
	page := post(reset, reset, url.Values{"passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	if !strings.Contains(page, "The password text was not sent.") || !strings.Contains(page, "in the last hour (at most 1)") {
		t.Fatal("the second text to one number within the hour was not refused at the configured limit of 1")
	}
	if page := create("+14155550261"); !strings.Contains(page, "on its way by text message") {
		t.Fatal("the second text of the day was refused")
	}
	hook.MessageTo("+14155550261", 10*time.Second)
	if page := create("+14155550262"); !strings.Contains(page, "The daily limit of text messages (2) has been reached.") {
		t.Fatal("the third text of the day was not refused at the configured daily limit of 2")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.Messages()); n != 2 {
		t.Fatalf("%d texts sent, want 2", n)
	}
}

// wantUser is the ID of the user with this login ID in app's database.
func wantUser(t *testing.T, app *e2eApp, loginID string) string {
	t.Helper()
	st, err := store.Open(context.Background(), app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := st.IdentityByNorm(context.Background(), loginID)
	if err != nil {
		t.Fatal(err)
	}
	return id.UserID
}
