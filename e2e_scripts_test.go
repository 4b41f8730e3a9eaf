package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestE2ETypeScriptHookStory is the guide's "or select TypeScript" story:
// an admin adds the guide's hook as a TypeScript hook in the portal, with
// its TODO replaced by a call to an SMS gateway, tries it with a sample
// event, then creates a phone-number user; the gateway is called with the
// new user's number, and the hook's page shows the delivery and its
// console output.
func TestE2ETypeScriptHookStory(t *testing.T) {
	ctx := newBrowser(t)
	var mu sync.Mutex
	var texts []map[string]string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		texts = append(texts, m)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer gw.Close()
	app := startApp(t, nil)

	guide, err := os.ReadFile("script/testdata/guide_hook.ts")
	if err != nil {
		t.Fatal(err)
	}
	code := strings.Replace(string(guide), "      // TODO Add code for sending a message to @new_user_phone_number here\n",
		`      console.log("texting", new_user_phone_number);
      await fetch("`+gw.URL+`/send", { method: "POST", body: JSON.stringify({ to: new_user_phone_number }) });
`, 1)

	var starter, tryText string
	err = chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Click(`//nav//a[text()="Hooks"]`),
		chromedp.WaitVisible(`//h1[text()="Hooks"]`),
		chromedp.Click(`//a[text()="TypeScript"]`),
		chromedp.WaitVisible(`//h1[text()="Add TypeScript hook"]`),
		chromedp.Value(`#script-code`, &starter, chromedp.ByQuery),
		chromedp.SendKeys(`#script-name`, "Text new users", chromedp.ByQuery),
		chromedp.SetValue(`#script-code`, code, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add TypeScript hook"]`),
		chromedp.WaitVisible(`//h1[text()="TypeScript hook: Text new users"]`),
		chromedp.Click(`//button[text()="Run with a sample event"]`),
		chromedp.WaitVisible(`#try-result`, chromedp.ByQuery),
		chromedp.Text(`#try-result`, &tryText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if starter != string(guide) {
		t.Errorf("the new-hook form does not start with the guide's hook:\n%s", starter)
	}
	if !strings.Contains(tryText, "Succeeded") || !strings.Contains(tryText, "log: texting +14155550100") {
		t.Errorf("sample run shows %q", tryText)
	}

	const phone = "+14155550123"
	err = chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/portal/users/new"),
		chromedp.WaitVisible(`//h1[text()="Create User"]`),
		chromedp.Click(`#kind-phone`, chromedp.ByQuery),
		chromedp.SendKeys(`#loginID`, phone, chromedp.ByQuery),
		chromedp.Click(`#mode-manual`, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, "Temp-Passw0rd-42", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add User"]`),
		chromedp.WaitVisible(`//h1[text()="`+phone+`"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(texts)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway got %d texts", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	got := append([]map[string]string{}, texts...)
	mu.Unlock()
	if len(got) != 2 || got[0]["to"] != "+14155550100" || got[1]["to"] != phone {
		t.Fatalf("gateway got %v, want the sample's number then %s", got, phone)
	}

	// The delivery is recorded just after the gateway answers: look until it shows.
	var logText string
	for deadline := time.Now().Add(10 * time.Second); ; {
		err = chromedp.Run(ctx,
			chromedp.Navigate(app.URL+"/portal/hooks"),
			chromedp.Click(`//a[text()="Text new users"]`),
			chromedp.WaitVisible(`//h1[text()="TypeScript hook: Text new users"]`),
			chromedp.Text(`main`, &logText, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logText, "Delivered") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logText, "user.created") || !strings.Contains(logText, "Delivered") ||
		!strings.Contains(logText, "log: texting "+phone) || !strings.Contains(logText, "Redeliver") {
		t.Errorf("delivery log shows %q", logText)
	}
}
