package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/sms/smstest"
)

func TestLoadConfigSMS(t *testing.T) {
	bad := map[string]map[string]string{
		"must start with":             {"LATCHKEY_SMS_URL": "https://sms.example.com"},
		"loopback":                    {"LATCHKEY_SMS_URL": "webhook+http://sms.example.com/send", "LATCHKEY_SMS_WEBHOOK_SECRET": "s"},
		"LATCHKEY_SMS_WEBHOOK_SECRET": {"LATCHKEY_SMS_URL": "webhook+https://sms.example.com/send"},
		"exactly one of":              {"LATCHKEY_SMS_URL": "twilio://AC1:tok@api.twilio.com"},
		"LATCHKEY_SMS_DAILY_LIMIT":    {"LATCHKEY_SMS_DAILY_LIMIT": "lots"},
		"LATCHKEY_SMS_COUNTRY_LIMITS": {"LATCHKEY_SMS_COUNTRY_LIMITS": "44:50"},
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
