package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// createUserNoExpiry creates a user through the Create User form with a
// typed password and "Ask user to change password on login" unchecked.
func createUserNoExpiry(app *e2eApp, email, password string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(app.URL + "/portal/users/new"),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, email, chromedp.ByQuery),
		chromedp.Click(`#mode-manual`, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, password, chromedp.ByQuery),
		chromedp.Click(`#setPasswordExpired`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="` + email + `"]`),
	}
}

// sendState reads the send checkbox: [checked, disabled, passwordHidden].
func sendState(ctx context.Context, t *testing.T) [3]bool {
	t.Helper()
	var st []bool
	err := chromedp.Run(ctx, chromedp.Evaluate(`[document.querySelector("#sendPassword").checked,
		document.querySelector("#sendPassword").disabled,
		document.querySelector('[data-when-mode="manual"]').hidden]`, &st))
	if err != nil || len(st) != 3 {
		t.Fatalf("read send state: %v %v", err, st)
	}
	return [3]bool{st[0], st[1], st[2]}
}

// TestE2EResetPasswordAndBulkRequire is issue 5's portal story: an admin
// opens a user's Reset Password screen, sees "Automatically create a
// password" turn on and lock "Send the password to user's email", goes
// back to "Enter a password", sets one that must be changed at login; then
// on the Users list ticks another user and clicks "Require password change".
func TestE2EResetPasswordAndBulkRequire(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	err := chromedp.Run(ctx,
		portalSignIn(app),
		createUserNoExpiry(app, "reset.me@example.com", "first-Passw0rd"),
		chromedp.Click(`//a[text()="Reset password"]`),
		chromedp.WaitVisible(`//h1[text()="Reset Password"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	var email string
	if err := chromedp.Run(ctx, chromedp.Value(`#email`, &email, chromedp.ByQuery)); err != nil || email != "reset.me@example.com" {
		t.Fatalf("email field %q, %v", email, err)
	}
	if got := sendState(ctx, t); got != [3]bool{false, false, false} {
		t.Fatalf("manual mode: send [checked disabled pwHidden] = %v, want all false", got)
	}
	if err := chromedp.Run(ctx, chromedp.Click(`#mode-auto`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if got := sendState(ctx, t); got != [3]bool{true, true, true} {
		t.Fatalf("auto mode: send [checked disabled pwHidden] = %v, want all true", got)
	}
	if err := chromedp.Run(ctx, chromedp.Click(`#mode-manual`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if got := sendState(ctx, t); got != [3]bool{false, false, false} {
		t.Fatalf("back to manual: send [checked disabled pwHidden] = %v, want the admin's choice (unchecked) back", got)
	}
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#password`, "second-Passw0rd", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Reset password"]`),
		chromedp.WaitVisible(`//h1[text()="reset.me@example.com"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if body := textOf(ctx, t, `main`); !strings.Contains(body, "Password reset. The user must change it at next sign-in.") ||
		!strings.Contains(body, "Must change password at next login") {
		t.Fatalf("user page after reset: %q", body)
	}

	err = chromedp.Run(ctx,
		createUserNoExpiry(app, "bulk.me@example.com", "first-Passw0rd"),
		chromedp.Navigate(app.URL+"/portal/users"),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
		chromedp.Click(`//tr[.//a[contains(., "bulk.me@example.com")]]//input[@type="checkbox"]`),
		chromedp.Click(`//button[text()="Require password change"]`),
		chromedp.WaitVisible(`//div[contains(@class, "flash")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if flash := textOf(ctx, t, `.flash`); !strings.Contains(flash, "1 user must change their password at next sign-in.") {
		t.Fatalf("flash %q", flash)
	}
	row := textOf(ctx, t, `tr[data-user-id]`)
	if !strings.Contains(row, "bulk.me@example.com") || !strings.Contains(row, "Must change password") {
		t.Fatalf("first row %q", row)
	}
}
