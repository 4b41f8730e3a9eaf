package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestE2EDevMailbox is `go run .` without SMTP: every portal page says
// email is not configured, and the admin reads the password email in the
// dev mailbox, HTML in a sandboxed frame and text below.
func TestE2EDevMailbox(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	const email = "dev.box@example.com"
	var frames int
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.WaitVisible(`//div[contains(@class,"banner")][contains(., "Email is not configured: messages go to the dev mailbox")]`),
		chromedp.Click(`//a[text()="Create User"]`),
		chromedp.WaitVisible(`#loginID`, chromedp.ByQuery),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, email, chromedp.ByQuery),
		chromedp.Click(`#mode-auto`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+email+`"]`),
		chromedp.Click(`//nav[contains(@class,"mainnav")]/a[text()="Mail"]`),
		chromedp.WaitVisible(`//h1[text()="Mail"]`),
		chromedp.Click(`//a[text()="Get Started With Latchkey"]`),
		chromedp.WaitVisible(`pre.mail-text`, chromedp.ByQuery),
		chromedp.WaitVisible(`iframe.mail-frame`, chromedp.ByQuery),
		chromedp.Evaluate(`window.frames.length`, &frames),
	)
	if err != nil {
		t.Fatal(err)
	}
	if frames != 1 {
		t.Errorf("%d frames on the message page, want the one sandboxed HTML frame", frames)
	}
	text := textOf(ctx, t, `pre.mail-text`)
	m := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(text)
	if m == nil || !strings.Contains(text, "You must change this password when you first sign in.") {
		t.Fatalf("dev mailbox text:\n%s", text)
	}
	wantStoredPassword(t, app, email, m[1])
}
