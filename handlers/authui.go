package handlers

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/metrics"
	"latchkey/views"
)

// End-user (Auth UI) cookie and context names: a cookie of its own, apart
// from the portal's, so that signing in as a user never touches an
// admin's session and the other way round.
const (
	userCookie   = "latchkey_user"
	ctxUserSess  = "user_cookie_session"
	ctxEndUser   = "end_user"
	userTokenKey = "sid"
	userNextKey  = "next"
)

// authUI holds the Auth UI's rate limiters.
type authUI struct {
	loginIP     *Limiter // password attempts per IP
	loginAcctIP *Limiter // password attempts per account and IP
	changeUser  *Limiter // current-password checks per user
	forgotIP    *Limiter // forgot-password requests per IP
	resetIP     *Limiter // code and link submissions per IP
	checkIP     *Limiter // live checklist calls per IP
}

// authUIRoutes registers the end-user pages and the portal's user-page
// actions that go with them (lockout, Disable / Enable).
func (s *Server) authUIRoutes(e *echo.Echo, admin *echo.Group) {
	s.authui = &authUI{
		loginIP:     s.newLimiter("login_ip", 60, minute),
		loginAcctIP: s.newLimiter("login_acct_ip", 10, minute),
		changeUser:  s.newLimiter("change_password_user", 10, minute),
		forgotIP:    s.newLimiter("forgot_ip", 60, minute),
		resetIP:     s.newLimiter("reset_ip", 60, minute),
		checkIP:     s.newLimiter("password_check_ip", 120, minute),
	}
	mw := []echo.MiddlewareFunc{noStore, s.withSession(userCookie, ctxUserSess), csrf(ctxUserSess), s.loadEndUser}
	e.GET("/login", s.authLoginShow, mw...)
	e.POST("/login", s.authLoginCreate, mw...)
	e.POST("/logout", s.authLogout, mw...)
	e.GET("/change-password", s.authChangeExpiredShow, mw...)
	e.POST("/change-password", s.authChangeExpired, mw...)
	e.GET("/settings", s.authSettings, append(mw, s.requireEndUser)...)
	e.POST("/settings/password", s.authChangePassword, append(mw, s.requireEndUser)...)
	e.GET("/forgot-password", s.authForgotShow, mw...)
	e.POST("/forgot-password", s.authForgot, mw...)
	e.GET("/reset-password/code", s.authResetCodeShow, mw...)
	e.POST("/reset-password/code", s.authResetCode, mw...)
	e.GET("/reset-password", s.authResetLinkShow, mw...)
	e.POST("/reset-password", s.authResetLink, mw...)
	e.POST("/password/check", s.authPasswordCheck, mw...)

	admin.POST("/users/:id/lockout/clear", s.userLockoutClear)
	admin.POST("/users/:id/disable", s.userDisable)
	admin.POST("/users/:id/enable", s.userEnable)
	s.userPanels = append(s.userPanels, s.userSignInPanel)
}

func userCookieSession(c echo.Context) *sessions.Session {
	sess, _ := c.Get(ctxUserSess).(*sessions.Session)
	return sess
}

func endUser(c echo.Context) *account.Session {
	us, _ := c.Get(ctxEndUser).(*account.Session)
	return us
}

// restrictedPaths are all a forced-change session may reach.
var restrictedPaths = map[string]bool{"/change-password": true, "/logout": true, "/password/check": true}

// loadEndUser puts the signed-in user's session in the context. A
// restricted session (expired password) is sent back to the change step
// from every other page.
func (s *Server) loadEndUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := userCookieSession(c)
		if tok, _ := sess.Values[userTokenKey].(string); tok != "" {
			us, err := s.acct.Session(c.Request().Context(), tok)
			switch ae, ok := account.AsError(err); {
			case err == nil:
				c.Set(ctxEndUser, us)
			case ok && ae.Reason == account.ReasonSessionEnded:
				delete(sess.Values, userTokenKey)
				if err := sess.Save(c.Request(), c.Response()); err != nil {
					return err
				}
			default:
				return err
			}
		}
		if us := endUser(c); us != nil && us.Restricted && !restrictedPaths[c.Path()] {
			if c.Request().Method == http.MethodGet {
				return c.Redirect(http.StatusSeeOther, "/change-password")
			}
			return echo.NewHTTPError(http.StatusForbidden, "Choose a new password first.")
		}
		return next(c)
	}
}

