// Command signinbench measures sign-in from outside, the way a browser
// signs in, against the real latchkey binary (`task bench-signin-http`).
//
// It builds the binary, starts it on loopback over a fresh database with
// bcrypt cost 10, imports its own users (pre-hashed, bcrypt cost 10)
// through the Admin API, then alternates phases:
//
//   - raw: bcrypt cost-10 verifications in a loop on every core, in this
//     process, with the server idle: the machine's verification rate now;
//   - load: N clients sign in as fast as they can. Each sign-in is what a
//     browser does: a NEW connection and cookie jar, GET /login, POST the
//     form with its CSRF token, expect 303. Each sign-in goes out from one
//     of 200 loopback source addresses (127.0.0.2-201), so the server's
//     per-IP limits see 200 clients. A refused sign-in (503) waits half
//     to all of its Retry-After and tries again, as a person would.
//
// For each load phase it prints sign-ins/s ÷ the raw rate of the raw
// phases around it (the rate of a steady-state window, see load; the
// whole phase's rate beside it), p50 and p99 of accepted sign-ins, CPU
// busy (the whole machine, the server, and this client), and the count
// and latency of 503 refusals, with the load average: the machine may be
// shared.
//
// On PostgreSQL (-pg: a throwaway cluster on this machine, started here
// through store/pgtest; or -db postgres://... for one of your own) it can
// run several instances (-instances 2): server processes on different
// ports sharing the database and LATCHKEY_SECRET_KEY, each sign-in sent to
// the next instance in turn. It then also prints each instance's CPU, the
// PostgreSQL processes' CPU (for -pg), and the CPU time per sign-in of
// the servers and the database together: on two cores a second instance
// cannot add throughput, and this shows whether it adds overhead.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
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

	"golang.org/x/crypto/bcrypt"

	"latchkey/account"
	"latchkey/internal/benchproc"
	"latchkey/internal/procstat"
	"latchkey/store"
	"latchkey/store/pgtest"
)

const password = "bench-Passw0rd-1"

func main() {
	clients := flag.String("clients", "8,64", "client counts of the load phases, comma-separated")
	users := flag.Int("users", 400, "users to import (each signs in once before the measurement, which moves its imported hash to Latchkey's own format)")
	loadFor := flag.Duration("load", 20*time.Second, "length of a load phase")
	rawFor := flag.Duration("raw", 8*time.Second, "length of a raw verification phase")
	rounds := flag.Int("rounds", 1, "times to run the whole sequence")
	addrs := flag.Int("addrs", 200, "loopback source addresses")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	binFlag := flag.String("bin", "", "a latchkey binary to measure instead of building this tree (to compare two versions)")
	pgFlag := flag.Bool("pg", false, "run on PostgreSQL: a throwaway cluster on this machine (store/pgtest; its PostgreSQL CPU is measured)")
	dbFlag := flag.String("db", "", "run on this empty PostgreSQL database (postgres://...) instead of a SQLite file; its CPU is not measured")
	instances := flag.Int("instances", 1, "server processes sharing the database (more than 1 needs -pg or -db)")
	importOnly := flag.Int("import", 0, "only time an import of this many pre-hashed users through the Admin API (10,000 per request), with the server's and PostgreSQL's CPU, then stop")
	flag.Parse()
	var counts []int
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-clients: %q is not a count", f))
		}
		counts = append(counts, n)
	}
	if *instances < 1 || (*instances > 1 && !*pgFlag && *dbFlag == "") {
		fatal(errors.New("-instances: more than one instance needs PostgreSQL (-pg or -db)"))
	}
	if *dbFlag != "" && !store.IsPostgresURL(*dbFlag) {
		fatal(errors.New("-db: want a postgres:// URL"))
	}
	o := options{db: *dbFlag, pg: *pgFlag, instances: *instances, importOnly: *importOnly}
	if err := bench(counts, *users, *loadFor, *rawFor, *rounds, *addrs, *keep, *binFlag, o); err != nil {
		fatal(err)
	}
}

// options select the database and the number of instances.
type options struct {
	db         string // a PostgreSQL URL given with -db
	pg         bool   // start a throwaway PostgreSQL cluster
	instances  int
	importOnly int // -import: time an import of this many users, no sign-ins
}

