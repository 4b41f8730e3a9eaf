package sms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"latchkey/mail"
	"latchkey/sms"
	"latchkey/sms/smstest"
)

func TestOpenURLs(t *testing.T) {
	cfg := sms.Config{WebhookSecret: smstest.Secret}
	if s, err := sms.Open("", cfg); s != nil || err != nil {
		t.Fatalf("empty URL: %v, %v; want the dev mailbox (nil, nil)", s, err)
	}
	bad := map[string]string{
		"http://sms.example.com":                                                 "must start with",
		"webhook+http://sms.example.com/send":                                    "loopback",
		"webhook+https:///send":                                                  "no host",
		"twilio://api.twilio.com?from=%2B15551230000":                            "ACCOUNT_SID:AUTH_TOKEN",
		"twilio://AC1:tok@api.twilio.com":                                        "exactly one of",
		"twilio://AC1:tok@api.twilio.com?from=%2B1555&messaging_service_sid=MG1": "exactly one of",
		"twilio://AC1:tok@api.twilio.com?from=%2B1555&tls=none":                  "loopback",
		"twilio://AC1:tok@127.0.0.1:9?from=%2B1555&tls=sometimes":                "tls may only be none",
	}
	for raw, want := range bad {
		if _, err := sms.Open(raw, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", raw, err, want)
		}
	}
	if _, err := sms.Open("webhook+https://sms.example.com/send", sms.Config{}); err == nil || !strings.Contains(err.Error(), "LATCHKEY_SMS_WEBHOOK_SECRET") {
		t.Errorf("webhook without a secret: %v", err)
	}
	if _, err := sms.Open("webhook+https://sms.example.com/send", sms.Config{WebhookSecret: "whsec_!!notbase64"}); err == nil {
		t.Error("a whsec_ secret that is not base64 was accepted")
	}
	for _, ok := range []string{"webhook+https://sms.example.com/send", "webhook+http://127.0.0.1:9000/send", "webhook+http://localhost/send",
		"twilio://AC1:tok@api.twilio.com?from=%2B15551230000", "twilio://AC1:tok@api.twilio.com?messaging_service_sid=MG1",
		"twilio://AC1:tok@[::1]:8080?from=%2B15551230000&tls=none"} {
		if s, err := sms.Open(ok, cfg); err != nil || s == nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// The script seam: a scheme the caller supplies.
	called := false
	cfg.Schemes = map[string]sms.Opener{"script": func(u *url.URL, c sms.Config) (mail.Sender, error) {
		called = true
		return nil, errors.New("not built")
	}}
	if _, err := sms.Open("script:///etc/latchkey/sms.ts", cfg); err == nil || !called {
		t.Errorf("custom scheme not used: %v", err)
	}
}

func open(t *testing.T, raw string) mail.Sender {
	t.Helper()
	s, err := sms.Open(raw, sms.Config{AppID: "acme", WebhookSecret: smstest.Secret, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTwilioSends(t *testing.T) {
	srv := smstest.StartTwilio(t)
	s := open(t, srv.TwilioURL())
	ctx := context.Background()
	if err := s.Send(ctx, "", mail.Message{To: "+14155550100", Text: "Hello from Acme", Kind: "new_user"}); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitFor(1, 5*time.Second)[0]
	if m.To != "+14155550100" || m.Body != "Hello from Acme" || m.Form.Get("From") != smstest.TwilioFrom {
		t.Fatalf("Twilio got %+v", m)
	}
	// A messaging service instead of a number.
	svc := open(t, strings.Replace(srv.TwilioURL(), "from=%2B15551230000", "messaging_service_sid=MG42", 1))
	if err := svc.Send(ctx, "", mail.Message{To: "+14155550101", Text: "via service"}); err != nil {
		t.Fatal(err)
	}
	if m := srv.WaitFor(2, 5*time.Second)[1]; m.Form.Get("MessagingServiceSid") != "MG42" || m.Form.Get("From") != "" {
		t.Fatalf("service form %v", m.Form)
	}
	// Wrong credentials: Twilio says 401, which no retry fixes.
	wrong := open(t, strings.Replace(srv.TwilioURL(), smstest.TwilioToken, "wrong", 1))
	if err := wrong.Send(ctx, "", mail.Message{To: "+14155550100", Text: "x"}); !mail.IsPermanent(err) {
		t.Errorf("wrong token: %v, want a permanent error", err)
	}
	// A refusal keeps Twilio's words; 5xx and 429 (Twilio's documented
	// rate limiting) are temporary; any other 4xx, 408 too, is not.
	srv.Answer(http.StatusBadRequest, `{"code": 21211, "message": "The 'To' number +14155550100 is not a valid phone number.", "status": 400}`)
	err := s.Send(ctx, "", mail.Message{To: "+14155550100", Text: "x"})
	if !mail.IsPermanent(err) || !strings.Contains(err.Error(), "is not a valid phone number") || !strings.Contains(err.Error(), "21211") {
		t.Errorf("400: %v", err)
	}
	srv.Answer(http.StatusRequestTimeout, "slow")
	if err := s.Send(ctx, "", mail.Message{To: "+14155550100", Text: "x"}); !mail.IsPermanent(err) || !strings.Contains(err.Error(), "408: slow") {
		t.Errorf("408: %v, want a permanent error with the answer", err)
	}
	srv.Answer(http.StatusTooManyRequests, `{"code": 20429, "message": "Too Many Requests", "status": 429}`)
	if err := s.Send(ctx, "", mail.Message{To: "+14155550100", Text: "x"}); err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "Too Many Requests (error 20429)") {
		t.Errorf("429: %v, want a temporary error with Twilio's words", err)
	}
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError} {
		srv.Answer(status, "busy")
		if err := s.Send(ctx, "", mail.Message{To: "+14155550100", Text: "x"}); err == nil || mail.IsPermanent(err) {
			t.Errorf("%d: %v, want a temporary error", status, err)
		}
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d texts accepted, want 2", n)
	}
}

func TestWebhookSignsBothWays(t *testing.T) {
	srv := smstest.StartWebhook(t)
	s := open(t, srv.WebhookURL())
	ctx := context.Background()
	if err := s.Send(ctx, "", mail.Message{To: "+442071838750", Text: "123456 is your code", Kind: "forgot_password"}); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitFor(1, 5*time.Second)[0]
	want := sms.WebhookPayload{To: "+442071838750", Body: "123456 is your code", AppID: "acme", TemplateName: "forgot_password_sms.txt",
		LanguageTag: "en", MessageType: "forgot_password"}
	if m.Payload != want {
		t.Fatalf("payload %+v, want %+v", m.Payload, want)
	}
	// Signed with another secret: the receiver refuses (401), a permanent failure.
	other, err := sms.Open(srv.WebhookURL(), sms.Config{WebhookSecret: "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci0="})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Send(ctx, "", mail.Message{To: "+442071838750", Text: "x"}); !mail.IsPermanent(err) || srv.BadSignatures() != 1 {
		t.Errorf("wrong secret: %v (bad signatures %d)", err, srv.BadSignatures())
	}
	// Any 4xx fails at once with the answer's text (408 and 429 too: the
	// issue says any 4xx); 5xx, refused connections are temporary.
	for status, text := range map[int]string{http.StatusUnprocessableEntity: "number is on the block list",
		http.StatusRequestTimeout: "gateway gave up waiting", http.StatusTooManyRequests: "quota for today used up"} {
		srv.Answer(status, text)
		before := srv.Requests()
		err := s.Send(ctx, "", mail.Message{To: "+442071838750", Text: "x"})
		if !mail.IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprintf("The SMS webhook answered %d: %s", status, text)) {
			t.Errorf("%d: %v, want a permanent error with the answer's text", status, err)
		}
		if srv.Requests() != before+1 {
			t.Errorf("%d: %d requests, want 1", status, srv.Requests()-before)
		}
	}
	srv.Answer(http.StatusBadGateway, "")
	if err := s.Send(ctx, "", mail.Message{To: "+442071838750", Text: "x"}); err == nil || mail.IsPermanent(err) {
		t.Errorf("502: %v", err)
	}
	srv.Stop()
	err = s.Send(ctx, "", mail.Message{To: "+442071838750", Text: "x"})
	if err == nil || mail.IsPermanent(err) || strings.Contains(err.Error(), "/sms") {
		t.Errorf("refused connection: %v, want a temporary error without the URL", err)
	}
}

// TestWebhookTimeout: a provider that accepts the connection and never
// answers is given up on after the configured timeout, as a temporary
// failure whose words say it timed out (and carry no URL).
func TestWebhookTimeout(t *testing.T) {
	srv := smstest.StartWebhook(t)
	srv.Hang(true)
	s, err := sms.Open(srv.WebhookURL(), sms.Config{WebhookSecret: smstest.Secret, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), "", mail.Message{To: "+442071838750", Text: "x"})
	if err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "/sms") {
		t.Fatalf("hanging provider: %v, want a temporary timeout error without the URL", err)
	}
	// The caller's deadline (the outbox's send timeout) says timeout too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	long, err := sms.Open(srv.WebhookURL(), sms.Config{WebhookSecret: smstest.Secret, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := long.Send(ctx, "", mail.Message{To: "+442071838750", Text: "x"}); err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("context deadline: %v", err)
	}
	srv.Hang(false)
	if err := s.Send(context.Background(), "", mail.Message{To: "+442071838750", Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if m := srv.MessageTo("+442071838750", 5*time.Second); m.Body != "after" {
		t.Fatalf("text %q", m.Body)
	}
}
