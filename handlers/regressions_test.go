package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"latchkey/account"
)

// parallelPosts sends the same form from n browsers at once (released
// together) and returns the statuses.
func parallelPosts(t *testing.T, a *authApp, n int, page, path string, form url.Values) map[int]int {
	t.Helper()
	browsers := make([]*testApp, n)
	for i := range browsers {
		browsers[i] = a.browser()
		wantStatus(t, browsers[i].get(page), http.StatusOK)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make(chan int, n)
	for _, b := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("_csrf", b.csrf)
			req, _ := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			<-start
			res, err := b.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	return count
}

// TestResetCodeAndLinkSingleUseUnderConcurrency: the same code, and the
// same link, submitted from parallel requests reset the password exactly
// once. (Without "AND used_at IS NULL" in the consuming update, every
// request that passed the early check would reset it.)
func TestResetCodeAndLinkSingleUseUnderConcurrency(t *testing.T) {
	for _, via := range []string{"code", "link"} {
		t.Run(via, func(t *testing.T) {
			// Real bcrypt cost: the new password's hash is made between the
			// early check and the consuming update, so parallel requests
			// all pass the first before any reaches the second.
			a := newAuthAppCost(t, 10, nil)
			a.createUser("wes@example.com", userPW, false)
			f := forgotFlow{a, a.browser()}
			m := f.ask("wes@example.com")
			var count map[int]int
			if via == "code" {
				// Five parallel submissions: the code allows five tries.
				count = parallelPosts(t, a, 5, "/reset-password/code", "/reset-password/code",
					url.Values{"login_id": {"wes@example.com"}, "code": {m.Code}, "password": {userPW2}, "confirm": {userPW2}})
			} else {
				u, _ := url.Parse(m.Link)
				count = parallelPosts(t, a, 8, "/reset-password?"+u.RawQuery, "/reset-password",
					url.Values{"token": {u.Query().Get("token")}, "password": {userPW2}, "confirm": {userPW2}})
			}
			if count[http.StatusSeeOther] != 1 {
				t.Fatalf("statuses %v: want exactly one reset", count)
			}
			if n := len(a.events.ofType("user.password.changed")); n != 1 {
				t.Fatalf("%d user.password.changed events, want 1", n)
			}
			var history int
			if err := a.store.Direct().QueryRow(`SELECT COUNT(*) FROM password_history`).Scan(&history); err != nil {
				t.Fatal(err)
			}
			if history != 2 { // the first password and the reset
				t.Fatalf("%d history rows, want 2", history)
			}
		})
	}
}

// TestHistoryByAgeOnly: a policy with only "history days" set refuses a
// password used within those days, and allows it after.
func TestHistoryByAgeOnly(t *testing.T) {
	a := newAuthApp(t, func(p *account.Policy) { p.HistorySize, p.HistoryDays = 0, 30 })
	a.createUser("xia@example.com", userPW, false)
	change := func(current, next string) response {
		b := a.browser()
		wantStatus(t, signIn(b, "xia@example.com", current, ""), http.StatusSeeOther)
		wantStatus(t, b.get("/settings"), http.StatusOK)
		return b.post("/settings/password", url.Values{"current_password": {current}, "password": {next}, "confirm": {next}})
	}
	wantStatus(t, change(userPW, userPW2), http.StatusSeeOther)
	r := change(userPW2, userPW)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.Body, "used recently")
	a.clock.Advance(31 * 24 * time.Hour)
	wantStatus(t, change(userPW2, userPW), http.StatusSeeOther)
}

// TestRestrictedSessionRefusedByEachGate tests loadEndUser and
// requireEndUser each on its own: either must stop a restricted session
// (an expired password) even when the other is missing.
func TestRestrictedSessionRefusedByEachGate(t *testing.T) {
	a := newAuthApp(t, nil)
	a.createUser("yan@example.com", userPW, true)
	res, err := a.acct.Login(context.Background(), account.Actor{IP: "127.0.0.1"}, account.LoginInput{LoginID: "yan@example.com", Password: userPW})
	if err != nil || !res.Restricted {
		t.Fatalf("login: %+v %v", res, err)
	}
	srv := &Server{acct: a.acct, sessions: sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef"))}
	e := echo.New()
	reached := false
	next := func(echo.Context) error { reached = true; return nil }

	// requireEndUser alone, handed a restricted session.
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/settings", nil), rec)
	c.Set(ctxEndUser, &account.Session{UserID: res.User.ID, Restricted: true})
	if err := srv.requireEndUser(next)(c); err != nil {
		t.Fatal(err)
	}
	if reached || rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("requireEndUser let a restricted session through: reached %v, %d %q", reached, rec.Code, rec.Header().Get("Location"))
	}
	// A full session passes it.
	c = e.NewContext(httptest.NewRequest(http.MethodGet, "/settings", nil), httptest.NewRecorder())
	c.Set(ctxEndUser, &account.Session{UserID: res.User.ID})
	if err := srv.requireEndUser(next)(c); err != nil || !reached {
		t.Fatalf("requireEndUser refused a full session: %v", err)
	}

	// loadEndUser alone, with the restricted session's cookie, on a page
	// outside the change step.
	reached = false
	req := httptest.NewRequest(http.MethodGet, "/settings", nil)
	rec = httptest.NewRecorder()
	c = e.NewContext(req, rec)
	c.SetPath("/settings")
	sess := sessions.NewSession(srv.sessions, userCookie)
	sess.Values[userTokenKey] = res.Session
	c.Set(ctxUserSess, sess)
	if err := srv.loadEndUser(next)(c); err != nil {
		t.Fatal(err)
	}
	if reached || rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/change-password" {
		t.Fatalf("loadEndUser let a restricted session through: reached %v, %d %q", reached, rec.Code, rec.Header().Get("Location"))
	}
	// ...and lets it reach the change step.
	c = e.NewContext(httptest.NewRequest(http.MethodGet, "/change-password", nil), httptest.NewRecorder())
	c.SetPath("/change-password")
	c.Set(ctxUserSess, sess)
	if err := srv.loadEndUser(next)(c); err != nil || !reached {
		t.Fatalf("loadEndUser kept a restricted session from the change step: %v", err)
	}
}
