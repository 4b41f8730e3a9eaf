package store

import (
	"context"
	"testing"
	"time"
)

// TestSMSRefusals: refusals coalesce to one row per user, limit and UTC
// hour (50 refusals, one row, attempts 50); another limit or the next hour
// is a new row; the list is newest first; old rows are pruned, and a
// deleted user's rows go with it.
func TestSMSRefusals(t *testing.T) {
	forEachBackend(t, tSMSRefusals)
}

func tSMSRefusals(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 14, 2, 0, 0, time.UTC)
	for _, id := range []string{"u1", "u2"} {
		if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() int {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sms_refusals`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	record := func(r SMSRefusal) {
		t.Helper()
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.RecordSMSRefusal(ctx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	// An old row, pruned by the next write.
	record(SMSRefusal{UserID: "u2", Limit: "phone_hour", Phone: "+14155550101", Reason: "old", LastAt: now.Add(-31 * 24 * time.Hour)})
	for i := 0; i < 50; i++ {
		record(SMSRefusal{UserID: "u1", Limit: "phone_hour", Phone: "+14155550100", Reason: "3 texts an hour limit for this number reached",
			LastAt: now.Add(time.Duration(i) * time.Second)})
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d rows after 50 refusals in one hour, want 1 (and the 31-day-old one pruned)", n)
	}
	got, err := s.SMSRefusalsByUser(ctx, "u1", now.Add(-24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Attempts != 50 || !got[0].FirstAt.Equal(now) || !got[0].LastAt.Equal(now.Add(49*time.Second)) ||
		got[0].Reason != "3 texts an hour limit for this number reached" || got[0].Phone != "+14155550100" {
		t.Fatalf("refusals %+v", got)
	}
	// Another limit in the same hour, and the same limit in the next hour.
	record(SMSRefusal{UserID: "u1", Limit: "daily_total", Phone: "+14155550100", Reason: "daily", LastAt: now.Add(time.Minute)})
	record(SMSRefusal{UserID: "u1", Limit: "phone_hour", Phone: "+14155550100", Reason: "next hour", LastAt: now.Add(time.Hour)})
	record(SMSRefusal{UserID: "u2", Limit: "phone_hour", Phone: "+14155550101", Reason: "other user", LastAt: now})
	if n := rows(); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
	got, err = s.SMSRefusalsByUser(ctx, "u1", now.Add(-24*time.Hour), 10)
	if err != nil || len(got) != 3 || got[0].Reason != "next hour" || got[1].Reason != "daily" || got[2].Attempts != 50 {
		t.Fatalf("refusals %+v, %v", got, err)
	}
	if got, _ := s.SMSRefusalsByUser(ctx, "u1", now.Add(30*time.Minute), 10); len(got) != 1 || got[0].Reason != "next hour" {
		t.Fatalf("since: %+v", got)
	}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.DeleteUser(ctx, "u1") }); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d rows after deleting u1, want 1", n)
	}
}
