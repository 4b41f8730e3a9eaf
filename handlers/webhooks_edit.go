package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/views"
)

// webhooksEditRoutes adds editing a webhook and rotating its secret.
func (s *Server) webhooksEditRoutes(a *echo.Group) {
	if s.hooks == nil {
		return
	}
	a.GET("/hooks/:id/edit", s.hookEdit)
	a.POST("/hooks/:id/edit", s.hookUpdate)
	a.POST("/hooks/:id/rotate-secret", s.hookRotateSecret)
}

func (s *Server) hookEdit(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	f := views.WebhookEditForm{Hook: webhookRow(w), Types: webhookTypes(),
		Form: views.WebhookForm{URL: w.URL, AllEvents: w.AllEvents, Events: w.Events}}
	return render(c, http.StatusOK, views.WebhookEdit(s.layout(c, "Edit webhook", "hooks"), f))
}

func (s *Server) hookUpdate(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	in := hooks.WebhookInput{URL: form.Get("url"), AllEvents: form.Get("events_mode") != "chosen", Events: form["events"]}
	_, err = s.hooks.UpdateWebhook(c.Request().Context(), s.adminActor(c), w.ID, in)
	if err == nil {
		return s.flashRedirect(c, "success", "Webhook saved. Its delivery log is kept.", "/portal/hooks/"+w.ID)
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return err
	}
	f := views.WebhookEditForm{Hook: webhookRow(w), Types: webhookTypes(),
		Form: views.WebhookForm{URL: in.URL, AllEvents: in.AllEvents, Events: in.Events, Errors: fe}}
	return render(c, http.StatusUnprocessableEntity, views.WebhookEdit(s.layout(c, "Edit webhook", "hooks"), f))
}

// hookRotateSecret gives the webhook a new signing secret, after a
// confirm step, and shows it once on the webhook's page.
func (s *Server) hookRotateSecret(c echo.Context) error {
	w, err := s.loadHook(c)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "yes" {
		return render(c, http.StatusOK, views.ConfirmAction(s.layout(c, "Rotate signing secret", "hooks"), views.ConfirmPage{
			Heading: "Rotate the signing secret of " + w.URL + "?",
			Message: "Deliveries from now on, retries included, are signed with a new secret, shown once. Your endpoint rejects them until it has the new secret.",
			Action:  "/portal/hooks/" + w.ID + "/rotate-secret", Button: "Rotate secret", Cancel: "/portal/hooks/" + w.ID}))
	}
	secret, err := s.hooks.RotateSecret(c.Request().Context(), s.adminActor(c), w.ID)
	if err != nil {
		return err
	}
	portalSession(c).Values[secretKey(w.ID)] = secret
	return s.flashRedirect(c, "success", "New signing secret created.", "/portal/hooks/"+w.ID)
}