// requireEndUser sends a visitor without a full session to sign in.
func (s *Server) requireEndUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if us := endUser(c); us != nil && !us.Restricted {
			return next(c)
		}
		if c.Request().Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
}

// authLayout builds the LayoutData of an end-user page.
func (s *Server) authLayout(c echo.Context, title string) views.LayoutData {
	l := views.LayoutData{Title: title, AppName: s.cfg.AppName}
	if sess := userCookieSession(c); sess != nil {
		l.CSRF, _ = sess.Values[csrfKey].(string)
		l.Flashes = takeFlashes(c, sess)
	}
	return l
}

func (s *Server) userActor(c echo.Context) account.Actor {
	a := account.Actor{Kind: "user", TriggeredBy: "user", IP: c.RealIP(), UserAgent: c.Request().UserAgent(),
		Languages: acceptLanguages(c.Request().Header.Get("Accept-Language"))}
	if us := endUser(c); us != nil {
		a.ID = us.UserID
	}
	return a
}

// startUserSession replaces the browser's end-user cookie with one for a
// new session: new token, new CSRF token.
func (s *Server) startUserSession(c echo.Context, token, next, flash string) error {
	sess := userCookieSession(c)
	sess.Values = map[any]any{userTokenKey: token, csrfKey: account.NewToken()}
	if next != "" {
		sess.Values[userNextKey] = next
	}
	if flash != "" {
		sess.AddFlash("success\x00"+flash, flashKey)
	}
	return sess.Save(c.Request(), c.Response())
}

// msgBadCredentials answers a wrong login ID, a wrong password and a
// locked account alike (same status, same words), so that neither tells
// a stranger which accounts exist.
const msgBadCredentials = "Incorrect email, phone, username or password. After several failed attempts, sign-in pauses for a while: try again later, or use “Forgot password”."

func (s *Server) authLoginShow(c echo.Context) error {
	f := views.AuthLoginForm{Next: safeNext(c.QueryParam("next"), "")}
	// An app's sign-in that needs a fresh sign-in shows the form even to a
	// signed-in user; /oauth2/continue only sends them here when it must.
	app := s.oidcLoginApp(c, &f)
	if us := endUser(c); us != nil && !app {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next"), "/settings"))
	}
	return render(c, http.StatusOK, views.AuthLogin(s.authLayout(c, "Sign in"), f))
}

