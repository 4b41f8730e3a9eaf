package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

// loadUserOr404 loads the user named in the path, or answers 404.
func (s *Server) loadUserOr404(c echo.Context) (*account.User, error) {
	u, err := s.acct.GetUser(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, userNotFound404(err)
	}
	return u, nil
}

// userNotFound404 turns account's UserNotFound into the portal's 404 page
// and passes any other error through.
func userNotFound404(err error) error {
	if e, ok := account.AsError(err); ok && e.Reason == account.ReasonUserNotFound {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such user. It may have been deleted.")
	}
	return err
}

func (s *Server) resetPasswordForm(u *account.User) views.ResetPasswordForm {
	return views.ResetPasswordForm{UserID: u.ID, Title: views.UserTitle(u), Email: u.Email(), Phone: u.Phone(), Mode: "manual",
		SetPasswordExpired: true, Rules: s.acct.Policy().Rules()}
}

func (s *Server) userResetPasswordShow(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ResetPassword(s.layout(c, "Reset Password", "users"), s.resetPasswordForm(u)))
}

// resetPasswordPost is the Reset Password form as posted.
type resetPasswordPost struct {
	PasswordMode       string `form:"passwordMode"`
	Password           string `form:"password"`
	SendPassword       bool   `form:"sendPassword"`
	SetPasswordExpired bool   `form:"setPasswordExpired"`
	SendTo             string `form:"sendTo"`
}

// userResetPassword resets a user's password from the portal: "Enter a
// password" uses the typed one, "Automatically create..." generates one
// and always sends it (the checkbox is only a display there, as in the
// reference product).
func (s *Server) userResetPassword(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	var in resetPasswordPost
	if err := c.Bind(&in); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	f := s.resetPasswordForm(u)
	f.Mode, f.SendPassword, f.SetPasswordExpired = in.PasswordMode, in.SendPassword, in.SetPasswordExpired
	input := account.ResetPasswordInput{UserID: u.ID, SetPasswordExpired: in.SetPasswordExpired}
	errs := map[string]string{}
	if f.SendTo, input.SendTo = in.SendTo, resetSendTo(in.SendTo); input.SendTo == "?" {
		errs["sendTo"] = "Choose Email or Text message."
	}
	switch in.PasswordMode {
	case "manual":
		if in.Password == "" {
			errs["password"] = "Enter a password, or click Generate."
		}
		pw := in.Password
		input.Password, input.SendPassword = &pw, in.SendPassword
	case "auto":
		if u.Email() == "" && u.Phone() == "" {
			errs["passwordMode"] = "No email or phone identity found: an automatically created password could not reach the user. Enter a password instead."
		}
		empty := ""
		input.Password, input.SendPassword = &empty, true
		f.SendPassword = true
	default:
		f.Mode = "manual"
		errs["passwordMode"] = "Choose how to set the new password."
	}
	if len(errs) == 0 {
		u, err := s.acct.ResetPassword(c.Request().Context(), s.adminActor(c), input)
		if err == nil {
			kind, msg := "success", "Password reset."
			if input.SendPassword {
				kind, msg = s.passwordSentFlash(c, u, "Password reset.")
			}
			if input.SetPasswordExpired {
				msg += " The user must change it at next sign-in."
			}
			if err := addFlash(c, portalSession(c), kind, msg); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/users/"+u.ID)
		}
		if errs = account.FieldErrors(err); errs == nil {
			return err
		}
	}
	f.Errors = errs
	return render(c, http.StatusUnprocessableEntity, views.ResetPassword(s.layout(c, "Reset Password", "users"), f))
}

// resetSendTo reads the Reset Password form's "Send the password by"
// choice, shown only to a user with both an email and a phone: "" leaves
// the choice to account (email first); "?" is a value the form never sends.
func resetSendTo(v string) string {
	switch v {
	case "":
		return ""
	case store.ChannelEmail, store.ChannelSMS:
		return v
	}
	return "?"
}
