package handlers

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

// userSignInPanel is the user page's "Sign-in" section: failed attempts,
// a lock and the button that clears it, and Disable / Enable.
func (s *Server) userSignInPanel(c echo.Context, u *account.User) (templ.Component, error) {
	l, err := s.acct.Lockout(c.Request().Context(), u.ID)
	if err != nil {
		return nil, err
	}
	csrf, _ := portalSession(c).Values[csrfKey].(string)
	return views.UserSignInPanel(views.LockoutPanel{UserID: u.ID, CSRF: csrf, Disabled: u.IsDisabled, Lockout: l, Now: s.acct.Now()}), nil
}

// userActionDone flashes msg (or the error's message) and goes back to the
// user page at anchor, or answers 404 for an unknown user.
func (s *Server) userActionDone(c echo.Context, err error, msg, anchor string) error {
	if err != nil {
		if ae, ok := account.AsError(err); ok {
			if ae.Reason == account.ReasonUserNotFound {
				return userNotFound404(err)
			}
			msg = ae.Message
			if err := addFlash(c, portalSession(c), "error", msg); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/users/"+c.Param("id"))
		}
		return err
	}
	if err := addFlash(c, portalSession(c), "success", msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/users/"+c.Param("id")+anchor)
}

func (s *Server) userLockoutClear(c echo.Context) error {
	err := s.acct.ClearLockout(c.Request().Context(), s.adminActor(c), c.Param("id"))
	return s.userActionDone(c, err, "Lockout cleared. The user can sign in again.", "#sign-in")
}

func (s *Server) userDisable(c echo.Context) error {
	if c.FormValue("confirm") != "yes" {
		return s.userDisableConfirm(c)
	}
	_, err := s.acct.SetDisabledStatus(c.Request().Context(), s.adminActor(c), c.Param("id"), true, c.FormValue("reason"))
	return s.userActionDone(c, err, "User disabled. They can no longer sign in.", "#sign-in")
}

func (s *Server) userEnable(c echo.Context) error {
	_, err := s.acct.SetDisabledStatus(c.Request().Context(), s.adminActor(c), c.Param("id"), false, "")
	return s.userActionDone(c, err, "User enabled.", "#sign-in")
}
