package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestE2ECreateUserAutoPassword is the foundation's story: an admin signs
// in, opens Users, clicks "Create User", types an email, picks
// "Automatically create a password and send to the user", clicks "Add
// User", and finds the user in the list marked "Must change password".
func TestE2ECreateUserAutoPassword(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
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
