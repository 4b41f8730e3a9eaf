package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/metrics"
)

const ctxRequestID = "request_id"

// observe is the outermost middleware: it gives the request an ID (a sane
// incoming X-Request-ID, or a new one) that the answer, the error page and
// every log line about it carry, and once the answer is written it logs
// one line and records the request's metrics. The line names the route
// pattern, never the raw path or query string, which can hold tokens
// (reset links, setup links); bodies and headers are never logged.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)

		err := next(c)
		status := 0
		if err != nil {
			c.Error(err)
		}
		if c.Response().Committed {
			status = c.Response().Status
		} else if errors.Is(err, context.Canceled) {
			status = 499 // the client went away before an answer
		} else {
			status = c.Response().Status
		}
		route := c.Path()
		if route == "" || err == echo.ErrNotFound {
			route = "unmatched"
		}
		d := time.Since(start)
		method := req.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			method = "OTHER" // keep the label's values few
		}
		metrics.ObserveHTTP(method, route, status, d)
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.Int64("bytes", c.Response().Size),
			slog.String("ip", c.RealIP()),
			slog.String("request_id", id),
		)
		return nil
	}
}

// requestIDOf is the ID observe gave this request.
func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// saneRequestID accepts an incoming X-Request-ID of 1 to 128 characters
// from [A-Za-z0-9._:-], so that what reaches the log is never a payload.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// signInOutcome classifies what account.Login answered, for
// latchkey_sign_ins_total.
func signInOutcome(res *account.LoginResult, err error) string {
	if errors.Is(err, account.ErrBadCredentials) {
		return metrics.SignInWrong
	}
	if ae, ok := account.AsError(err); ok {
		switch ae.Reason {
		case account.ReasonAccountLocked:
			return metrics.SignInLocked
		case account.ReasonTemporaryPasswordExpired:
			return metrics.SignInExpired
		case account.ReasonUserDisabled:
			return metrics.SignInDisabled
		}
	}
	if err != nil || res == nil {
		return metrics.SignInError
	}
	if res.Restricted {
		return metrics.SignInExpired
	}
	return metrics.SignInOK
}

// readyStale is how long a worker may go without a heartbeat before
// /readyz reports it stuck: its longest sleep is a minute.
var readyStale = 3 * time.Minute

// readyz is the readiness check: the database answers, and the email and
// webhook workers have gone round their loops recently (a wedged worker
// leaves mail and webhooks queued while /healthz stays green).
func (s *Server) readyz(c echo.Context) error {
	checks := map[string]string{}
	ok := true
	if err := s.store.DB().PingContext(c.Request().Context()); err != nil {
		checks["database"], ok = "unavailable", false
	} else {
		checks["database"] = "ok"
	}
	worker := func(name string, last time.Time) {
		switch {
		case last.IsZero():
			checks[name], ok = "not started", false
		case time.Since(last) > readyStale:
			checks[name], ok = "stalled since "+last.UTC().Format(time.RFC3339), false
		default:
			checks[name] = "ok"
		}
	}
	if s.cfg.Mail != nil {
		worker("mail_worker", s.cfg.Mail.Heartbeat())
	}
	if s.hooks != nil {
		worker("webhook_worker", s.hooks.Heartbeat())
	}
	status, code := "ok", http.StatusOK
	if !ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	return c.JSON(code, map[string]any{"status": status, "checks": checks})
}

// trustOptions lists which proxies may set X-Forwarded-For: the given
// networks only, or echo's default (loopback, link-local and private
// addresses) when none are given.
func trustOptions(nets []*net.IPNet) []echo.TrustOption {
	if len(nets) == 0 {
		return nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range nets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return opts
}
