package sms_test

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
	"latchkey/sms"
	"latchkey/sms/smstest"
	"latchkey/store"
)

// BenchmarkDeliverTexts1000 queues 1,000 password texts (untimed), then
// times the outbox worker delivering all of them to a local webhook
// provider (signed requests over reused loopback connections; the
// receiver verifies both signatures) until every row is marked delivered.
// texts/s is the figure; the issue asks for at least 500.
func BenchmarkDeliverTexts1000(b *testing.B) {
	const n = 1000
	hook := smstest.StartWebhook(b)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		provider, err := sms.Open(hook.WebhookURL(), sms.Config{AppID: "bench", WebhookSecret: smstest.Secret})
		if err != nil {
			b.Fatal(err)
		}
		ob, err := mail.New(st, mail.NewDevMailbox(0), mail.Config{AppName: "Acme", PublicURL: "http://localhost", Secret: testSecret, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		ob.SetTextSender(provider)
		now := time.Now()
		err = st.InTx(ctx, func(tx *store.Tx) error {
			for j := 0; j < n; j++ {
				u := &store.User{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertUser(ctx, u); err != nil {
					return err
				}
				to := fmt.Sprintf("+1415555%04d", j)
				if err := ob.QueuePassword(ctx, tx, account.PasswordMail{Kind: account.MailNewUser, UserID: u.ID, To: to, LoginID: to,
					Password: "Passw0rd-" + u.ID[:8], MustChange: true, Channel: store.ChannelSMS}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		before := len(hook.Messages())
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
		if got := len(hook.Messages()) - before; got != n || hook.BadSignatures() != 0 {
			b.Fatalf("provider got %d texts (bad signatures %d), want %d", got, hook.BadSignatures(), n)
		}
		_ = ob.Stop(ctx)
		st.Close()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "texts/s")
}