// postgresCPU is the CPU time so far of the PostgreSQL cluster whose
// postmaster is pid (0: not measured).
func postgresCPU(pid int) time.Duration { return procstat.TreeCPU(pid) }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "signinbench:", err)
	os.Exit(1)
}

func bench(counts []int, users int, loadFor, rawFor time.Duration, rounds, addrs int, keep bool, prebuilt string, o options) error {
	dir, err := os.MkdirTemp("", "signinbench")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	bin := prebuilt
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
	dbPath := filepath.Join(dir, "bench.db")
	pgPid := 0
	switch {
	case o.db != "":
		dbPath = o.db
		fmt.Printf("database: %s\n", store.RedactDB(o.db))
	case o.pg:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		c, err := pgtest.Start(ctx)
		if err == nil {
			dbPath, err = c.NewDatabase(ctx)
		}
		cancel()
		if c != nil {
			defer c.Close()
		}
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		pgPid = c.Pid()
		fmt.Printf("database: a throwaway PostgreSQL cluster on this machine (fsync off), %s\n", store.RedactDB(dbPath))
	}
	token, err := apiKey(dbPath)
	if err != nil {
		return err
	}
	secret := make([]byte, 24)
	for i := range secret {
		secret[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rand.IntN(36)]
	}
	var srvs servers
	defer func() {
		for _, s := range srvs.all {
			s.stop()
		}
	}()
	for i := 0; i < o.instances; i++ {
		s, err := startServer(bin, dbPath, filepath.Join(dir, fmt.Sprintf("server%d.log", i+1)), "signinbench-"+string(secret))
		if err != nil {
			return err
		}
		srvs.all = append(srvs.all, s)
	}
	srvs.pgPid = pgPid
	srv := srvs.all[0]
	fmt.Printf("%d instance(s): %s\n", len(srvs.all), srvs.bases())

	hash, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		return err
	}
	if o.importOnly > 0 {
		srv0, pg0 := srv.cpuTime(), postgresCPU(pgPid)
		start := time.Now()
		if err := importUsers(srv.base, token, o.importOnly, string(hash)); err != nil {
			return err
		}
		took := time.Since(start)
		pgCPU := "not measured"
		if pgPid != 0 {
			pgCPU = fmt.Sprintf("%.2fs", (postgresCPU(pgPid) - pg0).Seconds())
		}
		fmt.Printf("imported %d pre-hashed users through POST /_api/admin/users/import (10,000 per request) in %v; CPU: server %.2fs, PostgreSQL %s; load average %s\n",
			o.importOnly, took.Round(time.Millisecond), (srv.cpuTime() - srv0).Seconds(), pgCPU, procstat.Loadavg())
		return nil
	}
	start := time.Now()
	if err := importUsers(srv.base, token, users, string(hash)); err != nil {
		return err
	}
	fmt.Printf("imported %d users (bcrypt cost 10) in %v\n", users, time.Since(start).Round(time.Millisecond))

	src := sources(addrs)
	// Every user signs in once first: an imported bcrypt hash is rehashed
	// into Latchkey's own format (bcrypt over SHA-512) at the first
	// successful sign-in, a second hash that a steady state does not pay.
	start = time.Now()
	if err := warmUsers(&srvs, src, users); err != nil {
		return err
	}
	fmt.Printf("first sign-in of every user (rehash of the imported hashes) in %v\n", time.Since(start).Round(time.Millisecond))
	// Warm up: connections, the admission queue's service-time estimate.
	load(&srvs, src, users, 8, 3*time.Second)

	fmt.Printf("\n%d cores, GOMAXPROCS %d; load average at start: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), procstat.Loadavg())
	var results []phaseResult
	for r := 0; r < rounds; r++ {
		before := raw(hash, rawFor)
		fmt.Printf("raw: %.1f verifications/s (load average %s)\n", before, procstat.Loadavg())
		for _, n := range counts {
			res := load(&srvs, src, users, n, loadFor)
			after := raw(hash, rawFor)
			fmt.Printf("raw: %.1f verifications/s (load average %s)\n", after, procstat.Loadavg())
			res.raw = (before + after) / 2
			before = after
			res.print()
			results = append(results, res)
		}
	}
	fmt.Println()
	fmt.Println("| clients | sign-ins/s | raw verif./s | ratio | p50 | p99 | CPU busy (machine / server / client, cores) | 503s | 503 p50 / p99 / max | load avg |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Println(r.row())
	}
	if o.pg || o.db != "" {
		fmt.Println()
		fmt.Printf("%d instance(s) on PostgreSQL: CPU per instance and of PostgreSQL (cores), and CPU time per accepted sign-in\n", len(srvs.all))
		fmt.Println("| clients | instances | sign-ins/s | CPU per instance (cores) | PostgreSQL CPU (cores) | CPU ms per sign-in (servers / PostgreSQL / both) | load avg |")
		fmt.Println("|---|---|---|---|---|---|---|")
		for _, r := range results {
			fmt.Println(r.pgRow(len(srvs.all), pgPid != 0))
		}
	}
	fmt.Println()
	for _, r := range results {
		r.verdict()
	}
	if rounds > 1 {
		pooled(results, counts)
	}
	for _, s := range srvs.all {
		if n := s.errors(); n > 0 {
			fmt.Printf("\nthe server logged %d errors; see %s (-keep)\n", n, s.logPath)
		}
	}
	return nil
}

