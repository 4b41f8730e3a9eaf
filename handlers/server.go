// Package handlers serves Latchkey over HTTP with Echo: the admin portal,
// the Auth UI and the Admin API endpoints. routes.go lists every route.
package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/handlers/adminapi"
	"latchkey/hooks"
	"latchkey/mail"
	"latchkey/oidc"
	"latchkey/store"
	"latchkey/views"
)

// Config is what the HTTP layer needs from the environment.
type Config struct {
	AppName   string
	PublicURL string
	// SessionKey is the server secret the cookie keys are derived from.
	SessionKey []byte
	// DevMailbox is set when no SMTP server is configured.
	DevMailbox bool
	// TrustProxy takes the client IP from X-Forwarded-For when the
	// request comes from a trusted proxy: one in TrustedProxies, or, when
	// that is empty, any loopback, link-local or private address.
	TrustProxy bool
	Log        *slog.Logger
	// Hooks is the event log and webhook service; nil leaves the audit
	// log and webhook pages out.
	Hooks *hooks.Service
	// Mail is the email outbox (user page delivery status, /portal/mail);
	// nil when mail is not wired in.
	Mail *mail.Outbox

	// TrustedProxies narrows TrustProxy to these networks.
	TrustedProxies []*net.IPNet
	// OIDC is the OpenID Connect provider; nil builds one on first use.
	OIDC *oidc.Provider
	// Admission is the queue in front of password verification; nil
	// gives NewAdmission(0, 0, 0): one slot per core plus one, a 1 s target.
	Admission *Admission
}

// Server holds what handlers share.
type Server struct {
	cfg      Config
	acct     *account.Service
	store    *store.Store
	log      *slog.Logger
	sessions *sessions.CookieStore
	secure   bool

	portalLoginLimit *Limiter
	adminCodeLimit   *Limiter // sign-in code step, per IP (admins.go)
	// userPanels add sections to the user page, in order.
	userPanels []userPanel
	hooks      *hooks.Service
	// authui holds the end-user pages' rate limiters (authui.go).
	authui *authUI

	// adminAPI serves the GraphQL Admin API; apiAuthFailures limits failed
	// API key authentications per IP.
	adminAPI        *adminapi.API
	apiAuthFailures *Limiter
	// oidc holds the OpenID Connect provider (oidc.go).
	oidc oidcState
	// admission bounds the password verifications in progress and waiting.
	admission *Admission
	// rates keeps the limiters' counters in the database when instances
	// share it (ratelimit_shared.go); nil keeps them in memory.
	rates *sharedRates
}

// New builds the Echo router with every route.
func New(cfg Config, acct *account.Service) *echo.Echo {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.AppName == "" {
		cfg.AppName = "Latchkey"
	}
	s := &Server{
		cfg:       cfg,
		acct:      acct,
		store:     acct.Store(),
		log:       cfg.Log,
		secure:    strings.HasPrefix(cfg.PublicURL, "https://"),
		hooks:     cfg.Hooks,
		admission: cfg.Admission,
	}
	s.rates = newSharedRates(s.store, cfg.SessionKey, cfg.Log)
	s.portalLoginLimit = s.newLimiter("portal_login_ip", 10, minute)
	s.apiAuthFailures = s.newLimiter("api_auth_failures_ip", apiAuthFailuresPerMinute, minute)
	if s.admission == nil {
		s.admission = NewAdmission(0, 0, 0)
	}
	s.sessions = sessions.NewCookieStore(
		account.DeriveKey(cfg.SessionKey, "session-hash"),
		account.DeriveKey(cfg.SessionKey, "session-block"),
	)
	// The codec refuses cookies older than the longest session (its
	// default is 30 days); the server-side session decides the rest.
	s.sessions.MaxAge(int(account.AdminSessionTTL / time.Second))
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	if cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trustOptions(cfg.TrustedProxies)...)
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.observe) // outermost: request ID, request log, metrics
	s.routes(e)
	return e
}

// render renders a component into a buffer first, so that a failed render
// is a clean 500 and not half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// layout builds the LayoutData of a portal page.
func (s *Server) layout(c echo.Context, title, nav string) views.LayoutData {
	l := views.LayoutData{Title: title, AppName: s.cfg.AppName, Nav: nav, DevMailbox: s.cfg.DevMailbox, DevTexts: s.devTexts() != nil}
	if sess := portalSession(c); sess != nil {
		l.CSRF, _ = sess.Values[csrfKey].(string)
		l.Flashes = takeFlashes(c, sess)
	}
	if a, ok := c.Get(ctxAdmin).(*store.Admin); ok {
		l.Admin = a.Email
	}
	return l
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "Something went wrong on our side. Please try again."
	var he *echo.HTTPError
	if store.IsBusy(err) {
		s.busyDatabase(err, c)
		return
	}
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok && (code < 500 || code == http.StatusServiceUnavailable) {
			msg = m
		} else if code < 500 {
			msg = http.StatusText(code)
		}
	} else if errors.Is(err, context.Canceled) {
		return
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "route", c.Path(), "request_id", requestIDOf(c), "err", err)
	}
	if strings.HasPrefix(c.Path(), "/_api/") || strings.Contains(c.Request().Header.Get("Accept"), "application/json") && !strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		_ = c.JSON(code, map[string]any{"error": msg, "request_id": requestIDOf(c)})
		return
	}
	l := views.LayoutData{Title: http.StatusText(code), AppName: s.cfg.AppName, Home: homeFor(c.Request().URL.Path)}
	if rerr := render(c, code, views.ErrorPageWithID(l, code, msg, requestIDOf(c))); rerr != nil {
		s.log.Error("render error page", "err", rerr)
	}
}

// adminActor builds the Actor for the signed-in admin of this request.
func (s *Server) adminActor(c echo.Context) account.Actor {
	a := account.Actor{Kind: "admin", TriggeredBy: "admin_api", IP: c.RealIP(), UserAgent: c.Request().UserAgent(),
		Languages: acceptLanguages(c.Request().Header.Get("Accept-Language"))}
	if adm, ok := c.Get(ctxAdmin).(*store.Admin); ok {
		a.ID, a.Name = adm.ID, adm.Email
	}
	return a
}

// acceptLanguages lists the language tags of an Accept-Language header in order.
func acceptLanguages(h string) []string {
	var out []string
	for _, part := range strings.Split(h, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if tag != "" && tag != "*" {
			out = append(out, tag)
		}
	}
	return out
}

// safeNext keeps only same-origin paths for post-sign-in redirects. It
// refuses control characters and backslashes as well as "//": browsers
// drop tabs and newlines from URLs and read "\" as "/", so "/\t/evil"
// and "/\\evil" would both lead off-site.
func safeNext(next, fallback string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) >= 0 {
		return fallback
	}
	return next
}
