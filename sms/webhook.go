package sms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/hooks"
	"latchkey/mail"
)

// Webhook is the custom SMS provider: it POSTs the message as JSON to the
// operator's endpoint, which sends it however it likes. Requests are signed
// like Latchkey's webhooks: x-authgear-body-signature (hex HMAC-SHA256 of
// the body keyed with the secret string) and the Standard Webhooks headers
// webhook-id, webhook-timestamp and webhook-signature, using the exported
// signers of package hooks.
type Webhook struct {
	endpoint string
	appID    string
	// secret is LATCHKEY_SMS_WEBHOOK_SECRET as given (the body signature's
	// key); key is its Standard Webhooks key: the decoded bytes of a
	// "whsec_…" secret, or the string's bytes otherwise.
	secret string
	key    []byte
	client *http.Client
	// Now is the clock of the webhook-timestamp header.
	Now func() time.Time
}

// WebhookPayload is the JSON body, as the reference product sends it.
type WebhookPayload struct {
	To           string `json:"to"`
	Body         string `json:"body"`
	AppID        string `json:"app_id"`
	TemplateName string `json:"template_name"`
	LanguageTag  string `json:"language_tag"`
	MessageType  string `json:"message_type"`
}

func newWebhook(u *url.URL, cfg Config) (*Webhook, error) {
	scheme := strings.TrimPrefix(u.Scheme, "webhook+")
	if u.Hostname() == "" {
		return nil, fmt.Errorf("sms: the webhook URL has no host")
	}
	if scheme == "http" && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("sms: webhook+http:// is allowed only for a loopback host; use webhook+https:// for %q", u.Hostname())
	}
	if cfg.WebhookSecret == "" {
		return nil, fmt.Errorf("sms: a webhook SMS provider needs LATCHKEY_SMS_WEBHOOK_SECRET to sign its requests")
	}
	w := &Webhook{appID: cfg.AppID, secret: cfg.WebhookSecret, client: httpClient(cfg), Now: time.Now}
	if key, err := hooks.ParseSecret(cfg.WebhookSecret); err == nil && len(key) > 0 {
		w.key = key
	} else if strings.HasPrefix(cfg.WebhookSecret, "whsec_") {
		return nil, fmt.Errorf("sms: LATCHKEY_SMS_WEBHOOK_SECRET starts with whsec_ but the rest is not base64")
	} else {
		w.key = []byte(cfg.WebhookSecret)
	}
	target := *u
	target.Scheme = scheme
	w.endpoint = target.String()
	return w, nil
}

// messageType names a message kind for the payload.
func messageType(kind string) string {
	if kind == "" {
		return "sms"
	}
	return kind
}

// Send implements mail.Sender. Any 2xx is sent; any 4xx (408 and 429
// included) fails the text at once with the answer's text; 5xx, timeouts
// and refused connections are retried.
func (w *Webhook) Send(ctx context.Context, _ string, m mail.Message) error {
	body, err := json.Marshal(WebhookPayload{To: m.To, Body: m.Text, AppID: w.appID, TemplateName: messageType(m.Kind) + "_sms.txt",
		LanguageTag: "en", MessageType: messageType(m.Kind)})
	if err != nil {
		return &mail.PermanentError{Err: err}
	}
	req, err := http.NewRequest(http.MethodPost, w.endpoint, bytes.NewReader(body))
	if err != nil {
		return &mail.PermanentError{Err: err}
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	msgID, ts := "msg_"+hex.EncodeToString(id), w.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-SMS/1")
	req.Header.Set("x-authgear-body-signature", hooks.BodySignature(w.secret, body))
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", hooks.StandardSignature(w.key, msgID, ts, body))
	return send(ctx, w.client, req, func(status int, text string) string {
		s := "The SMS webhook answered " + strconv.Itoa(status)
		if text != "" {
			s += ": " + text
		}
		return s
	})
}
