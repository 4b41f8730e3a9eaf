package handlers

import "github.com/labstack/echo/v4"

// exportRoutes registers the Users export (portal and Admin API).
func (s *Server) exportRoutes(e *echo.Echo, a *echo.Group) {}
