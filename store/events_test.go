package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func addEvent(t testing.TB, tx *Tx, typ, user string, at time.Time) int64 {
	t.Helper()
	e := Event{Type: typ, UserID: user, CreatedAt: at, Payload: json.RawMessage(`{}`), Context: json.RawMessage(`{}`)}
	if err := tx.InsertEvent(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

func seqs(es []Event) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestListEventsFiltersAndKeyset(t *testing.T) { forEachBackend(t, tListEventsFiltersAndKeyset) }

func tListEventsFiltersAndKeyset(t *testing.T, s *Store) {
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// Three days, four events a day, alternating types and users.
	for d := range 3 {
		for i := range 4 {
			typ := []string{"user.created", "user.disabled"}[i%2]
			addEvent(t, &s.Tx, typ, fmt.Sprintf("u%d", i%2), day.AddDate(0, 0, d).Add(time.Duration(i)*time.Hour))
		}
	}
	all, err := s.ListEvents(ctx, ListEventsParams{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(all)) != "[12 11 10 9 8]" {
		t.Errorf("first page %v", seqs(all))
	}
	next, _ := s.ListEvents(ctx, ListEventsParams{Limit: 5, Before: 8})
	if fmt.Sprint(seqs(next)) != "[7 6 5 4 3]" {
		t.Errorf("second page %v", seqs(next))
	}
	byType, _ := s.ListEvents(ctx, ListEventsParams{Types: []string{"user.disabled"}, UserID: "u1"})
	if fmt.Sprint(seqs(byType)) != "[12 10 8 6 4 2]" {
		t.Errorf("type+user %v", seqs(byType))
	}
	mid, _ := s.ListEvents(ctx, ListEventsParams{From: day.AddDate(0, 0, 1), To: day.AddDate(0, 0, 2)})
	if fmt.Sprint(seqs(mid)) != "[8 7 6 5]" {
		t.Errorf("day two %v", seqs(mid))
	}
	after, _ := s.ListEvents(ctx, ListEventsParams{From: day.AddDate(0, 0, 5)})
	before, _ := s.ListEvents(ctx, ListEventsParams{To: day})
	if len(after) != 0 || len(before) != 0 {
		t.Errorf("out of range: %v %v", seqs(after), seqs(before))
	}
	open, _ := s.ListEvents(ctx, ListEventsParams{From: day.AddDate(0, 0, 2).Add(2 * time.Hour)})
	if fmt.Sprint(seqs(open)) != "[12 11]" {
		t.Errorf("from day three 02:00 %v", seqs(open))
	}
}

func TestInsertEventTimeNeverGoesBack(t *testing.T) { forEachBackend(t, tInsertEventTimeNeverGoesBack) }

func tInsertEventTimeNeverGoesBack(t *testing.T, s *Store) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	addEvent(t, &s.Tx, "a", "", now)
	e := Event{Type: "b", CreatedAt: now.Add(-time.Hour), Payload: json.RawMessage(`{}`), Context: json.RawMessage(`{}`)}
	if err := s.InsertEvent(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	got, _ := s.EventBySeq(context.Background(), e.Seq)
	if !got.CreatedAt.Equal(now) || !e.CreatedAt.Equal(now) {
		t.Errorf("event after a clock step back at %s, want %s", got.CreatedAt, now)
	}
}

// BenchmarkAuditLogPage1M measures one audit log page (50 rows) over a
// million events: the first page, a deep page, and with each filter.
func BenchmarkAuditLogPage1M(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 1_000_000
	types := []string{"user.created", "admin_api.mutation.create_user.executed", "user.authenticated", "email.sent"}
	err := s.InTx(ctx, func(tx *Tx) error {
		for i := 0; i < n; i += 500 {
			args := make([]any, 0, 500*5)
			for j := i; j < i+500; j++ {
				args = append(args, types[j%4], fmt.Sprintf("user-%d", j/4), ms(start.Add(time.Duration(j)*3*time.Second)), `{"user":{}}`, `{"triggered_by":"admin_api"}`)
			}
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO events (type, user_id, created_at, payload, context) VALUES `+placeholders("(?, ?, ?, ?, ?)", 500), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	mid := start.Add(n / 2 * 3 * time.Second)
	for _, c := range []struct {
		name string
		p    ListEventsParams
	}{
		{"first", ListEventsParams{}},
		{"deep", ListEventsParams{Before: 1000}},
		{"type", ListEventsParams{Types: []string{"user.authenticated"}, Before: n / 2}},
		{"user", ListEventsParams{UserID: "user-1234"}},
		{"oneday", ListEventsParams{From: mid, To: mid.Add(24 * time.Hour)}},
		{"oldday", ListEventsParams{From: start, To: start.Add(24 * time.Hour)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.p.Limit = 51
			b.ReportAllocs()
			for b.Loop() {
				es, err := s.ListEvents(ctx, c.p)
				if err != nil || len(es) == 0 {
					b.Fatalf("%d events, %v", len(es), err)
				}
			}
		})
	}
}
