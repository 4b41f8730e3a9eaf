// Command oidcbench measures Latchkey's OpenID Connect token endpoint
// from outside, the way applications use it, against the real latchkey
// binary (`task bench-oidc-http`).
//
// It builds the binary, registers one confidential application and one
// user in a fresh database, starts the server on loopback (RS256 key by
// default, as in production), signs the user in once through /login (one
// bcrypt verification), then:
//
//   - mints authorization codes the way a browser does: GET
//     /oauth2/authorize with PKCE, then /oauth2/continue with the Auth UI
//     session cookie (single sign-on, no password per code), which
//     redirects to the app with a code. Requests come from many loopback
//     addresses (the authorize limit is per IP). Minting is not timed;
//     codes live 60 seconds, so they are made in batches;
//   - exchange: N clients (an app's back end, keep-alive connections,
//     client_secret_basic) exchange each batch of codes for tokens, as
//     fast as they can. Every exchange returns an ID token signed with
//     the server's key, an access token and a refresh token;
//   - refresh: N clients each rotate their own refresh token in a loop;
//     every refresh returns a new ID token (signed), access token and
//     refresh token;
//   - raw: before and after, this process signs ID-token-sized payloads
//     with an RSA-2048 key (RS256, PKCS#1 v1.5, the server's algorithm,
//     through the server's signer: OpenSSL's libcrypto unless
//     LATCHKEY_RSA_SIGNER=go) on every core with the server idle: the
//     machine's signing rate now, the bound on any RS256 token endpoint on
//     this machine. Go's crypto/rsa rate is printed once for comparison.
//
// It prints each rate with the raw signing rate, CPU per operation (the
// server process and this client, from /proc and getrusage, robust when
// the machine is shared), the cores busy, p50/p99 and the load average.
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"latchkey/account"
	"latchkey/internal/benchproc"
	"latchkey/internal/procstat"
	"latchkey/oidc"
	"latchkey/store"
)

const (
	password = "bench-Passw0rd-1"
	email    = "oidcbench@example.com"
	redirect = "http://127.0.0.1:9/callback"
	verifier = "oidcbench-verifier-0123456789-0123456789-0123456789"
)

type options struct {
	clients   int
	codes     int
	batches   int
	refreshes time.Duration
	raw       time.Duration
	addrs     int
	alg       string
	bin       string
	keep      bool
}

func main() {
	var o options
	flag.IntVar(&o.clients, "clients", 32, "concurrent token clients (keep-alive connections)")
	flag.IntVar(&o.codes, "codes", 3000, "authorization codes per batch (each batch is exchanged within the codes' 60s life)")
	flag.IntVar(&o.batches, "batches", 3, "batches of codes to exchange")
	flag.DurationVar(&o.refreshes, "refresh", 10*time.Second, "length of the refresh phase")
	flag.DurationVar(&o.raw, "raw", 4*time.Second, "length of each raw signing phase")
	flag.IntVar(&o.addrs, "addrs", 250, "loopback source addresses for /oauth2/authorize")
	flag.StringVar(&o.alg, "alg", oidc.AlgRS256, "signing key algorithm: RS256 (the default, as in production) or ES256")
	flag.StringVar(&o.bin, "bin", "", "a latchkey binary to measure instead of building this tree (to compare two versions)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (database, server log)")
	flag.Parse()
	if o.clients <= 0 || o.codes <= 0 || o.batches <= 0 || o.addrs <= 0 {
		fatal(errors.New("-clients, -codes, -batches and -addrs must be positive"))
	}
	if err := bench(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "oidcbench:", err)
	os.Exit(1)
}

