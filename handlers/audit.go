package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/store"
	"latchkey/views"
)

const auditPageSize = 50

// eventsRoutes adds the audit log, the webhook pages, the user page's
// Events panel and the user import endpoint. Without a hooks service they
// are left out.
func (s *Server) eventsRoutes(e *echo.Echo, a *echo.Group) {
	if s.hooks == nil {
		return
	}
	// User import: Admin API key, like the GraphQL endpoint, sharing its
	// failure limiter.
	e.POST(importPath, s.usersImport, noStore, s.apiKeyAuth())
	a.GET("/audit-log", s.auditIndex)
	a.GET("/audit-log/:id", s.auditShow)
	a.GET("/hooks", s.hooksIndex)
	a.POST("/hooks", s.hooksCreate)
	a.GET("/hooks/:id", s.hookShow)
	a.POST("/hooks/:id/status", s.hookSetStatus)
	a.POST("/hooks/:id/test", s.hookSendTest)
	a.POST("/hooks/:id/delete", s.hookDelete)
	a.POST("/hooks/:id/deliveries/:delivery/redeliver", s.hookRedeliver)
	s.userPanels = append(s.userPanels, s.userEventsPanel)
}

func auditTypes() []views.AuditTypeOption {
	var out []views.AuditTypeOption
	for _, t := range hooks.Types {
		out = append(out, views.AuditTypeOption{Type: t.Type, Description: t.Description})
	}
	return out
}

// auditRow turns a stored event into a row with its whole JSON.
func auditRow(e *store.Event) views.AuditRow {
	env := hooks.EnvelopeOf(e)
	r := views.AuditRow{ID: env.ID, Type: e.Type, At: e.CreatedAt, UserID: e.UserID}
	raw, _ := json.Marshal(env)
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") == nil {
		r.JSON = buf.String()
	} else {
		r.JSON = string(raw)
	}
	auditDescribe(e, &r)
	var cx hooks.Context
	if json.Unmarshal(e.Context, &cx) == nil {
		r.TriggeredBy, r.IP = cx.TriggeredBy, cx.IPAddress
		if cx.AuditContext != nil {
			r.Via = auditVia(cx.AuditContext.ActorKind)
		}
		if ac := cx.AuditContext; ac != nil {
			switch {
			case ac.ActorName != "":
				r.Actor = ac.ActorName
			case ac.ActorID != "":
				r.Actor = ac.ActorKind + " " + ac.ActorID
			default:
				r.Actor = ac.ActorKind
			}
		}
	}
	return r
}

const dateLayout = "2006-01-02"

func (s *Server) auditIndex(c echo.Context) error {
	ctx := c.Request().Context()
	f := views.AuditFilter{
		Type: strings.TrimSpace(c.QueryParam("type")), User: strings.TrimSpace(c.QueryParam("user")),
		From: strings.TrimSpace(c.QueryParam("from")), To: strings.TrimSpace(c.QueryParam("to")), Errors: map[string]string{},
	}
	p := store.ListEventsParams{Limit: auditPageSize + 1}
	if f.Type != "" {
		if len(f.Type) > 100 {
			f.Errors["type"] = "Unknown event type."
		}
		p.Types = []string{f.Type}
	}
	if f.User != "" {
		id, msg := s.resolveUser(c, f.User)
		if msg != "" {
			f.Errors["user"] = msg
		}
		p.UserID = id
	}
	if f.From != "" {
		t, err := time.Parse(dateLayout, f.From)
		if err != nil {
			f.Errors["from"] = "Enter a date as YYYY-MM-DD."
		}
		p.From = t
	}
	if f.To != "" {
		t, err := time.Parse(dateLayout, f.To)
		if err != nil {
			f.Errors["to"] = "Enter a date as YYYY-MM-DD."
		}
		p.To = t.AddDate(0, 0, 1)
	}
	if f.Errors["from"] == "" && f.Errors["to"] == "" && !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		f.Errors["to"] = "The end date must not be before the start date."
	}
	page := views.AuditPage{Filter: f, Types: auditTypes()}
	l := s.layout(c, "Audit log", "audit")
	if len(f.Errors) > 0 {
		return render(c, http.StatusUnprocessableEntity, views.AuditLog(l, page))
	}
	if b := c.QueryParam("before"); b != "" {
		if v, ok := hooks.ParseEventID(b); ok {
			p.Before = v
		}
	}
	events, err := s.store.ListEvents(ctx, p)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"type": f.Type, "user": f.User, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(events) > auditPageSize {
		events = events[:auditPageSize]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", hooks.EventID(events[len(events)-1].Seq))
		page.NextURL = "/portal/audit-log?" + next.Encode()
	}
	if p.Before > 0 {
		page.FirstURL = "/portal/audit-log"
		if len(q) > 0 {
			page.FirstURL += "?" + q.Encode()
		}
	}
	for i := range events {
		page.Rows = append(page.Rows, auditRow(&events[i]))
	}
	return render(c, http.StatusOK, views.AuditLog(l, page))
}

// resolveUser takes a user ID or a login ID and returns the user ID.
func (s *Server) resolveUser(c echo.Context, v string) (string, string) {
	if _, err := uuid.Parse(v); err == nil {
		return strings.ToLower(v), ""
	}
	id, err := account.ParseAnyLoginID(v, s.acct.PhoneRegion())
	if err != nil {
		return "", "Enter a user ID, an email, a phone number or a username."
	}
	ident, err := s.store.IdentityByNorm(c.Request().Context(), id.Norm)
	if errors.Is(err, store.ErrNotFound) {
		return "", "No user has this login ID. (Events of deleted users can be found by user ID.)"
	} else if err != nil {
		return "", "The user could not be looked up; try again."
	}
	return ident.UserID, ""
}

func (s *Server) auditShow(c echo.Context) error {
	seq, ok := hooks.ParseEventID(c.Param("id"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such event.")
	}
	e, err := s.store.EventBySeq(c.Request().Context(), seq)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such event.")
	} else if err != nil {
		return err
	}
	r := auditRow(e)
	return render(c, http.StatusOK, views.EventShow(s.layout(c, "Event "+r.ID, "audit"), r))
}

// userEventsPanel shows the user's latest events and links to all of them.
func (s *Server) userEventsPanel(c echo.Context, u *account.User) (templ.Component, error) {
	events, err := s.store.ListEvents(c.Request().Context(), store.ListEventsParams{UserID: u.ID, Limit: 6})
	if err != nil {
		return nil, err
	}
	more := len(events) > 5
	if more {
		events = events[:5]
	}
	var rows []views.AuditRow
	for i := range events {
		rows = append(rows, auditRow(&events[i]))
	}
	return views.UserEventsPanel(u.ID, rows, more), nil
}
