package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"latchkey/metrics"
	"latchkey/store"
)

// loadOps reads the operations settings: LATCHKEY_LOG_FORMAT,
// LATCHKEY_METRICS_ADDR and LATCHKEY_TRUST_PROXY.
func (c *config) loadOps(env func(key, def string) string) error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("LATCHKEY_LOG_FORMAT must be text or json")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("LATCHKEY_METRICS_ADDR must be host:port, like 127.0.0.1:9090: %w", err)
		}
	}
	var err error
	c.TrustProxy, c.TrustedProxies, err = parseTrustProxy(env("LATCHKEY_TRUST_PROXY", "false"))
	return err
}

// parseTrustProxy reads LATCHKEY_TRUST_PROXY: "false" (the client IP is
// the TCP peer), "true" (X-Forwarded-For is believed when it comes from a
// loopback, link-local or private address), or a comma-separated list of
// addresses and CIDR networks, the only proxies believed.
func parseTrustProxy(v string) (bool, []*net.IPNet, error) {
	switch strings.ToLower(v) {
	case "false", "0", "no", "off":
		return false, nil, nil
	case "true", "1", "yes", "on":
		return true, nil, nil
	}
	var nets []*net.IPNet
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip := net.ParseIP(part)
			if ip == nil {
				return false, nil, fmt.Errorf("LATCHKEY_TRUST_PROXY: %q is not true, false, an IP address or a CIDR network", part)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return false, nil, fmt.Errorf("LATCHKEY_TRUST_PROXY: %q is not true, false, an IP address or a CIDR network", part)
		}
		nets = append(nets, n)
	}
	if len(nets) == 0 {
		return false, nil, fmt.Errorf("LATCHKEY_TRUST_PROXY: give true, false, or the proxies' addresses")
	}
	return true, nets, nil
}

// newLogger builds the process logger: text (logfmt) or JSON lines.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// warnListen warns about listen settings that are likely mistakes.
func warnListen(cfg config, addr net.Addr, log *slog.Logger) {
	warnPublicURLPort(cfg.PublicURL, addr, log)
	if tcp, ok := addr.(*net.TCPAddr); ok && cfg.SMTPURL == "" && !tcp.IP.IsLoopback() {
		log.Warn("the dev mailbox (no LATCHKEY_SMTP_URL) shows plaintext passwords to portal admins and Latchkey listens beyond loopback: set LATCHKEY_SMTP_URL before real users arrive",
			"addr", addr.String())
	}
}

// warnPublicURLPort warns when the public URL names another port than the
// one Latchkey listens on: right behind a reverse proxy, a mistake
// otherwise (every link in every email would lead nowhere).
func warnPublicURLPort(publicURL string, addr net.Addr, log *slog.Logger) {
	u, err := url.Parse(publicURL)
	tcp, ok := addr.(*net.TCPAddr)
	if err != nil || !ok {
		return
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port != strconv.Itoa(tcp.Port) {
		log.Warn("LATCHKEY_PUBLIC_URL's port differs from the listen port: right behind a reverse proxy; otherwise set LATCHKEY_PUBLIC_URL to the address people open, or links in emails will not work",
			"public_url", publicURL, "public_port", port, "listen_port", tcp.Port)
	}
}

// startMetrics serves /metrics on LATCHKEY_METRICS_ADDR, a listener of
// its own so that it is never public by accident. It returns the function
// that stops it.
func startMetrics(cfg config, st *store.Store, log *slog.Logger) (func(), error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s (LATCHKEY_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(metrics.Options{DBs: map[string]*sql.DB{"writer": st.DB(), "reader": st.ReadDB()}, Stats: st, Log: log}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
