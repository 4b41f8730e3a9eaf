package handlers

import "github.com/labstack/echo/v4"

// hstsMaxAge is one year, in seconds.
const hstsMaxAge = "31536000"

// strictTransport tells browsers to use https only for this host (HSTS),
// when the public URL is https. Subdomains are left alone: they may be
// other services of the operator's.
func strictTransport(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Strict-Transport-Security", "max-age="+hstsMaxAge)
		return next(c)
	}
}
