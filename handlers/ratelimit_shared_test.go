package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"latchkey/account"
	"latchkey/store"
	"latchkey/store/pgtest"
)

// Two instances (two routers, each with its own limiters) on one
// PostgreSQL database share the sign-in limits: wrong passwords for one
// account alternated between them are refused at the 11th attempt (the
// per-account limit is 10 a minute), not the 21st; and failed Admin API authentications from
// one address are refused on both instances once the limit is reached.
func TestPostgresSharedSignInLimits(t *testing.T) {
	url := pgtest.Database(t)
	a := startTestAppAt(t, true, url, 0)
	b := startTestAppAt(t, false, url, 0)
	if !a.store.SharesRateLimits() {
		t.Fatal("the PostgreSQL store does not share rate limits")
	}
	pw := "a long enough password 1"
	if _, err := a.acct.CreateUser(context.Background(), account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: account.KindEmail, LoginIDValue: "shared@example.com", Password: &pw}); err != nil {
		t.Fatal(err)
	}

	// A success first: it leaves at most its own hit.
	fresh := func(app *testApp) *testApp {
		return &testApp{t: t, srv: app.srv, acct: app.acct, store: app.store, client: newJarClient()}
	}
	if r := signIn(fresh(a), "shared@example.com", pw, ""); r.Status != http.StatusSeeOther {
		t.Fatalf("sign-in with the right password: %d %s", r.Status, loginError(r.Body))
	}
	apps := []*testApp{a, b}
	refusedAt := 0
	for i := 0; i < 12 && refusedAt == 0; i++ {
		r := signIn(apps[i%2], "shared@example.com", "wrong password", "")
		switch r.Status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			if !strings.Contains(loginError(r.Body), "Too many failed sign-in attempts") || r.Header.Get("Retry-After") == "" {
				t.Fatalf("attempt %d: 429 without the account message or Retry-After: %q", i+1, loginError(r.Body))
			}
			refusedAt = i + 1
		default:
			t.Fatalf("attempt %d: status %d", i+1, r.Status)
		}
	}
	// 10 a minute per account and address. The success above kept its
	// own hit (ResetCtx leaves a lone hit to save a round trip), so the
	// 10th failure is the first refused; with a memory per instance it
	// would have been the 20th.
	if refusedAt != 10 {
		t.Fatalf("first refusal at attempt %d across two instances, want 10", refusedAt)
	}
	// Refused on both instances now, even with the right password.
	for _, app := range apps {
		if r := signIn(fresh(app), "shared@example.com", pw, ""); r.Status != http.StatusTooManyRequests {
			t.Fatalf("after the limit: %d", r.Status)
		}
	}
	// Another account from the same address is not refused.
	if r := signIn(b, "nobody@example.com", "x", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("another account: %d", r.Status)
	}

	// Admin API authentication failures per address (20 a minute), shared:
	// after 20 failures alternated between the instances, each instance
	// refuses with 429 by its next failure (its view of the counter is
	// updated by the failure that is refused), so at most one more key
	// per extra instance is checked.
	apiCall := func(app *testApp) int {
		req, _ := http.NewRequest(http.MethodPost, app.srv.URL+"/_api/admin/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer lk_wrong")
		res, err := app.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := 0; i < apiAuthFailuresPerMinute; i++ {
		if code := apiCall(apps[i%2]); code != http.StatusUnauthorized {
			t.Fatalf("API failure %d: %d, want 401", i+1, code)
		}
	}
	checked := 0
	for i := 0; i < 4; i++ {
		switch code := apiCall(apps[i%2]); code {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("API call past the limit: %d", code)
		}
	}
	if checked > 1 {
		t.Fatalf("%d keys checked past a shared limit of %d on two instances, want at most 1", checked, apiAuthFailuresPerMinute)
	}
	if code := apiCall(a); code != http.StatusTooManyRequests {
		t.Fatalf("instance a after the limit: %d", code)
	}
	if code := apiCall(b); code != http.StatusTooManyRequests {
		t.Fatalf("instance b after the limit: %d", code)
	}
}

// BenchmarkSignInLimits is what a sign-in pays for its two rate limits
// (per IP, per account and IP): in memory (SQLite), and in PostgreSQL
// (one upsert of both counters, one round trip). Sequential, so ns/op is
// the latency one sign-in adds.
func BenchmarkSignInLimits(b *testing.B) {
	run := func(b *testing.B, s *Server) {
		ip, acct := s.newLimiter("login_ip", 1<<30, minute), s.newLimiter("login_acct_ip", 10, minute)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			key := "user" + strconv.Itoa(i) + "@example.com|192.0.2.1"
			if refused, _ := allowAll(ctx, limiterHit{ip, "192.0.2.1"}, limiterHit{acct, key}); refused >= 0 {
				b.Fatalf("refused %d", refused)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, &Server{}) })
	b.Run("postgres", func(b *testing.B) {
		url := pgtest.Database(b)
		st, err := store.Open(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		run(b, &Server{rates: newSharedRates(st, []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.NewTextHandler(io.Discard, nil)))})
	})
}

// When the database does not answer, a shared limiter still limits: it
// counts in the instance's memory.
func TestSharedLimiterFallsBackToMemory(t *testing.T) {
	st, err := store.Open(context.Background(), pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{rates: newSharedRates(st, []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.NewTextHandler(io.Discard, nil)))}
	if s.rates == nil {
		t.Fatal("PostgreSQL store, but the limiters are not shared")
	}
	l := s.newLimiter("fallback_ip", 3, minute)
	ctx := context.Background()
	if ok, _ := l.AllowCtx(ctx, "192.0.2.1"); !ok {
		t.Fatal("first hit refused")
	}
	st.Close() // the database is gone
	for i := 2; i <= 3; i++ {
		if ok, _ := l.AllowCtx(ctx, "192.0.2.1"); !ok {
			t.Fatalf("hit %d refused", i)
		}
	}
	if ok, wait := l.AllowCtx(ctx, "192.0.2.1"); ok || wait <= 0 {
		t.Fatalf("4th hit without a database: ok=%v wait=%v", ok, wait)
	}
}
