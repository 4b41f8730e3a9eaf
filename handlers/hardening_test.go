package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"latchkey/account"
)

func TestHSTSOnlyUnderHTTPS(t *testing.T) {
	secure := newTestApp(t, func(c *Config) { c.PublicURL = "https://latchkey.example" })
	for _, p := range []string{"/portal/login", "/login", "/healthz", "/static/app.css"} {
		if h := secure.get(p).Header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security %q", p, h)
		}
	}
	plain := newTestApp(t)
	if h := plain.get("/portal/login").Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS over http: %q", h)
	}
}

func TestStaticServesFilesNotListings(t *testing.T) {
	a := newTestApp(t)
	r := a.get("/static/app.css")
	wantStatus(t, r, http.StatusOK)
	for _, p := range []string{"/static/", "/static", "/static/.", "/static/nope.css", "/static/../main.go"} {
		r := a.get(p)
		if r.Status == http.StatusOK || strings.Contains(r.Body, `href="app.css"`) {
			t.Errorf("%s: %d, body %.100q", p, r.Status, r.Body)
		}
	}
}

func TestPolicyCapsKeywordsAndHistory(t *testing.T) {
	a := newTestApp(t)
	a.loginAdmin()
	before := a.acct.Policy()
	save := func(form url.Values) response {
		a.get("/portal/settings/password-policy")
		form.Set("min_length", "8")
		return a.post("/portal/settings/password-policy", form)
	}
	r := save(url.Values{"history_size": {"51"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "between 0 and 50")
	r = save(url.Values{"excluded_keywords": {strings.TrimSuffix(strings.Repeat("word\n", account.MaxExcludedKeywords+1), "\n")}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "at most 200 keywords")
	r = save(url.Values{"excluded_keywords": {strings.Repeat("x", account.MaxKeywordLength+1)}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "at most 100 characters")
	if got := a.acct.Policy(); got.HistorySize != before.HistorySize || len(got.ExcludedKeywords) != len(before.ExcludedKeywords) {
		t.Fatalf("a refused policy was saved: %+v", got)
	}
	wantStatus(t, save(url.Values{"history_size": {"50"}, "excluded_keywords": {"acme\nlatchkey"}}), http.StatusSeeOther)
	if got := a.acct.Policy(); got.HistorySize != 50 || len(got.ExcludedKeywords) != 2 {
		t.Fatalf("policy %+v", got)
	}
}
