package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/oidc"
	"latchkey/views"
)

// oidcState holds the OpenID Connect provider: the one from Config, or
// one built on first use (tests that never touch OIDC skip making a key).
type oidcState struct {
	once sync.Once
	p    *oidc.Provider
	err  error
	// authorizeIP limits /oauth2/authorize per IP: each valid request
	// stores a row until it expires, so a stranger must not be able to
	// make them without bound.
	authorizeIP *Limiter
}

// authorizePerMinute is the /oauth2/authorize limit per IP; a person
// signing in to a few apps uses a handful.
const authorizePerMinute = 120

func (s *Server) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	s.oidc.once.Do(func() {
		if s.cfg.OIDC != nil {
			s.oidc.p = s.cfg.OIDC
			return
		}
		s.oidc.p, s.oidc.err = oidc.New(context.WithoutCancel(ctx), s.acct, oidc.Config{Issuer: s.cfg.PublicURL, Secret: s.cfg.SessionKey, Log: s.log})
	})
	return s.oidc.p, s.oidc.err
}

// oidcRoutes mounts the provider's endpoints, the hand-off between
// /oauth2/authorize and the Auth UI, and the portal's Applications pages.
func (s *Server) oidcRoutes(e *echo.Echo, admin *echo.Group) {
	if s.cfg.OIDC != nil {
		s.oidc.once.Do(func() { s.oidc.p = s.cfg.OIDC })
	}
	lib := func(c echo.Context) error {
		p, err := s.oidcProvider(c.Request().Context())
		if err != nil {
			return err
		}
		p.Handler().ServeHTTP(c.Response(), c.Request())
		return nil
	}
	e.Use(s.oidcFormAction)
	s.oidc.authorizeIP = s.newLimiter("oidc_authorize_ip", authorizePerMinute, minute)
	methods := []string{http.MethodGet, http.MethodPost, http.MethodOptions}
	for _, path := range []string{oidc.DiscoveryPath, oidc.JWKSPath, oidc.UserinfoPath} {
		e.Match(methods, path, lib)
	}
	for _, path := range []string{oidc.TokenPath, oidc.RevokePath, oidc.IntrospectPath} {
		e.Match([]string{http.MethodPost, http.MethodOptions}, path, lib, noStore)
	}
	e.Match([]string{http.MethodGet, http.MethodPost}, oidc.AuthorizePath, s.oidcAuthorize, noStore)
	e.GET(oidc.ContinuePath, s.oidcContinue, noStore, s.withSession(userCookie, ctxUserSess))
	// end_session takes no CSRF token (an app sends the browser there); it
	// signs out only when the library accepts the request.
	e.Match([]string{http.MethodGet, http.MethodPost}, oidc.EndSessionPath, s.oidcEndSession, noStore, s.withSession(userCookie, ctxUserSess))
	s.applicationRoutes(admin)
}

// oidcErrorPage shows an authorization error that must not go back to the
// app: the request may come from anyone, so it redirects nowhere.
func (s *Server) oidcErrorPage(c echo.Context) oidc.ErrorPage {
	return func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		text := "This sign-in request cannot be completed. Go back to the application and try again, or contact its administrator."
		if status == http.StatusTooManyRequests {
			text = "Too many sign-in requests from your network. Wait a minute and try again."
		} else if status == http.StatusServiceUnavailable {
			text = "Latchkey is busy right now. Try again in a few seconds."
		} else if msg != "" && status < 500 {
			text = "This sign-in request cannot be completed: " + strings.TrimSuffix(msg, ".") + ". Go back to the application and try again, or contact its administrator."
		}
		l := views.LayoutData{Title: "Sign-in request not valid", AppName: s.cfg.AppName}
		if err := render(c, status, views.ErrorPage(l, status, text)); err != nil {
			s.log.Error("render oidc error page", "err", err)
		}
	}
}

func (s *Server) oidcAuthorize(c echo.Context) error {
	if limited(c, s.oidc.authorizeIP, c.RealIP()) {
		s.oidcErrorPage(c)(c.Response(), c.Request(), http.StatusTooManyRequests, "")
		return nil
	}
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return err
	}
	p.Authorize(c.Response(), c.Request(), s.oidcErrorPage(c))
	return nil
}

