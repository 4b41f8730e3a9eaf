package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// BenchmarkSignInThroughput is the sign-in load run: real sign-ins (GET
// /login for the form and its CSRF token, then POST /login with the right
// password) from a Go client over loopback against Latchkey started by
// run() with the production bcrypt cost (10). In the same run it
// measures raw password verification (Hasher.Verify on a cost-10 hash)
// with the same number of goroutines, alternating the two in rounds, and
// reports
//
//	verifies/s  raw verification rate
//	signins/s   completed sign-ins per second (ns/op is per sign-in)
//	ratio       signins/s ÷ verifies/s (target >= 0.9)
//	cpu-ratio   CPU per verification ÷ CPU per sign-in, client included:
//	            the same ratio without the noise of a shared machine
//
// The client sends a different X-Forwarded-For address per request
// (LATCHKEY_TRUST_PROXY=true), as many users behind a proxy would, so the
// per-IP and per-account+IP limits do not cap the run.
// Run: go test -run '^$' -bench SignInThroughput -benchtime 200x .
func BenchmarkSignInThroughput(b *testing.B) {
	const users = 16
	const password = "bench-Passw0rd-1"
	app := startApp(b, map[string]string{"LATCHKEY_BCRYPT_COST": "10", "LATCHKEY_TRUST_PROXY": "true", "LATCHKEY_LOG_LEVEL": "error"})

	ctx := context.Background()
	st, err := store.Open(ctx, app.DB)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 10}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	pw := password
	var hash string
	for i := 0; i < users; i++ {
		u, err := acct.CreateUser(ctx, account.Actor{Kind: "admin"}, account.CreateUserInput{LoginIDKey: account.KindEmail,
			LoginIDValue: fmt.Sprintf("bench%d@example.com", i), Password: &pw})
		if err != nil {
			b.Fatal(err)
		}
		hash = u.Password.Hash
	}

	workers := 4 * runtime.GOMAXPROCS(0)
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	defer transport.CloseIdleConnections()
	// parallel runs n calls of op over the workers and returns the time taken.
	parallel := func(n int, op func(client *http.Client) error) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				for next.Add(1) <= int64(n) {
					if err := op(client); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	h := acct.Hasher()
	verify := func(*http.Client) error {
		if !h.Verify(hash, password) {
			return fmt.Errorf("verify failed")
		}
		return nil
	}

	csrfRE := regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	var ipSeq, userSeq atomic.Int64
	signIn := func(client *http.Client) error {
		jar, _ := cookiejar.New(nil)
		client.Jar = jar
		n := ipSeq.Add(1)
		ip := fmt.Sprintf("198.18.%d.%d", (n>>8)&0xff, n&0xff)
		req, _ := http.NewRequest(http.MethodGet, app.URL+"/login", nil)
		req.Header.Set("X-Forwarded-For", ip)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := csrfRE.FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("no CSRF token on /login (status %d)", res.StatusCode)
		}
		form := url.Values{"_csrf": {string(m[1])}, "login_id": {fmt.Sprintf("bench%d@example.com", userSeq.Add(1)%users)}, "password": {password}}
		req, _ = http.NewRequest(http.MethodPost, app.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		res, err = client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/settings" {
			return fmt.Errorf("sign-in: status %d location %q", res.StatusCode, res.Header.Get("Location"))
		}
		return nil
	}

	// The machine is shared, so its load drifts: raw verification and
	// sign-ins alternate in rounds, and the ratio is taken over the totals.
	// CPU time (the whole process: server, client and hashing) is
	// counted too, as it hardly depends on what else the machine runs.
	const rounds = 10
	var rawTime, signinTime, rawCPU, signinCPU time.Duration
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		n := b.N / rounds
		if r == rounds-1 {
			n = b.N - n*(rounds-1)
		}
		b.StopTimer()
		c0 := processCPU()
		rawTime += parallel(n, verify)
		c1 := processCPU()
		b.StartTimer()
		signinTime += parallel(n, signIn)
		c2 := processCPU()
		rawCPU += c1 - c0
		signinCPU += c2 - c1
	}
	b.StopTimer()
	if b.Failed() {
		return
	}
	rawRate := float64(b.N) / rawTime.Seconds()
	signinRate := float64(b.N) / signinTime.Seconds()
	b.ReportMetric(rawRate, "verifies/s")
	b.ReportMetric(signinRate, "signins/s")
	b.ReportMetric(signinRate/rawRate, "ratio")
	b.ReportMetric(rawCPU.Seconds()/signinCPU.Seconds(), "cpu-ratio")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
