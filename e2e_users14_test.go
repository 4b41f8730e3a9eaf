package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"latchkey/account"
	"latchkey/mail/mailtest"
	"latchkey/store"
)

// seedUser makes a user with a password in the app's database through
// the account service, as an admin would.
func seedUser(t *testing.T, app *e2eApp, kind, loginID, password string) *account.User {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	u, err := acct.CreateUser(ctx, account.Actor{Kind: "admin", TriggeredBy: "admin_api"},
		account.CreateUserInput{LoginIDKey: kind, LoginIDValue: loginID, Password: &password})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestE2EAddEmailThenSendPassword is issue 14's first story: a phone user
// has no email to send a password to; the admin adds one on the user
// page, then resets the password with "Automatically create a password
// and send to the user", and the new email receives a password that works.
func TestE2EAddEmailThenSendPassword(t *testing.T) {
	ctx := newBrowser(t)
	smtp := mailtest.Start(t)
	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	u := seedUser(t, app, "phone", "+12125550110", "first-Passw0rd")
	const email = "phone.user@example.com"
	var placeholder string
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/users/"+u.ID+"/reset-password"),
		chromedp.WaitVisible(`//h1[text()="Reset Password"]`),
		chromedp.AttributeValue(`#email`, "placeholder", &placeholder, nil, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if placeholder != "No email identity found" || !strings.Contains(textOf(ctx, t, `.reset-for`), "+1 212-555-0110") {
		t.Fatalf("reset page of a phone user: placeholder %q, %q", placeholder, textOf(ctx, t, `.reset-for`))
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/portal/users/"+u.ID),
		chromedp.Click(`//a[text()="Add login ID"]`),
		chromedp.WaitVisible(`//h1[starts-with(., "Add a login ID")]`),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
		chromedp.SendKeys(`#value`, email, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add login ID"]`),
		chromedp.WaitVisible(`//div[contains(@class, "flash")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if ids := textOf(ctx, t, `.identities-edit`); !strings.Contains(ids, email) || !strings.Contains(ids, "+1 212-555-0110") {
		t.Fatalf("identities after adding: %q", ids)
	}
	err = chromedp.Run(ctx,
		chromedp.Click(`//a[text()="Reset password"]`),
		chromedp.WaitVisible(`//h1[text()="Reset Password"]`),
		chromedp.Click(`#mode-auto`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Reset password"]`),
		chromedp.WaitVisible(`//div[contains(@class, "flash")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	msg := smtp.MessageTo(email, 20*time.Second)
	m := regexp.MustCompile(`Your new password: (\S+)`).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no password in the message:\n%s", msg.Text)
	}
	wantStoredPassword(t, app, email, m[1])
}

// TestE2EPortalSignsUserOut: an end user is signed in (their own
// browser-like client with cookies); the admin clicks "Sign out" on the
// session in the user page, and the user's next request is signed out.
func TestE2EPortalSignsUserOut(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	u := seedUser(t, app, "email", "sam@example.com", "sam-Passw0rd-1")
	jar, _ := cookiejar.New(nil)
	user := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string, string) {
		res, err := user.Get(app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}
	_, _, page := get("/login")
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(page)
	res, err := user.PostForm(app.URL+"/login", url.Values{"_csrf": {csrf[1]}, "login_id": {"sam@example.com"}, "password": {"sam-Passw0rd-1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if status, _, body := get("/settings"); status != http.StatusOK || !strings.Contains(body, "Your sessions") {
		t.Fatalf("user not signed in: %d", status)
	}
	err = chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/users/"+u.ID),
		chromedp.WaitVisible(`#sessions tr[data-session-id]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if row := textOf(ctx, t, `#sessions tbody tr`); !strings.Contains(row, "127.0.0.1") || !strings.Contains(row, "just now") {
		t.Fatalf("session row %q", row)
	}
	err = chromedp.Run(ctx,
		chromedp.Click(`#sessions tbody tr button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class, "flash") and contains(., "signed out")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(textOf(ctx, t, `#sessions`), "Not signed in anywhere") {
		t.Fatalf("sessions after sign-out: %q", textOf(ctx, t, `#sessions`))
	}
	if status, loc, _ := get("/settings"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("user's next request: %d %q, want a redirect to sign in", status, loc)
	}
}

// TestE2ECreateUserSendCheckbox: the review's checkbox defect. "Send the
// password to user's email" is unchecked by default; Automatic ticks and
// locks it; back on "Enter a password manually" it is unchecked again;
// an admin's own tick survives the same round trip. In phone mode the
// login-ID field keeps the styled size.
func TestE2ECreateUserSendCheckbox(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	state := func() [2]bool {
		var st []bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`[document.querySelector("#sendPassword").checked, document.querySelector("#sendPassword").disabled]`, &st)); err != nil {
			t.Fatal(err)
		}
		return [2]bool{st[0], st[1]}
	}
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/users/new"),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-email`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := state(); got != [2]bool{false, false} {
		t.Fatalf("default: %v", got)
	}
	click := func(sel string) {
		if err := chromedp.Run(ctx, chromedp.Click(sel, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
	}
	click(`#mode-auto`)
	if got := state(); got != [2]bool{true, true} {
		t.Fatalf("auto: %v", got)
	}
	click(`#mode-manual`)
	if got := state(); got != [2]bool{false, false} {
		t.Fatalf("back to manual: %v, want unchecked (the admin never ticked it)", got)
	}
	click(`#sendPassword`)
	click(`#mode-auto`)
	click(`#mode-manual`)
	if got := state(); got != [2]bool{true, false} {
		t.Fatalf("ticked, auto, manual: %v, want the tick kept", got)
	}
	click(`#kind-phone`)
	var h, w float64
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelector("#loginID").getBoundingClientRect().height`, &h),
		chromedp.Evaluate(`document.querySelector("#loginID").getBoundingClientRect().width`, &w)); err != nil {
		t.Fatal(err)
	}
	var typ string
	_ = chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#loginID").type`, &typ))
	if typ != "tel" || h < 30 || w < 300 {
		t.Fatalf("phone login-ID field: type %q, %gx%g px, want the styled size", typ, w, h)
	}
}

// TestE2ENavMenuByKeyboard: at 390 px the portal menu is a real button a
// keyboard reaches; Enter opens it (aria-expanded), its links are then
// reachable with Tab, and Escape closes it.
func TestE2ENavMenuByKeyboard(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(app.URL+"/portal/users"),
		chromedp.WaitVisible(`//h1[text()="Users"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	var navVisible bool
	_ = chromedp.Run(ctx, chromedp.Evaluate(`getComputedStyle(document.querySelector(".mainnav")).display !== "none"`, &navVisible))
	if navVisible {
		t.Fatal("menu open before the button was used")
	}
	// Tab from the top of the page until the Menu button has the focus.
	focused := ""
	for i := 0; i < 5 && focused != "Menu"; i++ {
		if err := chromedp.Run(ctx, chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.textContent.trim()`, &focused)); err != nil {
			t.Fatal(err)
		}
	}
	if focused != "Menu" {
		t.Fatalf("Tab never reached the Menu button (focus on %q)", focused)
	}
	var expanded string
	if err := chromedp.Run(ctx, chromedp.KeyEvent("\r"),
		chromedp.Evaluate(`document.querySelector(".nav-toggle-btn").getAttribute("aria-expanded")`, &expanded)); err != nil {
		t.Fatal(err)
	}
	if expanded != "true" {
		t.Fatalf("after Enter aria-expanded=%q", expanded)
	}
	var next string
	if err := chromedp.Run(ctx, chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.textContent.trim()`, &next)); err != nil {
		t.Fatal(err)
	}
	if next != "Users" {
		t.Fatalf("Tab after opening the menu focused %q, want the first link", next)
	}
	var current string
	_ = chromedp.Run(ctx, chromedp.Evaluate(`document.activeElement.getAttribute("aria-current")`, &current))
	if current != "page" {
		t.Errorf("active link aria-current=%q", current)
	}
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Escape),
		chromedp.Evaluate(`document.querySelector(".nav-toggle-btn").getAttribute("aria-expanded")`, &expanded)); err != nil {
		t.Fatal(err)
	}
	if expanded != "false" {
		t.Fatalf("after Escape aria-expanded=%q", expanded)
	}
}

// TestE2EAPIKeyReloadMakesNoSecondKey: creating an API key redirects to
// the list that shows the token once; reloading shows it no more and
// creates nothing.
func TestE2EAPIKeyReloadMakesNoSecondKey(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/api-keys"),
		chromedp.WaitVisible(`#name`, chromedp.ByQuery),
		chromedp.SendKeys(`#name`, "reload-test", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Create key"]`),
		chromedp.WaitVisible(`#new-api-key`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	token := textOf(ctx, t, `#new-api-key`)
	var loc string
	if err := chromedp.Run(ctx, chromedp.Location(&loc)); err != nil || !strings.HasSuffix(loc, "/portal/api-keys") {
		t.Fatalf("after create at %q (%v), want the list page (redirect after POST)", loc, err)
	}
	var body string
	err = chromedp.Run(ctx, chromedp.Reload(), chromedp.WaitVisible(`//h1[text()="API keys"]`), chromedp.OuterHTML(`html`, &body, chromedp.ByQuery))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, token) {
		t.Fatal("the token is shown again after a reload")
	}
	if n := strings.Count(body, `<td data-label="Name">reload-test<`); n != 1 {
		t.Fatalf("%d keys named reload-test after a reload, want 1", n)
	}
}
