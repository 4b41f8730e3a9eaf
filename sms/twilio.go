package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"latchkey/mail"
)

// Twilio sends through Twilio's Messages API: a form POST to
// /2010-04-01/Accounts/{AccountSid}/Messages.json with To, Body and From
// (or MessagingServiceSid), authenticated with the account SID and auth
// token (HTTP basic auth).
type Twilio struct {
	endpoint           string
	sid, token         string
	from, messagingSvc string
	client             *http.Client
}

// newTwilio reads twilio://SID:TOKEN@host?from=…|messaging_service_sid=…[&tls=none].
// The host is part of the URL so tests (and proxies) can stand in for
// api.twilio.com; tls=none is allowed for loopback hosts only.
func newTwilio(u *url.URL, cfg Config) (*Twilio, error) {
	t := &Twilio{client: httpClient(cfg)}
	if u.User != nil {
		t.sid = u.User.Username()
		t.token, _ = u.User.Password()
	}
	if t.sid == "" || t.token == "" {
		return nil, fmt.Errorf("sms: a twilio:// URL needs ACCOUNT_SID:AUTH_TOKEN@ before the host")
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("sms: a twilio:// URL needs a host, like api.twilio.com")
	}
	q := u.Query()
	t.from, t.messagingSvc = q.Get("from"), q.Get("messaging_service_sid")
	if (t.from == "") == (t.messagingSvc == "") {
		return nil, fmt.Errorf("sms: a twilio:// URL needs exactly one of from=+15551230000 or messaging_service_sid=MG…")
	}
	scheme := "https"
	switch q.Get("tls") {
	case "":
	case "none":
		if !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("sms: tls=none is allowed only for a loopback host, not %q", u.Hostname())
		}
		scheme = "http"
	default:
		return nil, fmt.Errorf("sms: a twilio:// URL's tls may only be none")
	}
	t.endpoint = scheme + "://" + u.Host + "/2010-04-01/Accounts/" + url.PathEscape(t.sid) + "/Messages.json"
	return t, nil
}

// Send implements mail.Sender: m.To is the E.164 number and m.Text the body.
func (t *Twilio) Send(ctx context.Context, _ string, m mail.Message) error {
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if t.from != "" {
		form.Set("From", t.from)
	} else {
		form.Set("MessagingServiceSid", t.messagingSvc)
	}
	req, err := http.NewRequest(http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &mail.PermanentError{Err: err}
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// 429 is Twilio's rate limiting ("Too Many Requests", error 20429):
	// documented as "try again later", so it is retried like a 5xx.
	return send(ctx, t.client, req, twilioError, http.StatusTooManyRequests)
}

// twilioError words a Twilio answer: its JSON error's message and code
// when it has one ({"code": 21211, "message": "…", "status": 400}).
func twilioError(status int, body string) string {
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Message != "" {
		s := "Twilio answered " + strconv.Itoa(status) + ": " + e.Message
		if e.Code != 0 {
			s += " (error " + strconv.Itoa(e.Code) + ")"
		}
		return s
	}
	if body == "" {
		return "Twilio answered " + strconv.Itoa(status)
	}
	return "Twilio answered " + strconv.Itoa(status) + ": " + body
}