// servers are the instances under test; sign-ins go to each in turn.
type servers struct {
	all   []*server
	next  atomic.Int64
	pgPid int // the PostgreSQL cluster's postmaster, or 0 when not ours
}

// pick returns the instance for the next sign-in (round robin).
func (ss *servers) pick() *server {
	return ss.all[int(ss.next.Add(1))%len(ss.all)]
}

func (ss *servers) bases() string {
	var b []string
	for _, s := range ss.all {
		b = append(b, s.base)
	}
	return strings.Join(b, ", ")
}

// apiKey creates the database with an Admin API key, through the store
// and account packages (as the portal's API keys page does).
func apiKey(dbPath string) (string, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		return "", err
	}
	defer st.Close()
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 10}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return "", err
	}
	k, err := acct.CreateAPIKey(ctx, account.SystemActor, "signinbench")
	if err != nil {
		return "", err
	}
	return k.Token, nil
}

type server struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	logFile *os.File
}

func startServer(bin, dbPath, logPath, secretKey string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"LATCHKEY_ADDR="+addr, "LATCHKEY_DB="+dbPath, "LATCHKEY_PUBLIC_URL=http://"+addr,
		"LATCHKEY_BCRYPT_COST=10", "LATCHKEY_LOG_LEVEL=error", "LATCHKEY_SECRET_KEY="+secretKey)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr, logPath: logPath, logFile: lf}
	if err := benchproc.WaitHealthy(s.base, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("the server did not start: %v (log: %s)", err, logPath)
	}
	return s, nil
}

func (s *server) stop() {
	benchproc.Stop(s.cmd)
	s.logFile.Close()
}

func (s *server) errors() int {
	b, _ := os.ReadFile(s.logPath)
	return bytes.Count(b, []byte("level=ERROR"))
}

// cpuTime is the server process's user+system CPU time so far.
func (s *server) cpuTime() time.Duration { return procstat.CPU(s.cmd.Process.Pid, false) }

