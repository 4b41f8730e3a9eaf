package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"latchkey/sms/smstest"
)

// TestE2EPhoneUserBySMS is issue 10's story in a real browser: an admin
// creates a phone user with "Automatically create a password and send to
// the user"; the text reaches the SMS webhook (signatures checked); the
// user signs in at /login with the phone number, is forced through
// "Password Expired" and sets a new password; then uses /forgot-password
// with the phone number, types the code from the text and sets another.
func TestE2EPhoneUserBySMS(t *testing.T) {
	ctx := newBrowser(t)
	hook := smstest.StartWebhook(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMS_URL": hook.WebhookURL(), "LATCHKEY_SMS_WEBHOOK_SECRET": smstest.Secret})
	const phone = "+14155550188"
	const firstPW, secondPW = "Phone-Own-Passw0rd-1", "Phone-Reset-Passw0rd-2"

	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/users/new"),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-phone`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, phone, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	// A manual password for a phone user: the box reads "Send the
	// password to user's phone", can be ticked, and is unticked.
	var manualChecked, manualDisabled bool
	var label string
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelector("#sendPassword").checked`, &manualChecked),
		chromedp.Evaluate(`document.querySelector("#sendPassword").disabled`, &manualDisabled),
		chromedp.Text(`#send-password-label`, &label, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if manualChecked || manualDisabled || strings.Join(strings.Fields(label), " ") != "Send the password to user's phone" {
		t.Fatalf("phone + manual: checked %v, disabled %v, label %q", manualChecked, manualDisabled, label)
	}
	if err := chromedp.Run(ctx, chromedp.Click(`#mode-auto`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	var autoDisabled, sendChecked bool
	var target string
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelector("#mode-auto").disabled`, &autoDisabled),
		chromedp.Evaluate(`document.querySelector("#sendPassword").checked`, &sendChecked),
		chromedp.Text(`[data-send-target]`, &target, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if autoDisabled || !sendChecked || target != "phone" {
		t.Fatalf("phone + auto: auto disabled %v, send checked %v, target %q", autoDisabled, sendChecked, target)
	}
	if err := chromedp.Run(ctx,
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+phone+`"]`),
	); err != nil {
		t.Fatal(err)
	}
	if flash := textOf(ctx, t, `.flash`); !strings.Contains(flash, "on its way by text message to "+phone) {
		t.Fatalf("flash %q", flash)
	}
	text := hook.MessageTo(phone, 20*time.Second)
	m := regexp.MustCompile(`Your user ID is \+14155550188, password: (\S+?)(?:\s|$)`).FindStringSubmatch(text.Body)
	if m == nil || !strings.Contains(text.Body, app.URL+"/login") {
		t.Fatalf("password text %q", text.Body)
	}
	preset := m[1]
	wantStoredPassword(t, app, phone, preset)

	// First sign-in with the phone number: forced change.
	err = chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/login"),
		chromedp.WaitVisible(`#login_id`, chromedp.ByQuery),
		chromedp.SendKeys(`#login_id`, phone, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, preset, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Sign in"]`),
		chromedp.WaitVisible(`//h1[text()="Password Expired"]`),
		chromedp.SendKeys(`#password`, firstPW, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, firstPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Continue"]`),
		chromedp.WaitVisible(`//h1[text()="Your account"]`),
		chromedp.Click(`#sign-out`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(text(), "You have signed out.")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	wantStoredPassword(t, app, phone, firstPW)

	// Forgot password by phone: a code by text, no link.
	err = chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/login"),
		chromedp.Click(`//a[text()="Forgot password?"]`),
		chromedp.WaitVisible(`//h1[text()="Forgot password"]`),
		chromedp.SendKeys(`#login_id`, phone, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Send code"]`),
		chromedp.WaitVisible(`#forgot-sent`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	msgs := hook.WaitFor(2, 20*time.Second)
	code := regexp.MustCompile(`^(\d{6}) is your Latchkey password reset code`).FindStringSubmatch(msgs[1].Body)
	if code == nil || strings.Contains(msgs[1].Body, "http") || msgs[1].To != phone {
		t.Fatalf("code text %+v", msgs[1])
	}
	var loc string
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, code[1], chromedp.ByQuery),
		chromedp.SendKeys(`#password`, secondPW, chromedp.ByQuery),
		chromedp.SendKeys(`#confirm`, secondPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Set new password"]`),
		chromedp.WaitVisible(`//div[contains(text(), "Your password has been reset.")]`),
		chromedp.SendKeys(`#login_id`, phone, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, secondPW, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Sign in"]`),
		chromedp.WaitVisible(`//h1[text()="Your account"]`),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/settings") {
		t.Fatalf("after reset and sign-in: %s", loc)
	}
	wantStoredPassword(t, app, phone, secondPW)
	if hook.BadSignatures() != 0 {
		t.Errorf("%d texts with bad signatures", hook.BadSignatures())
	}
}
