package handlers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
	"latchkey/views"
)

// Session values of a sign-in waiting for its second factor: the admin
// whose password was right, when, and where to go after. adminIDKey is
// set only once the code is right too.
const (
	pendingAdminKey = "pending_admin_id"
	pendingAtKey    = "pending_at"
	pendingNextKey  = "pending_next"
	// pendingTTL is how long the code step waits after the password.
	pendingTTL = 5 * time.Minute
	// adminCodesPerMinute limits code attempts per IP (the per-admin
	// limit is in account: TOTPMaxFailures per TOTPFailureWindow).
	adminCodesPerMinute = 10
)

// adminsRoutes mounts the Admins pages (a: signed-in admins) and the two
// pages strangers reach: the invitation link and the sign-in code step.
func (s *Server) adminsRoutes(p, a *echo.Group) {
	s.adminCodeLimit = s.newLimiter("admin_code_ip", adminCodesPerMinute, minute)
	p.GET("/login/2fa", s.loginCodeShow)
	p.POST("/login/2fa", s.loginCodeCreate)
	p.GET("/invite", s.inviteShow)
	p.POST("/invite", s.inviteAccept)

	a.GET("/admins", s.adminsIndex)
	a.POST("/admins", s.adminsCreate)
	a.POST("/admins/:id/remove", s.adminRemove)
	a.POST("/admins/:id/invite", s.adminReinvite)
	a.POST("/admins/settings", s.adminsSettings)
	a.POST("/admins/me/password", s.adminPasswordUpdate)
	a.POST("/admins/me/sessions/revoke", s.adminSessionsRevoke)
	a.GET("/admins/me/2fa", s.twoFactorShow)
	a.POST("/admins/me/2fa", s.twoFactorCreate)
	a.POST("/admins/me/2fa/disable", s.twoFactorDisable)
	a.POST("/admins/me/2fa/recovery-codes", s.twoFactorRenew)
}

func currentAdmin(c echo.Context) *store.Admin {
	a, _ := c.Get(ctxAdmin).(*store.Admin)
	return a
}

// requireTwoFactorEnrolment sends an admin without two-factor to enrol when
// every admin must use it; only the enrolment pages stay open to them (and
// sign-out, which is outside this group).
func (s *Server) requireTwoFactorEnrolment(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.HasPrefix(c.Path(), "/portal/admins/me/2fa") {
			return next(c)
		}
		ctx := c.Request().Context()
		on, err := s.acct.Require2FA(ctx)
		if err != nil || !on {
			if err != nil {
				return err
			}
			return next(c)
		}
		has, err := s.acct.AdminHasTOTP(ctx, currentAdmin(c).ID)
		if err != nil {
			return err
		}
		if has {
			return next(c)
		}
		if c.Request().Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusForbidden, "Two-factor sign-in is required for every admin. Set it up at /portal/admins/me/2fa first.")
		}
		return c.Redirect(http.StatusSeeOther, "/portal/admins/me/2fa")
	}
}

func (s *Server) adminsPage(c echo.Context, p views.AdminsPage) (views.AdminsPage, error) {
	ctx := c.Request().Context()
	me := currentAdmin(c)
	admins, err := s.acct.ListAdmins(ctx)
	if err != nil {
		return p, err
	}
	for _, a := range admins {
		p.Admins = append(p.Admins, views.AdminRow{ID: a.ID, Email: a.Email, Invited: a.Invited, TOTP: a.TOTP, CreatedAt: a.CreatedAt,
			LastLoginAt: a.LastLoginAt, Sessions: a.Sessions, Self: a.ID == me.ID})
		if a.ID == me.ID {
			p.SelfTOTP = a.TOTP
		}
	}
	if p.Require2FA, err = s.acct.Require2FA(ctx); err != nil {
		return p, err
	}
	p.Rules = s.acct.Policy().Rules()
	return p, nil
}

func (s *Server) renderAdmins(c echo.Context, status int, p views.AdminsPage) error {
	p, err := s.adminsPage(c, p)
	if err != nil {
		return err
	}
	return render(c, status, views.Admins(s.layout(c, "Admins", "admins"), p))
}

func (s *Server) adminsIndex(c echo.Context) error {
	return s.renderAdmins(c, http.StatusOK, views.AdminsPage{InviteSend: true})
}