func importUsers(base, token string, n int, hash string) error {
	for from := 0; from < n; from += 10000 {
		var recs []map[string]any
		for i := from; i < min(n, from+10000); i++ {
			recs = append(recs, map[string]any{"email": fmt.Sprintf("bench%d@example.com", i), "password_hash": hash})
		}
		body, _ := json.Marshal(map[string]any{"upsert": false, "records": recs})
		req, _ := http.NewRequest(http.MethodPost, base+"/_api/admin/users/import", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var out struct {
			Summary map[string]int `json:"summary"`
		}
		if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Summary["created"] != min(n, from+10000)-from {
			return fmt.Errorf("import: %d %.300s", res.StatusCode, b)
		}
	}
	return nil
}

// sources are the loopback addresses sign-ins come from.
func sources(n int) []net.IP {
	var out []net.IP
	for i := 0; i < n; i++ {
		out = append(out, net.IPv4(127, 0, byte(i/250), byte(2+i%250)))
	}
	return out
}

// raw verifies a cost-10 hash in a loop on every core for d and returns
// verifications per second.
func raw(hash []byte, d time.Duration) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

type phaseResult struct {
	clients     int
	dur         time.Duration // the measured window
	phase       time.Duration // the whole phase, ramp-up and ramp-down included
	allOK       int           // sign-ins in the whole phase
	ok          []time.Duration
	refused     []time.Duration
	errs        map[string]int
	raw         float64
	machineBusy float64 // cores
	serverCPU   float64 // cores, all instances
	instanceCPU []float64
	pgCPU       float64 // cores, PostgreSQL (when measured)
	clientCPU   float64 // cores
	loadavg     string
}

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// load runs n clients signing in for d, each sign-in on the next instance.
//
// It measures a steady state: the sign-ins that END inside a window that
// starts after a warm-up (min(2 s, d/5): the clients' first requests all
// arrive at once and none has finished yet) and ends at d, over the
// window's length, with the CPU counters read at the window's two ends.
// The sign-ins still in flight at d, and the clients sleeping out a
// Retry-After then, are a ramp-down the window leaves out, as it leaves
// out the ramp-up: both are times when the machine has less to do than
// the load asks, and counting them charged the server with a few percent
// of idle CPU that was the generator's.
func load(srvs *servers, src []net.IP, users, n int, d time.Duration) phaseResult {
	res := phaseResult{clients: n, errs: map[string]int{}}
	var mu sync.Mutex
	start := time.Now()
	stop := start.Add(d)
	ws := start.Add(min(2*time.Second, d/5))
	stopped := make(chan struct{})
	// The counters at the window's ends, read on time by a timer rather
	// than after the clients return.
	type counters struct {
		at          time.Time
		busy, total int64
		srv         []time.Duration
		pg, self    time.Duration
	}
	read := func() counters {
		c := counters{at: time.Now(), pg: postgresCPU(srvs.pgPid), self: procstat.Self()}
		c.busy, c.total = procstat.Machine()
		for _, s := range srvs.all {
			c.srv = append(c.srv, s.cpuTime())
		}
		return c
	}
	ends := make(chan counters, 2)
	go func() {
		time.Sleep(time.Until(ws))
		ends <- read()
		time.Sleep(time.Until(stop))
		close(stopped)
		ends <- read()
	}()
	var wg sync.WaitGroup
	var next atomic.Int64
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				i := next.Add(1)
				ip := src[int(i)%len(src)]
				user := fmt.Sprintf("bench%d@example.com", rand.IntN(users))
				took, refusedFor, err := signIn(srvs.pick().base, ip, user)
				end := time.Now()
				in := !end.Before(ws) && !end.After(stop)
				mu.Lock()
				if err == nil && refusedFor == 0 {
					res.allOK++
				}
				switch {
				case err != nil:
					// Errors count wherever they fall: none is expected.
					res.errs[err.Error()]++
				case !in:
				case refusedFor > 0:
					res.refused = append(res.refused, took)
				default:
					res.ok = append(res.ok, took)
				}
				mu.Unlock()
				var wait time.Duration
				if refusedFor > 0 {
					// A person told "try again in N seconds" comes back
					// after about that long: here after half to all of it,
					// to keep the pressure on.
					wait = refusedFor/2 + rand.N(refusedFor/2)
				} else if err != nil {
					wait = 100 * time.Millisecond
				}
				if wait > 0 {
					select {
					case <-time.After(wait):
					case <-stopped:
					}
				}
			}
		}()
	}
	wg.Wait()
	w0, w1 := <-ends, <-ends
	res.dur = w1.at.Sub(w0.at)
	res.phase = time.Since(start)
	secs := res.dur.Seconds()
	if w1.total > w0.total {
		res.machineBusy = float64(w1.busy-w0.busy) / float64(w1.total-w0.total) * float64(runtime.NumCPU())
	}
	for i := range srvs.all {
		c := (w1.srv[i] - w0.srv[i]).Seconds() / secs
		res.instanceCPU = append(res.instanceCPU, c)
		res.serverCPU += c
	}
	res.pgCPU = (w1.pg - w0.pg).Seconds() / secs
	res.clientCPU = (w1.self - w0.self).Seconds() / secs
	res.loadavg = procstat.Loadavg()
	return res
}

