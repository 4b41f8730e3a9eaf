package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

func (s *Server) apiKeysPage(c echo.Context, p views.APIKeysPage) (views.APIKeysPage, error) {
	keys, err := s.acct.ListAPIKeys(c.Request().Context())
	if err != nil {
		return p, err
	}
	for _, k := range keys {
		p.Keys = append(p.Keys, views.APIKeyRow{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy,
			LastUsedAt: k.LastUsedAt, LastUsedIP: k.LastUsedIP, RevokedAt: k.RevokedAt})
	}
	return p, nil
}

func (s *Server) apiKeysIndex(c echo.Context) error {
	p, err := s.apiKeysPage(c, views.APIKeysPage{})
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.APIKeys(s.layout(c, "API keys", "api-keys"), p))
}

// apiKeysCreate creates a key and shows its token in the answer itself,
// never through a redirect or the session, so it is shown exactly once.
func (s *Server) apiKeysCreate(c echo.Context) error {
	name := c.FormValue("name")
	k, err := s.acct.CreateAPIKey(c.Request().Context(), s.adminActor(c), name)
	p := views.APIKeysPage{Name: name}
	status := http.StatusCreated
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		p.NameError, status = fe["name"], http.StatusUnprocessableEntity
	} else {
		p = views.APIKeysPage{NewName: k.Key.Name, NewToken: k.Token}
		s.log.Info("api key created", "key_id", k.Key.ID, "name", k.Key.Name, "admin", s.adminActor(c).Name)
	}
	if p, err = s.apiKeysPage(c, p); err != nil {
		return err
	}
	return render(c, status, views.APIKeys(s.layout(c, "API keys", "api-keys"), p))
}

func (s *Server) apiKeyRevoke(c echo.Context) error {
	err := s.acct.RevokeAPIKey(c.Request().Context(), s.adminActor(c), c.Param("id"))
	if e, ok := account.AsError(err); ok {
		return echo.NewHTTPError(http.StatusNotFound, e.Message)
	} else if err != nil {
		return err
	}
	if err := addFlash(c, portalSession(c), "success", "API key revoked. Requests with it now get 401."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/api-keys")
}
