package store_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
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
			}
			b.ReportMetric(float64(after.HeapInuse)/1e6, "heap-inuse-MB")
		})
	}
}
