package oidc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"latchkey/account"
	"latchkey/store"
)

// benchEnv is a provider on a real SQLite file behind a real HTTP server
// on loopback, with one confidential app and one user.
type benchEnv struct {
	p      *Provider
	srv    *httptest.Server
	app    *App
	userID string
	client *http.Client
}

const benchRedirect = "http://127.0.0.1:9/cb"

// benchParallelism is the clients per core (GOMAXPROCS) in the HTTP
// benchmarks: with one per core, a core idles while its request waits.
const benchParallelism = 4

func newBenchEnv(tb testing.TB, alg string) *benchEnv {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "bench.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	slog.SetDefault(log) // the library logs through the default logger
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	pw := "Bench-Passw0rd-1"
	u, err := acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: account.KindEmail, LoginIDValue: "bench@example.com", Password: &pw})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(ctx, acct, Config{Issuer: "http://localhost", Secret: []byte("0123456789abcdef0123456789abcdef"), KeyAlg: alg, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	app, err := p.CreateApp(ctx, account.SystemActor, AppInput{Name: "Bench", Confidential: true, RedirectURIs: benchRedirect,
		Scopes: []string{"email", "offline_access"}})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	tb.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	tb.Cleanup(tr.CloseIdleConnections)
	return &benchEnv{p: p, srv: srv, app: app, userID: u.ID, client: &http.Client{Transport: tr}}
}

// code makes a signed-in authorization request and its code, as
// /oauth2/continue would after the user signed in.
func (e *benchEnv) code(tb testing.TB) string {
	tb.Helper()
	ctx := op.ContextWithIssuer(context.Background(), e.p.iss)
	s := &storage{p: e.p}
	ar, err := s.CreateAuthRequest(ctx, &oidc.AuthRequest{ClientID: e.app.ID, RedirectURI: benchRedirect, ResponseType: oidc.ResponseTypeCode,
		Scopes: []string{"openid", "email", "offline_access"}, Nonce: "n"}, "")
	if err != nil {
		tb.Fatal(err)
	}
	now := e.p.now()
	if ok, err := e.p.st.CompleteOIDCAuthRequest(ctx, ar.GetID(), e.userID, now, now); err != nil || !ok {
		tb.Fatalf("complete: %v %v", ok, err)
	}
	done, err := s.AuthRequestByID(ctx, ar.GetID())
	if err != nil {
		tb.Fatal(err)
	}
	code, err := op.CreateAuthRequestCode(ctx, done, s, e.p.op.Crypto())
	if err != nil {
		tb.Fatal(err)
	}
	return code
}

type benchTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

func (e *benchEnv) token(tb testing.TB, form url.Values) benchTokens {
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.app.ID, e.app.Secret)
	res, err := e.client.Do(req)
	if err != nil {
		tb.Error(err)
		return benchTokens{}
	}
	defer res.Body.Close()
	var t benchTokens
	if err := json.NewDecoder(res.Body).Decode(&t); err != nil || res.StatusCode != http.StatusOK || t.AccessToken == "" || t.IDToken == "" {
		tb.Errorf("token: status %d, %+v, %v", res.StatusCode, t, err)
	}
	return t
}

func (e *benchEnv) get(tb testing.TB, path string) {
	res, err := e.client.Get(e.srv.URL + path)
	if err != nil {
		tb.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Errorf("%s: %d", path, res.StatusCode)
	}
}

// cpuTime is the CPU time this process has used (server, client and
// database alike).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter reports the wall-clock rate (which depends on what else the
// machine runs) and the rate per CPU-second the test process used, client
// included: on a machine of its own with n cores, about n times that.
type meter struct {
	wall time.Time
	cpu  time.Duration
}

func startMeter() meter { return meter{time.Now(), cpuTime()} }

func (m meter) report(b *testing.B) {
	b.ReportMetric(float64(b.N)/time.Since(m.wall).Seconds(), "ops/s")
	if cpu := cpuTime() - m.cpu; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "ops/cpu-s")
	}
}

// BenchmarkCodeExchange measures the code-for-tokens exchange over HTTP on
// loopback (client_secret_basic, ID token signed, access and refresh
// tokens stored, code marked used: one SQLite transaction), in parallel.
func BenchmarkCodeExchange(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e := newBenchEnv(b, alg)
			codes := make([]string, b.N)
			for i := range codes {
				codes[i] = e.code(b)
			}
			var next atomic.Int64
			b.ReportAllocs()
			// Enough clients in flight to keep every core busy while some
			// wait on the network or the database.
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			m := startMeter()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := codes[next.Add(1)-1]
					e.token(b, url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {benchRedirect}})
				}
			})
			m.report(b)
		})
	}
}

// BenchmarkCodeExchangeHandler is BenchmarkCodeExchange without the
// network and the client: requests go straight to the handler, so the
// CPU figure is the provider's own (HTTP parsing, client authentication,
// SQLite, signing, JSON).
func BenchmarkCodeExchangeHandler(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e := newBenchEnv(b, alg)
			bodies := make([]string, b.N)
			for i := range bodies {
				bodies[i] = url.Values{"grant_type": {"authorization_code"}, "code": {e.code(b)}, "redirect_uri": {benchRedirect}}.Encode()
			}
			h := e.p.Handler()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			m := startMeter()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(bodies[next.Add(1)-1]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(e.app.ID, e.app.Secret)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body.String())
					}
				}
			})
			m.report(b)
		})
	}
}

// BenchmarkRefresh measures refresh-token rotation over HTTP on loopback:
// each refresh marks the presented token used and stores the next one and
// a new access token (one transaction), and signs a new ID token.
func BenchmarkRefresh(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e := newBenchEnv(b, alg)
			chains := make(chan string, 256)
			for range cap(chains) {
				t := e.token(b, url.Values{"grant_type": {"authorization_code"}, "code": {e.code(b)}, "redirect_uri": {benchRedirect}})
				chains <- t.RefreshToken
			}
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			m := startMeter()
			b.RunParallel(func(pb *testing.PB) {
				rt := <-chains
				for pb.Next() {
					rt = e.token(b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}).RefreshToken
				}
			})
			m.report(b)
		})
	}
}

// BenchmarkJWKSAndDiscovery measures the two documents apps fetch most;
// both come from memory (no database read).
func BenchmarkJWKSAndDiscovery(b *testing.B) {
	e := newBenchEnv(b, AlgRS256)
	for name, path := range map[string]string{"jwks": JWKSPath, "discovery": DiscoveryPath} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			m := startMeter()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.get(b, path)
				}
			})
			m.report(b)
		})
	}
}

// BenchmarkSignIDToken is the floor under the exchange and refresh
// figures: signing one ID-token-sized payload with the active key (the
// library's own signer), in parallel, nothing else.
func BenchmarkSignIDToken(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e := newBenchEnv(b, alg)
			key, err := (&storage{p: e.p}).SigningKey(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			signer, err := op.SignerFromKey(key)
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"iss":"http://localhost","sub":"0f6e7c1e-6d7b-4c55-9a38-3c6c1b8f2e11","aud":["` + e.app.ID + `"],"exp":1796176466,"iat":1796172866,"auth_time":1796172866,"nonce":"n","amr":["pwd"],"azp":"` + e.app.ID + `","email":"bench@example.com"}`)
			m := startMeter()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := signer.Sign(payload); err != nil {
						b.Error(err)
					}
				}
			})
			m.report(b)
		})
	}
}
