package mail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/mail/mailtest"
	"latchkey/store"
)

// BenchmarkDeliver1000 queues 1,000 password emails (untimed), then times
// the worker delivering all of them to a local SMTP server over reused
// connections, until every row is marked delivered. msgs/s is the figure.
func BenchmarkDeliver1000(b *testing.B) {
	const n = 1000
	srv := mailtest.Start(b)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		c, _ := mail.ParseSMTPURL(srv.URL())
		sender := mail.NewSMTPSender(c)
		ob, err := mail.New(st, sender, mail.Config{AppName: "Acme", PublicURL: "http://localhost", Secret: testSecret, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		err = st.InTx(ctx, func(tx *store.Tx) error {
			for j := 0; j < n; j++ {
				u := &store.User{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertUser(ctx, u); err != nil {
					return err
				}
				to := fmt.Sprintf("user%d@example.com", j)
				if err := ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailNewUser, UserID: u.ID, To: to,
					LoginID: to, Password: "Passw0rd-" + u.ID[:8], MustChange: true}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		before := len(srv.Messages())
		b.StartTimer()
		start := time.Now()
		if err := ob.Start(ctx); err != nil {
			b.Fatal(err)
		}
		for {
			counts, err := st.CountOutbox(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if counts[store.OutboxDelivered] == n {
				break
			}
			if counts[store.OutboxFailed] > 0 {
				b.Fatalf("failures: %v", counts)
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		if got := len(srv.Messages()) - before; got != n {
			b.Fatalf("server got %d messages, want %d", got, n)
		}
		_ = ob.Stop(ctx)
		_ = sender.Close()
		b.ReportMetric(float64(sender.Dials()), "smtp-conns/op")
		st.Close()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
}
