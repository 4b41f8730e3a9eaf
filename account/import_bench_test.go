package account

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"latchkey/store"
)

// BenchmarkImport100kPrehashed imports 100,000 users with bcrypt hashes
// into a fresh SQLite file, as ten requests of 10,000 records (the API's
// limit per request), each one transaction. One op = all 100,000 users.
func BenchmarkImport100kPrehashed(b *testing.B) {
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
	ctx := context.Background()
	actor := Actor{Kind: "api_key", ID: "bench", TriggeredBy: "admin_api"}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		b.StopTimer()
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("import%d.db", n)))
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(ctx, st, Config{BcryptCost: 10}, nil, nil, log)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, recs := range batches {
			_, sum, err := s.ImportUsers(ctx, actor, recs, false)
			if err != nil {
				b.Fatal(err)
			}
			if sum.Created != len(recs) {
				b.Fatalf("created %d of %d", sum.Created, len(recs))
			}
		}
		b.StopTimer()
		if c, err := st.CountUsers(ctx); err != nil || c != total {
			b.Fatalf("%d users (%v)", c, err)
		}
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total), "users/op")
}
