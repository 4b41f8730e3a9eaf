package sms_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/sms/smstest"
	"latchkey/store"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *fakeClock) Now() time.Time       { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Add(d time.Duration)  { c.ns.Add(int64(d)) }

// TestTextGivesUpAfter24Hours: with the provider down for good, a text is
// retried for 24 hours (on a fake clock), then abandoned: failed with
// "Gave up after 24h0m0s", sms.failed recorded, the Users list marks it.
// Its sealed password is kept for "Retry all" (mail.KeepFailedFor, 7 days)
// and then wiped; a byte scan of the database and its WAL finds neither the
// sealed bytes nor the password.
func TestTextGivesUpAfter24Hours(t *testing.T) {
	srv := smstest.StartWebhook(t)
	srv.Answer(http.StatusServiceUnavailable, "down for good")
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	clk := newFakeClock(time.Now())
	e.ob.Now, e.acct.Now = clk.Now, clk.Now
	const password = "Qx7-unique-GiveUp-Pl41n"
	u := e.createPhoneUser("+14155550240", ptr(password))
	created := clk.Now()
	sealedBytes := e.messages(u.ID)[0].Secret
	sealedBytes = sealedBytes[len(sealedBytes)-32:]
	e.start()
	deadline := time.Now().Add(30 * time.Second)
	var row store.OutboxMessage
	for {
		row = e.messages(u.ID)[0]
		if row.Status == store.OutboxFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not abandoned; clock at %s after queueing, row %+v", clk.Now().Sub(created), row)
		}
		if clk.Now().Sub(created) < 23*time.Hour && row.Attempts > 0 {
			clk.Add(time.Hour)
		} else {
			clk.Add(10 * time.Minute)
		}
		e.ob.Wake()
		time.Sleep(15 * time.Millisecond)
	}
	if clk.Now().Sub(created) < 24*time.Hour {
		t.Fatalf("abandoned after %s, want 24 hours of retries", clk.Now().Sub(created))
	}
	if !strings.HasPrefix(row.LastError, "Gave up after 24h0m0s of retries. Last error: The SMS webhook answered 503: down for good") || row.Attempts < 3 {
		t.Fatalf("abandoned row %+v", row)
	}
	if row.Secret == nil {
		t.Fatal("the sealed password was wiped at once; it is kept for Retry all (KeepFailedFor)")
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(e.events.ofType(account.EventSMSFailed)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := e.events.ofType(account.EventSMSFailed); len(f) != 1 || !strings.Contains(f[0].Payload["error"].(string), "Gave up") {
		t.Fatalf("sms.failed events %+v", f)
	}
	list, err := e.acct.ListUsers(context.Background(), store.ListUsersParams{Limit: 10})
	if err != nil || len(list) != 1 || !list[0].EmailFailed {
		t.Fatalf("the Users list does not mark the abandoned text: %+v %v", list, err)
	}
	// Eight days on, the next start wipes the sealed password.
	path := e.path
	e.close()
	clk.Add(8 * 24 * time.Hour)
	e2 := newEnv(t, path, srv.WebhookURL(), account.SMSLimits{})
	e2.ob.Now = clk.Now
	e2.start()
	deadline = time.Now().Add(10 * time.Second)
	for e2.messages(u.ID)[0].Secret != nil || filesContain(t, path, sealedBytes) {
		if time.Now().After(deadline) {
			t.Fatalf("the sealed password is still in the row (%v) or the database files", e2.messages(u.ID)[0].Secret != nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if filesContain(t, path, []byte(password)) {
		t.Fatal("the plaintext password is in the database files")
	}
	if r := e2.messages(u.ID)[0]; r.Status != store.OutboxFailed || !strings.HasPrefix(r.LastError, "Gave up") {
		t.Fatalf("row after the wipe %+v", r)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d texts accepted by a provider that was down", n)
	}
}

// TestForgotCodeStoredHashed: after forgot-password codes are texted and
// delivered, a byte scan of the database and its WAL finds none of them
// (only hashes are stored; the text's sealed copy is wiped). Three codes
// are scanned for, since any six digits can turn up by chance in hex;
// only a code found every time means it is stored.
func TestForgotCodeStoredHashed(t *testing.T) {
	srv := smstest.StartWebhook(t)
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	clk := newFakeClock(time.Now())
	e.acct.Now = clk.Now
	e.start()
	ctx := context.Background()
	u, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: account.KindPhone, LoginIDValue: "+14155550250", Password: ptr("Old-passw0rd-250")})
	if err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`^(\d{6}) is your Acme password reset code`)
	found := 0
	for i := 1; i <= 3; i++ {
		clk.Add(2 * time.Minute) // past the one-minute cooldown
		if err := e.acct.ForgotPassword(ctx, account.Actor{Kind: "user", IP: "192.0.2.1"}, "+14155550250", "https://id.example.com/reset-password"); err != nil {
			t.Fatal(err)
		}
		msgs := srv.WaitFor(i, 10*time.Second)
		code := codeRE.FindStringSubmatch(msgs[i-1].Body)
		if code == nil {
			t.Fatalf("text %q", msgs[i-1].Body)
		}
		row := e.waitStatus(u.ID, store.OutboxDelivered)
		if row.Secret != nil {
			t.Fatal("the delivered text keeps its sealed code")
		}
		// Let the worker scrub the WAL of the wiped secret first.
		time.Sleep(300 * time.Millisecond)
		if filesContain(t, e.path, []byte(code[1])) {
			found++
			t.Logf("code %d (%s) found in the database bytes", i, code[1])
		}
		r, err := e.st.LatestPasswordReset(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.CodeHash, code[1]) || len(r.CodeHash) != 64 {
			t.Fatalf("stored code %q is not a SHA-256 hash of the code", r.CodeHash)
		}
	}
	if found == 3 {
		t.Fatal("every code sent is in the database files: codes are stored in plaintext")
	}
}

// TestTextCodeExpires: a code sent by text works for 5 minutes and no
// longer, and a newer code replaces an older one.
func TestTextCodeExpires(t *testing.T) {
	srv := smstest.StartWebhook(t)
	e := newEnv(t, "", srv.WebhookURL(), account.SMSLimits{})
	clk := newFakeClock(time.Now())
	e.acct.Now = clk.Now
	e.start()
	ctx := context.Background()
	if _, err := e.acct.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: account.KindPhone, LoginIDValue: "+14155550270", Password: ptr("Old-passw0rd-270")}); err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`^(\d{6}) is your Acme password reset code`)
	ask := func(n int) string {
		t.Helper()
		if err := e.acct.ForgotPassword(ctx, account.Actor{Kind: "user", IP: "192.0.2.1"}, "+14155550270", "https://id.example.com/reset-password"); err != nil {
			t.Fatal(err)
		}
		c := codeRE.FindStringSubmatch(srv.WaitFor(n, 10*time.Second)[n-1].Body)
		if c == nil {
			t.Fatal("no code in the text")
		}
		return c[1]
	}
	in := func(pw string) account.ChangePasswordInput { return account.ChangePasswordInput{New: pw, Confirm: pw} }
	first := ask(1)
	clk.Add(5*time.Minute + time.Second)
	if err := e.acct.ResetPasswordWithCode(ctx, account.Actor{Kind: "user"}, "+14155550270", first, in("Late-passw0rd-270")); err == nil {
		t.Fatal("a code worked after 5 minutes")
	}
	second := ask(2)
	clk.Add(4 * time.Minute)
	if second != first {
		if err := e.acct.ResetPasswordWithCode(ctx, account.Actor{Kind: "user"}, "+14155550270", first, in("Old-code-passw0rd-270")); err == nil {
			t.Fatal("the older code still works after a new one was sent")
		}
	}
	if err := e.acct.ResetPasswordWithCode(ctx, account.Actor{Kind: "user"}, "+14155550270", second, in("New-passw0rd-270")); err != nil {
		t.Fatalf("a 4-minute-old code: %v", err)
	}
}