func bench(o options) error {
	dir, err := os.MkdirTemp("", "oidcbench")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Printf("keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "latchkey")
		fmt.Printf("building the binary (%s)\n", bin)
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build (run from the repository root): %w", err)
		}
	} else {
		fmt.Printf("measuring %s\n", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	secret := "oidcbench-" + randomText(32)
	dbPath := filepath.Join(dir, "bench.db")
	app, err := setup(dbPath, base, secret, o.alg)
	if err != nil {
		return err
	}
	srv, err := startServer(bin, addr, dbPath, secret, filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer srv.stop()

	browser, err := signIn(base)
	if err != nil {
		return err
	}
	src := sources(o.addrs)
	tr := &http.Transport{MaxIdleConns: o.clients * 2, MaxIdleConnsPerHost: o.clients * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	rp := &rp{base: base, app: app, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}

	// Warm up: connections, statement caches, the first batch's pages.
	codes, err := mint(base, browser, app.ID, src, min(o.codes, 300))
	if err != nil {
		return err
	}
	exchange(rp, codes, o.clients, srv)

	fmt.Printf("\n%d cores, GOMAXPROCS %d, key %s, %d clients; load average at start: %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), o.alg, o.clients, procstat.Loadavg())
	rawKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	// The bound is the signature the server makes: the same signer
	// (OpenSSL's libcrypto unless LATCHKEY_RSA_SIGNER=go or it is
	// missing); Go's crypto/rsa is shown once for comparison.
	sign, signer := oidc.RS256Signer(rawKey)
	goRate, goSig := rawSign(func(p []byte) ([]byte, error) {
		h := sha256.Sum256(p)
		return rsa.SignPKCS1v15(nil, rawKey, crypto.SHA256, h[:])
	}, o.raw/2)
	fmt.Printf("for comparison, Go crypto/rsa RS256 signing: %.0f/s on %d cores, %.3f ms CPU per signature\n", goRate, runtime.GOMAXPROCS(0), msf(goSig))
	idle0, idleT := srv.cpuTime(), time.Now()
	raw1, sig1 := rawSign(sign, o.raw)
	fmt.Printf("raw RS256 signing (%s, as the server): %.0f/s on %d cores, %.3f ms CPU per signature (load average %s)\n", signer, raw1, runtime.GOMAXPROCS(0), msf(sig1), procstat.Loadavg())
	// What the idle server uses (its background workers) is in every
	// phase's server CPU; at low rates it is a visible share per op.
	fmt.Printf("server while idle: %.1f ms CPU per second\n", msf(srv.cpuTime()-idle0)/time.Since(idleT).Seconds())

	var ex phase
	ex.name = "exchange"
	var chains []string
	for b := 0; b < o.batches; b++ {
		start := time.Now()
		codes, err := mint(base, browser, app.ID, src, o.codes)
		if err != nil {
			return err
		}
		fmt.Printf("batch %d: minted %d codes in %v\n", b+1, len(codes), time.Since(start).Round(time.Millisecond))
		p := exchange(rp, codes, o.clients, srv)
		p.print()
		ex.add(p)
		chains = append(chains, p.refresh...)
	}
	ex.loadavg = procstat.Loadavg()
	if len(chains) < o.clients {
		return fmt.Errorf("only %d refresh tokens for %d clients", len(chains), o.clients)
	}
	rf := refresh(rp, chains[:o.clients], o.refreshes, srv)
	rf.print()
	raw2, sig2 := rawSign(sign, o.raw)
	fmt.Printf("raw RS256 signing (%s, as the server): %.0f/s on %d cores, %.3f ms CPU per signature (load average %s)\n", signer, raw2, runtime.GOMAXPROCS(0), msf(sig2), procstat.Loadavg())
	ex.raw, rf.raw = (raw1+raw2)/2, (raw1+raw2)/2
	sig := (sig1 + sig2) / 2

	fmt.Println()
	fmt.Println("| operation | ops | ops/s | raw RS256 signs/s | ratio | CPU/op server | CPU/op client | cores busy (machine / server / client) | p50 | p99 | errors | load avg |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Println(ex.row())
	fmt.Println(rf.row())
	fmt.Println()
	for _, p := range []*phase{&ex, rf} {
		ok := "met"
		if p.rate() < 1000 || len(p.errs) > 0 {
			ok = "NOT met"
		}
		perOp := p.serverPerOp() + p.clientPerOp()
		fmt.Printf("%s: %.0f/s >= 1,000/s: %s. CPU per op %.3f ms (server %.3f + client %.3f) = %.2f raw signatures' worth:"+
			" %.0f/s when this server and client have the %d cores to themselves\n",
			p.name, p.rate(), ok, msf(perOp), msf(p.serverPerOp()), msf(p.clientPerOp()), float64(perOp)/float64(sig),
			float64(runtime.NumCPU())/perOp.Seconds(), runtime.NumCPU())
	}
	if lines := srv.errorLines(); len(lines) > 0 {
		fmt.Printf("\nthe server logged %d errors (all in %s with -keep); the last ones:\n", len(lines), srv.logPath)
		for _, l := range lines[max(0, len(lines)-5):] {
			fmt.Println("  " + l)
		}
	}
	return nil
}

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// setup makes the database before the server starts: the signing key
// (sealed with the server secret, as the server would make it), one
// confidential application and one user, through the oidc and account
// packages as the portal does.
func setup(dbPath, issuer, secret, alg string) (*oidc.App, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 10}, nil, nil, log)
	if err != nil {
		return nil, err
	}
	pw := password
	if _, err := acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: account.KindEmail, LoginIDValue: email, Password: &pw}); err != nil {
		return nil, err
	}
	p, err := oidc.New(ctx, acct, oidc.Config{Issuer: issuer, Secret: []byte(secret), KeyAlg: alg, Log: log})
	if err != nil {
		return nil, err
	}
	return p.CreateApp(ctx, account.SystemActor, oidc.AppInput{Name: "oidcbench", Confidential: true, RedirectURIs: redirect,
		Scopes: []string{"email", "offline_access"}})
}

type server struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
}