// adminsCreate invites an admin. A link that is not emailed is shown in
// the answer itself, once, never through a redirect or the session.
func (s *Server) adminsCreate(c echo.Context) error {
	email, send := c.FormValue("email"), c.FormValue("send_email") == "1"
	inv, err := s.acct.InviteAdmin(c.Request().Context(), s.adminActor(c), email, send, s.cfg.PublicURL+"/portal/invite")
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		return s.renderAdmins(c, http.StatusUnprocessableEntity, views.AdminsPage{InviteEmail: email, InviteSend: send, InviteErrors: fe})
	}
	s.log.Info("admin invited", "admin_id", inv.Admin.ID, "by", s.adminActor(c).Name, "emailed", inv.Mailed)
	if inv.Mailed {
		if err := addFlash(c, portalSession(c), "success", "Invitation sent to "+inv.Admin.Email+". The link works once, for 72 hours."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/portal/admins")
	}
	return s.renderAdmins(c, http.StatusCreated, views.AdminsPage{InviteSend: true, NewInvite: inv.Admin.Email, NewLink: inv.Link})
}

// adminReinvite makes a new link for an invited admin (the old one stops
// working): emailed, or shown once in the answer.
func (s *Server) adminReinvite(c echo.Context) error {
	send := c.FormValue("send_email") == "1"
	inv, err := s.acct.ReinviteAdmin(c.Request().Context(), s.adminActor(c), c.Param("id"), send, s.cfg.PublicURL+"/portal/invite")
	if e, ok := account.AsError(err); ok {
		status := http.StatusUnprocessableEntity
		if e.Reason == "AdminNotFound" {
			status = http.StatusNotFound
		}
		return echo.NewHTTPError(status, e.Message)
	} else if err != nil {
		return err
	}
	if inv.Mailed {
		if err := addFlash(c, portalSession(c), "success", "A new invitation was sent to "+inv.Admin.Email+". The old link no longer works."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/portal/admins")
	}
	return s.renderAdmins(c, http.StatusCreated, views.AdminsPage{InviteSend: true, NewInvite: inv.Admin.Email, NewLink: inv.Link})
}

func (s *Server) adminRemove(c echo.Context) error {
	id := c.Param("id")
	err := s.acct.RemoveAdmin(c.Request().Context(), s.adminActor(c), id)
	if errors.Is(err, account.ErrLastAdmin) {
		return echo.NewHTTPError(http.StatusConflict, account.ErrLastAdmin.Message)
	} else if e, ok := account.AsError(err); ok {
		return echo.NewHTTPError(http.StatusNotFound, e.Message)
	} else if err != nil {
		return err
	}
	if id == currentAdmin(c).ID {
		return c.Redirect(http.StatusSeeOther, "/portal/login")
	}
	if err := addFlash(c, portalSession(c), "success", "Admin removed. Their sessions have ended."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/admins")
}

func (s *Server) adminsSettings(c echo.Context) error {
	on := c.FormValue("require_2fa") == "1"
	if err := s.acct.SetRequire2FA(c.Request().Context(), s.adminActor(c), on); err != nil {
		return err
	}
	msg := "Two-factor is no longer required."
	if on {
		msg = "Two-factor is now required for every admin. Admins without it set it up at their next page."
	}
	if err := addFlash(c, portalSession(c), "success", msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/admins")
}

func (s *Server) adminPasswordUpdate(c echo.Context) error {
	keep, _ := portalSession(c).Values[adminSessKey].(string)
	err := s.acct.ChangeAdminPassword(c.Request().Context(), s.adminActor(c), currentAdmin(c).ID, keep,
		c.FormValue("current_password"), c.FormValue("new_password"))
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		return s.renderAdmins(c, http.StatusUnprocessableEntity, views.AdminsPage{InviteSend: true, PasswordErrors: fe})
	}
	if err := addFlash(c, portalSession(c), "success", "Your password has been changed. Your other sessions have been signed out."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/admins")
}

// adminSessionsRevoke is "Sign out all sessions": every session of the
// signed-in admin ends, this one included.
func (s *Server) adminSessionsRevoke(c echo.Context) error {
	n, err := s.acct.SignOutAllAdminSessions(c.Request().Context(), s.adminActor(c), currentAdmin(c).ID)
	if err != nil {
		return err
	}
	s.log.Info("admin signed out all sessions", "admin_id", currentAdmin(c).ID, "sessions", n)
	sess := portalSession(c)
	sess.Values = map[any]any{csrfKey: account.NewToken()}
	if err := addFlash(c, sess, "success", fmt.Sprintf("All your sessions (%d) have been signed out.", n)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/login")
}

// twoFactorPage fills the enrolment part of the page (the QR code and
// secret) when two-factor is off.
func (s *Server) twoFactorPage(c echo.Context, p views.TwoFactorPage) (views.TwoFactorPage, error) {
	ctx := c.Request().Context()
	me := currentAdmin(c)
	var err error
	if p.Enabled, err = s.acct.AdminHasTOTP(ctx, me.ID); err != nil {
		return p, err
	}
	if p.Required, err = s.acct.Require2FA(ctx); err != nil {
		return p, err
	}
	if !p.Enabled && len(p.RecoveryCodes) == 0 {
		e, err := s.acct.BeginTOTPEnrolment(ctx, me.ID, s.cfg.AppName)
		if err != nil {
			return p, err
		}
		p.Secret = e.Secret
		p.QRDataURI = "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG)
	}
	return p, nil
}

func (s *Server) renderTwoFactor(c echo.Context, status int, p views.TwoFactorPage) error {
	p, err := s.twoFactorPage(c, p)
	if err != nil {
		return err
	}
	return render(c, status, views.TwoFactor(s.layout(c, "Two-factor sign-in", "admins"), p))
}

func (s *Server) twoFactorShow(c echo.Context) error {
	return s.renderTwoFactor(c, http.StatusOK, views.TwoFactorPage{})
}

// twoFactorCreate confirms the enrolment with a code and shows the
// recovery codes in the answer, once.
func (s *Server) twoFactorCreate(c echo.Context) error {
	codes, err := s.acct.ConfirmTOTPEnrolment(c.Request().Context(), s.adminActor(c), currentAdmin(c).ID, c.FormValue("code"))
	if err != nil {
		return s.twoFactorFailed(c, err, "code")
	}
	s.log.Info("admin two-factor enabled", "admin_id", currentAdmin(c).ID)
	return s.renderTwoFactor(c, http.StatusOK, views.TwoFactorPage{Enabled: true, RecoveryCodes: codes})
}

// twoFactorFailed re-renders the two-factor page with err under field.
func (s *Server) twoFactorFailed(c echo.Context, err error, field string) error {
	e, ok := account.AsError(err)
	if !ok {
		return err
	}
	status := http.StatusUnprocessableEntity
	if errors.Is(err, account.ErrTOTPTooMany) {
		status = http.StatusTooManyRequests
	}
	return s.renderTwoFactor(c, status, views.TwoFactorPage{Errors: map[string]string{field: e.Message}})
}

func (s *Server) twoFactorDisable(c echo.Context) error {
	err := s.acct.DisableOwnTOTP(c.Request().Context(), s.adminActor(c), currentAdmin(c).ID, c.FormValue("password"))
	if err != nil {
		return s.twoFactorFailed(c, err, "disable")
	}
	if err := addFlash(c, portalSession(c), "success", "Two-factor sign-in is off."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/admins")
}

func (s *Server) twoFactorRenew(c echo.Context) error {
	codes, err := s.acct.RenewRecoveryCodes(c.Request().Context(), s.adminActor(c), currentAdmin(c).ID, c.FormValue("password"))
	if err != nil {
		return s.twoFactorFailed(c, err, "renew")
	}
	return s.renderTwoFactor(c, http.StatusOK, views.TwoFactorPage{Enabled: true, RecoveryCodes: codes})
}

// startSecondFactor is the sign-in's step after a right password for an
// admin with two-factor: the session remembers who (not yet signed in)
// and the browser is sent to the code page.
func (s *Server) startSecondFactor(c echo.Context, adminID, next string) error {
	sess := portalSession(c)
	if old, _ := sess.Values[adminSessKey].(string); old != "" {
		if err := s.acct.EndAdminSession(c.Request().Context(), old); err != nil {
			return err
		}
	}
	sess.Values = map[any]any{csrfKey: account.NewToken(), pendingAdminKey: adminID,
		pendingAtKey: time.Now().Unix(), pendingNextKey: next}
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/portal/login/2fa")
}

// pendingAdmin returns the admin waiting for the code step, if the
// password step was recent enough.
func pendingAdmin(c echo.Context) (id, next string) {
	sess := portalSession(c)
	id, _ = sess.Values[pendingAdminKey].(string)
	at, _ := sess.Values[pendingAtKey].(int64)
	if id == "" || time.Since(time.Unix(at, 0)) > pendingTTL {
		return "", ""
	}
	next, _ = sess.Values[pendingNextKey].(string)
	return id, next
}

func (s *Server) clearPending(c echo.Context) error {
	sess := portalSession(c)
	delete(sess.Values, pendingAdminKey)
	delete(sess.Values, pendingAtKey)
	delete(sess.Values, pendingNextKey)
	return sess.Save(c.Request(), c.Response())
}

func (s *Server) loginCodeShow(c echo.Context) error {
	if id, _ := pendingAdmin(c); id == "" {
		return c.Redirect(http.StatusSeeOther, "/portal/login")
	}
	return render(c, http.StatusOK, views.AdminCode(s.layout(c, "Two-factor sign-in", ""), views.AdminCodeForm{}))
}

func (s *Server) loginCodeCreate(c echo.Context) error {
	id, next := pendingAdmin(c)
	if id == "" {
		if err := addFlash(c, portalSession(c), "error", "Your sign-in took too long. Enter your email and password again."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/portal/login")
	}
	l := s.layout(c, "Two-factor sign-in", "")
	if limited(c, s.adminCodeLimit, c.RealIP()) {
		return render(c, http.StatusTooManyRequests, views.AdminCode(l, views.AdminCodeForm{Error: "Too many attempts. Wait a minute and try again."}))
	}
	actor := account.Actor{Kind: "admin", ID: id, TriggeredBy: "portal", IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
	recovery, err := s.acct.VerifyAdminSecondFactor(c.Request().Context(), actor, id, c.FormValue("code"))
	if errors.Is(err, account.ErrTOTPNotEnrolled) {
		// Two-factor was turned off (or the admin removed) meanwhile: start again.
		if err := s.clearPending(c); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/portal/login")
	}
	if err != nil {
		e, ok := account.AsError(err)
		if !ok {
			return err
		}
		s.log.Warn("portal sign-in code refused", "admin_id", id, "ip", c.RealIP(), "reason", e.Reason)
		status := http.StatusUnauthorized
		if errors.Is(err, account.ErrTOTPTooMany) {
			status = http.StatusTooManyRequests
			if err := s.clearPending(c); err != nil {
				return err
			}
		}
		return render(c, status, views.AdminCode(l, views.AdminCodeForm{Error: e.Message}))
	}
	flash := ""
	if recovery {
		flash = "You signed in with a recovery code; it cannot be used again. Make new codes under Admins → Manage two-factor when you run low."
	}
	return s.startAdminSession(c, id, safeNext(next, "/portal/users"), flash)
}

func (s *Server) inviteShow(c echo.Context) error {
	token := c.QueryParam("token")
	email, err := s.acct.CheckAdminInvite(c.Request().Context(), token)
	if e, ok := account.AsError(err); ok {
		return echo.NewHTTPError(http.StatusForbidden, e.Message)
	} else if err != nil {
		return err
	}
	f := views.AdminInviteForm{Token: token, Email: email, Rules: s.acct.Policy().Rules()}
	return render(c, http.StatusOK, views.AdminInvite(s.layout(c, "Choose your password", ""), f))
}

func (s *Server) inviteAccept(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.FormValue("token")
	email, err := s.acct.CheckAdminInvite(ctx, token)
	if e, ok := account.AsError(err); ok {
		return echo.NewHTTPError(http.StatusForbidden, e.Message)
	} else if err != nil {
		return err
	}
	actor := account.Actor{IP: c.RealIP(), UserAgent: c.Request().UserAgent(), TriggeredBy: "portal"}
	admin, err := s.acct.AcceptAdminInvite(ctx, actor, token, c.FormValue("password"))
	if err != nil {
		e, ok := account.AsError(err)
		if !ok {
			return err
		}
		if e.Field == "" {
			return echo.NewHTTPError(http.StatusForbidden, e.Message)
		}
		f := views.AdminInviteForm{Token: token, Email: email, Rules: s.acct.Policy().Rules(), Errors: account.FieldErrors(err)}
		return render(c, http.StatusUnprocessableEntity, views.AdminInvite(s.layout(c, "Choose your password", ""), f))
	}
	s.log.Info("admin invitation accepted", "admin_id", admin.ID)
	return s.startAdminSession(c, admin.ID, "/portal/users", "Welcome! Your admin account is ready.")
}
