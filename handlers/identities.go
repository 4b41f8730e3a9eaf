package handlers

import (
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

// usersManageRoutes registers issue 14's user management: login IDs,
// profile, sessions (portal and /settings) and the export.
func (s *Server) usersManageRoutes(e *echo.Echo, a *echo.Group) {
	a.GET("/users/:id/identities/new", s.identityNew)
	a.POST("/users/:id/identities", s.identityCreate)
	a.GET("/users/:id/identities/:iid/edit", s.identityEdit)
	a.POST("/users/:id/identities/:iid", s.identityUpdate)
	a.GET("/users/:id/identities/:iid/delete", s.identityDeleteConfirm)
	a.POST("/users/:id/identities/:iid/delete", s.identityDelete)
	a.GET("/users/:id/profile", s.profileEdit)
	a.POST("/users/:id/profile", s.profileUpdate)
	a.POST("/users/:id/sessions/:sid/revoke", s.userSessionRevoke)
	a.POST("/users/:id/sessions/revoke-all", s.userSessionsRevokeAll)
	s.sessionsRoutes(e)
	s.exportRoutes(e, a)
	s.webhooksEditRoutes(a)
	s.userPanels = append([]userPanel{s.userProfilePanel}, s.userPanels...)
	s.userPanels = append(s.userPanels, s.userSessionsPanel)
}

func (s *Server) userProfilePanel(c echo.Context, u *account.User) (templ.Component, error) {
	return views.UserProfilePanel(views.ProfilePanel{UserID: u.ID, Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName}), nil
}

func (s *Server) identityNew(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	kind := account.KindEmail
	if u.Email() != "" {
		kind = account.KindPhone
	}
	f := views.IdentityForm{UserID: u.ID, Title: views.UserTitle(u), Kind: kind}
	return render(c, http.StatusOK, views.IdentityEdit(s.layout(c, "Add login ID", "users"), f))
}

// identityFormPost is the Add / Change login ID form as posted.
type identityFormPost struct {
	Kind  string `form:"kind"`
	Value string `form:"value"`
}

func (s *Server) identityCreate(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	var in identityFormPost
	if err := c.Bind(&in); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	_, ident, err := s.acct.AddIdentity(c.Request().Context(), s.adminActor(c), u.ID, in.Kind, in.Value)
	if err == nil {
		return s.flashRedirect(c, "success", "Login ID "+ident.Value+" added.", "/portal/users/"+u.ID)
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return userNotFound404(err)
	}
	f := views.IdentityForm{UserID: u.ID, Title: views.UserTitle(u), Kind: in.Kind, Value: in.Value, Errors: fe}
	return render(c, http.StatusUnprocessableEntity, views.IdentityEdit(s.layout(c, "Add login ID", "users"), f))
}

// identityOf loads the user and the login ID named in the path, or 404.
func (s *Server) identityOf(c echo.Context) (*account.User, int, error) {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return nil, 0, err
	}
	for i, id := range u.Identities {
		if id.ID == c.Param("iid") {
			return u, i, nil
		}
	}
	return nil, 0, echo.NewHTTPError(http.StatusNotFound, "This login ID does not exist (any more).")
}

func (s *Server) identityEdit(c echo.Context) error {
	u, i, err := s.identityOf(c)
	if err != nil {
		return err
	}
	id := u.Identities[i]
	f := views.IdentityForm{UserID: u.ID, Title: views.UserTitle(u), IdentityID: id.ID, Kind: id.Kind, Value: id.Value}
	return render(c, http.StatusOK, views.IdentityEdit(s.layout(c, "Change login ID", "users"), f))
}

func (s *Server) identityUpdate(c echo.Context) error {
	u, i, err := s.identityOf(c)
	if err != nil {
		return err
	}
	id := u.Identities[i]
	value := c.FormValue("value")
	_, up, err := s.acct.UpdateIdentity(c.Request().Context(), s.adminActor(c), u.ID, id.ID, value)
	if err == nil {
		return s.flashRedirect(c, "success", "Login ID changed to "+up.Value+".", "/portal/users/"+u.ID)
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return userNotFound404(err)
	}
	f := views.IdentityForm{UserID: u.ID, Title: views.UserTitle(u), IdentityID: id.ID, Kind: id.Kind, Value: value, Errors: fe}
	return render(c, http.StatusUnprocessableEntity, views.IdentityEdit(s.layout(c, "Change login ID", "users"), f))
}

func (s *Server) identityDeleteConfirm(c echo.Context) error {
	u, i, err := s.identityOf(c)
	if err != nil {
		return err
	}
	id := u.Identities[i]
	p := views.IdentityRemovePage{UserID: u.ID, Title: views.UserTitle(u), IdentityID: id.ID, Kind: id.Kind, Value: id.Value}
	return render(c, http.StatusOK, views.IdentityRemoveConfirm(s.layout(c, "Remove login ID", "users"), p))
}

func (s *Server) identityDelete(c echo.Context) error {
	if c.FormValue("confirm") != "yes" {
		return c.Redirect(http.StatusSeeOther, "/portal/users/"+c.Param("id")+"/identities/"+c.Param("iid")+"/delete")
	}
	_, err := s.acct.RemoveIdentity(c.Request().Context(), s.adminActor(c), c.Param("id"), c.Param("iid"))
	if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonIdentityNotFound {
		return echo.NewHTTPError(http.StatusNotFound, ae.Message)
	}
	return s.userActionDone(c, err, "Login ID removed.", "")
}

func (s *Server) profileEdit(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	f := views.ProfileForm{UserID: u.ID, Title: views.UserTitle(u), Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName}
	return render(c, http.StatusOK, views.UserProfileEdit(s.layout(c, "Edit profile", "users"), f))
}

// profilePost is the Edit profile form as posted.
type profilePost struct {
	Name       string `form:"name"`
	GivenName  string `form:"given_name"`
	FamilyName string `form:"family_name"`
}

func (s *Server) profileUpdate(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	var in profilePost
	if err := c.Bind(&in); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	_, err = s.acct.UpdateProfile(c.Request().Context(), s.adminActor(c), u.ID, account.Profile{Name: in.Name, GivenName: in.GivenName, FamilyName: in.FamilyName})
	if err == nil {
		return s.flashRedirect(c, "success", "Profile saved.", "/portal/users/"+u.ID+"#profile")
	}
	fe := account.FieldErrors(err)
	if fe == nil {
		return userNotFound404(err)
	}
	f := views.ProfileForm{UserID: u.ID, Title: views.UserTitle(u), Name: strings.TrimSpace(in.Name), GivenName: in.GivenName, FamilyName: in.FamilyName, Errors: fe}
	return render(c, http.StatusUnprocessableEntity, views.UserProfileEdit(s.layout(c, "Edit profile", "users"), f))
}

// flashRedirect sets a portal flash and answers 303 to path.
func (s *Server) flashRedirect(c echo.Context, kind, msg, path string) error {
	if err := addFlash(c, portalSession(c), kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, path)
}

// home sends "/" to the portal for a browser that has a portal session
// cookie (an admin), and to the end users' sign-in page for everyone else.
func (s *Server) home(c echo.Context) error {
	if ck, err := c.Cookie(portalCookie); err == nil && ck.Value != "" {
		return c.Redirect(http.StatusFound, "/portal/users")
	}
	return c.Redirect(http.StatusFound, "/login")
}

// homeFor is the start page an error page links to: the portal's for
// portal paths, the end users' sign-in for the rest.
func homeFor(path string) string {
	if strings.HasPrefix(path, "/portal") {
		return "/portal/users"
	}
	return "/login"
}
