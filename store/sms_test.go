package store

import (
	"context"
	"testing"
	"time"
)

// TestSMSSendCounts: the limit windows count what they should (an hour,
// a day), an empty IP is never counted, and rows older than two days are
// pruned when a new one is written.
func TestSMSSendCounts(t *testing.T) {
	forEachBackend(t, tSMSSendCounts)
}

func tSMSSendCounts(t *testing.T, s *Store) {
	ctx := context.Background()
	var err error
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sends := []SMSSend{
		{Phone: "+14155550100", CallingCode: "1", IP: "192.0.2.1", At: now.Add(-72 * time.Hour)}, // pruned
		{Phone: "+14155550100", CallingCode: "1", IP: "192.0.2.1", At: now.Add(-5 * time.Hour)},
		{Phone: "+14155550100", CallingCode: "1", IP: "192.0.2.1", At: now.Add(-30 * time.Minute)},
		{Phone: "+14155550101", CallingCode: "1", At: now.Add(-10 * time.Minute)},
		{Phone: "+442071838750", CallingCode: "44", IP: "192.0.2.1", At: now.Add(-time.Minute)},
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		for _, x := range sends {
			if err := tx.InsertSMSSend(ctx, x); err != nil {
				return err
			}
		}
		c, err := tx.CountSMSSends(ctx, "+14155550100", "192.0.2.1", "1", now)
		if err != nil {
			return err
		}
		if want := (SMSCounts{PhoneHour: 1, PhoneDay: 2, IPHour: 2, CountryDay: 3, GlobalDay: 4}); c != want {
			t.Errorf("counts %+v, want %+v", c, want)
		}
		c, err = tx.CountSMSSends(ctx, "+14155550101", "", "44", now)
		if want := (SMSCounts{PhoneHour: 1, PhoneDay: 1, IPHour: 0, CountryDay: 1, GlobalDay: 4}); c != want {
			t.Errorf("counts without IP %+v, want %+v", c, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sms_sends`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d rows (%v), want 4: the 3-day-old one pruned", n, err)
	}
}
