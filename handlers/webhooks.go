package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/store"
	"latchkey/views"
)

const deliveriesPageSize = 50

// secretKey is where a new webhook's signing secret waits in the
// (encrypted) session cookie for the one page view that shows it.
func secretKey(id string) string { return "webhook_secret:" + id }

func webhookRow(w *store.Webhook) views.WebhookRow {
	return views.WebhookRow{ID: w.ID, URL: w.URL, Blocking: w.Kind == store.WebhookBlocking, AllEvents: w.AllEvents,
		Events: w.Events, Enabled: w.Enabled, CreatedAt: w.CreatedAt}
}

func webhookTypes() []views.WebhookTypeOption {
	var out []views.WebhookTypeOption
	for _, t := range hooks.WebhookTypes() {
		out = append(out, views.WebhookTypeOption{Type: t.Type, Description: t.Description})
	}
	return out
}

func (s *Server) hooksPage(c echo.Context, nonBlocking, blocking views.WebhookForm) (views.WebhooksPage, error) {
	ws, err := s.hooks.Webhooks(c.Request().Context())
	if err != nil {
		return views.WebhooksPage{}, err
	}
	names, err := s.hooks.ScriptNames(c.Request().Context())
	if err != nil {
		return views.WebhooksPage{}, err
	}
	p := views.WebhooksPage{Types: webhookTypes(), NonBlocking: nonBlocking, Blocking: blocking}
	for i := range ws {
		row := webhookRow(&ws[i])
		row.Name = names[ws[i].ID]
		p.Hooks = append(p.Hooks, row)
	}
	return p, nil
}

func (s *Server) hooksIndex(c echo.Context) error {
	p, err := s.hooksPage(c, views.WebhookForm{AllEvents: true}, views.WebhookForm{})
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.WebhooksIndex(s.layout(c, "Hooks", "hooks"), p))
}

func (s *Server) hooksCreate(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	blocking := form.Get("kind") == "blocking"
	in := hooks.WebhookInput{URL: form.Get("url"), Blocking: blocking, AllEvents: form.Get("events_mode") != "chosen", Events: form["events"]}
	w, secret, err := s.hooks.CreateWebhook(c.Request().Context(), s.adminActor(c), in)
	if err == nil {
		sess := portalSession(c)
		sess.Values[secretKey(w.ID)] = secret
		if err := addFlash(c, sess, "success", "Webhook added."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/portal/hooks/"+w.ID)
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return err
	}
	f := views.WebhookForm{URL: in.URL, AllEvents: in.AllEvents, Events: in.Events, Errors: fe}
	nb, b := f, views.WebhookForm{}
	if blocking {
		nb, b = views.WebhookForm{AllEvents: true}, f
	}
	p, err := s.hooksPage(c, nb, b)
	if err != nil {
		return err
	}
	return render(c, http.StatusUnprocessableEntity, views.WebhooksIndex(s.layout(c, "Hooks", "hooks"), p))
}

func (s *Server) loadHook(c echo.Context) (*store.Webhook, error) {
	w, err := s.hooks.Webhook(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, echo.NewHTTPError(http.StatusNotFound, "There is no such webhook. It may have been deleted.")
	}
	return w, err
}

func (s *Server) hookShow(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	if sc, err := s.hooks.HookScript(c.Request().Context(), w.ID); err == nil {
		return s.scriptShow(c, w, sc)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	p := views.WebhookPage{Hook: webhookRow(w)}
	// The secret is shown on this one view, then forgotten.
	sess := portalSession(c)
	if v, ok := sess.Values[secretKey(w.ID)].(string); ok {
		p.Secret = v
		delete(sess.Values, secretKey(w.ID))
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
	}
	var before int64
	if b := c.QueryParam("before"); b != "" {
		before, _ = strconv.ParseInt(b, 10, 64)
	}
	ds, err := s.hooks.Deliveries(c.Request().Context(), w.ID, before, deliveriesPageSize+1)
	if err != nil {
		return err
	}
	if len(ds) > deliveriesPageSize {
		ds = ds[:deliveriesPageSize]
		p.NextURL = "/portal/hooks/" + w.ID + "?" + url.Values{"before": {strconv.FormatInt(ds[len(ds)-1].ID, 10)}}.Encode()
	}
	if before > 0 {
		p.FirstURL = "/portal/hooks/" + w.ID
	}
	for _, d := range ds {
		p.Deliveries = append(p.Deliveries, views.DeliveryRow{ID: d.ID, EventID: hooks.EventID(d.EventSeq), EventType: d.EventType,
			Status: d.Status, StatusCode: d.LastStatusCode, Latency: d.LastLatency, Attempts: d.Attempts, NextAttempt: d.NextAttemptAt,
			LastError: d.LastError, CreatedAt: d.CreatedAt})
	}
	return render(c, http.StatusOK, views.WebhookShow(s.layout(c, "Webhook", "hooks"), p))
}

func (s *Server) hookBack(c echo.Context, id, kind, msg string) error {
	if err := addFlash(c, portalSession(c), kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/hooks/"+id)
}

func (s *Server) hookSetStatus(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	enabled := c.FormValue("enabled") == "true"
	if err := s.hooks.SetEnabled(c.Request().Context(), s.adminActor(c), w.ID, enabled); err != nil {
		return err
	}
	msg := "Webhook disabled. Nothing is sent to it until you enable it again."
	if enabled {
		msg = "Webhook enabled."
	}
	return s.hookBack(c, w.ID, "success", msg)
}

func (s *Server) hookSendTest(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	if _, err := s.hooks.SendTest(c.Request().Context(), s.adminActor(c), w.ID); errors.Is(err, hooks.ErrNotDeliverable) {
		return s.hookBack(c, w.ID, "error", "Only an enabled non-blocking webhook can get a test event.")
	} else if err != nil {
		return err
	}
	return s.hookBack(c, w.ID, "success", "Test event queued. Its delivery shows below in a moment; reload to see it.")
}

func (s *Server) hookDelete(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	if err := s.hooks.DeleteWebhook(c.Request().Context(), s.adminActor(c), w.ID); err != nil {
		return err
	}
	if err := addFlash(c, portalSession(c), "success", "Webhook deleted."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/hooks")
}

func (s *Server) hookRedeliver(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("delivery"), 10, 64)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such delivery.")
	}
	err = s.hooks.Redeliver(c.Request().Context(), s.adminActor(c), w.ID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "There is no such delivery.")
	case errors.Is(err, hooks.ErrNotDeliverable):
		return s.hookBack(c, w.ID, "error", "Enable the webhook before redelivering.")
	case err != nil:
		return err
	}
	return s.hookBack(c, w.ID, "success", "Event queued for redelivery.")
}