func startServer(bin, addr, dbPath, secret, logPath string) (*server, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LATCHKEY_ADDR="+addr, "LATCHKEY_DB="+dbPath, "LATCHKEY_PUBLIC_URL=http://"+addr,
		"LATCHKEY_BCRYPT_COST=10", "LATCHKEY_LOG_LEVEL=warn", "LATCHKEY_SECRET_KEY="+secret)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, logPath: logPath, logFile: lf}
	if err := benchproc.WaitHealthy("http://"+addr, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("the server did not start: %v (log: %s)", err, logPath)
	}
	return s, nil
}

func (s *server) stop() {
	benchproc.Stop(s.cmd)
	s.logFile.Close()
}

// errorLines are the server log's error lines: Latchkey's own
// (level=ERROR) and the library's, which go through the default logger.
func (s *server) errorLines() []string {
	b, _ := os.ReadFile(s.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, " ERROR ") {
			out = append(out, l)
		}
	}
	return out
}

// cpuTime is the server process's user+system CPU time so far.
func (s *server) cpuTime() time.Duration { return procstat.CPU(s.cmd.Process.Pid, false) }

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// noRedirect is a browser client that stops at each redirect, so that the
// code can be read off the one to the app.
func noRedirect(tr http.RoundTripper, jar http.CookieJar) *http.Client {
	return &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs the user in to the Auth UI once and returns the cookie
// jar holding the session.
func signIn(base string) (http.CookieJar, error) {
	jar, _ := cookiejar.New(nil)
	c := noRedirect(http.DefaultTransport, jar)
	res, err := c.Get(base + "/login")
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("GET /login: %d", res.StatusCode)
	}
	res, err = c.PostForm(base+"/login", url.Values{"_csrf": {string(m[1])}, "login_id": {email}, "password": {password}})
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("POST /login: %d", res.StatusCode)
	}
	return jar, nil
}

// sources are the loopback addresses authorization requests come from.
func sources(n int) []net.IP {
	var out []net.IP
	for i := 0; i < n; i++ {
		out = append(out, net.IPv4(127, 0, byte(1+i/250), byte(2+i%250)))
	}
	return out
}

