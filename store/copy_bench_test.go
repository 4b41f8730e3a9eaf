package store

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkCopyToPostgres100k is `latchkey migrate-to-postgres` on a
// database of 100,000 users (with their identities, a third with
// passwords, and one event each): the copy into an empty PostgreSQL
// database, COPY of every table, the search postings rebuilt, sequences
// moved and counts verified in one transaction. Opening the target (its
// migrations) is outside the timing.
func BenchmarkCopyToPostgres100k(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "src.db")
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	fillSearchUsers(b, s, 100_000)
	if _, err := s.DB().Exec(`INSERT INTO events (type, user_id, created_at, payload, context)
		SELECT 'user.created', id, created_at, '{"user":{"id":"' || id || '"}}', '{"triggered_by":"admin_api"}' FROM users`); err != nil {
		b.Fatal(err)
	}
	s.Close()
	src, err := OpenSnapshot(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst, err := Open(ctx, pgURL(b))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		counts, err := dst.CopyFromSnapshot(ctx, src)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		var rows int64
		for _, c := range counts {
			rows += c.Target
			if c.Table == "users" && c.Target != 100_000 {
				b.Fatalf("users copied: %d", c.Target)
			}
		}
		b.ReportMetric(float64(rows), "rows/op")
		dst.Close()
		b.StartTimer()
	}
}
