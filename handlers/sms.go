package handlers

import (
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/store"
	"latchkey/views"
)

// passwordSentFlash words the flash after a password was sent: where it
// is going, or, when an SMS abuse limit refused the text, that it was not
// sent and why (the user page shows the same reason).
func (s *Server) passwordSentFlash(c echo.Context, u *account.User, done string) (kind, msg string) {
	msgs, err := s.store.OutboxByUser(c.Request().Context(), u.ID, 1)
	if err != nil || len(msgs) == 0 {
		// No outbox row to read (a test's recording mailer): name the target.
		to := u.Email()
		if to == "" {
			to = u.Phone()
		}
		return "success", done + " The password is on its way to " + to + "."
	}
	m := msgs[0]
	if m.Status == store.OutboxFailed && m.Attempts == 0 {
		return "error", done + " The password text was not sent. " + m.LastError + " Reset the password later to send a new one."
	}
	if m.Channel == store.ChannelSMS {
		return "success", done + " The password is on its way by text message to " + m.Recipient + "."
	}
	return "success", done + " The password is on its way to " + m.Recipient + "."
}

// devTexts is the dev mailbox that keeps text messages when no SMS
// provider is configured, or nil.
func (s *Server) devTexts() *mail.DevMailbox {
	if s.cfg.Mail == nil {
		return nil
	}
	return s.cfg.Mail.DevTexts()
}

// devTextsIndex is /portal/mail?tab=texts: the text messages the dev
// mailbox kept, newest first, with their bodies (the page is for
// development; nothing here is stored).
func (s *Server) devTextsIndex(c echo.Context) error {
	box := s.devTexts()
	if box == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Text messages go to the SMS provider (LATCHKEY_SMS_URL), not to the dev mailbox.")
	}
	p := views.MailPage{PerInstance: s.store.Postgres(), DevMailbox: s.devMailbox() != nil, DevTexts: true, Tab: "texts"}
	for _, m := range box.List() {
		p.Texts = append(p.Texts, views.DevTextRow{ID: m.ID, To: m.To, Body: m.Text, At: m.At})
	}
	return render(c, http.StatusOK, views.MailIndex(s.layout(c, "Mail", "mail"), p))
}

// forgotRefusal words the forgot-password answers that are not a typo:
// an account with nowhere to send a code (422), and an SMS abuse limit
// (429). msg is "" for anything else.
func forgotRefusal(err error) (status int, msg string) {
	e, ok := account.AsError(err)
	if !ok {
		return 0, ""
	}
	switch e.Reason {
	case account.ReasonNoRecoveryTarget:
		return http.StatusUnprocessableEntity, e.Message
	case account.ReasonSMSLimitExceeded:
		return http.StatusTooManyRequests, e.Message
	}
	return 0, ""
}

// smsRefusalDays is how far back the user page lists refused texts.
const smsRefusalDays = 7

// userSMSRefusalsPanel shows the forgot-password texts an abuse limit
// refused for the user (one line per limit and hour, with a count), so
// the admin sees why no code arrived. Nothing when there are none.
func (s *Server) userSMSRefusalsPanel(c echo.Context, u *account.User) (templ.Component, error) {
	rows, err := s.store.SMSRefusalsByUser(c.Request().Context(), u.ID, s.acct.Now().Add(-smsRefusalDays*24*time.Hour), 20)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	p := views.UserSMSRefusalsPanel{Days: smsRefusalDays}
	for _, r := range rows {
		p.Rows = append(p.Rows, views.SMSRefusalRow{Limit: r.Limit, Phone: r.Phone, Reason: r.Reason, Attempts: r.Attempts, FirstAt: r.FirstAt, LastAt: r.LastAt})
	}
	return views.UserSMSRefusals(p), nil
}
