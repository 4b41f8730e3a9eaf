package handlers

import (
	"net/http"
	"strings"

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

// newAPIKeySession holds a just-created key's name and token in the
// (encrypted, HttpOnly) portal session between the POST and the GET that
// shows it, and is deleted by that GET: the token is shown exactly once,
// and reloading the page neither shows it again nor creates a second key.
const newAPIKeySession = "new_api_key"

func (s *Server) apiKeysIndex(c echo.Context) error {
	p := views.APIKeysPage{}
	sess := portalSession(c)
	if v, ok := sess.Values[newAPIKeySession].(string); ok {
		p.NewName, p.NewToken, _ = strings.Cut(v, "\x00")
		delete(sess.Values, newAPIKeySession)
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
	}
	p, err := s.apiKeysPage(c, p)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.APIKeys(s.layout(c, "API keys", "api-keys"), p))
}

// apiKeysCreate creates a key and redirects (303) to the list, which
// shows the token once (Post/Redirect/Get: a reload makes no second key).
func (s *Server) apiKeysCreate(c echo.Context) error {
	name := c.FormValue("name")
	k, err := s.acct.CreateAPIKey(c.Request().Context(), s.adminActor(c), name)
	if err == nil {
		s.log.Info("api key created", "key_id", k.Key.ID, "name", k.Key.Name, "admin", s.adminActor(c).Name)
		portalSession(c).Values[newAPIKeySession] = k.Key.Name + "\x00" + k.Token
		return s.flashRedirect(c, "success", "API key created.", "/portal/api-keys")
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return err
	}
	p := views.APIKeysPage{Name: name, NameError: fe["name"]}
	if p, err = s.apiKeysPage(c, p); err != nil {
		return err
	}
	return render(c, http.StatusUnprocessableEntity, views.APIKeys(s.layout(c, "API keys", "api-keys"), p))
}

func (s *Server) apiKeyRevoke(c echo.Context) error {
	if c.FormValue("confirm") != "yes" {
		return s.apiKeyRevokeConfirm(c)
	}
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
