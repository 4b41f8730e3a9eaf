package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"latchkey/handlers/adminapi"
)

// adminAPIRoutes serves the GraphQL Admin API (outside the portal's cookie
// and CSRF group: it authenticates with API keys) and the portal screens
// that go with it: API keys, Reset Password, the user page's actions and
// the Users list's bulk action.
func (s *Server) adminAPIRoutes(e *echo.Echo, a *echo.Group) {
	s.adminAPI = adminapi.New(s.acct, s.log)

	api := e.Group("/_api/admin", noStore, s.apiKeyAuth())
	api.GET("/graphql", s.adminGraphQL)
	api.POST("/graphql", s.adminGraphQL)

	a.GET("/api-keys", s.apiKeysIndex)
	a.POST("/api-keys", s.apiKeysCreate)
	a.POST("/api-keys/:id/revoke", s.apiKeyRevoke)

	a.GET("/users/:id/reset-password", s.userResetPasswordShow)
	a.POST("/users/:id/reset-password", s.userResetPassword)
	a.POST("/users/:id/password-expired", s.userSetPasswordExpired)
	a.GET("/users/:id/delete", s.userDeleteConfirm)
	a.POST("/users/:id/delete", s.userDelete)
	a.POST("/users/bulk/require-password-change", s.usersBulkRequirePasswordChange)

	s.userPanels = append(s.userPanels, s.userActionsPanel)
}

// apiKeyAuth is APIKeyAuth with the server's shared failure limiter, for
// every Admin API route (GraphQL here, user import elsewhere), so that
// failures on any of them count together.
func (s *Server) apiKeyAuth() echo.MiddlewareFunc {
	return APIKeyAuth(s.acct, s.apiAuthFailures, s.log)
}

func (s *Server) adminGraphQL(c echo.Context) error {
	actor, ok := APIActor(c)
	if !ok {
		return echo.NewHTTPError(http.StatusUnauthorized, "Send a valid Admin API key.")
	}
	r := c.Request()
	s.adminAPI.ServeHTTP(c.Response(), r.WithContext(adminapi.WithActor(r.Context(), actor)))
	return nil
}
