package main

import (
	"encoding/json"
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

// TestAdminAPIThroughTheBinary starts Latchkey as `go run .` would, with
// SMTP pointed at a test server; an admin creates an API key in the portal
// (over plain HTTP, as a browser without JS would), and the guide's
// createUser mutation, sent verbatim with that key, delivers the email.
func TestAdminAPIThroughTheBinary(t *testing.T) {
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL(), "LATCHKEY_APP_NAME": "Acme"})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	csrfRE := regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	get := func(path string) string {
		res, err := client.Get(app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	post := func(path string, form url.Values, page string) (int, string) {
		m := csrfRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token on the page before %s", path)
		}
		form.Set("_csrf", m[1])
		res, err := client.PostForm(app.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	page := get("/portal/login")
	if status, body := post("/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {e2eAdminPassword}}, page); status != http.StatusOK || !strings.Contains(body, "Users") {
		t.Fatalf("sign in: %d", status)
	}
	page = get("/portal/api-keys")
	status, body := post("/portal/api-keys", url.Values{"name": {"provisioning"}}, page)
	token := regexp.MustCompile(`lk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}`).FindString(body)
	// Post/Redirect/Get: the client follows the 303 to the page that shows the token once.
	if status != http.StatusOK || token == "" {
		t.Fatalf("create key: %d, token %q", status, token)
	}

	call := func(auth, query string) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"query": query})
		req, _ := http.NewRequest(http.MethodPost, app.URL+"/_api/admin/graphql", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	const createUser = `mutation {
  createUser(input: {definition: {loginID: {key: "email", value: "user@example.com"}}, password: "s3c0rp4$sw0rd", sendPassword: true, setPasswordExpired: true}) {
    user{
      id
      standardAttributes
    }
  }
}`
	if status, _ := call("", createUser); status != http.StatusUnauthorized {
		t.Fatalf("no key: %d", status)
	}
	status, out := call("Bearer "+token, createUser)
	if status != http.StatusOK || out["errors"] != nil {
		t.Fatalf("createUser: %d %v", status, out)
	}
	msg := smtp.MessageTo("user@example.com", 10*time.Second)
	if !strings.Contains(msg.Subject, "Get Started With Acme") || !strings.Contains(msg.Text, "s3c0rp4$sw0rd") {
		t.Fatalf("email: %q %q", msg.Subject, msg.Text)
	}
}
