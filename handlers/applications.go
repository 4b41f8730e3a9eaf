package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/oidc"
	"latchkey/store"
	"latchkey/views"
)

// appSecretKey is where a new client secret waits in the (encrypted)
// portal session cookie for the one page view that shows it.
func appSecretKey(id string) string { return "app_secret:" + id }

func (s *Server) applicationRoutes(a *echo.Group) {
	a.GET("/applications", s.applicationsIndex)
	a.GET("/applications/new", s.applicationsNew)
	a.POST("/applications", s.applicationsCreate)
	a.POST("/applications/keys/rotate", s.signingKeyRotate)
	a.GET("/applications/:id", s.applicationShow)
	a.POST("/applications/:id", s.applicationUpdate)
	a.POST("/applications/:id/secret", s.applicationRotateSecret)
	a.GET("/applications/:id/delete", s.applicationDeleteConfirm)
	a.POST("/applications/:id/delete", s.applicationDelete)
}

// applicationInput binds the application form.
func applicationInput(c echo.Context) (oidc.AppInput, error) {
	form, err := c.FormParams()
	if err != nil {
		return oidc.AppInput{}, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	return oidc.AppInput{Name: form.Get("name"), Confidential: form.Get("client_type") != "public",
		RedirectURIs: form.Get("redirect_uris"), PostLogoutRedirectURIs: form.Get("post_logout_redirect_uris"),
		Scopes: form["scopes"], Disabled: form.Get("disabled") != ""}, nil
}

func applicationForm(in oidc.AppInput, id string, errs map[string]string) views.ApplicationForm {
	return views.ApplicationForm{ID: id, Name: in.Name, Confidential: in.Confidential, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, Scopes: in.Scopes, Disabled: in.Disabled, Errors: errs}
}

func storedApplicationForm(c *store.OIDCClient) views.ApplicationForm {
	return views.ApplicationForm{ID: c.ID, Name: c.Name, Confidential: c.Confidential, RedirectURIs: strings.Join(c.RedirectURIs, "\n"),
		PostLogoutRedirectURIs: strings.Join(c.PostLogoutRedirectURIs, "\n"), Scopes: c.Scopes, Disabled: c.Disabled}
}

func appNotFound404(err error) error {
	if ae, ok := account.AsError(err); ok && ae.Reason == "ApplicationNotFound" {
		return echo.NewHTTPError(http.StatusNotFound, ae.Message)
	}
	return err
}

func (s *Server) applicationsIndex(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	apps, err := p.Apps(ctx)
	if err != nil {
		return err
	}
	page := views.ApplicationsPage{Issuer: p.Issuer(), Discovery: p.Issuer() + oidc.DiscoveryPath}
	for _, a := range apps {
		page.Apps = append(page.Apps, views.ApplicationRow{ID: a.ID, Name: a.Name, Confidential: a.Confidential, Disabled: a.Disabled, RedirectURIs: a.RedirectURIs})
	}
	for _, k := range p.Keys().PublishedKeys(ctx) {
		page.Keys = append(page.Keys, views.SigningKeyRow{ID: k.ID, Alg: k.Alg, Active: k.Active})
	}
	return render(c, http.StatusOK, views.Applications(s.layout(c, "Applications", "applications"), page))
}

func (s *Server) applicationsNew(c echo.Context) error {
	f := views.ApplicationForm{Confidential: true, Scopes: []string{"openid", "email", "profile"}}
	return render(c, http.StatusOK, views.ApplicationNew(s.layout(c, "Add application", "applications"), f))
}

func (s *Server) applicationsCreate(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	in, err := applicationInput(c)
	if err != nil {
		return err
	}
	app, err := p.CreateApp(ctx, s.adminActor(c), in)
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		return render(c, http.StatusUnprocessableEntity, views.ApplicationNew(s.layout(c, "Add application", "applications"), applicationForm(in, "", fe)))
	}
	sess := portalSession(c)
	if app.Secret != "" {
		sess.Values[appSecretKey(app.ID)] = app.Secret
	}
	if err := addFlash(c, sess, "success", "Application added."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/applications/"+app.ID)
}

func (s *Server) applicationPage(c echo.Context, status int, f views.ApplicationForm) error {
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return err
	}
	page := views.ApplicationPage{Form: f, ClientID: f.ID, Issuer: p.Issuer(), Discovery: p.Issuer() + oidc.DiscoveryPath}
	sess := portalSession(c)
	if secret, ok := sess.Values[appSecretKey(f.ID)].(string); ok {
		page.Secret = secret
		delete(sess.Values, appSecretKey(f.ID))
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
	}
	return render(c, status, views.Application(s.layout(c, f.Name, "applications"), page))
}

func (s *Server) applicationShow(c echo.Context) error {
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return err
	}
	app, err := p.App(c.Request().Context(), c.Param("id"))
	if err != nil {
		return appNotFound404(err)
	}
	return s.applicationPage(c, http.StatusOK, storedApplicationForm(app))
}

func (s *Server) applicationUpdate(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	in, err := applicationInput(c)
	if err != nil {
		return err
	}
	_, err = p.UpdateApp(ctx, s.adminActor(c), c.Param("id"), in)
	if err != nil {
		fe := account.FieldErrors(err)
		if ae, ok := account.AsError(err); !ok || ae.Reason == "ApplicationNotFound" {
			return appNotFound404(err)
		}
		app, gerr := p.App(ctx, c.Param("id"))
		if gerr != nil {
			return appNotFound404(gerr)
		}
		f := applicationForm(in, app.ID, fe)
		f.Confidential = app.Confidential
		return s.applicationPage(c, http.StatusUnprocessableEntity, f)
	}
	if err := addFlash(c, portalSession(c), "success", "Application saved."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/applications/"+c.Param("id"))
}

func (s *Server) applicationRotateSecret(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	secret, err := p.RotateSecret(ctx, s.adminActor(c), c.Param("id"))
	if err != nil {
		if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonValidationFailed {
			if err := addFlash(c, portalSession(c), "error", ae.Message); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/applications/"+c.Param("id"))
		}
		return appNotFound404(err)
	}
	sess := portalSession(c)
	sess.Values[appSecretKey(c.Param("id"))] = secret
	if err := addFlash(c, sess, "success", "New client secret made. The old one no longer works."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/applications/"+c.Param("id"))
}

func (s *Server) applicationDeleteConfirm(c echo.Context) error {
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return err
	}
	app, err := p.App(c.Request().Context(), c.Param("id"))
	if err != nil {
		return appNotFound404(err)
	}
	return render(c, http.StatusOK, views.ApplicationDelete(s.layout(c, "Delete application", "applications"), app.ID, app.Name))
}

func (s *Server) applicationDelete(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	if err := p.DeleteApp(ctx, s.adminActor(c), c.Param("id")); err != nil {
		return appNotFound404(err)
	}
	if err := addFlash(c, portalSession(c), "success", "Application deleted."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/applications")
}

func (s *Server) signingKeyRotate(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	alg := c.FormValue("alg")
	if alg != oidc.AlgES256 {
		alg = oidc.AlgRS256
	}
	kid, err := p.RotateKey(ctx, s.adminActor(c), alg)
	if err != nil {
		return err
	}
	if err := addFlash(c, portalSession(c), "success", "New "+alg+" signing key "+kid+" is active. The previous key stays in JWKS until its tokens expire."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/applications#signing-keys")
}
