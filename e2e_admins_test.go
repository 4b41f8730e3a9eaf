package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestE2ESecondAdminWithTOTPIsRemovedAndSignedOut is the admins story: the
// first admin adds a second one on the Admins page (the one-time link shown
// on the page); the second admin, in a browser of their own, opens the
// link, chooses a password, enrols TOTP from the QR page (the test computes
// codes from the secret shown there), signs out, and signs in again with a
// password and a code. The first admin then removes them, and the second
// admin's next page load is the sign-in page.
func TestE2ESecondAdminWithTOTPIsRemovedAndSignedOut(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	const second, secondPassword = "second.admin@example.com", "second-admin-Passw0rd"
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})

	var link string
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Click(`//nav//a[text()="Admins"]`),
		chromedp.WaitVisible(`//h1[text()="Admins"]`),
		chromedp.SendKeys(`#invite-email`, second, chromedp.ByQuery),
		chromedp.Click(`input[name="send_email"]`, chromedp.ByQuery), // hand the link over instead
		chromedp.Click(`//button[text()="Add admin"]`),
		chromedp.WaitVisible(`#invite-link`, chromedp.ByQuery),
		chromedp.Text(`#invite-link`, &link, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, app.URL+"/portal/invite?token=") {
		t.Fatalf("invitation link %q", link)
	}

	// The second admin: a browser of their own (own cookies).
	ctx2 := newBrowser(t)
	var secret string
	var qrWidth int
	err = chromedp.Run(ctx2,
		chromedp.Navigate(link),
		chromedp.WaitVisible(`//h1[text()="Choose your password"]`),
		chromedp.SendKeys(`#password`, secondPassword, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Set password and sign in"]`),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
		chromedp.Click(`//nav//a[text()="Admins"]`),
		chromedp.WaitVisible(`//h1[text()="Admins"]`),
		chromedp.Click(`//a[text()="Manage two-factor"]`),
		chromedp.WaitVisible(`#totp-qr`, chromedp.ByQuery),
		chromedp.Text(`#totp-secret`, &secret, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#totp-qr').naturalWidth`, &qrWidth),
	)
	if err != nil {
		t.Fatal(err)
	}
	if qrWidth == 0 {
		t.Fatal("the QR code image did not load")
	}
	enrolCode, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("secret %q from the page: %v", secret, err)
	}
	var codes string
	err = chromedp.Run(ctx2,
		chromedp.SendKeys(`#code`, enrolCode, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Turn on two-factor"]`),
		chromedp.WaitVisible(`#recovery-codes`, chromedp.ByQuery),
		chromedp.Text(`#recovery-codes`, &codes, chromedp.ByQuery),
		// Sign out, then in again: password, then a code.
		chromedp.Click(`form.logout button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.Navigate(app.URL+"/portal/users"),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, second, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, secondPassword, chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//h1[text()="Two-factor sign-in"]`),
		// The code used to enrol is refused: each code works once.
		chromedp.SendKeys(`#code`, enrolCode, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Verify"]`),
		chromedp.WaitVisible(`//div[contains(@class,"flash-error") and contains(., "already been used")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(codes, "-") < 30 {
		t.Fatalf("recovery codes not shown: %q", codes)
	}
	// The next step's code (accepted within one step of clock skew).
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	err = chromedp.Run(ctx2,
		chromedp.SendKeys(`#code`, next, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Verify"]`),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
	)
	if err != nil {
		t.Fatal(err)
	}

	// The first admin sees two-factor on and removes the second admin.
	row := `//tr[@data-admin-email="` + second + `"]`
	var rowText string
	err = chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/portal/admins"),
		chromedp.WaitVisible(row),
		chromedp.Text(row, &rowText),
		chromedp.Click(row+`//button[text()="Remove"]`),
		chromedp.WaitVisible(`//div[contains(@class,"flash-success") and contains(., "Admin removed")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rowText, "on") {
		t.Errorf("admin row %q does not show two-factor on", rowText)
	}
	// The second admin's open session has ended: the next page load is the sign-in.
	var loc string
	err = chromedp.Run(ctx2,
		chromedp.Navigate(app.URL+"/portal/users"),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.Location(&loc),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "/portal/login") {
		t.Fatalf("removed admin's page is %q, want the sign-in", loc)
	}
}