func (s *Server) authLoginCreate(c echo.Context) error {
	ctx := c.Request().Context()
	f := views.AuthLoginForm{LoginID: c.FormValue("login_id"), Next: safeNext(c.FormValue("next"), "")}
	fail := func(status int, msg string, forgot bool) error {
		f.Error, f.ForgotHint = msg, forgot
		s.oidcLoginApp(c, &f)
		return render(c, status, views.AuthLogin(s.authLayout(c, "Sign in"), f))
	}
	ip := c.RealIP()
	acctKey := loginLimitKey(f.LoginID, ip, s.acct.PhoneRegion())
	// Both limits in one go: one round trip when they are shared.
	switch refused, wait := allowAll(ctx, limiterHit{s.authui.loginIP, ip}, limiterHit{s.authui.loginAcctIP, acctKey}); refused {
	case 0:
		setRetryAfter(c, wait)
		metrics.SignIn(metrics.SignInLimited)
		return fail(http.StatusTooManyRequests, "Too many sign-in attempts from your network. Wait a minute and try again.", false)
	case 1:
		setRetryAfter(c, wait)
		metrics.SignIn(metrics.SignInLimited)
		return fail(http.StatusTooManyRequests, "Too many failed sign-in attempts. Try again later, or use “Forgot password”.", true)
	}
	release, busy, err := s.admit(c, limiterHit{s.authui.loginIP, ip}, limiterHit{s.authui.loginAcctIP, acctKey})
	if err != nil {
		return err
	} else if busy != nil {
		return fail(http.StatusServiceUnavailable, busyMessage(busy), false)
	}
	defer release()
	old, _ := userCookieSession(c).Values[userTokenKey].(string)
	res, err := s.acct.Login(ctx, s.userActor(c), account.LoginInput{LoginID: f.LoginID, Password: c.FormValue("password"), OldSession: old})
	metrics.SignIn(signInOutcome(res, err))
	if errors.Is(err, account.ErrBadCredentials) {
		s.log.Info("user sign-in failed", "ip", ip)
		return fail(http.StatusUnauthorized, msgBadCredentials, false)
	}
	if ae, ok := account.AsError(err); ok {
		switch ae.Reason {
		case account.ReasonAccountLocked:
			s.log.Info("user sign-in refused: account locked", "ip", ip)
			return fail(http.StatusUnauthorized, msgBadCredentials, false)
		case account.ReasonTemporaryPasswordExpired:
			return fail(http.StatusForbidden, ae.Message, true)
		case account.ReasonUserDisabled:
			return fail(http.StatusForbidden, ae.Message, false)
		}
	}
	if err != nil {
		return err
	}
	s.authui.loginAcctIP.ResetCtx(ctx, acctKey)
	if res.Restricted {
		if err := s.startUserSession(c, res.Session, f.Next, ""); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/change-password")
	}
	s.log.Info("user signed in", "user_id", res.User.ID)
	if err := s.startUserSession(c, res.Session, "", ""); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeNext(f.Next, "/settings"))
}