func challenge() string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mint gets n codes as a signed-in browser does: /oauth2/authorize, then
// /oauth2/continue (single sign-on), then the redirect to the app. 16 at
// a time, each from the next source address.
func mint(base string, jar http.CookieJar, clientID string, src []net.IP, n int) ([]string, error) {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email offline_access"}, "code_challenge": {challenge()}, "code_challenge_method": {"S256"}}
	clients := make([]*http.Client, len(src))
	for i, ip := range src {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
		clients[i] = noRedirect(&http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}, jar)
	}
	defer func() {
		for _, c := range clients {
			c.Transport.(*http.Transport).CloseIdleConnections()
		}
	}()
	out := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				q := cloneValues(q)
				q.Set("state", strconv.Itoa(i))
				q.Set("nonce", randomText(16))
				code, err := authorize(clients[i%len(clients)], base+oidc.AuthorizePath+"?"+q.Encode())
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = code
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// authorize follows the redirects from /oauth2/authorize until the one to
// the app, and returns its code.
func authorize(c *http.Client, u string) (string, error) {
	busy := 0
	for hop := 0; hop < 5; hop++ {
		res, err := c.Get(u)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable && busy < 10 {
			// The server is busy (its write queue is full): come back
			// after Retry-After, as a browser's user would.
			busy++
			hop--
			ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(ra, 1)) * time.Second)
			continue
		}
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			return "", fmt.Errorf("GET %s: %d (expected a redirect)", u, res.StatusCode)
		}
		loc, err := res.Location()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(loc.String(), redirect) {
			if e := loc.Query().Get("error"); e != "" {
				return "", fmt.Errorf("authorize: %s: %s", e, loc.Query().Get("error_description"))
			}
			if code := loc.Query().Get("code"); code != "" {
				return code, nil
			}
			return "", fmt.Errorf("no code in %s", loc)
		}
		u = loc.String()
	}
	return "", errors.New("authorize: too many redirects")
}

// rp is the application's back end calling the token endpoint.
type rp struct {
	base   string
	app    *oidc.App
	client *http.Client
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func (r *rp) token(form url.Values) (tokens, error) {
	req, _ := http.NewRequest(http.MethodPost, r.base+oidc.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.app.ID), url.QueryEscape(r.app.Secret))
	res, err := r.client.Do(req)
	if err != nil {
		return tokens{}, err
	}
	defer res.Body.Close()
	var t tokens
	if err := json.NewDecoder(res.Body).Decode(&t); err != nil {
		return t, fmt.Errorf("token: %d: %v", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK || t.AccessToken == "" || t.RefreshToken == "" || strings.Count(t.IDToken, ".") != 2 {
		return t, fmt.Errorf("token: %d %s: %.120s", res.StatusCode, t.Error, t.Description)
	}
	return t, nil
}

type phase struct {
	name    string
	ops     int
	dur     time.Duration
	lat     []time.Duration
	errs    map[string]int
	refresh []string
	// CPU used during the phase: the machine (busy jiffies, all cores),
	// the server process, this process.
	machine, total int64
	server, client time.Duration
	raw            float64
	loadavg        string
}

func (p *phase) add(q *phase) {
	p.ops += q.ops
	p.dur += q.dur
	p.lat = append(p.lat, q.lat...)
	if p.errs == nil {
		p.errs = map[string]int{}
	}
	for e, n := range q.errs {
		p.errs[e] += n
	}
	p.machine += q.machine
	p.total += q.total
	p.server += q.server
	p.client += q.client
}

type meter struct {
	start          time.Time
	busy, total    int64
	server, client time.Duration
	srv            *server
}

func startMeter(srv *server) meter {
	busy, total := procstat.Machine()
	return meter{time.Now(), busy, total, srv.cpuTime(), procstat.Self(), srv}
}

func (m meter) stop(p *phase) {
	p.dur = time.Since(m.start)
	busy, total := procstat.Machine()
	p.machine, p.total = busy-m.busy, total-m.total
	p.server, p.client = m.srv.cpuTime()-m.server, procstat.Self()-m.client
	p.loadavg = procstat.Loadavg()
}

// exchange exchanges every code with n clients.
func exchange(r *rp, codes []string, n int, srv *server) *phase {
	p := &phase{name: "exchange", errs: map[string]int{}}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	m := startMeter(srv)
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(codes) {
					return
				}
				start := time.Now()
				t, err := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {redirect},
					"code_verifier": {verifier}})
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					p.errs[err.Error()]++
				} else {
					p.ops++
					p.lat = append(p.lat, took)
					p.refresh = append(p.refresh, t.RefreshToken)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	m.stop(p)
	return p
}

