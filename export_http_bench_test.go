package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"latchkey/store"
)

// BenchmarkExportHTTP1M downloads every user of a database of 1,000,000
// users through the running server, over HTTP on loopback, as the Admin
// API (POST /_api/admin/users/export) and the portal's Export button
// (POST /portal/users/export) give it, in CSV and NDJSON, and reports the
// wall time, the bytes and the rate. It needs the database that the
// store benchmarks fill (LATCHKEY_BENCH_DB; skipped without it) and adds
// an admin, an API key and audit events to it (the users stay).
//
//	LATCHKEY_BENCH_DB=/tmp/search1m.db go test ./store -run '^$' -bench Search1M -benchtime 1x -timeout 60m   # fill once
//	LATCHKEY_BENCH_DB=/tmp/search1m.db go test . -run '^$' -bench ExportHTTP1M -benchtime 1x -timeout 30m
func BenchmarkExportHTTP1M(b *testing.B) {
	path := os.Getenv("LATCHKEY_BENCH_DB")
	if path == "" {
		b.Skip("set LATCHKEY_BENCH_DB to a database of 1,000,000 users (see the store benchmarks)")
	}
	func() {
		st, err := store.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		if n, err := st.CountUsers(context.Background()); err != nil || n != 1_000_000 {
			b.Fatalf("%s holds %d users (%v), want 1,000,000", path, n, err)
		}
	}()
	token := makeAPIKey(b, path)
	app := startApp(b, map[string]string{"LATCHKEY_DB": path})

	jar, _ := cookiejar.New(nil)
	portal := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := func(page string) string {
		res, err := portal.Get(app.URL + page)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(body)
		if m == nil {
			b.Fatalf("no CSRF token on %s (%d)", page, res.StatusCode)
		}
		return string(m[1])
	}
	res, err := portal.PostForm(app.URL+"/portal/login", url.Values{"_csrf": {csrf("/portal/login")}, "email": {e2eAdminEmail}, "password": {e2eAdminPassword}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		b.Fatalf("portal sign-in: %v %v", res, err)
	}
	res.Body.Close()

	for _, via := range []string{"api", "portal"} {
		for _, format := range []string{"csv", "ndjson"} {
			b.Run(via+"/"+format, func(b *testing.B) {
				var bytesOut, lines int64
				var wall time.Duration
				for b.Loop() {
					var req *http.Request
					if via == "api" {
						req, _ = http.NewRequest(http.MethodPost, app.URL+"/_api/admin/users/export", strings.NewReader(`{"format":"`+format+`"}`))
						req.Header.Set("Authorization", "Bearer "+token)
						req.Header.Set("Content-Type", "application/json")
					} else {
						form := url.Values{"_csrf": {csrf("/portal/users/export")}, "format": {format}}
						req, _ = http.NewRequest(http.MethodPost, app.URL+"/portal/users/export", strings.NewReader(form.Encode()))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					var ru0, ru1 syscall.Rusage
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
					wait0 := runQueueWait()
					start := time.Now()
					res, err := portal.Do(req)
					if err != nil || res.StatusCode != http.StatusOK {
						b.Fatalf("export: %v %v", res, err)
					}
					// Count lines as a client saving the file would read it.
					r := bufio.NewReaderSize(res.Body, 256<<10)
					buf := make([]byte, 256<<10)
					bytesOut, lines = 0, 0
					for {
						n, err := r.Read(buf)
						bytesOut += int64(n)
						lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					res.Body.Close()
					wall = time.Since(start)
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
					// The server runs in this process: its CPU (and the
					// client's), and what it read from the disk rather
					// than the page cache.
					cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
					b.ReportMetric(cpu.Seconds(), "cpu-s")
					b.ReportMetric(float64(ru1.Inblock-ru0.Inblock)*512/1e6, "disk-read-MB")
					// Time this process's threads were ready to run but
					// waited for a core (other processes on the machine).
					b.ReportMetric((runQueueWait() - wait0).Seconds(), "runq-wait-s")
				}
				want := int64(1_000_000)
				if format == "csv" {
					want++ // the header
				}
				if lines != want {
					b.Fatalf("%d lines, want %d", lines, want)
				}
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(float64(bytesOut)/1e6, "MB")
				b.ReportMetric(float64(bytesOut)/1e6/wall.Seconds(), "MB/s")
			})
		}
	}
}

// runQueueWait sums, over this process's threads, the time they spent
// runnable but waiting for a CPU (/proc/self/task/*/schedstat, second
// field).
func runQueueWait() time.Duration {
	tasks, _ := os.ReadDir("/proc/self/task")
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}