// warmUsers signs every user in once, 8 at a time.
func warmUsers(srvs *servers, src []net.IP, users int) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Int64
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= users {
					return
				}
				user := fmt.Sprintf("bench%d@example.com", i)
				for try := 0; ; try++ {
					_, refusedFor, err := signIn(srvs.pick().base, src[i%len(src)], user)
					if err == nil && refusedFor == 0 {
						break
					}
					if try == 30 { // a loaded machine refuses (503) for a while
						failed.Add(1)
						break
					}
					time.Sleep(max(refusedFor, 100*time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("warm-up: %d users could not sign in", n)
	}
	return nil
}

// signIn does what a browser does, on a new connection from ip with a
// new cookie jar: GET /login, then POST the form with the page's CSRF
// token and the cookies the GET set, on the same connection (as a
// browser keeps it), expecting 303. It returns the whole sign-in's time
// (GET and POST), or for a 503 the POST's time and the Retry-After.
//
// It speaks HTTP/1.1 on the connection itself (net/http parses the
// responses) rather than through an http.Client: a Transport and a
// cookie jar per sign-in cost this process about a millisecond of CPU
// each, 2-3% of a 2-core machine that the server under test shares,
// where what goes over the wire is the same.
func signIn(base string, ip net.IP, user string) (time.Duration, time.Duration, error) {
	host := strings.TrimPrefix(base, "http://")
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	start := time.Now()
	conn, err := dialer.Dial("tcp", host)
	if err != nil {
		return 0, 0, fmt.Errorf("GET /login: %w", unwrapNet(err))
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, 8192)
	get, err := http.NewRequest(http.MethodGet, base+"/login", nil)
	if err != nil {
		return 0, 0, err
	}
	res, body, err := roundTrip(conn, br, get)
	if err != nil {
		return 0, 0, fmt.Errorf("GET /login: %w", unwrapNet(err))
	}
	m := csrfRE.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		return 0, 0, fmt.Errorf("GET /login: %d", res.StatusCode)
	}
	postStart := time.Now()
	form := url.Values{"_csrf": {string(m[1])}, "login_id": {user}, "password": {password}}.Encode()
	post, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form))
	if err != nil {
		return 0, 0, err
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range res.Cookies() {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, _, err = roundTrip(conn, br, post)
	if err != nil {
		return 0, 0, fmt.Errorf("POST /login: %w", unwrapNet(err))
	}
	switch res.StatusCode {
	case http.StatusSeeOther:
		return time.Since(start), 0, nil
	case http.StatusServiceUnavailable:
		ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		if ra <= 0 {
			return 0, 0, fmt.Errorf("POST /login: 503 without Retry-After")
		}
		return time.Since(postStart), time.Duration(ra) * time.Second, nil
	}
	return 0, 0, fmt.Errorf("POST /login: %d", res.StatusCode)
}

// roundTrip writes req on conn and reads its response and whole body.
// Like http.Client (and a browser) it offers gzip, which the server does
// not use.
func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("Accept-Encoding", "gzip")
	if err := req.Write(conn); err != nil {
		return nil, nil, err
	}
	res, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res, body, err
}

func unwrapNet(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s %s", ne.Op, ne.Err)
	}
	return err
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func (r phaseResult) rate() float64 { return float64(len(r.ok)) / r.dur.Seconds() }

// ratio is the window's rate over the raw rate.
func (r phaseResult) ratio() float64 { return r.rate() / r.raw }

// wholeRate is the whole phase's rate, ramp-up and ramp-down included.
func (r phaseResult) wholeRate() float64 { return float64(r.allOK) / r.phase.Seconds() }

func (r phaseResult) print() {
	fmt.Printf("load %d clients (phase %v): %d sign-ins ended in the %v window = %.1f/s, ratio %.2f (whole phase %.1f/s, ratio %.2f), p50 %v, p99 %v, CPU busy %.2f cores (server %.2f, client %.2f), 503s %d (p50 %v, p99 %v), load average %s\n",
		r.clients, r.phase.Round(time.Millisecond), len(r.ok), r.dur.Round(time.Millisecond), r.rate(), r.ratio(),
		r.wholeRate(), r.wholeRate()/r.raw, ms(pct(r.ok, .5)), ms(pct(r.ok, .99)),
		r.machineBusy, r.serverCPU, r.clientCPU, len(r.refused), ms(pct(r.refused, .5)), ms(pct(r.refused, .99)), r.loadavg)
	for e, n := range r.errs {
		fmt.Printf("  error x%d: %s\n", n, e)
	}
}

