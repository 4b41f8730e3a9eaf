package sms

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"latchkey/mail"
	"latchkey/script"
)

// ScriptHooks is what the custom-script provider needs from package hooks:
// the saved TypeScript hook a reference names, and the engine that runs
// hooks (whose fetch obeys the outbound-address policy).
type ScriptHooks interface {
	SMSScript(ctx context.Context, ref string) (*script.Compiled, string, time.Duration, error)
	Scripts() *script.Engine
}

// Script is the custom-script SMS provider (the reference product's
// "Custom Script"): a TypeScript hook, saved in the portal, whose default
// export receives {to, body, app_id, template_name, language_tag} and
// sends the text itself with fetch. A throw, a timeout or an answer
// {code: "…"} other than "ok" fails the send, which the outbox retries
// with backoff for 24 hours like any text. A run's time limit is the
// hook's timeout, at most 30 s (script.SMSTimeout).
type Script struct {
	ref   string
	appID string
	h     ScriptHooks
}

// ScriptOpener opens "script://HOOK" URLs: HOOK is the TypeScript hook's
// ID or its name (escape a space as %20). With h nil the URL is only
// checked (configuration is read before the hooks service exists).
func ScriptOpener(h ScriptHooks) Opener {
	return func(u *url.URL, cfg Config) (mail.Sender, error) {
		ref := u.Opaque
		if ref == "" {
			ref = u.Host + strings.TrimSuffix(u.Path, "/")
		}
		if r, err := url.PathUnescape(ref); err == nil {
			ref = r
		}
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return nil, fmt.Errorf("sms: script:// needs the TypeScript hook's name or ID, e.g. script://sms-gateway")
		}
		return &Script{ref: ref, appID: cfg.AppID, h: h}, nil
	}
}

// Ref is the hook the provider runs, as LATCHKEY_SMS_URL names it.
func (s *Script) Ref() string { return s.ref }

// Check reports whether the hook exists, for a clear message at start.
func (s *Script) Check(ctx context.Context) error {
	if s.h == nil {
		return errors.New("sms: the custom SMS script has no hooks service")
	}
	_, _, _, err := s.h.SMSScript(ctx, s.ref)
	return err
}

// Send implements mail.Sender: it runs the hook with the text. A missing
// hook is a temporary failure too, so texts queued before the admin adds
// it go out once it exists.
func (s *Script) Send(ctx context.Context, _ string, m mail.Message) error {
	if s.h == nil {
		return errors.New("sms: the custom SMS script has no hooks service")
	}
	c, name, timeout, err := s.h.SMSScript(ctx, s.ref)
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	err = s.h.Scripts().RunSMSWithin(ctx, c, script.SMSPayload{To: m.To, Body: m.Text, AppID: s.appID,
		TemplateName: messageType(m.Kind) + "_sms.txt", LanguageTag: "en"}, timeout)
	if err == nil {
		return nil
	}
	var re *script.RunError
	if errors.As(err, &re) {
		return fmt.Errorf("The SMS script %q failed: %s", name, re.Message)
	}
	return fmt.Errorf("The SMS script %q failed: %s", name, strings.TrimPrefix(err.Error(), "script: sms: "))
}
