package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestLoadConfigDefaultsAndErrors(t *testing.T) {
	c, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DB != "latchkey.db" || c.PublicURL != "http://localhost:8080" || c.BcryptCost != 10 || c.AppName != "Latchkey" {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = loadConfig([]string{"-addr", "127.0.0.1:9999"}, func(k string) string {
		return map[string]string{"LATCHKEY_ADDR": ":1", "LATCHKEY_PUBLIC_URL": "https://id.example.com/"}[k]
	})
	if err != nil || c.Addr != "127.0.0.1:9999" || c.PublicURL != "https://id.example.com" {
		t.Fatalf("flags and env = %+v, %v", c, err)
	}
	bad := []map[string]string{
		{"LATCHKEY_BCRYPT_COST": "3"},
		{"LATCHKEY_PUBLIC_URL": "ftp://x"},
		{"LATCHKEY_SECRET_KEY": "short"},
		{"LATCHKEY_ADMIN_EMAIL": "a@example.com"},
		{"LATCHKEY_LOG_LEVEL": "loud"},
	}
	for _, env := range bad {
		if _, err := loadConfig(nil, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: want an error", env)
		}
	}
}

// TestRestartKeepsSessions signs in, restarts Latchkey on the same
// database, and finds the admin still signed in: the generated session
// secret lives in the database.
func TestRestartKeepsSessions(t *testing.T) {
	app := startApp(t, nil)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string) {
		t.Helper()
		res, err := client.Get(app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	_, body := get("/portal/login")
	token := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)[1]
	res, err := client.PostForm(app.URL+"/portal/login", url.Values{"_csrf": {token}, "email": {e2eAdminEmail}, "password": {e2eAdminPassword}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login status %d", res.StatusCode)
	}
	if code, _ := get("/portal/users"); code != http.StatusOK {
		t.Fatalf("signed in: /portal/users = %d", code)
	}
	app.stop()
	if _, err := http.Get(app.URL + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
	addr := strings.TrimPrefix(app.URL, "http://")
	app2 := startApp(t, map[string]string{"LATCHKEY_DB": app.DB, "LATCHKEY_ADDR": addr, "LATCHKEY_PUBLIC_URL": app.URL})
	if app2.URL != app.URL {
		t.Fatalf("restarted at %s, want %s", app2.URL, app.URL)
	}
	if code, body := get("/portal/users"); code != http.StatusOK || !strings.Contains(body, "Create User") {
		t.Fatalf("after restart: /portal/users = %d", code)
	}
}
