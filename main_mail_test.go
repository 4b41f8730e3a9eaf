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

	"latchkey/mail/mailtest"
)

func TestLoadConfigMail(t *testing.T) {
	for _, env := range []map[string]string{
		{"LATCHKEY_SMTP_URL": "http://mail.example.com"},
		{"LATCHKEY_SMTP_URL": "smtp://mail.example.com?tls=sometimes"},
		{"LATCHKEY_MAIL_FROM": "not an address"},
	} {
		if _, err := loadConfig(nil, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: want an error", env)
		}
	}
	c, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_SMTP_URL": "smtp://u:p@mail.example.com:2525?tls=implicit", "LATCHKEY_APP_NAME": "Acme"}[k]
	})
	if err != nil || c.MailFrom != "Acme <no-reply@localhost>" {
		t.Fatalf("config %+v, %v", c, err)
	}
}

// TestQueuedEmailSurvivesRestart creates a user through the portal while
// the SMTP server is down, stops Latchkey with the email still queued,
// brings the server up and starts Latchkey again on the same database:
// the email arrives exactly once and its password signs the user in.
func TestQueuedEmailSurvivesRestart(t *testing.T) {
	smtp := mailtest.Reserve(t)
	env := map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()}
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
	const email = "restart@example.com"
	res := post("/portal/users/new", "/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {email}, "passwordMode": {"auto"}, "setPasswordExpired": {"true"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: %d", res.StatusCode)
	}
	app.stop()
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d messages while the server was down", n)
	}

	smtp.Up()
	env["LATCHKEY_DB"], env["LATCHKEY_ADDR"], env["LATCHKEY_PUBLIC_URL"] = app.DB, strings.TrimPrefix(app.URL, "http://"), app.URL
	app2 := startApp(t, env)
	msg := smtp.MessageTo(email, 10*time.Second)
	m := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no password in:\n%s", msg.Text)
	}
	wantStoredPassword(t, app2, email, m[1])
	time.Sleep(300 * time.Millisecond)
	if n := len(smtp.Messages()); n != 1 {
		t.Fatalf("%d messages, want exactly 1", n)
	}
}
