package handlers

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

// userActionsPanel is the user page's Actions section.
func (s *Server) userActionsPanel(c echo.Context, u *account.User) (templ.Component, error) {
	csrfToken, _ := portalSession(c).Values[csrfKey].(string)
	return views.UserActionsPanel(views.UserActions{UserID: u.ID, HasPassword: u.Password != nil,
		MustChange: u.PasswordExpired(s.acct.Now()), CSRF: csrfToken}), nil
}

// userSetPasswordExpired is "Require password change" / "Cancel password
// change requirement"; it calls the same account method as the Admin API.
func (s *Server) userSetPasswordExpired(c echo.Context) error {
	expired := c.FormValue("expired") == "true"
	_, err := s.acct.SetPasswordExpired(c.Request().Context(), s.adminActor(c), c.Param("id"), expired)
	msg := "The user must change their password at next sign-in."
	if !expired {
		msg = "The password change requirement is cancelled."
	}
	return s.userActionDone(c, err, msg, "#password")
}

func (s *Server) userDeleteConfirm(c echo.Context) error {
	u, err := s.loadUserOr404(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.DeleteUserConfirm(s.layout(c, "Delete user", "users"), views.DeleteUserPage{UserID: u.ID, Title: views.UserTitle(u)}))
}

// userDelete deletes the user once the confirm step was taken (the confirm
// page posts confirm=yes; anything else goes back to that page).
func (s *Server) userDelete(c echo.Context) error {
	if c.FormValue("confirm") != "yes" {
		return c.Redirect(http.StatusSeeOther, "/portal/users/"+c.Param("id")+"/delete")
	}
	u, err := s.acct.DeleteUser(c.Request().Context(), s.adminActor(c), c.Param("id"))
	if err != nil {
		return userNotFound404(err)
	}
	if err := addFlash(c, portalSession(c), "success", "User "+views.UserTitle(u)+" deleted."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/users")
}

// usersBulkActions is the Users list's bulk action bar.
func (s *Server) usersBulkActions(c echo.Context, search string, filters store.UserFilters) templ.Component {
	csrfToken, _ := portalSession(c).Values[csrfKey].(string)
	return views.UsersBulkActions(views.UsersBulk{CSRF: csrfToken, Search: search, Filters: usersQueryValues(search, filters)})
}

// bulkBatch is how many users one bulk transaction changes.
const bulkBatch = 200

// maxBulkSelected caps the explicitly selected users of one request.
const maxBulkSelected = 1000

// usersBulkRequirePasswordChange asks the selected users, or every user
// matching the search, to change their password at next sign-in. "All
// matching" pages through the store by keyset, one transaction per batch,
// so it neither holds the database for long nor loads every user at once.
func (s *Server) usersBulkRequirePasswordChange(c echo.Context) error {
	ctx := c.Request().Context()
	actor := s.adminActor(c)
	q, filters := usersQuery(c)
	back := "/portal/users"
	if enc := usersQueryValues(q, filters).Encode(); enc != "" {
		back += "?" + enc
	}
	var total account.BulkResult
	add := func(r account.BulkResult) { total.Changed += r.Changed; total.Skipped += r.Skipped }
	switch c.FormValue("scope") {
	case "all":
		// Wide: say how many users first and ask (a page without JS; a
		// dialog with it posts the same confirm=yes).
		if c.FormValue("confirm") != "yes" {
			n, exact, err := s.store.CountUsersBounded(ctx, store.ListUsersParams{Search: q, Filters: filters, Now: s.acct.Now()}, 0)
			if err != nil {
				return err
			}
			return render(c, http.StatusOK, views.BulkConfirm(s.layout(c, "Require password change", "users"), views.BulkConfirmPage{
				Search: q, Filters: usersQueryValues(q, filters), Count: views.UsersTotal(n, exact), Back: back}))
		}
		after := ""
		for {
			rows, err := s.store.ListUsers(ctx, store.ListUsersParams{Search: q, Filters: filters, After: after, Limit: bulkBatch, Now: s.acct.Now()})
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				break
			}
			ids := make([]string, 0, len(rows)) // the store lists each user once
			for _, r := range rows {
				ids = append(ids, r.ID)
			}
			res, err := s.acct.RequirePasswordChange(ctx, actor, ids)
			if err != nil {
				return err
			}
			add(res)
			if len(rows) < bulkBatch {
				break
			}
			after = rows[len(rows)-1].Cursor
		}
	default:
		if err := c.Request().ParseForm(); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
		}
		ids := c.Request().PostForm["user_id"]
		if len(ids) == 0 {
			if err := addFlash(c, portalSession(c), "error", "Select at least one user, or choose “All users”."); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, back)
		}
		if len(ids) > maxBulkSelected {
			return echo.NewHTTPError(http.StatusBadRequest, "Select at most 1000 users, or choose “All users”.")
		}
		for i := 0; i < len(ids); i += bulkBatch {
			res, err := s.acct.RequirePasswordChange(ctx, actor, ids[i:min(i+bulkBatch, len(ids))])
			if err != nil {
				return err
			}
			add(res)
		}
	}
	msg := itoa(total.Changed) + " users must change their password at next sign-in."
	if total.Changed == 1 {
		msg = "1 user must change their password at next sign-in."
	}
	if total.Skipped > 0 {
		msg += " " + itoa(total.Skipped) + " skipped (no password, or already required)."
	}
	s.log.Info("bulk require password change", "admin", actor.Name, "changed", total.Changed, "skipped", total.Skipped, "search", q != "")
	if err := addFlash(c, portalSession(c), "success", msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, back)
}
