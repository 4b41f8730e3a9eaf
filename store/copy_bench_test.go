package store

import (
	"context"
	"path/filepath"
	"testing"
)

// fillCopyUsers gives s n users in SQL alone: an email for each (the
// search triggers add its postings), a phone number for every fourth, a
// password hash and a user.created event for each.
func fillCopyUsers(tb testing.TB, s *Store, n int) {
	tb.Helper()
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
		INSERT INTO users (id, created_at, updated_at, name) SELECT printf('00000000-0000-4000-8000-%012d', i), 1700000000000 + i, 1700000000000 + i, 'User ' || i FROM n`,
		`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
		SELECT 'e' || seq, id, 'email', 'user.' || seq || '@example' || (seq % 50) || '.com', 'user.' || seq || '@example' || (seq % 50) || '.com', created_at FROM users`,
		`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
		SELECT 'p' || seq, id, 'phone', printf('+1415%07d', seq), printf('+1415%07d', seq), created_at FROM users WHERE seq % 4 = 0`,
		`INSERT INTO passwords (user_id, hash, created_at, updated_at) SELECT id, '$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234', created_at, created_at FROM users`,
		`INSERT INTO events (type, user_id, created_at, payload, context)
		SELECT 'user.created', id, created_at, '{"user":{"id":"' || id || '"}}', '{"triggered_by":"admin_api"}' FROM users`,
	} {
		var args []any
		if len(q) > 0 && q[0] == 'W' {
			args = append(args, n)
		}
		if _, err := s.DB().Exec(q, args...); err != nil {
			tb.Fatal(err)
		}
	}
}

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
	fillCopyUsers(b, s, 100_000)
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
