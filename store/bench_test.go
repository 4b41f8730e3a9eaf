package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// fillUsers inserts n users, each with an email identity and, for every
// third one, a password, in one transaction.
func fillUsers(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	err := s.InTx(ctx, func(tx *Tx) error {
		sqlTx := tx.q
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			if _, err := sqlTx.ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)`, id, now+int64(i), now+int64(i)); err != nil {
				return err
			}
			email := fmt.Sprintf("user%07d@example.com", i)
			if _, err := sqlTx.ExecContext(ctx, `INSERT INTO identities (id, user_id, kind, value, value_norm, created_at) VALUES (?, ?, 'email', ?, ?, ?)`,
				"i"+id, id, email, email, now); err != nil {
				return err
			}
			if i%3 == 0 {
				if _, err := sqlTx.ExecContext(ctx, `INSERT INTO passwords (user_id, hash, created_at, updated_at, expire_after, set_by_admin) VALUES (?, 'x', ?, ?, ?, 1)`,
					id, now, now, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkListUsers1M fills 1,000,000 users once, then measures the
// Users list's first page, a deep page, and prefix searches. Target: each
// under 10 ms.
//
//	go test ./store -run '^$' -bench ListUsers1M -benchmem -benchtime 200x
func BenchmarkListUsers1M(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	fillUsers(b, s, 1_000_000)
	b.Logf("filled 1,000,000 users in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	run := func(name string, p ListUsersParams, wantRows int) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := s.ListUsers(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				if len(rows) != wantRows {
					b.Fatalf("%d rows, want %d", len(rows), wantRows)
				}
			}
		})
	}
	run("FirstPage", ListUsersParams{Limit: 51}, 51)
	run("DeepPage", ListUsersParams{Limit: 51, After: "500000"}, 51)
	run("PrefixSearchNarrow", ListUsersParams{Search: "USER012345", Limit: 51}, 10)
	run("PrefixSearchBroad", ListUsersParams{Search: "user", Limit: 51}, 51)
	run("SearchNextPage", ListUsersParams{Search: "user05", Limit: 51, After: "505000"}, 51)
}
