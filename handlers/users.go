package handlers

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

const usersPageSize = 50

func (s *Server) usersIndex(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	if len(q) > 320 {
		q = q[:320]
	}
	after := c.QueryParam("after")
	rows, err := s.acct.ListUsers(c.Request().Context(), store.ListUsersParams{Search: q, After: after, Limit: usersPageSize + 1})
	if err != nil {
		return err
	}
	p := views.UsersIndexPage{Search: q, BulkActions: s.usersBulkActions(c, q)}
	if len(rows) > usersPageSize {
		rows = rows[:usersPageSize]
		v := url.Values{"after": {rows[len(rows)-1].Cursor}}
		if q != "" {
			v.Set("q", q)
		}
		p.NextURL = "/portal/users?" + v.Encode()
	}
	if after != "" {
		p.FirstURL = "/portal/users"
		if q != "" {
			p.FirstURL += "?" + url.Values{"q": {q}}.Encode()
		}
	}
	now := s.acct.Now()
	for _, r := range rows {
		p.Users = append(p.Users, views.UserRow{
			ID: r.ID, LoginIDs: r.LoginIDs, CreatedAt: r.CreatedAt, LastLoginAt: r.LastLoginAt, Disabled: r.IsDisabled,
			MustChange: account.ExpiredAt(r.ExpireAfter, now), EmailFailed: r.EmailFailed,
		})
	}
	s.markFailedTexts(c, p.Users)
	return render(c, http.StatusOK, views.UsersIndex(s.layout(c, "Users", "users"), p))
}

func (s *Server) newUserForm() views.NewUserForm {
	return views.NewUserForm{LoginIDKey: "email", PasswordMode: "manual", SetPasswordExpired: true, Rules: s.acct.Policy().Rules()}
}

func (s *Server) usersNew(c echo.Context) error {
	return render(c, http.StatusOK, views.UserNew(s.layout(c, "Create User", "users"), s.newUserForm()))
}

// userCreateForm is the Create User form as posted.
type userCreateForm struct {
	LoginIDKey         string `form:"loginIDKey"`
	LoginID            string `form:"loginID"`
	PasswordMode       string `form:"passwordMode"`
	Password           string `form:"password"`
	SendPassword       bool   `form:"sendPassword"`
	SetPasswordExpired bool   `form:"setPasswordExpired"`
}

func (s *Server) usersCreate(c echo.Context) error {
	var in userCreateForm
	if err := c.Bind(&in); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	f := s.newUserForm()
	f.LoginIDKey, f.LoginID, f.PasswordMode = in.LoginIDKey, in.LoginID, in.PasswordMode
	f.SendPassword, f.SetPasswordExpired = in.SendPassword, in.SetPasswordExpired

	input := account.CreateUserInput{LoginIDKey: in.LoginIDKey, LoginIDValue: in.LoginID}
	errs := map[string]string{}
	switch in.PasswordMode {
	case "manual":
		if in.Password == "" {
			errs["password"] = "Enter a password, or click Generate."
		}
		pw := in.Password
		input.Password = &pw
		input.SendPassword = in.SendPassword
		input.SetPasswordExpired = in.SetPasswordExpired
	case "auto":
		if in.LoginIDKey == account.KindUsername {
			errs["passwordMode"] = "Only an email or phone login ID can get an automatically created password."
		}
		empty := ""
		input.Password = &empty
		input.SendPassword = true
		input.SetPasswordExpired = in.SetPasswordExpired
	case "none":
		f.SendPassword, f.SetPasswordExpired = false, false
	default:
		errs["passwordMode"] = "Choose how to set up the password."
	}
	if len(errs) == 0 {
		u, err := s.acct.CreateUser(c.Request().Context(), s.adminActor(c), input)
		if err == nil {
			kind, msg := "success", "User created."
			if input.SendPassword {
				kind, msg = s.passwordSentFlash(c, u, "User created.")
			}
			if err := addFlash(c, portalSession(c), kind, msg); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/users/"+u.ID)
		}
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		errs = fe
	}
	// Map API field names onto the form's.
	if m, ok := errs["sendPassword"]; ok && in.PasswordMode == "auto" {
		errs["passwordMode"] = m
		delete(errs, "sendPassword")
	}
	f.Errors = errs
	return render(c, http.StatusUnprocessableEntity, views.UserNew(s.layout(c, "Create User", "users"), f))
}

func (s *Server) userShow(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	p := views.UserPage{User: u, Now: s.acct.Now()}
	for _, panel := range s.userPanels {
		comp, err := panel(c, u)
		if err != nil {
			return err
		}
		if comp != nil {
			p.Panels = append(p.Panels, comp)
		}
	}
	return render(c, http.StatusOK, views.UserShow(s.layout(c, views.UserTitle(u), "users"), p))
}

// userPanel adds a section to the user page; features register theirs in
// Server.userPanels.
type userPanel func(c echo.Context, u *account.User) (templ.Component, error)
