package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/mail/mailtest"
)

// TestE2ECreateUserAutoPassword is the foundation's story: an admin signs
// in, opens Users, clicks "Create User", types an email, picks
// "Automatically create a password and send to the user", clicks "Add
// User", and finds the user in the list marked "Must change password".
// The password email goes to a real SMTP server: the message must carry
// the password that signs the user in, and the user page must say it was
// delivered.
func TestE2ECreateUserAutoPassword(t *testing.T) {
	ctx := newBrowser(t)
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL(), "LATCHKEY_APP_NAME": "Acme"})
	const email = "new.user@example.com"
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Click(`//a[text()="Create User"]`),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, email, chromedp.ByQuery),
		chromedp.Click(`#mode-auto`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+email+`"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	msg := smtp.MessageTo(email, 10*time.Second)
	if msg.Subject != "Get Started With Acme" {
		t.Errorf("subject %q", msg.Subject)
	}
	m := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
	if m == nil || !strings.Contains(msg.Text, app.URL+"/login") {
		t.Fatalf("no temporary password or sign-in link in the message:\n%s", msg.Text)
	}
	wantStoredPassword(t, app, email, m[1])
	// The admin sees the delivery on the user page.
	err = chromedp.Run(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(`[data-mail-status="delivered"]`, chromedp.ByQuery),
		chromedp.Click(`//a[text()="Back to Users"]`),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	row := textOf(ctx, t, `.users-table tbody tr`)
	if !strings.Contains(row, email) || !strings.Contains(row, "Must change password") {
		t.Fatalf("Users list row = %q, want the email and the badge \"Must change password\"", row)
	}
}
