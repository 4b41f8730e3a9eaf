package hooks

import (
	"context"
	"strings"

	"latchkey/script"
)

// SetSMSScriptRef tells the service which TypeScript hook sends texts
// (REF of LATCHKEY_SMS_URL=script://REF; "" for none), so that "Run with
// a sample event" gives that hook a sample text rather than an event.
func (s *Service) SetSMSScriptRef(ref string) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		s.smsRef.Store(nil)
		return
	}
	s.smsRef.Store(&ref)
}

// IsSMSScript reports whether the hook with this ID is the one that sends
// texts.
func (s *Service) IsSMSScript(ctx context.Context, id string) bool {
	ref := s.smsRef.Load()
	if ref == nil {
		return false
	}
	sid, err := s.smsScriptID(ctx, *ref)
	return err == nil && sid == id
}

// sampleSMS is the made-up text "Run with a sample event" gives the
// custom SMS script: a new user's password text to a fictional number.
func sampleSMS(appID string) script.SMSPayload {
	return script.SMSPayload{To: "+14155550100", Body: "Your account is ready. Visit https://latchkey.example/login to sign in. Your user ID is +14155550100, password: Sample-Pa55word",
		AppID: appID, TemplateName: "new_user_sms.txt", LanguageTag: "en"}
}
