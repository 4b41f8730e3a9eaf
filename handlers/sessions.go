package handlers

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

// sessionsRoutes registers /settings' "Your sessions" actions.
func (s *Server) sessionsRoutes(e *echo.Echo) {
	mw := []echo.MiddlewareFunc{noStore, s.withSession(userCookie, ctxUserSess), csrf(ctxUserSess), s.loadEndUser, s.requireEndUser}
	e.POST("/settings/sessions/revoke-others", s.authSessionsRevokeOthers, mw...)
	e.POST("/settings/sessions/:sid/revoke", s.authSessionRevoke, mw...)
}

// userSessionsPanel is the user page's Sessions section.
func (s *Server) userSessionsPanel(c echo.Context, u *account.User) (templ.Component, error) {
	list, err := s.acct.UserSessions(c.Request().Context(), u.ID, nil)
	if err != nil {
		return nil, err
	}
	csrfToken, _ := portalSession(c).Values[csrfKey].(string)
	return views.UserSessionsPanel(views.SessionsPanel{UserID: u.ID, CSRF: csrfToken, Sessions: list, Now: s.acct.Now()}), nil
}

func (s *Server) userSessionRevoke(c echo.Context) error {
	err := s.acct.RevokeSession(c.Request().Context(), s.adminActor(c), c.Param("id"), c.Param("sid"))
	return s.userActionDone(c, err, "The session is signed out.", "#sessions")
}

func (s *Server) userSessionsRevokeAll(c echo.Context) error {
	n, err := s.acct.RevokeAllSessions(c.Request().Context(), s.adminActor(c), c.Param("id"))
	msg := "The user is signed out of " + itoa(n) + " sessions."
	if n == 1 {
		msg = "The user is signed out of 1 session."
	}
	return s.userActionDone(c, err, msg, "#sessions")
}

// authSessionsSection is /settings' "Your sessions".
func (s *Server) authSessionsSection(c echo.Context) (templ.Component, error) {
	us := endUser(c)
	list, err := s.acct.UserSessions(c.Request().Context(), us.UserID, us)
	if err != nil {
		return nil, err
	}
	csrfToken, _ := userCookieSession(c).Values[csrfKey].(string)
	return views.AuthSessionsSection(views.AuthSessions{CSRF: csrfToken, Sessions: list, Now: s.acct.Now()}), nil
}

func (s *Server) authSessionsRevokeOthers(c echo.Context) error {
	n, err := s.acct.RevokeOtherSessions(c.Request().Context(), s.userActor(c), endUser(c))
	if err != nil {
		return err
	}
	msg := "Your other sessions are signed out."
	if n == 0 {
		msg = "You had no other sessions."
	}
	return s.authFlashRedirect(c, "success", msg)
}

func (s *Server) authSessionRevoke(c echo.Context) error {
	us := endUser(c)
	if c.Param("sid") == us.ID() {
		return echo.NewHTTPError(http.StatusBadRequest, "To end this session, use Sign out.")
	}
	err := s.acct.RevokeSession(c.Request().Context(), s.userActor(c), us.UserID, c.Param("sid"))
	if ae, ok := account.AsError(err); ok {
		return s.authFlashRedirect(c, "error", ae.Message)
	} else if err != nil {
		return err
	}
	return s.authFlashRedirect(c, "success", "That session is signed out.")
}

func (s *Server) authFlashRedirect(c echo.Context, kind, msg string) error {
	if err := addFlash(c, userCookieSession(c), kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings#sessions")
}
