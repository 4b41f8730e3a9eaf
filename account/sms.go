package account

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nyaruka/phonenumbers"

	"latchkey/store"
)

// SMS events, recorded by the outbox worker like email.sent / email.failed
// (never with the message body).
const (
	EventSMSSent   = "sms.sent"
	EventSMSFailed = "sms.failed"
)

// Error reasons of the SMS features.
const (
	// ReasonSMSLimitExceeded: an abuse limit refused a text message.
	ReasonSMSLimitExceeded = "SMSLimitExceeded"
	// ReasonNoRecoveryTarget: forgot password for an account with no email
	// and no phone to send a code to.
	ReasonNoRecoveryTarget = "NoRecoveryTarget"
)

// SMSLimits are the abuse limits on text messages (SMS costs money, and
// SMS pumping is a known fraud). Zero means the default; a negative value
// turns a limit off.
type SMSLimits struct {
	// PerPhoneHour and PerPhoneDay cap texts to one number (default 3 and 10).
	PerPhoneHour int
	PerPhoneDay  int
	// PerIPHour caps texts a client IP can cause in an hour (default 10).
	// It applies to what strangers can trigger (forgot password), not to
	// admins and API keys.
	PerIPHour int
	// DailyTotal caps all texts in 24 hours (LATCHKEY_SMS_DAILY_LIMIT,
	// default 1000).
	DailyTotal int
	// PerCountryDay caps texts per country calling code in 24 hours
	// (LATCHKEY_SMS_COUNTRY_LIMITS, like "1=500,44=50,*=20"); "*" applies
	// to codes not listed. Empty: only DailyTotal.
	PerCountryDay map[string]int
}

func (l SMSLimits) withDefaults() SMSLimits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.PerPhoneHour, 3)
	def(&l.PerPhoneDay, 10)
	def(&l.PerIPHour, 10)
	def(&l.DailyTotal, 1000)
	return l
}

// CallingCode is the country calling code of an E.164 number ("1", "44"),
// or "" when it cannot be parsed.
func CallingCode(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil || n.GetCountryCode() == 0 {
		return ""
	}
	return strconv.Itoa(int(n.GetCountryCode()))
}

func smsRefused(msg string) *Error {
	return &Error{Name: "TooManyRequest", Reason: ReasonSMSLimitExceeded, Message: msg}
}

// The limits' names in the sms_refusals rows.
const (
	SMSLimitPhoneHour  = "phone_hour"
	SMSLimitPhoneDay   = "phone_day"
	SMSLimitIPHour     = "ip_hour"
	SMSLimitCountryDay = "country_day"
	SMSLimitDailyTotal = "daily_total"
)

// smsRefusal is an abuse limit refusing a text: Err for the person who
// asked, Limit and Note (like "3 texts an hour limit for this number
// reached") for the admin.
type smsRefusal struct {
	Err   *Error
	Limit string
	Note  string
}

