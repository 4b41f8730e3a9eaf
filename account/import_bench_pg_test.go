package account

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"latchkey/store"
	"latchkey/store/pgtest"
)

// BenchmarkImport100kPrehashedPostgres is BenchmarkImport100kPrehashed on
// PostgreSQL (a throwaway cluster on this machine, fsync off as in the
// tests): 100,000 users with bcrypt hashes, as ten ImportUsers calls of
// 10,000 records (what ten POST /_api/admin/users/import requests run),
// each one transaction, into a fresh database per op. Target: under 10 s.
// Reports also the CPU time of PostgreSQL and of this process per op.
//
//	go test ./account -run '^$' -bench Import100kPrehashedPostgres -benchtime 3x -timeout 30m
func BenchmarkImport100kPrehashedPostgres(b *testing.B) {
	ctx := context.Background()
	c, err := pgtest.StartWith(ctx, pgtest.Options{Settings: []string{"shared_buffers=1GB"}})
	if err != nil {
		b.Skipf("SKIPPING PostgreSQL benchmark: %v", err)
	}
	defer c.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte("Imported-Passw0rd"), 10)
	if err != nil {
		b.Fatal(err)
	}
	const total, perRequest = 100000, MaxImportRecords
	batches := make([][]ImportRecord, 0, total/perRequest)
	for start := 0; start < total; start += perRequest {
		recs := make([]ImportRecord, perRequest)
		for i := range recs {
			recs[i] = ImportRecord{LoginIDKey: KindEmail, LoginIDValue: fmt.Sprintf("user%06d@example.com", start+i),
				PasswordHash: string(hash), SetPasswordExpired: i%2 == 0}
		}
		batches = append(batches, recs)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	actor := Actor{Kind: "api_key", ID: "bench", TriggeredBy: "admin_api"}
	var slowest, pgCPU, goCPU time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		url, err := c.NewDatabase(ctx)
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(ctx, st, Config{BcryptCost: 10}, nil, nil, log)
		if err != nil {
			b.Fatal(err)
		}
		pg0, go0 := c.CPUTime(), selfCPU()
		b.StartTimer()
		for _, recs := range batches {
			t0 := time.Now()
			_, sum, err := s.ImportUsers(ctx, actor, recs, false)
			if err != nil {
				b.Fatal(err)
			}
			if sum.Created != len(recs) {
				b.Fatalf("created %d of %d", sum.Created, len(recs))
			}
			slowest = max(slowest, time.Since(t0))
		}
		b.StopTimer()
		pgCPU += c.CPUTime() - pg0
		goCPU += selfCPU() - go0
		if n, err := st.CountUsers(ctx); err != nil || n != total {
			b.Fatalf("%d users (%v)", n, err)
		}
		// Every imported login ID is searchable: the search grams were
		// written with the users.
		if rows, err := st.ListUsers(ctx, store.ListUsersParams{Search: "er099999@exa", Limit: 5}); err != nil || len(rows) != 1 {
			b.Fatalf("search for the last imported user: %d rows (%v)", len(rows), err)
		}
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total), "users/op")
	b.ReportMetric(slowest.Seconds(), "slowest-request-s")
	// CPU time per op of PostgreSQL and of this process (Latchkey's
	// side): on a shared machine the wall time waits for other work, the
	// CPU time does not. Their sum bounds the op's time on a quiet machine.
	b.ReportMetric(pgCPU.Seconds()/float64(b.N), "pg-cpu-s/op")
	b.ReportMetric(goCPU.Seconds()/float64(b.N), "go-cpu-s/op")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