func (r phaseResult) row() string {
	refused := "-"
	if len(r.refused) > 0 {
		refused = fmt.Sprintf("%v / %v / %v", ms(pct(r.refused, .5)), ms(pct(r.refused, .99)), ms(pct(r.refused, 1)))
	}
	return fmt.Sprintf("| %d | %.1f | %.1f | %.2f | %v | %v | %.2f / %.2f / %.2f | %d | %s | %s |",
		r.clients, r.rate(), r.raw, r.ratio(), ms(pct(r.ok, .5)), ms(pct(r.ok, .99)),
		r.machineBusy, r.serverCPU, r.clientCPU, len(r.refused), refused, r.loadavg)
}

// pgRow is the PostgreSQL table's row: CPU per instance, PostgreSQL's,
// and CPU time per accepted sign-in.
func (r phaseResult) pgRow(instances int, pgMeasured bool) string {
	var each []string
	for _, c := range r.instanceCPU {
		each = append(each, fmt.Sprintf("%.2f", c))
	}
	perSignIn := func(cores float64) float64 {
		if len(r.ok) == 0 {
			return 0
		}
		return cores * r.dur.Seconds() / float64(len(r.ok)) * 1000
	}
	pg, pgPer, both := "-", "-", "-"
	if pgMeasured {
		pg = fmt.Sprintf("%.2f", r.pgCPU)
		pgPer = fmt.Sprintf("%.2f", perSignIn(r.pgCPU))
		both = fmt.Sprintf("%.2f", perSignIn(r.serverCPU+r.pgCPU))
	}
	return fmt.Sprintf("| %d | %d | %.1f | %s | %s | %.2f / %s / %s | %s |", r.clients, instances, r.rate(), strings.Join(each, " + "), pg,
		perSignIn(r.serverCPU), pgPer, both, r.loadavg)
}

// verdict prints the targets for this phase.
func (r phaseResult) verdict() {
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	ratio := r.ratio()
	p50, p99 := pct(r.ok, .5), pct(r.ok, .99)
	if r.clients <= 8 {
		fmt.Printf("%d clients: ratio %.2f >= 0.95: %s; p99 %v <= 2 x p50 %v: %s\n", r.clients, ratio, check(ratio >= 0.95), ms(p99), ms(p50), check(p99 <= 2*p50))
		return
	}
	rp99 := pct(r.refused, .99)
	fmt.Printf("%d clients: ratio %.2f >= 0.9: %s; accepted p99 %v <= 1.5s: %s; refusals p99 %v <= 50ms: %s\n", r.clients, ratio, check(ratio >= 0.9),
		ms(p99), check(p99 <= 1500*time.Millisecond), ms(rp99), check(rp99 <= 50*time.Millisecond))
	if len(r.errs) > 0 {
		fmt.Printf("%d clients: %d errors\n", r.clients, len(r.errs))
	}
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// pooled prints, for each client count, the rounds taken together: all
// their windows' sign-ins over all their windows' time, divided by the
// mean of their raw rates, with the rounds' spread. The raw rate of a
// shared VM drifts by several percent between phases a minute apart, so
// one round's ratio carries that noise; the pooled one less of it.
func pooled(results []phaseResult, counts []int) {
	fmt.Println()
	for _, n := range counts {
		var ok int
		var secs, raw float64
		lo, hi := math.Inf(1), math.Inf(-1)
		k := 0
		for _, r := range results {
			if r.clients != n {
				continue
			}
			ok += len(r.ok)
			secs += r.dur.Seconds()
			raw += r.raw
			lo, hi = min(lo, r.ratio()), max(hi, r.ratio())
			k++
		}
		if k == 0 || secs == 0 {
			continue
		}
		rate := float64(ok) / secs
		fmt.Printf("%d clients, %d rounds pooled: %.1f sign-ins/s ÷ %.1f raw = ratio %.3f (rounds %.2f-%.2f)\n", n, k, rate, raw/float64(k), rate/(raw/float64(k)), lo, hi)
	}
}
