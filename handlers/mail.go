package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/mail"
	"latchkey/store"
	"latchkey/views"
)

const (
	userMailLimit = 20
	mailPageSize  = 50
)

// mailRoutes serves the email delivery status (user page panel, Retry
// now) and /portal/mail: the dev mailbox, or the outbox list with SMTP.
func (s *Server) mailRoutes(a *echo.Group) {
	a.GET("/mail", s.mailIndex)
	a.GET("/mail/dev/:mid", s.devMailShow)
	a.GET("/mail/dev/:mid/html", s.devMailHTML)
	a.POST("/users/:id/mail/:mid/retry", s.userMailRetry)
	a.POST("/mail/retry-all", s.mailRetryAll)
	s.userPanels = append(s.userPanels, s.userMailPanel, s.userSMSRefusalsPanel)
}

func (s *Server) devMailbox() *mail.DevMailbox {
	if s.cfg.Mail == nil {
		return nil
	}
	return s.cfg.Mail.DevMailbox()
}

func mailRow(m store.OutboxMessage) views.MailRow {
	return views.MailRow{ID: m.ID, UserID: m.UserID, To: m.Recipient, Subject: m.Subject, Status: m.Status, Attempts: m.Attempts,
		NextAttemptAt: m.NextAttemptAt, LastError: m.LastError, CreatedAt: m.CreatedAt, DeliveredAt: m.DeliveredAt}
}

func (s *Server) userMailPanel(c echo.Context, u *account.User) (templ.Component, error) {
	msgs, err := s.store.OutboxByUser(c.Request().Context(), u.ID, userMailLimit)
	if err != nil {
		return nil, err
	}
	p := views.UserMailPanel{UserID: u.ID}
	if sess := portalSession(c); sess != nil {
		p.CSRF, _ = sess.Values[csrfKey].(string)
	}
	for _, m := range msgs {
		p.Rows = append(p.Rows, mailRow(m))
	}
	return views.UserMail(p), nil
}

func (s *Server) userMailRetry(c echo.Context) error {
	userID := c.Param("id")
	mid, err := strconv.ParseInt(c.Param("mid"), 10, 64)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such message.")
	}
	if s.cfg.Mail == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Email delivery is not running.")
	}
	ok, err := s.cfg.Mail.RetryNow(c.Request().Context(), userID, mid)
	if err != nil {
		return err
	}
	kind, msg := "success", "The message will be sent again now."
	if !ok {
		kind, msg = "info", "This message is no longer waiting to be sent."
	}
	if err := addFlash(c, portalSession(c), kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/users/"+url.PathEscape(userID)+"#mail")
}

// mailRetryAll is "Retry all" on the outbox page: every queued message
// is due now, and failed messages that still hold their content go back
// in the queue.
func (s *Server) mailRetryAll(c echo.Context) error {
	if s.cfg.Mail == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Email delivery is not running.")
	}
	n, err := s.cfg.Mail.RetryAll(c.Request().Context())
	if err != nil {
		return err
	}
	kind, msg := "success", fmt.Sprintf("%d messages will be sent now.", n)
	switch n {
	case 0:
		kind, msg = "info", "No message is waiting to be sent, and no failed message can be sent again."
	case 1:
		msg = "1 message will be sent now."
	}
	if err := addFlash(c, portalSession(c), kind, msg); err != nil {
		return err
	}
	to := "/portal/mail"
	if s.devMailbox() != nil {
		to += "?tab=outbox"
	}
	return c.Redirect(http.StatusSeeOther, to)
}

func (s *Server) mailIndex(c echo.Context) error {
	ctx := c.Request().Context()
	if c.QueryParam("tab") == "texts" {
		return s.devTextsIndex(c)
	}
	box := s.devMailbox()
	p := views.MailPage{PerInstance: s.store.Postgres(), DevMailbox: box != nil, DevTexts: s.devTexts() != nil, Tab: "outbox"}
	if sess := portalSession(c); sess != nil {
		p.CSRF, _ = sess.Values[csrfKey].(string)
	}
	if box != nil && c.QueryParam("tab") != "outbox" {
		p.Tab = "dev"
		for _, m := range box.List() {
			p.Dev = append(p.Dev, views.DevMailRow{ID: m.ID, To: m.To, Subject: m.Subject, At: m.At})
		}
		return render(c, http.StatusOK, views.MailIndex(s.layout(c, "Mail", "mail"), p))
	}
	switch st := c.QueryParam("status"); st {
	case "", store.OutboxQueued, store.OutboxSending, store.OutboxDelivered, store.OutboxFailed:
		p.Status = st
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "Unknown status filter.")
	}
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	rows, err := s.store.ListOutbox(ctx, store.ListOutboxParams{Status: p.Status, Before: before, Limit: mailPageSize + 1})
	if err != nil {
		return err
	}
	if p.Counts, err = s.store.CountOutbox(ctx); err != nil {
		return err
	}
	if len(rows) > mailPageSize {
		rows = rows[:mailPageSize]
		v := url.Values{"before": {strconv.FormatInt(rows[len(rows)-1].ID, 10)}}
		if p.Status != "" {
			v.Set("status", p.Status)
		}
		if p.DevMailbox {
			v.Set("tab", "outbox")
		}
		p.NextURL = "/portal/mail?" + v.Encode()
	}
	for _, m := range rows {
		p.Rows = append(p.Rows, mailRow(m))
	}
	return render(c, http.StatusOK, views.MailIndex(s.layout(c, "Mail", "mail"), p))
}

func (s *Server) devMessage(c echo.Context) (mail.DevMessage, error) {
	box := s.devMailbox()
	if box == nil {
		return mail.DevMessage{}, echo.NewHTTPError(http.StatusNotFound, "The dev mailbox is off: email goes to the SMTP server.")
	}
	id, err := strconv.ParseInt(c.Param("mid"), 10, 64)
	if err != nil {
		return mail.DevMessage{}, echo.NewHTTPError(http.StatusNotFound, "There is no such message.")
	}
	m, ok := box.Get(id)
	if !ok {
		return mail.DevMessage{}, echo.NewHTTPError(http.StatusNotFound, "There is no such message. The dev mailbox is emptied when Latchkey restarts.")
	}
	return m, nil
}

func (s *Server) devMailShow(c echo.Context) error {
	m, err := s.devMessage(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.DevMessage(s.layout(c, m.Subject, "mail"),
		views.DevMessagePage{ID: m.ID, From: m.From, To: m.To, Subject: m.Subject, At: m.At, Text: m.Text}))
}

// devMailHTML serves a message's HTML part for the sandboxed iframe of
// devMailShow. Email HTML needs inline styles, so this one answer gets its
// own CSP: nothing may load or run, the page is a sandbox (unique origin,
// no scripts, no forms), and only this site may frame it.
func (s *Server) devMailHTML(c echo.Context) error {
	m, err := s.devMessage(c)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return c.String(he.Code, "Not found.")
	} else if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	return c.HTMLBlob(http.StatusOK, []byte(m.HTML))
}
