package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEmailFailedColumnUsesPartialIndex keeps the Users list's
// "password email failed" mark an index probe: a scan of the outbox per
// listed user would make the list slow at a million users.
func TestEmailFailedColumnUsesPartialIndex(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN SELECT `+summaryCols+`, '' FROM users u LEFT JOIN passwords p ON p.user_id = u.id
		WHERE u.seq < ? ORDER BY u.seq DESC LIMIT ?`, 1<<62, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "mail_outbox_failed") || strings.Contains(joined, "SCAN f") || strings.Contains(joined, "SCAN n") {
		t.Fatalf("EmailFailed does not probe the partial index:\n%s", joined)
	}
}

// BenchmarkListUsers1MWithOutbox is BenchmarkListUsers1M with an outbox:
// every user has a delivered password email and one in ten a failed
// one, so the EmailFailed column is measured where it matters.
//
//	go test ./store -run '^$' -bench ListUsers1MWithOutbox -benchmem -benchtime 200x
func BenchmarkListUsers1MWithOutbox(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	fillUsers(b, s, 1_000_000)
	now := time.Now().UnixMilli()
	err = s.InTx(ctx, func(tx *Tx) error {
		for i := 0; i < 1_000_000; i++ {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			status := "delivered"
			if i%10 == 0 {
				status = "failed"
			}
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO mail_outbox (user_id, kind, recipient, subject, status, next_attempt_at, created_at, updated_at)
				VALUES (?, 'new_user', 'x@example.com', 's', ?, ?, ?, ?)`, id, status, now, now, now); err != nil {
				return err
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
	for _, tc := range []struct {
		name string
		p    ListUsersParams
	}{
		{"FirstPage", ListUsersParams{Limit: 51}},
		{"DeepPage", ListUsersParams{Limit: 51, After: "500000"}},
		{"PrefixSearchBroad", ListUsersParams{Search: "user", Limit: 51}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := s.ListUsers(ctx, tc.p)
				if err != nil {
					b.Fatal(err)
				}
				failed := 0
				for _, r := range rows {
					if r.EmailFailed {
						failed++
					}
				}
				if len(rows) != 51 || failed == 0 {
					b.Fatalf("%d rows, %d marked failed", len(rows), failed)
				}
			}
		})
	}
}
