package handlers

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"latchkey/views"
)

// userDisableConfirm asks before Disable (without JS; with JS a dialog
// asked and the form came with confirm=yes).
func (s *Server) userDisableConfirm(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	fields := url.Values{}
	if r := c.FormValue("reason"); r != "" {
		fields.Set("reason", r)
	}
	msg := views.UserTitle(u) + " is signed out everywhere and cannot sign in until an admin enables them again."
	if r := c.FormValue("reason"); r != "" {
		msg += " Reason: " + r
	}
	return render(c, http.StatusOK, views.ConfirmAction(s.layout(c, "Disable user", "users"), views.ConfirmPage{
		Heading: "Disable " + views.UserTitle(u) + "?", Message: msg, Action: "/portal/users/" + u.ID + "/disable",
		Fields: fields, Button: "Disable user", Cancel: "/portal/users/" + u.ID}))
}

// apiKeyRevokeConfirm asks before revoking an API key.
func (s *Server) apiKeyRevokeConfirm(c echo.Context) error {
	keys, err := s.acct.ListAPIKeys(c.Request().Context())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == c.Param("id") && k.RevokedAt == nil {
			return render(c, http.StatusOK, views.ConfirmAction(s.layout(c, "Revoke API key", "api-keys"), views.ConfirmPage{
				Heading: "Revoke the key “" + k.Name + "”?", Message: "Scripts and services using it get 401 from the next request on. This cannot be undone: they need a new key.",
				Action: "/portal/api-keys/" + k.ID + "/revoke", Button: "Revoke key", Cancel: "/portal/api-keys"}))
		}
	}
	return echo.NewHTTPError(http.StatusNotFound, "There is no such active API key.")
}
