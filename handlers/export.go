package handlers

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

// exportWriteTimeout replaces the server's write timeout for an export:
// a million users take tens of seconds to stream.
const exportWriteTimeout = 10 * time.Minute

// exportRoutes registers the Users export: the portal's Export page and
// download (current search and filters) and POST /_api/admin/users/export.
func (s *Server) exportRoutes(e *echo.Echo, a *echo.Group) {
	a.GET("/users/export", s.usersExportShow)
	a.POST("/users/export", s.usersExport)
	e.POST("/_api/admin/users/export", s.apiUsersExport, noStore, s.apiKeyAuth())
}

func (s *Server) usersExportShow(c echo.Context) error {
	q, filters := usersQuery(c)
	n, exact, err := s.store.CountUsersBounded(c.Request().Context(), store.ListUsersParams{Search: q, Filters: filters, Now: s.acct.Now()}, usersCountBound)
	if err != nil {
		return err
	}
	p := views.ExportPage{Search: q, Filters: usersQueryValues(q, filters), Count: views.UsersTotal(n, exact)}
	return render(c, http.StatusOK, views.UsersExport(s.layout(c, "Export users", "users"), p))
}

func (s *Server) usersExport(c echo.Context) error {
	q, filters := usersQuery(c)
	return s.streamExport(c, s.adminActor(c), c.FormValue("format"), store.ListUsersParams{Search: q, Filters: filters})
}

// exportRequest is the body of POST /_api/admin/users/export.
type exportRequest struct {
	Format        string `json:"format"`
	SearchKeyword string `json:"searchKeyword"`
	Filters       struct {
		Disabled            bool `json:"disabled"`
		MustChangePassword  bool `json:"mustChangePassword"`
		Locked              bool `json:"locked"`
		PasswordEmailFailed bool `json:"passwordEmailFailed"`
		NoPassword          bool `json:"noPassword"`
	} `json:"filters"`
}

func (s *Server) apiUsersExport(c echo.Context) error {
	actor, ok := APIActor(c)
	if !ok {
		return echo.NewHTTPError(http.StatusUnauthorized, "Send a valid Admin API key.")
	}
	var in exportRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]any{"name": "BadRequest", "reason": "ValidationFailed",
			"message": "Send a JSON object: {\"format\": \"csv\" or \"ndjson\", \"searchKeyword\": \"...\", \"filters\": {...}}."}})
	}
	f := in.Filters
	return s.streamExport(c, actor, in.Format, store.ListUsersParams{Search: in.SearchKeyword, Filters: store.UserFilters{
		Disabled: f.Disabled, MustChange: f.MustChangePassword, Locked: f.Locked, EmailFailed: f.PasswordEmailFailed, NoPassword: f.NoPassword}})
}

// streamExport answers with the export file, streamed as it is read.
func (s *Server) streamExport(c echo.Context, actor account.Actor, format string, p store.ListUsersParams) error {
	if len(p.Search) > 320 {
		p.Search = p.Search[:320]
	}
	if format != account.ExportCSV && format != account.ExportNDJSON {
		if c.Request().URL.Path == "/_api/admin/users/export" {
			return c.JSON(http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{"name": "Invalid", "reason": "ValidationFailed",
				"message": "format must be csv or ndjson."}})
		}
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Choose CSV or NDJSON.")
	}
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	name := "users-" + s.acct.Now().Format("20060102-150405") + "." + format
	h := c.Response().Header()
	if format == account.ExportCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	n, err := s.acct.ExportUsers(c.Request().Context(), actor, c.Response(), format, p)
	if err != nil {
		// The status is sent; a cut-short file is all we can signal.
		s.log.Error("users export failed", "err", err, "exported", n)
	}
	return nil
}
