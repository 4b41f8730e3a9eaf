package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/mail/mailtest"
)

// createUserInPortal fills in Create User as the story says
// ("Automatically create a password and send to the user", "Ask user to
// change password on login" left checked) and reads the password from the
// message the test SMTP server received.
func createUserInPortal(ctx context.Context, t *testing.T, app *e2eApp, smtp *mailtest.Server, email string) string {
	t.Helper()
	var askChange bool
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Click(`//a[text()="Create User"]`),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, email, chromedp.ByQuery),
		chromedp.Click(`#mode-auto`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#setPasswordExpired").checked`, &askChange),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+email+`"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !askChange {
		t.Fatal(`"Ask user to change password on login" was not checked`)
	}
	msg := smtp.MessageTo(email, 20*time.Second)
	m := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no temporary password in the message:\n%s", msg.Text)
	}
	return m[1]
}

// TestE2EUserFirstSignIn is the Auth UI story: the admin creates a user
// who must change the preset password; the user signs in, lands on
// "Password Expired", cannot reach /settings by typing it, is refused the
// same password, sets a new one, lands on /settings, signs out, fails
// with the old password and signs in with the new one without the step.
func TestE2EUserFirstSignIn(t *testing.T) {
	ctx := newBrowser(t)
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	const email = "first.login@example.com"
	const newPW = "My-Own-Passw0rd-7"
	preset := createUserInPortal(ctx, t, app, smtp, email)

	signIn := func(pw string) chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.Navigate(app.URL + "/login"),
			chromedp.WaitVisible(`#login_id`, chromedp.ByQuery),
			chromedp.SendKeys(`#login_id`, email, chromedp.ByQuery),
			chromedp.SendKeys(`#password`, pw, chromedp.ByQuery),
			chromedp.Click(`//button[text()="Sign in"]`),
		}
	}
	var loc string
	err := chromedp.Run(ctx,
		signIn(preset),
		chromedp.WaitVisible(`//h1[text()="Password Expired"]`),
		chromedp.WaitVisible(`//p[text()="Time to change your password."]`),
		// Typing /settings leads back to the step.
		chromedp.Navigate(app.URL+"/settings"),
		chromedp.WaitVisible(`//h1[text()="Password Expired"]`),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/change-password") {
		t.Fatalf("typed /settings, landed on %s", loc)
	}
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#password`, preset, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, preset, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Continue"]`),
		chromedp.WaitVisible(`//p[contains(text(), "Please provide a new password that is different from the previous one.")]`),
		chromedp.SendKeys(`#password`, newPW, chromedp.ByQuery),
		// The live checklist asks the end-user endpoint.
		chromedp.WaitVisible(`ul.checklist li.pass`, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, newPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Continue"]`),
		chromedp.WaitVisible(`//h1[text()="Your account"]`),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/settings") {
		t.Fatalf("after the change: %s", loc)
	}
	if ids := textOf(ctx, t, `#login-ids`); !strings.Contains(ids, email) {
		t.Fatalf("login IDs on /settings: %q", ids)
	}
	err = chromedp.Run(ctx,
		chromedp.Click(`#sign-out`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(text(), "You have signed out.")]`),
		signIn(preset),
		chromedp.WaitVisible(`#login-error`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if msg := textOf(ctx, t, `#login-error`); !strings.Contains(msg, "Incorrect") {
		t.Fatalf("old password: %q", msg)
	}
	err = chromedp.Run(ctx,
		signIn(newPW),
		chromedp.WaitVisible(`//h1[text()="Your account"]`),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/settings") {
		t.Fatalf("new password: landed on %s", loc)
	}
}

// TestE2EForgotPasswordLink: a user who forgot the password asks for a
// reset, opens the emailed link (which by itself changes nothing), sets a
// new password with the page's button, and signs in with it.
func TestE2EForgotPasswordLink(t *testing.T) {
	ctx := newBrowser(t)
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	const email = "forgetful@example.com"
	const newPW = "Remembered-Passw0rd-3"
	createUserInPortal(ctx, t, app, smtp, email)
	err := chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/login"),
		chromedp.Click(`//a[text()="Forgot password?"]`),
		chromedp.WaitVisible(`//h1[text()="Forgot password"]`),
		chromedp.SendKeys(`#login_id`, email, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Send code"]`),
		chromedp.WaitVisible(`#forgot-sent`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	var link string
	deadline := time.Now().Add(20 * time.Second)
	for link == "" && time.Now().Before(deadline) {
		for _, m := range smtp.Messages() {
			if l := regexp.MustCompile(`(http://\S+/reset-password\?token=\S+)`).FindStringSubmatch(m.Text); l != nil {
				link = l[1]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if link == "" {
		t.Fatal("no forgot-password message with a link")
	}
	var loc string
	err = chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(`//h1[text()="Reset password"]`),
		chromedp.SendKeys(`#password`, newPW, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, newPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Set new password"]`),
		chromedp.WaitVisible(`//div[contains(text(), "Your password has been reset.")]`),
		chromedp.SendKeys(`#login_id`, email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, newPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Sign in"]`),
		chromedp.WaitVisible(`//h1[text()="Your account"]`),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/settings") {
		t.Fatalf("after reset and sign-in: %s (the reset should have cleared the forced change)", loc)
	}
	// The link works once.
	err = chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(`//div[contains(text(), "already been used")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
}
