// Package sms holds Latchkey's SMS providers: Twilio and a signed webhook,
// chosen by one URL (LATCHKEY_SMS_URL). Each provider is a mail.Sender, so
// text messages ride the same durable outbox and worker as email: the mail
// package renders a text into Message.Text and hands it to the provider of
// the row's channel.
//
// A provider reports a refusal that retrying cannot fix (a 4xx answer) as
// *mail.PermanentError with the provider's text, which the admin sees on
// the user page; anything else (5xx, timeouts, refused connections) is
// retried with backoff for 24 hours. The one 4xx that is retried is
// Twilio's 429 (its documented rate limiting); the webhook fails any 4xx
// at once, as the issue says.
package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"latchkey/mail"
)

// Config is what providers need besides their URL.
type Config struct {
	// AppID goes into the webhook payload's app_id.
	AppID string
	// WebhookSecret signs webhook requests (LATCHKEY_SMS_WEBHOOK_SECRET).
	WebhookSecret string
	// Timeout bounds one request (default 15s).
	Timeout time.Duration
	// MaxConns is how many connections to the provider are kept open
	// (default 8).
	MaxConns int
	// Schemes adds providers for more URL schemes: the seam for the
	// TypeScript custom-script provider ("script://…"), which the script
	// package supplies. Built-in schemes cannot be replaced.
	Schemes map[string]Opener
}

// Opener builds a provider from its LATCHKEY_SMS_URL.
type Opener func(u *url.URL, cfg Config) (mail.Sender, error)

// Open builds the provider LATCHKEY_SMS_URL names:
//
//	twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=%2B15551230000
//	twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?messaging_service_sid=MG…
//	webhook+https://sms.example.com/send
//	webhook+http://127.0.0.1:9000/send   (plain http for loopback hosts only)
//
// An empty URL returns nil: texts go to the dev mailbox.
func Open(raw string, cfg Config) (mail.Sender, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("sms: LATCHKEY_SMS_URL is not a URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	switch u.Scheme {
	case "twilio":
		return newTwilio(u, cfg)
	case "webhook+https", "webhook+http":
		return newWebhook(u, cfg)
	}
	if open, ok := cfg.Schemes[u.Scheme]; ok {
		return open(u, cfg)
	}
	if _, ok := cfg.Schemes["script"]; ok {
		return nil, fmt.Errorf("sms: LATCHKEY_SMS_URL must start with twilio://, webhook+https://, webhook+http:// (loopback only) or script:// (a TypeScript hook), not %q", u.Scheme+"://")
	}
	return nil, fmt.Errorf("sms: LATCHKEY_SMS_URL must start with twilio://, webhook+https:// or webhook+http:// (loopback only), not %q", u.Scheme+"://")
}

// IsLoopback reports whether host (no port) is this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient is a client that keeps cfg.MaxConns connections to the
// provider open and never follows redirects (a provider that redirects
// is misconfigured, and the request carries credentials).
func httpClient(cfg Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.MaxConns
	tr.MaxConnsPerHost = cfg.MaxConns
	return &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// answerText reads at most 2 KiB of a provider's answer, for the error an
// admin sees.
func answerText(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 2048))
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if utf8.RuneCountInString(s) > 300 {
		s = string([]rune(s)[:300]) + "…"
	}
	return s
}

// classify turns a provider's answer status into the outbox's error kinds:
// 2xx is nil; 5xx is temporary; a 4xx (and 3xx) is permanent, except the
// statuses in retry (a provider's documented "ask again later").
func classify(status int, what string, retry ...int) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status >= 500:
		return fmt.Errorf("%s", what)
	}
	for _, r := range retry {
		if status == r {
			return fmt.Errorf("%s", what)
		}
	}
	return &mail.PermanentError{Err: fmt.Errorf("%s", what)}
}

// send posts req and classifies the answer; describe turns the status and
// body into the words an admin sees; retry lists the 4xx statuses that are
// temporary for this provider.
func send(ctx context.Context, c *http.Client, req *http.Request, describe func(status int, body string) string, retry ...int) error {
	res, err := c.Do(req.WithContext(ctx))
	if err != nil {
		// The URL may carry credentials; the admin sees the network error only.
		var ue *url.Error
		timeout := errors.Is(err, context.DeadlineExceeded)
		if errors.As(err, &ue) {
			timeout = timeout || ue.Timeout()
			err = ue.Err
		}
		if timeout {
			return fmt.Errorf("sms: timeout: the SMS provider did not answer in time: %w", err)
		}
		return fmt.Errorf("sms: %w", err)
	}
	defer res.Body.Close()
	body := answerText(res.Body)
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection be reused
	return classify(res.StatusCode, describe(res.StatusCode, body), retry...)
}
