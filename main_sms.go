package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/mail"
	"latchkey/sms"
)

// smsConfig is the SMS part of the configuration.
type smsConfig struct {
	// URL picks the provider (LATCHKEY_SMS_URL); empty: the dev mailbox.
	URL string
	// Provider is the configuration sms.Open gets with URL.
	Provider sms.Config
	// Limits are the abuse limits (LATCHKEY_SMS_DAILY_LIMIT,
	// LATCHKEY_SMS_COUNTRY_LIMITS, LATCHKEY_SMS_IP_HOURLY_LIMIT,
	// LATCHKEY_SMS_PHONE_HOURLY_LIMIT, LATCHKEY_SMS_PHONE_DAILY_LIMIT).
	Limits account.SMSLimits
}

// smsSchemes are the SMS providers beyond the built-in ones, by URL
// scheme, as the configuration checks them: "script://HOOK" (the
// TypeScript custom-script provider) is checked for its shape here and
// bound to the hooks service by smsSchemesWith once that exists.
var smsSchemes = map[string]sms.Opener{"script": sms.ScriptOpener(nil)}

// smsSchemesWith is smsSchemes with the custom-script provider bound to
// the hooks service that finds and runs the TypeScript hook.
func smsSchemesWith(hk *hooks.Service) map[string]sms.Opener {
	m := map[string]sms.Opener{}
	for k, v := range smsSchemes {
		m[k] = v
	}
	m["script"] = sms.ScriptOpener(hk)
	return m
}

// smsScriptRef is the TypeScript hook that sends texts
// (LATCHKEY_SMS_URL=script://REF), "" when texts go another way.
func smsScriptRef(c smsConfig) string {
	p, err := sms.Open(c.URL, c.Provider)
	if sc, ok := p.(*sms.Script); ok && err == nil {
		return sc.Ref()
	}
	return ""
}

func loadSMSConfig(getenv func(string) string, appID string) (smsConfig, error) {
	c := smsConfig{URL: strings.TrimSpace(getenv("LATCHKEY_SMS_URL")),
		Provider: sms.Config{AppID: appID, WebhookSecret: strings.TrimSpace(getenv("LATCHKEY_SMS_WEBHOOK_SECRET")), Schemes: smsSchemes}}
	ints := []struct {
		env string
		v   *int
	}{
		{"LATCHKEY_SMS_DAILY_LIMIT", &c.Limits.DailyTotal},
		{"LATCHKEY_SMS_IP_HOURLY_LIMIT", &c.Limits.PerIPHour},
		{"LATCHKEY_SMS_PHONE_HOURLY_LIMIT", &c.Limits.PerPhoneHour},
		{"LATCHKEY_SMS_PHONE_DAILY_LIMIT", &c.Limits.PerPhoneDay},
	}
	for _, f := range ints {
		raw := strings.TrimSpace(getenv(f.env))
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return c, fmt.Errorf("%s must be a whole number (0 for the default)", f.env)
		}
		*f.v = n
	}
	var err error
	if c.Limits.PerCountryDay, err = parseCountryLimits(getenv("LATCHKEY_SMS_COUNTRY_LIMITS")); err != nil {
		return c, err
	}
	// Build the provider once to report a bad URL at start, not at the first text.
	if _, err := sms.Open(c.URL, c.Provider); err != nil {
		return c, err
	}
	return c, nil
}

// parseCountryLimits reads "1=500,44=50,*=20": daily caps per country
// calling code, "*" for the codes not listed.
func parseCountryLimits(raw string) (map[string]int, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	out := map[string]int{}
	for _, part := range strings.Split(raw, ",") {
		code, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		code = strings.TrimPrefix(strings.TrimSpace(code), "+")
		limit, err := strconv.Atoi(strings.TrimSpace(n))
		if _, cerr := strconv.Atoi(code); !ok || err != nil || limit < 0 || (code != "*" && (cerr != nil || len(code) > 3)) {
			return nil, fmt.Errorf("LATCHKEY_SMS_COUNTRY_LIMITS must look like 1=500,44=50,*=20 (calling code = texts a day), not %q", part)
		}
		out[code] = limit
	}
	return out, nil
}

// setTextSender wires the SMS provider into the outbox, or the dev
// mailbox's "Text messages" tab when LATCHKEY_SMS_URL is unset.
func setTextSender(outbox *mail.Outbox, cfg config, log *slog.Logger) error {
	p, err := sms.Open(cfg.SMS.URL, cfg.SMS.Provider)
	if err != nil {
		return err
	}
	if p == nil {
		log.Warn("SMS is not configured (LATCHKEY_SMS_URL): text messages go to the dev mailbox at /portal/mail?tab=texts")
		outbox.SetTextSender(mail.NewDevMailbox(0))
		return nil
	}
	if sc, ok := p.(*sms.Script); ok {
		// The hook may not exist yet (it is added in the portal, which
		// needs the server running): say so now; texts wait in the queue.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sc.Check(ctx); err != nil {
			log.Error("SMS: texts will wait in the queue until the custom SMS script exists", "err", err)
		} else {
			log.Info("SMS: texts are sent by the TypeScript hook " + sc.Ref())
		}
	}
	outbox.SetTextSender(p)
	return nil
}
