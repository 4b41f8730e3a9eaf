package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/store"
)

// ctxAPIKey is where APIKeyAuth puts the authenticated key.
const ctxAPIKey = "api_key"

// apiAuthFailuresPerMinute is how many failed Admin API authentications an
// IP gets per minute before it is refused without a check.
const apiAuthFailuresPerMinute = 20

// APIKeyAuth authenticates Admin API requests by `Authorization: Bearer
// <key>`. A missing, malformed, unknown, wrong or revoked key gets 401 and
// the handler never runs. Failures count per IP in failures; an IP over the
// limit gets 429 before its key is even looked at. Handlers behind it get
// the actor from APIActor. The GraphQL endpoint and the user import
// endpoint share it.
func APIKeyAuth(acct *account.Service, failures *Limiter, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ip := c.RealIP()
			if over, wait := failures.over(ip); over {
				setRetryAfter(c, wait)
				return apiAuthError(c, http.StatusTooManyRequests, "TooManyRequest", "Too many failed authentications from this address. Wait a minute and try again.")
			}
			h := c.Request().Header.Get("Authorization")
			scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
			var key *store.APIKey
			var err error
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				err = account.ErrInvalidAPIKey
			} else {
				key, err = acct.AuthenticateAPIKey(c.Request().Context(), strings.TrimSpace(token), ip)
			}
			if errors.Is(err, account.ErrInvalidAPIKey) {
				failures.AllowCtx(c.Request().Context(), ip)
				log.Warn("admin api: authentication failed", "ip", ip, "header", h != "")
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin-api"`)
				return apiAuthError(c, http.StatusUnauthorized, "Unauthenticated", "Send a valid Admin API key: Authorization: Bearer <key>. Admins create keys at /portal/api-keys.")
			} else if err != nil {
				return err
			}
			c.Set(ctxAPIKey, key)
			return next(c)
		}
	}
}

// APIActor returns the actor of an Admin API request that APIKeyAuth let through.
func APIActor(c echo.Context) (account.Actor, bool) {
	k, ok := c.Get(ctxAPIKey).(*store.APIKey)
	if !ok {
		return account.Actor{}, false
	}
	return account.APIKeyActor(k, c.RealIP(), c.Request().UserAgent()), true
}

func apiAuthError(c echo.Context, status int, reason, msg string) error {
	c.Response().Header().Set("Content-Type", "application/json")
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().WriteHeader(status)
	return json.NewEncoder(c.Response()).Encode(map[string]any{"errors": []map[string]any{{
		"message":    msg,
		"extensions": map[string]any{"errorName": reason, "reason": reason},
	}}})
}