func (s *Server) authLogout(c echo.Context) error {
	sess := userCookieSession(c)
	tok, _ := sess.Values[userTokenKey].(string)
	if err := s.acct.Logout(c.Request().Context(), tok); err != nil {
		return err
	}
	sess.Values = map[any]any{csrfKey: account.NewToken()}
	if err := addFlash(c, sess, "success", "You have signed out."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) authChangeExpiredShow(c echo.Context) error {
	us := endUser(c)
	if us == nil {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	if !us.Restricted {
		return c.Redirect(http.StatusSeeOther, "/settings")
	}
	f := views.NewPasswordForm{Rules: s.acct.Policy().Rules()}
	return render(c, http.StatusOK, views.AuthChangeExpired(s.authLayout(c, "Password Expired"), f))
}

func (s *Server) authChangeExpired(c echo.Context) error {
	us := endUser(c)
	if us == nil || !us.Restricted {
		return echo.NewHTTPError(http.StatusUnauthorized, "Your session has ended. Sign in again.")
	}
	in := account.ChangePasswordInput{New: c.FormValue("password"), Confirm: c.FormValue("confirm")}
	release, busy, err := s.admit(c)
	if err != nil {
		return err
	} else if busy != nil {
		return busyHTTPError(busy)
	}
	defer release()
	token, err := s.acct.ChangeExpiredPassword(c.Request().Context(), s.userActor(c), us, in)
	if err != nil {
		if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonSessionEnded {
			return echo.NewHTTPError(http.StatusUnauthorized, ae.Message)
		}
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		f := views.NewPasswordForm{Rules: s.acct.Policy().Rules(), Errors: fe}
		return render(c, http.StatusUnprocessableEntity, views.AuthChangeExpired(s.authLayout(c, "Password Expired"), f))
	}
	next, _ := userCookieSession(c).Values[userNextKey].(string)
	s.log.Info("user replaced expired password", "user_id", us.UserID)
	if err := s.startUserSession(c, token, "", "Your new password is set."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeNext(next, "/settings"))
}

func (s *Server) authSettingsPage(c echo.Context, status int, errs map[string]string) error {
	u, err := s.acct.GetUser(c.Request().Context(), endUser(c).UserID)
	if err != nil {
		return err
	}
	p := views.AuthSettingsPage{Identities: u.Identities, Rules: s.acct.Policy().Rules(), Errors: errs}
	if p.Sessions, err = s.authSessionsSection(c); err != nil {
		return err
	}
	return render(c, status, views.AuthSettings(s.authLayout(c, "Your account"), p))
}

func (s *Server) authSettings(c echo.Context) error {
	return s.authSettingsPage(c, http.StatusOK, nil)
}

func (s *Server) authChangePassword(c echo.Context) error {
	us := endUser(c)
	if ok, _ := s.authui.changeUser.AllowCtx(c.Request().Context(), us.UserID); !ok {
		return s.authSettingsPage(c, http.StatusTooManyRequests, map[string]string{"": "Too many attempts. Wait a minute and try again."})
	}
	in := account.ChangePasswordInput{Current: c.FormValue("current_password"), New: c.FormValue("password"), Confirm: c.FormValue("confirm")}
	release, busy, err := s.admit(c, limiterHit{s.authui.changeUser, us.UserID})
	if err != nil {
		return err
	} else if busy != nil {
		return s.authSettingsPage(c, http.StatusServiceUnavailable, map[string]string{"": busyMessage(busy)})
	}
	defer release()
	err = s.acct.ChangePassword(c.Request().Context(), s.userActor(c), us, in)
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		return s.authSettingsPage(c, http.StatusUnprocessableEntity, fe)
	}
	if err := addFlash(c, userCookieSession(c), "success", "Your password has been changed. Your other sessions have been signed out."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/settings")
}

func (s *Server) authForgotShow(c echo.Context) error {
	return render(c, http.StatusOK, views.AuthForgot(s.authLayout(c, "Forgot password"), views.AuthForgotForm{LoginID: c.QueryParam("login_id")}))
}

func (s *Server) authForgot(c echo.Context) error {
	f := views.AuthForgotForm{LoginID: strings.TrimSpace(c.FormValue("login_id"))}
	if limited(c, s.authui.forgotIP, c.RealIP()) {
		f.Error = "Too many requests. Wait a minute and try again."
		return render(c, http.StatusTooManyRequests, views.AuthForgot(s.authLayout(c, "Forgot password"), f))
	}
	err := s.acct.ForgotPassword(c.Request().Context(), s.userActor(c), f.LoginID, s.cfg.PublicURL+"/reset-password")
	if err != nil {
		fe := account.FieldErrors(err)
		if fe == nil {
			return err
		}
		f.Error = "Enter your email, phone or username."
		if status, msg := forgotRefusal(err); msg != "" {
			f.Error = msg
			return render(c, status, views.AuthForgot(s.authLayout(c, "Forgot password"), f))
		}
		return render(c, http.StatusUnprocessableEntity, views.AuthForgot(s.authLayout(c, "Forgot password"), f))
	}
	return c.Redirect(http.StatusSeeOther, "/reset-password/code?"+url.Values{"login_id": {f.LoginID}}.Encode())
}

func (s *Server) resetForm(errs map[string]string) views.NewPasswordForm {
	return views.NewPasswordForm{Rules: s.acct.Policy().Rules(), Errors: errs}
}

func (s *Server) authResetCodeShow(c echo.Context) error {
	f := s.resetForm(nil)
	f.LoginID = c.QueryParam("login_id")
	return render(c, http.StatusOK, views.AuthResetCode(s.authLayout(c, "Reset password"), f))
}

// resetErrors maps a reset failure onto the form: a bad code or link
// under "code" or "", the rest under their fields.
func resetErrors(err error, codeField string) map[string]string {
	if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonResetFailed {
		return map[string]string{codeField: ae.Message}
	}
	return account.FieldErrors(err)
}

func (s *Server) authResetCode(c echo.Context) error {
	f := s.resetForm(nil)
	f.LoginID = strings.TrimSpace(c.FormValue("login_id"))
	if limited(c, s.authui.resetIP, c.RealIP()) {
		f.Errors = map[string]string{"": "Too many attempts. Wait a minute and try again."}
		return render(c, http.StatusTooManyRequests, views.AuthResetCode(s.authLayout(c, "Reset password"), f))
	}
	in := account.ChangePasswordInput{New: c.FormValue("password"), Confirm: c.FormValue("confirm")}
	release, busy, err := s.admit(c, limiterHit{s.authui.resetIP, c.RealIP()})
	if err != nil {
		return err
	} else if busy != nil {
		f.Errors = map[string]string{"": busyMessage(busy)}
		return render(c, http.StatusServiceUnavailable, views.AuthResetCode(s.authLayout(c, "Reset password"), f))
	}
	defer release()
	err = s.acct.ResetPasswordWithCode(c.Request().Context(), s.userActor(c), f.LoginID, strings.TrimSpace(c.FormValue("code")), in)
	if err != nil {
		if f.Errors = resetErrors(err, "code"); f.Errors == nil {
			return err
		}
		return render(c, http.StatusUnprocessableEntity, views.AuthResetCode(s.authLayout(c, "Reset password"), f))
	}
	return s.resetDone(c)
}

// resetDone ends this browser's end-user session too (the reset ended
// them all) and sends the user to sign in with the new password.
func (s *Server) resetDone(c echo.Context) error {
	sess := userCookieSession(c)
	sess.Values = map[any]any{csrfKey: account.NewToken()}
	if err := addFlash(c, sess, "success", "Your password has been reset. Sign in with your new password."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) authResetLinkShow(c echo.Context) error {
	f := s.resetForm(nil)
	f.Token = c.QueryParam("token")
	if err := s.acct.CheckResetLink(c.Request().Context(), f.Token); err != nil {
		if f.Errors = resetErrors(err, ""); f.Errors == nil {
			return err
		}
		f.Invalid = true
		return render(c, http.StatusGone, views.AuthResetLink(s.authLayout(c, "Reset password"), f))
	}
	return render(c, http.StatusOK, views.AuthResetLink(s.authLayout(c, "Reset password"), f))
}

func (s *Server) authResetLink(c echo.Context) error {
	f := s.resetForm(nil)
	f.Token = c.FormValue("token")
	if limited(c, s.authui.resetIP, c.RealIP()) {
		f.Errors = map[string]string{"": "Too many attempts. Wait a minute and try again."}
		return render(c, http.StatusTooManyRequests, views.AuthResetLink(s.authLayout(c, "Reset password"), f))
	}
	in := account.ChangePasswordInput{New: c.FormValue("password"), Confirm: c.FormValue("confirm")}
	release, busy, err := s.admit(c, limiterHit{s.authui.resetIP, c.RealIP()})
	if err != nil {
		return err
	} else if busy != nil {
		f.Errors = map[string]string{"": busyMessage(busy)}
		return render(c, http.StatusServiceUnavailable, views.AuthResetLink(s.authLayout(c, "Reset password"), f))
	}
	defer release()
	err = s.acct.ResetPasswordWithLink(c.Request().Context(), s.userActor(c), f.Token, in)
	if err != nil {
		if f.Errors = resetErrors(err, ""); f.Errors == nil {
			return err
		}
		status := http.StatusUnprocessableEntity
		if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonResetFailed {
			f.Invalid, status = true, http.StatusGone
		}
		return render(c, status, views.AuthResetLink(s.authLayout(c, "Reset password"), f))
	}
	return s.resetDone(c)
}

// authPasswordCheck answers the live checklist on end-user pages. Anyone
// with the Auth UI cookie may call it (the reset pages have no signed-in
// user), so it is CSRF-bound and rate limited per IP; it only runs the
// policy and stores or logs nothing.
func (s *Server) authPasswordCheck(c echo.Context) error {
	if limited(c, s.authui.checkIP, c.RealIP()) {
		return c.JSON(http.StatusTooManyRequests, map[string]string{"error": "Too many requests."})
	}
	return c.JSON(http.StatusOK, passwordCheckResult(s.acct.Policy(), c.FormValue("password")))
}

// loginLimitKey is the per-account-and-IP limiter key of a sign-in: the
// normalised login ID (or the raw one when it does not parse) and the IP,
// hashed, because the raw login ID may be megabytes long and limiter keys
// stay in memory for minutes.
func loginLimitKey(loginID, ip, region string) string {
	key := strings.ToLower(strings.TrimSpace(loginID))
	if id, err := account.ParseAnyLoginID(loginID, region); err == nil {
		key = id.Norm
	}
	sum := sha256.Sum256([]byte(key + "\x00" + ip))
	return string(sum[:])
}
