package store_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// countingWriter counts the bytes of an export thrown away.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkExportUsers1M streams 1,000,000 users through
// account.ExportUsers (the code the portal and POST
// /_api/admin/users/export run) as CSV and as NDJSON, and reports the
// heap in use afterwards (the users are not held in memory) and the
// export's CPU time. Target: under 30 s each.
//
//	LATCHKEY_BENCH_DB=/tmp/search1m.db go test ./store -run '^$' -bench ExportUsers1M -benchtime 1x -timeout 60m
func BenchmarkExportUsers1M(b *testing.B) {
	s := store.OpenSearchBench(b, 1_000_000)
	defer s.Close()
	ctx := context.Background()
	acct, err := account.New(ctx, s, account.Config{}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{account.ExportCSV, account.ExportNDJSON} {
		b.Run(format, func(b *testing.B) {
			var before, after runtime.MemStats
			var ru0, ru1 syscall.Rusage
			for b.Loop() {
				runtime.GC()
				runtime.ReadMemStats(&before)
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				wait0 := runQueueWait()
				w := &countingWriter{}
				n, err := acct.ExportUsers(ctx, account.SystemActor, w, format, store.ListUsersParams{})
				if err != nil || n != 1_000_000 {
					b.Fatalf("exported %d: %v", n, err)
				}
				runtime.ReadMemStats(&after)
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				b.ReportMetric(float64(w.n)/1e6, "MB-out")
				// CPU time (user+system) of the export: what it costs apart
				// from waiting on the disk.
				cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
				b.ReportMetric(cpu.Seconds(), "cpu-s")
				// Time the export's threads were ready to run but waited
				// for a core (other processes on the machine): the rest of
				// the wall time, beyond CPU and this, is waiting on I/O.
				b.ReportMetric((runQueueWait() - wait0).Seconds(), "runq-wait-s")
				// What the export read from the disk rather than the page
				// cache (512-byte blocks).
				b.ReportMetric(float64(ru1.Inblock-ru0.Inblock)*512/1e6, "disk-read-MB")
			}
			b.ReportMetric(float64(after.HeapInuse)/1e6, "heap-inuse-MB")
		})
	}
}

// runQueueWait sums, over this process's threads, the time they spent
// runnable but waiting for a CPU (/proc/self/task/*/schedstat, second
// field), so that a benchmark can tell a busy machine from slow I/O.
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
