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

// usersCountBound is where the Users list stops counting a search or a
// filter and says "More than 1,000 users"; without either it counts
// every user exactly.
const usersCountBound = 1_000

// usersQuery reads the Users list's search and filters from the URL (or
// a form), so the list, the bulk action and the export select the same users.
func usersQuery(c echo.Context) (string, store.UserFilters) {
	q := strings.TrimSpace(c.FormValue("q"))
	if len(q) > 320 {
		q = q[:320]
	}
	on := func(name string) bool { return c.FormValue(name) == "1" }
	return q, store.UserFilters{Disabled: on("disabled"), MustChange: on("must_change"), Locked: on("locked"),
		EmailFailed: on("email_failed"), NoPassword: on("no_password")}
}

// usersQueryValues is the URL query of a search and filters.
func usersQueryValues(q string, f store.UserFilters) url.Values {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	for name, on := range map[string]bool{"disabled": f.Disabled, "must_change": f.MustChange, "locked": f.Locked,
		"email_failed": f.EmailFailed, "no_password": f.NoPassword} {
		if on {
			v.Set(name, "1")
		}
	}
	return v
}

func (s *Server) usersIndex(c echo.Context) error {
	ctx := c.Request().Context()
	q, filters := usersQuery(c)
	after, before := c.QueryParam("after"), c.QueryParam("before")
	if after != "" {
		before = ""
	}
	now := s.acct.Now()
	params := store.ListUsersParams{Search: q, Filters: filters, After: after, Before: before, Limit: usersPageSize + 1, Now: now}
	rows, err := s.acct.ListUsers(ctx, params)
	if err != nil {
		return err
	}
	base := usersQueryValues(q, filters)
	p := views.UsersIndexPage{Search: q, Filters: filters, Query: base.Encode(), Now: now, BulkActions: s.usersBulkActions(c, q, filters)}
	more := len(rows) > usersPageSize
	if more {
		if before != "" {
			rows = rows[1:] // the extra row is the oldest-first walk's last: the top
		} else {
			rows = rows[:usersPageSize]
		}
	}
	link := func(key, cursor string) string {
		v := usersQueryValues(q, filters)
		v.Set(key, cursor)
		return "/portal/users?" + v.Encode()
	}
	if len(rows) > 0 {
		// Next: more rows below, or we came here with Previous.
		if (before == "" && more) || before != "" {
			p.NextURL = link("after", rows[len(rows)-1].Cursor)
		}
		// Previous: we came with Next, or Previous found more above.
		if after != "" || (before != "" && more) {
			p.PrevURL = link("before", rows[0].Cursor)
		}
	}
	if after != "" || before != "" {
		p.FirstURL = "/portal/users"
		if enc := base.Encode(); enc != "" {
			p.FirstURL += "?" + enc
		}
	}
	n, exact, err := s.store.CountUsersBounded(ctx, params, usersCountBound)
	if err != nil {
		return err
	}
	p.Total = views.UsersTotal(n, exact)
	for _, r := range rows {
		p.Users = append(p.Users, views.UserRow{
			ID: r.ID, LoginIDs: r.LoginIDs, Kinds: r.LoginIDKinds, CreatedAt: r.CreatedAt, LastLoginAt: r.LastLoginAt, Disabled: r.IsDisabled,
			MustChange: account.ExpiredAt(r.ExpireAfter, now), Locked: r.Locked, NoPassword: !r.HasPassword,
			// The list query carries the failed message's channel: a
			// failed password text is not a failed email.
			EmailFailed: r.EmailFailed && r.FailedChannel != store.ChannelSMS, TextFailed: r.FailedChannel == store.ChannelSMS,
		})
	}
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
	p := views.UserPage{User: u, Now: s.acct.Now(), TempPasswordEnds: s.acct.TemporaryPasswordEnds(u)}
	if p.EmailFailed, p.Locked, err = s.store.UserFlags(c.Request().Context(), u.ID, p.Now); err != nil {
		return err
	}
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
