package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

// Text messages ride the same outbox as email: a row with channel "sms",
// sealed and wiped the same way, retried by the same worker, with sms.sent
// and sms.failed events. Only the rendering (mail/text.go) and the sender
// (package sms) differ.

// SetTextSender sets where text messages go (an SMS provider from package
// sms, or a DevMailbox). Call it before Start. Without one, texts stay
// queued until the give-up time and then fail.
func (o *Outbox) SetTextSender(s Sender) { o.texts = s }

// TextSender is where text messages go, or nil.
func (o *Outbox) TextSender() Sender { return o.texts }

// DevTexts returns the dev mailbox that keeps text messages when no SMS
// provider is configured, or nil.
func (o *Outbox) DevTexts() *DevMailbox {
	d, _ := o.texts.(*DevMailbox)
	return d
}

// errNoTextSender is what a text gets when no SMS sender is wired in.
var errNoTextSender = errors.New("mail: no SMS provider is configured (LATCHKEY_SMS_URL)")

type noTextSender struct{}

func (noTextSender) Send(context.Context, string, Message) error { return errNoTextSender }

// senderFor picks the sender of a row's channel.
func (o *Outbox) senderFor(m *store.OutboxMessage) Sender {
	if m.Channel != store.ChannelSMS {
		return o.sender
	}
	if o.texts == nil {
		return noTextSender{}
	}
	return o.texts
}

func sentEvent(channel string) string {
	if channel == store.ChannelSMS {
		return account.EventSMSSent
	}
	return account.EventEmailSent
}

func failedEvent(channel string) string {
	if channel == store.ChannelSMS {
		return account.EventSMSFailed
	}
	return account.EventEmailFailed
}

// textSubject labels a text in the outbox lists (a text has no subject;
// this says what it was, never what it said).
func textSubject(kind string) string {
	switch kind {
	case account.MailNewUser:
		return "Text message: new account password"
	case account.MailPasswordReset:
		return "Text message: password reset by an admin"
	case KindForgotPassword:
		return "Text message: password reset code"
	}
	return "Text message"
}

// validPhone accepts an E.164 number: "+" and 8 to 15 digits.
func validPhone(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	return strings.Trim(s[1:], "0123456789") == ""
}

// queueText writes a sealed text message with tx, like queue does for
// email. With refused set, nothing is queued: the row is recorded as
// failed with that reason and no secret, and sms.failed is recorded, so
// the admin sees why nothing arrived.
func (o *Outbox) queueText(ctx context.Context, tx *store.Tx, kind, userID, to, refused string, s sealed) error {
	if !validPhone(to) {
		return fmt.Errorf("mail: queue %s text: %q is not an E.164 phone number", kind, to)
	}
	now := o.Now()
	row := &store.OutboxMessage{UserID: userID, Kind: kind, Recipient: to, Subject: textSubject(kind), Channel: store.ChannelSMS,
		NextAttemptAt: now, CreatedAt: now}
	if refused != "" {
		row.LastError = refused
		if err := tx.InsertRefusedOutbox(ctx, row); err != nil {
			return fmt.Errorf("mail: record refused %s text: %w", kind, err)
		}
		return o.events.Record(ctx, tx, account.SystemActor, account.Event{Type: account.EventSMSFailed, UserID: userID,
			Payload: map[string]any{"message_id": row.ID, "kind": kind, "recipient": to, "attempts": 0, "error": refused}})
	}
	secret, err := o.seal(kind, userID, to, s)
	if err != nil {
		return fmt.Errorf("mail: queue %s text: %w", kind, err)
	}
	row.Secret = secret
	if err := tx.InsertOutbox(ctx, row); err != nil {
		return fmt.Errorf("mail: queue %s text: %w", kind, err)
	}
	return o.notify(ctx, tx)
}

// renderText builds a text message from its opened secret.
func (o *Outbox) renderText(m *store.OutboxMessage, s sealed) (Message, error) {
	msg := Message{To: m.Recipient, Subject: m.Subject, Kind: m.Kind}
	d := views.PasswordText{AppName: o.cfg.AppName, PublicURL: o.cfg.PublicURL, LoginID: s.LoginID, Password: s.Password, ValidDays: s.ValidDays}
	switch m.Kind {
	case account.MailNewUser:
		msg.Text = views.NewUserText(d)
	case account.MailPasswordReset:
		msg.Text = views.PasswordResetText(d)
	case KindForgotPassword:
		msg.Text = views.ForgotPasswordText(o.cfg.AppName, s.Code, int((s.CodeTTL+59)/60))
	default:
		return Message{}, fmt.Errorf("unknown text message kind %q", m.Kind)
	}
	return msg, nil
}
