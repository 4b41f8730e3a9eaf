package hooks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/outbound"
	"latchkey/store"
)

// BenchmarkDeliver1000 queues 1,000 events for each of 1 or 4 webhooks
// (real HTTP servers in the test process) and measures until every
// delivery has been answered and recorded. One op = all deliveries.
func BenchmarkDeliver1000(b *testing.B) {
	for _, hooks := range []int{1, 4} {
		b.Run(fmt.Sprintf("hooks=%d", hooks), func(b *testing.B) {
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				got.Add(1)
			}))
			defer srv.Close()
			ctx := context.Background()
			for n := 0; b.Loop(); n++ {
				b.StopTimer()
				st, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("d%d.db", n)))
				if err != nil {
					b.Fatal(err)
				}
				svc, err := New(st, testSecret, Config{Outbound: outbound.Policy{AllowPrivate: true}}, quiet)
				if err != nil {
					b.Fatal(err)
				}
				for range hooks {
					if _, _, err := svc.CreateWebhook(ctx, admin, WebhookInput{URL: srv.URL, AllEvents: true}); err != nil {
						b.Fatal(err)
					}
				}
				queue1000(b, st, svc)
				got.Store(0)
				want := int64(1000 * hooks)
				b.StartTimer()
				runUntil(b, svc, func() bool {
					var pending int
					if err := st.DB().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE status != 'succeeded'`).Scan(&pending); err != nil {
						b.Fatal(err)
					}
					return pending == 0 && got.Load() >= want
				})
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(1000*hooks), "deliveries/op")
		})
	}
}

// queue1000 records 1,000 user.created events in one transaction.
func queue1000(b *testing.B, st *store.Store, svc *Service) {
	b.Helper()
	ctx := context.Background()
	err := st.InTx(ctx, func(tx *store.Tx) error {
		for i := range 1000 {
			if err := svc.Record(ctx, tx, admin, account.Event{Type: UserCreated, UserID: fmt.Sprint(i),
				Payload: map[string]any{"user": map[string]any{"id": fmt.Sprint(i)}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// runUntil runs svc's workers until done, polled every 5ms, says the queue
// has drained; it stops the timer before stopping the workers.
func runUntil(b *testing.B, svc *Service, done func() bool) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { svc.Run(ctx); close(stopped) }()
	for !done() {
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-stopped
}
