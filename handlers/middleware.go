package handlers

import (
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

// Cookie and context names.
const (
	portalCookie  = "latchkey_portal"
	ctxPortalSess = "portal_session"
	ctxAdmin      = "admin"
	csrfKey       = "csrf"
	// adminSessKey holds the portal session token; the database keeps
	// only its hash (account.StartAdminSession).
	adminSessKey = "admin_session"
	flashKey     = "_flash"
)

// securityHeaders sets headers every answer carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		return next(c)
	}
}

// noStore marks pages that show account data as not cacheable.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

// withSession loads the named cookie session into the context under
// ctxKey, giving it a CSRF token when it has none. A cookie that fails to
// decode (old keys, tampering) starts a fresh session.
func (s *Server) withSession(cookie, ctxKey string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			sess, err := s.sessions.Get(c.Request(), cookie)
			if err != nil {
				sess, _ = s.sessions.New(c.Request(), cookie)
				sess.Values = map[any]any{}
			}
			sess.Options = s.cookieOptions()
			c.Set(ctxKey, sess)
			if _, ok := sess.Values[csrfKey].(string); !ok {
				sess.Values[csrfKey] = account.NewToken()
				if err := sess.Save(c.Request(), c.Response()); err != nil {
					return err
				}
			}
			return next(c)
		}
	}
}

func (s *Server) cookieOptions() *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: 12 * 3600, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// csrf refuses a state-changing request whose _csrf form field (or
// X-CSRF-Token header) does not match the session's token.
func csrf(ctxKey string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			sess, _ := c.Get(ctxKey).(*sessions.Session)
			want := ""
			if sess != nil {
				want, _ = sess.Values[csrfKey].(string)
			}
			got := c.Request().Header.Get("X-CSRF-Token")
			if got == "" {
				got = c.FormValue("_csrf")
			}
			if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return echo.NewHTTPError(http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
			}
			return next(c)
		}
	}
}

func portalSession(c echo.Context) *sessions.Session {
	sess, _ := c.Get(ctxPortalSess).(*sessions.Session)
	return sess
}

// requireAdmin sends a signed-out visitor to the portal sign-in page and
// puts the signed-in admin in the context.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := portalSession(c)
		if token, _ := sess.Values[adminSessKey].(string); token != "" {
			a, err := s.acct.AdminSession(c.Request().Context(), token)
			if err == nil {
				c.Set(ctxAdmin, a)
				return next(c)
			}
			if _, ok := account.AsError(err); !ok {
				return err
			}
		}
		if c.Request().Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		return c.Redirect(http.StatusSeeOther, "/portal/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
}

// addFlash queues a message for the next page and saves the session.
func addFlash(c echo.Context, sess *sessions.Session, kind, msg string) error {
	sess.AddFlash(kind+"\x00"+msg, flashKey)
	return sess.Save(c.Request(), c.Response())
}

func takeFlashes(c echo.Context, sess *sessions.Session) []views.Flash {
	raw := sess.Flashes(flashKey)
	if len(raw) == 0 {
		return nil
	}
	var out []views.Flash
	for _, r := range raw {
		s, _ := r.(string)
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				out = append(out, views.Flash{Kind: s[:i], Message: s[i+1:]})
				break
			}
		}
	}
	_ = sess.Save(c.Request(), c.Response())
	return out
}
