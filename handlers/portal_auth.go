package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

func (s *Server) setupShow(c echo.Context) error {
	token := c.QueryParam("token")
	if err := s.acct.CheckSetupToken(c.Request().Context(), token); err != nil {
		return s.setupRefused(err)
	}
	return render(c, http.StatusOK, views.Setup(s.layout(c, "Set up", ""), views.SetupForm{Token: token}))
}

func (s *Server) setupRefused(err error) error {
	if errors.Is(err, account.ErrSetupClosed) {
		return echo.NewHTTPError(http.StatusNotFound, "Setup is closed: an admin exists. Sign in at /portal/login.")
	}
	if _, ok := account.AsError(err); ok {
		return echo.NewHTTPError(http.StatusForbidden, "This setup link is not valid. Use the link from the server log.")
	}
	return err
}

func (s *Server) setupCreate(c echo.Context) error {
	ctx := c.Request().Context()
	f := views.SetupForm{Token: c.FormValue("token"), Email: c.FormValue("email")}
	if err := s.acct.CheckSetupToken(ctx, f.Token); err != nil {
		return s.setupRefused(err)
	}
	admin, err := s.acct.SetupAdmin(ctx, f.Token, f.Email, c.FormValue("password"))
	if err != nil {
		if ae, ok := account.AsError(err); ok && ae.Reason != "InvalidSetupToken" {
			f.Errors = account.FieldErrors(err)
			return render(c, http.StatusUnprocessableEntity, views.Setup(s.layout(c, "Set up", ""), f))
		}
		return s.setupRefused(err)
	}
	s.log.Info("first admin created", "admin_id", admin.ID)
	return s.startAdminSession(c, admin.ID, "/portal/users", "Welcome! Your admin account is ready.")
}

func (s *Server) portalLoginShow(c echo.Context) error {
	if token, _ := portalSession(c).Values[adminSessKey].(string); token != "" {
		if _, err := s.acct.AdminSession(c.Request().Context(), token); err == nil {
			return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next"), "/portal/users"))
		}
	}
	f := views.AdminLoginForm{Next: safeNext(c.QueryParam("next"), "")}
	return render(c, http.StatusOK, views.AdminLogin(s.layout(c, "Sign in", ""), f))
}

// msgAdminBadCredentials answers a wrong email, a wrong password and a
// paused sign-in alike.
const msgAdminBadCredentials = "Incorrect email or password. After several failed attempts, sign-in pauses for a while."

// portalLoginCreate signs an admin in: the per-address limit, then the
// password (with the per-admin lockout), then the session.
func (s *Server) portalLoginCreate(c echo.Context) error {
	f := views.AdminLoginForm{Email: c.FormValue("email"), Next: safeNext(c.FormValue("next"), "")}
	if limited(c, s.portalLoginLimit, c.RealIP()) {
		f.Error = "Too many sign-in attempts. Wait a minute and try again."
		return render(c, http.StatusTooManyRequests, views.AdminLogin(s.layout(c, "Sign in", ""), f))
	}
	release, busy, err := s.admit(c, limiterHit{s.portalLoginLimit, c.RealIP()})
	if err != nil {
		return err
	} else if busy != nil {
		f.Error = busyMessage(busy)
		return render(c, http.StatusServiceUnavailable, views.AdminLogin(s.layout(c, "Sign in", ""), f))
	}
	defer release()
	admin, err := s.acct.AdminSignIn(c.Request().Context(), s.adminActor(c), f.Email, c.FormValue("password"))
	if errors.Is(err, account.ErrBadCredentials) || errors.Is(err, account.ErrAdminLocked) {
		s.log.Warn("portal sign-in failed", "ip", c.RealIP(), "locked", errors.Is(err, account.ErrAdminLocked))
		f.Error = msgAdminBadCredentials
		return render(c, http.StatusUnauthorized, views.AdminLogin(s.layout(c, "Sign in", ""), f))
	} else if err != nil {
		return err
	}
	if has2FA, err := s.acct.AdminHasTOTP(c.Request().Context(), admin.ID); err != nil {
		return err
	} else if has2FA { // second step: a code (admins.go)
		return s.startSecondFactor(c, admin.ID, safeNext(f.Next, "/portal/users"))
	}
	return s.startAdminSession(c, admin.ID, safeNext(f.Next, "/portal/users"), "")
}

// startAdminSession replaces whatever session the browser had with a new
// server-side one for the admin: a new token, fresh values, fresh CSRF token.
func (s *Server) startAdminSession(c echo.Context, adminID, next, flash string) error {
	sess := portalSession(c)
	old, _ := sess.Values[adminSessKey].(string)
	token, err := s.acct.StartAdminSession(c.Request().Context(), s.adminActor(c), adminID, old)
	if err != nil {
		return err
	}
	sess.Values = map[any]any{adminSessKey: token, csrfKey: account.NewToken()}
	if flash != "" {
		sess.AddFlash("success\x00"+flash, flashKey)
	}
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, next)
}

// portalLogout ends the session on the server, so a copy of the cookie
// stops working too, then clears the cookie.
func (s *Server) portalLogout(c echo.Context) error {
	sess := portalSession(c)
	if token, _ := sess.Values[adminSessKey].(string); token != "" {
		if err := s.acct.EndAdminSession(c.Request().Context(), token); err != nil {
			return err
		}
	}
	sess.Values = map[any]any{}
	sess.Options.MaxAge = -1
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/login")
}
