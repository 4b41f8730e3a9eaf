package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestE2EWebhookDeleteAsksFirst: deleting a webhook asks for confirmation;
// dismissing keeps it, accepting deletes it.
func TestE2EWebhookDeleteAsksFirst(t *testing.T) {
	ctx := newBrowser(t)
	app := startApp(t, nil)
	const url = "http://127.0.0.1:9/confirm-hook"
	var accept atomic.Bool
	var asked atomic.Int32
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			asked.Add(1)
			go func(ok bool) {
				_ = chromedp.Run(ctx, page.HandleJavaScriptDialog(ok))
			}(accept.Load())
		}
	})
	hookPage := chromedp.Tasks{
		chromedp.Navigate(app.URL + "/portal/hooks"),
		chromedp.Click(`//a[text()="` + url + `"]`),
		chromedp.WaitVisible(`//button[text()="Delete"]`),
	}
	err := chromedp.Run(ctx,
		portalSignIn(app),
		chromedp.Navigate(app.URL+"/portal/hooks"),
		chromedp.SendKeys(`#url`, url, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Add webhook"]`),
		chromedp.WaitVisible(`#signing-secret`, chromedp.ByQuery),
		hookPage,
		chromedp.Click(`//button[text()="Delete"]`),
		chromedp.Sleep(500e6),
		chromedp.Navigate(app.URL+"/portal/hooks"),
		chromedp.WaitVisible(`//h1[text()="Hooks"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("confirmation asked %d times, want 1", n)
	}
	if body := bodyText(ctx, t); !strings.Contains(body, url) {
		t.Fatal("dismissing the confirmation deleted the webhook")
	}
	accept.Store(true)
	err = chromedp.Run(ctx,
		hookPage,
		chromedp.Click(`//button[text()="Delete"]`),
		chromedp.WaitVisible(`//h1[text()="Hooks"]`),
		chromedp.Sleep(300e6),
	)
	if err != nil {
		t.Fatal(err)
	}
	if body := bodyText(ctx, t); strings.Contains(body, url) {
		t.Fatal("accepting the confirmation did not delete the webhook")
	}
}

func bodyText(ctx context.Context, t *testing.T) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Text(`body`, &s, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	return s
}
