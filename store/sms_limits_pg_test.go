package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The SMS abuse limits hold under texts asked for at once from two
// instances on PostgreSQL: 40 transactions over two pools each count the
// texts to one phone and queue one only under a limit of 3 (as
// account.reserveSMS does); exactly 3 are queued.
func TestPostgresSMSLimitsSharedByInstances(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	var stores []*Store
	for range 2 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const limit, per = 3, 20
	now := time.Now()
	var queued atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for _, s := range stores {
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.InTx(ctx, func(tx *Tx) error {
					c, err := tx.CountSMSSends(ctx, "+14155550100", "192.0.2.1", "1", now)
					if err != nil || c.PhoneHour >= limit {
						return err
					}
					queued.Add(1)
					return tx.InsertSMSSend(ctx, SMSSend{Phone: "+14155550100", CallingCode: "1", IP: "192.0.2.1", At: now})
				})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := stores[0].db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sms_sends`).Scan(&n); err != nil || n != limit || queued.Load() != limit {
		t.Fatalf("%d texts queued (%d counted), %v; want %d", n, queued.Load(), err, limit)
	}
}
