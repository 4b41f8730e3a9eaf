package mail_test

import (
	"context"
	"testing"
	"time"

	"latchkey/mail"
	"latchkey/store/pgtest"
)

// waitMail waits up to d for box to hold n messages.
func waitMail(box *mail.DevMailbox, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for len(box.List()) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Two instances on one PostgreSQL database, B's worker polling once a
// minute: a password email queued through A (whose worker is not running)
// is sent by B within 2 s, woken by A's commit through LISTEN/NOTIFY.
func TestPostgresOutboxWakesOtherInstance(t *testing.T) {
	url := pgtest.Database(t)
	slowPoll := func(c *mail.Config) { c.PollInterval = time.Minute }
	boxA, boxB := mail.NewDevMailbox(10), mail.NewDevMailbox(10)
	a := newEnv(t, url, boxA, slowPoll)
	b := newEnv(t, url, boxB, slowPoll)
	b.start()
	// Let B's first round and its listener's connect wake pass, so that
	// what follows can only be woken by a notification.
	time.Sleep(time.Second)

	for i, login := range []string{"first@example.com", "second@example.com"} {
		start := time.Now()
		pw := "Passw0rd-" + login
		a.createUser(login, &pw, true, false)
		if !waitMail(boxB, i+1, 2*time.Second) {
			t.Fatalf("email %d queued on A not sent by B within 2 s (B polls once a minute)", i+1)
		}
		if got := boxB.List()[0].To; got != login {
			t.Fatalf("B sent to %q, want %q", got, login)
		}
		t.Logf("email %d: queued on A, sent by B after %s", i+1, time.Since(start).Round(time.Millisecond))
	}
	if n := len(boxA.List()); n != 0 {
		t.Fatalf("A, not started, sent %d messages", n)
	}
}

// "Retry all" pressed on A releases messages waiting out a backoff, and
// B's worker (polling once a minute) sends them within 2 s.
func TestPostgresRetryAllWakesOtherInstance(t *testing.T) {
	url := pgtest.Database(t)
	slowPoll := func(c *mail.Config) { c.PollInterval = time.Minute }
	boxA, boxB := mail.NewDevMailbox(10), mail.NewDevMailbox(10)
	a := newEnv(t, url, boxA, slowPoll)
	b := newEnv(t, url, boxB, slowPoll)
	b.start()
	// A message queued on A, due in an hour (as if waiting on a backoff).
	a.ob.Now = func() time.Time { return time.Now().UTC().Add(time.Hour) }
	pw := "Passw0rd-later"
	a.createUser("later@example.com", &pw, true, false)
	a.ob.Now = func() time.Time { return time.Now().UTC() }
	time.Sleep(time.Second)
	if n := len(boxB.List()); n != 0 {
		t.Fatalf("B sent %d messages before they were due", n)
	}
	n, err := a.ob.RetryAll(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("retry all on A: %d, %v", n, err)
	}
	if !waitMail(boxB, 1, 2*time.Second) {
		t.Fatal("message released by Retry all on A not sent by B within 2 s (B polls once a minute)")
	}
	if got := boxB.List()[0].To; got != "later@example.com" {
		t.Fatalf("B sent to %q", got)
	}
}