// reserveSMS checks the abuse limits for one more text to phone and, when
// they allow it, counts it. It runs in the transaction that queues the
// text, so two requests cannot both take the last one. ip is the client
// of an anonymous request ("" for admins and API keys). A refusal comes
// back with an *Error (ReasonSMSLimitExceeded, a message for people) and
// the limit that refused.
func (s *Service) reserveSMS(ctx context.Context, tx *store.Tx, phone, ip string) (*smsRefusal, error) {
	l := s.cfg.SMS.withDefaults()
	code := CallingCode(phone)
	now := s.Now()
	c, err := tx.CountSMSSends(ctx, phone, ip, code, now)
	if err != nil {
		return nil, err
	}
	over := func(n, limit int) bool { return limit > 0 && n >= limit }
	countryLimit, ok := l.PerCountryDay[code]
	if !ok {
		countryLimit = l.PerCountryDay["*"]
	}
	texts := func(n int) string {
		if n == 1 {
			return "1 text"
		}
		return strconv.Itoa(n) + " texts"
	}
	switch {
	case over(c.PhoneHour, l.PerPhoneHour):
		return &smsRefusal{smsRefused(fmt.Sprintf("Too many text messages were sent to this phone number in the last hour (at most %d). Try again in an hour.", l.PerPhoneHour)),
			SMSLimitPhoneHour, texts(l.PerPhoneHour) + " an hour limit for this number reached"}, nil
	case over(c.PhoneDay, l.PerPhoneDay):
		return &smsRefusal{smsRefused(fmt.Sprintf("Too many text messages were sent to this phone number today (at most %d in 24 hours). Try again tomorrow.", l.PerPhoneDay)),
			SMSLimitPhoneDay, texts(l.PerPhoneDay) + " a day limit for this number reached"}, nil
	case ip != "" && over(c.IPHour, l.PerIPHour):
		return &smsRefusal{smsRefused(fmt.Sprintf("Too many text messages were asked for from your network in the last hour (at most %d). Try again later.", l.PerIPHour)),
			SMSLimitIPHour, texts(l.PerIPHour) + " an hour limit for the asking IP address (" + ip + ") reached"}, nil
	case over(c.CountryDay, countryLimit):
		return &smsRefusal{smsRefused(fmt.Sprintf("The daily limit of text messages to +%s numbers (%d) has been reached. Try again tomorrow, or contact an administrator.", code, countryLimit)),
			SMSLimitCountryDay, texts(countryLimit) + " a day limit for +" + code + " numbers (LATCHKEY_SMS_COUNTRY_LIMITS) reached"}, nil
	case over(c.GlobalDay, l.DailyTotal):
		return &smsRefusal{smsRefused(fmt.Sprintf("The daily limit of text messages (%d) has been reached. Try again tomorrow, or contact an administrator.", l.DailyTotal)),
			SMSLimitDailyTotal, texts(l.DailyTotal) + " a day limit for all texts (LATCHKEY_SMS_DAILY_LIMIT) reached"}, nil
	}
	return nil, tx.InsertSMSSend(ctx, store.SMSSend{Phone: phone, CallingCode: code, IP: ip, At: now})
}

// recordSMSRefusal keeps a refused forgot-password text for the user page.
// It coalesces (one row per user, limit and hour), so a stranger who keeps
// asking adds to a count, not to the database.
func (s *Service) recordSMSRefusal(ctx context.Context, tx *store.Tx, userID, phone string, r *smsRefusal) error {
	return tx.RecordSMSRefusal(ctx, store.SMSRefusal{UserID: userID, Limit: r.Limit, Phone: phone, Reason: r.Note, LastAt: s.Now()})
}

// queuePasswordText queues a password text to m.To inside tx. When an
// abuse limit refuses it, nothing is queued: the mailer records the
// refusal as a failed message with the reason, so the admin sees on the
// user page why nothing arrived, and the change itself still commits.
func (s *Service) queuePasswordText(ctx context.Context, tx *store.Tx, m PasswordMail) error {
	refused, err := s.reserveSMS(ctx, tx, m.To, "")
	if err != nil {
		return err
	}
	m.Channel = store.ChannelSMS
	if refused != nil {
		m.Refused = "Not sent: " + refused.Err.Message
		s.log.Warn("password text refused by an SMS limit", "user_id", m.UserID, "limit", refused.Limit)
	}
	if m.MustChange {
		m.ValidDays = s.Policy().TemporaryExpiryDays
	}
	return s.queuePassword(ctx, tx, m)
}

// passwordTarget picks where an admin-set password goes: channel "" means
// the user's email when they have one, else their phone; "email" and
// "sms" insist. ok is false when the user has no such target.
func passwordTarget(u *User, channel string) (ch, to string, ok bool) {
	switch {
	case (channel == "" || channel == store.ChannelEmail) && u.Email() != "":
		return store.ChannelEmail, u.Email(), true
	case (channel == "" || channel == store.ChannelSMS) && u.Phone() != "":
		return store.ChannelSMS, u.Phone(), true
	}
	return "", "", false
}

// forgotTarget picks where a forgot-password code goes: the phone number
// when that is what the person typed, else the account's email, else its
// phone. to is "" for an account with neither (a username-only account).
func forgotTarget(u *User, typed LoginID) (to, channel string) {
	switch {
	case typed.Kind == KindPhone:
		return typed.Value, store.ChannelSMS
	case u.Email() != "":
		return u.Email(), ""
	case u.Phone() != "":
		return u.Phone(), store.ChannelSMS
	}
	return "", ""
}

func noRecoveryTarget() *Error {
	return &Error{Name: "Invalid", Reason: ReasonNoRecoveryTarget, Field: "login_id",
		Message: "This account has no email address or phone number to send a code to. Contact an administrator to reset your password."}
}
