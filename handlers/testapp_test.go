package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
	"latchkey/store/testdb"
)

// testApp is the real router over a fresh SQLite file, driven through
// real HTTP with a cookie jar, as a browser without JavaScript would.
type testApp struct {
	t      *testing.T
	srv    *httptest.Server
	acct   *account.Service
	store  *store.Store
	client *http.Client
	// csrf is the token from the last page fetched.
	csrf string
}

const (
	testAdminEmail    = "admin@example.com"
	testAdminPassword = "correct horse battery"
)

// newTestApp starts the app with one admin (not signed in). configure may
// change the handler config before the router is built.
func newTestApp(t *testing.T, configure ...func(*Config)) *testApp {
	t.Helper()
	return startTestApp(t, true, configure...)
}

// startTestApp starts the app, with the test admin when withAdmin is set.
func startTestApp(t *testing.T, withAdmin bool, configure ...func(*Config)) *testApp {
	t.Helper()
	return startTestAppAt(t, withAdmin, testdb.DB(t, filepath.Join(t.TempDir(), "test.db")), 0, configure...)
}

// startTestAppAt is startTestApp over the database at path (a SQLite
// file or a PostgreSQL URL, as testdb.DB gives), with a
// write budget (0: the default).
func startTestAppAt(t *testing.T, withAdmin bool, path string, writeTimeout time.Duration, configure ...func(*Config)) *testApp {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenOptions(ctx, path, store.Options{WriteTimeout: writeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(testLogW, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.SetSecret([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if withAdmin {
		if _, err := acct.BootstrapAdmin(ctx, testAdminEmail, testAdminPassword); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{PublicURL: "http://localhost", SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: log}
	for _, f := range configure {
		f(&cfg)
	}
	srv := httptest.NewServer(New(cfg, acct))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testApp{t: t, srv: srv, acct: acct, store: st, client: client}
}

// response is an HTTP answer, read whole.
type response struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (a *testApp) do(req *http.Request) response {
	a.t.Helper()
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{Status: res.StatusCode, Body: string(b), Location: res.Header.Get("Location"), Header: res.Header}
	if m := csrfRE.FindStringSubmatch(r.Body); m != nil {
		a.csrf = m[1]
	}
	return r
}

func (a *testApp) get(path string) response {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	return a.do(req)
}

// post submits a form with the CSRF token of the last page fetched.
func (a *testApp) post(path string, form url.Values) response {
	a.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", a.csrf)
	}
	return a.postRaw(path, form)
}

// postRaw submits the form exactly as given.
func (a *testApp) postRaw(path string, form url.Values) response {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// loginAdmin signs the test admin in to the portal.
func (a *testApp) loginAdmin() {
	a.t.Helper()
	a.get("/portal/login")
	r := a.post("/portal/login", url.Values{"email": {testAdminEmail}, "password": {testAdminPassword}})
	if r.Status != http.StatusSeeOther {
		a.t.Fatalf("admin login: status %d, body %s", r.Status, r.Body)
	}
}

// countUsers counts users in the database.
func (a *testApp) countUsers() int {
	a.t.Helper()
	n, err := a.store.CountUsers(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return n
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.Status != want {
		body := r.Body
		if len(body) > 2000 {
			body = body[:2000]
		}
		t.Fatalf("status %d, want %d; body:\n%s", r.Status, want, body)
	}
}

func wantContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("body does not contain %q", s)
		}
	}
}
