package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"latchkey/static"
)

// routes lists every route of Latchkey.
func (s *Server) routes(e *echo.Echo) {
	e.Use(middleware.Recover())
	// 2 MB for every request but the user import, which sets its own
	// (importBodyLimit) and says so in its answer.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   "2M",
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == importPath },
	}))
	e.Use(securityHeaders)
	if s.secure {
		e.Use(strictTransport)
	}

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/portal/users") })
	e.GET("/static/*", echo.WrapHandler(static.Handler()))

	// Portal: admins only, its own cookie, CSRF on every form.
	p := e.Group("/portal", noStore, s.withSession(portalCookie, ctxPortalSess), csrf(ctxPortalSess))
	p.GET("", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/portal/users") })
	p.GET("/setup", s.setupShow)
	p.POST("/setup", s.setupCreate)
	p.GET("/login", s.portalLoginShow)
	p.POST("/login", s.portalLoginCreate)
	p.POST("/logout", s.portalLogout)

	a := p.Group("", s.requireAdmin, s.requireTwoFactorEnrolment)
	s.adminsRoutes(p, a)
	a.GET("/users", s.usersIndex)
	a.GET("/users/new", s.usersNew)
	a.POST("/users", s.usersCreate)
	a.GET("/users/:id", s.userShow)
	a.GET("/settings/password-policy", s.policyShow)
	a.POST("/settings/password-policy", s.policyUpdate)
	a.POST("/password/check", s.passwordCheck)
	a.POST("/password/generate", s.passwordGenerate)
	s.eventsRoutes(e, a)
	s.scriptRoutes(a)
	s.mailRoutes(a)
	s.adminAPIRoutes(e, a)

	s.authUIRoutes(e, a)
	s.oidcRoutes(e, a)
}

func (s *Server) healthz(c echo.Context) error {
	if err := s.store.Ping(c.Request().Context()); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