// oidcContinue is where /oauth2/authorize sends the browser. A user with
// a full Auth UI session that is fresh enough (prompt=login, max_age)
// goes straight back to the app with a code: single sign-on. Anyone else
// signs in at /login (and, with an expired password, goes through the
// "Password Expired" step) and comes back here.
func (s *Server) oidcContinue(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return err
	}
	id := c.QueryParam("id")
	pd, _, err := p.Pending(ctx, id)
	if errors.Is(err, oidc.ErrRequestNotFound) {
		return echo.NewHTTPError(http.StatusBadRequest, "This sign-in has expired or was already completed. Go back to the application and sign in again.")
	} else if err != nil {
		return err
	}
	self := oidc.ContinuePath + "?id=" + url.QueryEscape(id)
	sess := userCookieSession(c)
	var us *account.Session
	if tok, _ := sess.Values[userTokenKey].(string); tok != "" {
		us, err = s.acct.Session(ctx, tok)
		if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonSessionEnded {
			us = nil
		} else if err != nil {
			return err
		}
	}
	if us != nil && us.Restricted && !pd.PromptNone() {
		sess.Values[userNextKey] = self
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/change-password")
	}
	if us != nil && !us.Restricted && pd.Fresh(us.CreatedAt, s.acct.Now()) {
		err := p.Finish(c.Response(), c.Request(), id, us.UserID, us.CreatedAt, s.userActor(c))
		if errors.Is(err, oidc.ErrRequestNotFound) {
			return echo.NewHTTPError(http.StatusBadRequest, "This sign-in has expired or was already completed. Go back to the application and sign in again.")
		}
		return err
	}
	if pd.PromptNone() {
		return p.Refuse(c.Response(), c.Request(), id, oidc.LoginRequired())
	}
	return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(self))
}

// oidcLoginApp fills the sign-in form for an app's sign-in (next is
// /oauth2/continue): the app's name and the login_hint. It reports
// whether the sign-in is for an app.
func (s *Server) oidcLoginApp(c echo.Context, f *views.AuthLoginForm) bool {
	if !strings.HasPrefix(f.Next, oidc.ContinuePath+"?") {
		return false
	}
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return false
	}
	pd, ok := p.LoginInfo(c.Request().Context(), f.Next)
	if !ok {
		return false
	}
	f.AppName = pd.AppName
	if f.LoginID == "" {
		f.LoginID = pd.LoginHint
	}
	return true
}

// oidcEndSession serves /oauth2/end_session. With an id_token_hint (which
// the library verifies) the app has proved it asks; without one, the user
// confirms on a CSRF-protected page first, so that no other site can sign
// them out with a link.
func (s *Server) oidcEndSession(c echo.Context) error {
	p, err := s.oidcProvider(c.Request().Context())
	if err != nil {
		return err
	}
	if c.FormValue("id_token_hint") == "" {
		sess := userCookieSession(c)
		if c.Request().Method != http.MethodPost || c.FormValue("confirm") != "1" {
			l := s.authLayout(c, "Sign out")
			return render(c, http.StatusOK, views.OIDCEndSession(l, views.EndSessionConfirm{ClientID: c.FormValue("client_id"),
				PostLogoutRedirectURI: c.FormValue("post_logout_redirect_uri"), State: c.FormValue("state")}))
		}
		want, _ := sess.Values[csrfKey].(string)
		if want == "" || subtle.ConstantTimeCompare([]byte(c.FormValue("_csrf")), []byte(want)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
		}
	}
	p.EndSession(c.Response(), c.Request(), func() error {
		sess := userCookieSession(c)
		tok, _ := sess.Values[userTokenKey].(string)
		if err := s.acct.Logout(c.Request().Context(), tok); err != nil {
			return err
		}
		sess.Values = map[any]any{csrfKey: account.NewToken()}
		return sess.Save(c.Request(), c.Response())
	}, s.oidcErrorPage(c))
	return nil
}

// oidcFormAction lets the sign-in and "Password Expired" forms of an app's
// sign-in end at the app: browsers apply the page's CSP form-action to the
// redirects that follow a form post, so the app's origin (from its
// registered redirect URI for this request) is added to 'self' there.
func (s *Server) oidcFormAction(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := c.Request().URL.Path
		if path != "/login" && path != "/change-password" {
			return next(c)
		}
		var flow string
		if path == "/login" {
			flow = c.QueryParam("next")
			if c.Request().Method == http.MethodPost {
				flow = c.FormValue("next")
			}
		} else if sess, err := s.sessions.Get(c.Request(), userCookie); err == nil {
			flow, _ = sess.Values[userNextKey].(string)
		}
		if !strings.HasPrefix(flow, oidc.ContinuePath+"?") {
			return next(c)
		}
		p, err := s.oidcProvider(c.Request().Context())
		if err != nil {
			return next(c)
		}
		pd, ok := p.LoginInfo(c.Request().Context(), flow)
		if !ok {
			return next(c)
		}
		u, err := url.Parse(pd.RedirectURI)
		if err != nil || u.Host == "" {
			return next(c)
		}
		h := c.Response().Header()
		csp := h.Get("Content-Security-Policy")
		origin := u.Scheme + "://" + u.Host
		h.Set("Content-Security-Policy", strings.Replace(csp, "form-action 'self'", "form-action 'self' "+origin, 1))
		return next(c)
	}
}