// refresh rotates each chain in a loop, one client per chain, for d.
func refresh(r *rp, chains []string, d time.Duration, srv *server) *phase {
	p := &phase{name: "refresh", errs: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	m := startMeter(srv)
	stop := time.Now().Add(d)
	for _, rt := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				start := time.Now()
				t, err := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					p.errs[err.Error()]++
				} else {
					p.ops++
					p.lat = append(p.lat, took)
				}
				mu.Unlock()
				if err != nil {
					return // the chain is gone
				}
				rt = t.RefreshToken
			}
		}()
	}
	wg.Wait()
	m.stop(p)
	return p
}

// rawSign signs an ID-token-sized payload with sign (RS256) on every core
// for d and returns signatures per second and the CPU time per signature.
func rawSign(sign func([]byte) ([]byte, error), d time.Duration) (float64, time.Duration) {
	payload := []byte(`eyJhbGciOiJSUzI1NiIsImtpZCI6IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2NyIsInR5cCI6IkpXVCJ9.` +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"http://127.0.0.1:8080","sub":"0f6e7c1e6d7b4c559a383c6c1b8f2e11","aud":["0f6e7c1e6d7b4c559a383c6c1b8f2e12"],"exp":1796176466,"iat":1796172866,"auth_time":1796172866,"nonce":"n0123456789abcdef","amr":["pwd"],"azp":"0f6e7c1e6d7b4c559a383c6c1b8f2e12","at_hash":"x0123456789abcdefghijk","c_hash":"y0123456789abcdefghijk","email":"oidcbench@example.com","email_verified":false}`)))
	var n atomic.Int64
	var wg sync.WaitGroup
	cpu0 := procstat.Self()
	start := time.Now()
	stop := start.Add(d)
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if _, err := sign(payload); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(n.Load()) / time.Since(start).Seconds()
	if n.Load() == 0 {
		return rate, 0
	}
	return rate, (procstat.Self() - cpu0) / time.Duration(n.Load())
}

func (p *phase) rate() float64 {
	if p.dur <= 0 {
		return 0
	}
	return float64(p.ops) / p.dur.Seconds()
}

func (p *phase) serverPerOp() time.Duration {
	if p.ops == 0 {
		return 0
	}
	return p.server / time.Duration(p.ops)
}

func (p *phase) clientPerOp() time.Duration {
	if p.ops == 0 {
		return 0
	}
	return p.client / time.Duration(p.ops)
}

func (p *phase) cores() (machine, server, client float64) {
	if p.total > 0 {
		machine = float64(p.machine) / float64(p.total) * float64(runtime.NumCPU())
	}
	return machine, p.server.Seconds() / p.dur.Seconds(), p.client.Seconds() / p.dur.Seconds()
}

func (p *phase) print() {
	mc, sc, cc := p.cores()
	fmt.Printf("%s: %d in %v = %.0f/s, CPU per op server %.3f ms, client %.3f ms, cores busy %.2f (server %.2f, client %.2f), p50 %v, p99 %v, load average %s\n",
		p.name, p.ops, p.dur.Round(time.Millisecond), p.rate(), msf(p.serverPerOp()), msf(p.clientPerOp()), mc, sc, cc,
		pct(p.lat, .5), pct(p.lat, .99), p.loadavg)
	for e, n := range p.errs {
		fmt.Printf("  error x%d: %s\n", n, e)
	}
}

func (p *phase) row() string {
	mc, sc, cc := p.cores()
	nerr := 0
	for _, n := range p.errs {
		nerr += n
	}
	return fmt.Sprintf("| %s | %d | %.0f | %.0f | %.2f | %.3f ms | %.3f ms | %.2f / %.2f / %.2f | %v | %v | %d | %s |",
		p.name, p.ops, p.rate(), p.raw, p.rate()/p.raw, msf(p.serverPerOp()), msf(p.clientPerOp()), mc, sc, cc,
		pct(p.lat, .5), pct(p.lat, .99), nerr, p.loadavg)
}

func msf(d time.Duration) float64 { return d.Seconds() * 1000 }

func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*q)].Round(100 * time.Microsecond)
}
