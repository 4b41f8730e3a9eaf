package main

import (
	"context"

	"io"
	"latchkey/store"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// portalClient drives the portal over plain HTTP with a cookie jar, taking
// the CSRF token from the last page it fetched.
type portalClient struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func newPortalClient(t *testing.T, base string) *portalClient {
	jar, _ := cookiejar.New(nil)
	return &portalClient{t: t, base: base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *portalClient) read(res *http.Response, err error) (int, string, string) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfFieldRE.FindStringSubmatch(string(b)); m != nil {
		p.csrf = m[1]
	}
	return res.StatusCode, string(b), res.Header.Get("Location")
}

func (p *portalClient) get(path string) (int, string, string) {
	p.t.Helper()
	return p.read(p.client.Get(p.base + path))
}

func (p *portalClient) post(path string, form url.Values) (int, string, string) {
	p.t.Helper()
	form.Set("_csrf", p.csrf)
	return p.read(p.client.PostForm(p.base+path, form))
}

func (p *portalClient) signIn() {
	p.t.Helper()
	p.get("/portal/login")
	if code, _, _ := p.post("/portal/login", url.Values{"email": {e2eAdminEmail}, "password": {e2eAdminPassword}}); code != http.StatusSeeOther {
		p.t.Fatalf("sign-in: %d", code)
	}
}

// TestRestartDeliversQueuedWebhooks: the receiver is down while a user is
// created, Latchkey is stopped, the receiver comes up, Latchkey starts
// again on the same database and delivers the queued user.created.
func TestRestartDeliversQueuedWebhooks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookAddr := ln.Addr().String()
	ln.Close() // down for now

	app := startApp(t, nil)
	p := newPortalClient(t, app.URL)
	p.signIn()
	p.get("/portal/hooks")
	code, _, loc := p.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {"http://" + hookAddr + "/hook"}, "events_mode": {"all"}})
	if code != http.StatusSeeOther {
		t.Fatalf("add webhook: %d", code)
	}
	p.get("/portal/users/new")
	code, _, _ = p.post("/portal/users", url.Values{"loginIDKey": {"phone"}, "loginID": {"+14155550177"}, "passwordMode": {"none"}})
	if code != http.StatusSeeOther {
		t.Fatalf("create user: %d", code)
	}
	// The first attempt fails (connection refused) and is scheduled again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := p.get(loc)
		if strings.Contains(body, "connection refused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt recorded while the receiver was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	app.stop()

	var mu sync.Mutex
	var got []string
	ln, err = net.Listen("tcp", hookAddr)
	if err != nil {
		t.Skipf("could not listen on %s again: %v", hookAddr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	// The retry is 30 s away; a restart must not lose it. Move it to now
	// through the database, as if that time had passed while Latchkey was down.
	addr := strings.TrimPrefix(app.URL, "http://")
	forceDue(t, app.DB)
	startApp(t, map[string]string{"LATCHKEY_DB": app.DB, "LATCHKEY_ADDR": addr, "LATCHKEY_PUBLIC_URL": app.URL})
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		var all string
		if n > 0 {
			all = strings.Join(got, "\n")
		}
		mu.Unlock()
		if strings.Contains(all, `"type":"user.created"`) && strings.Contains(all, `"phone_number":"+14155550177"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart the receiver got %d requests: %s", n, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forceDue makes every pending delivery due now, in the stopped app's database.
func forceDue(t *testing.T, path string) {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.Direct().Exec(`UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE status = 'pending'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no pending delivery survived the stop")
	}
}
