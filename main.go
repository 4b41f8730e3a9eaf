// Command latchkey serves the Latchkey user-account portal: the admin
// portal, the Auth UI, the Admin API, and the workers that deliver email
// and webhooks.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"latchkey/account"
	"latchkey/handlers"
	"latchkey/hooks"
	"latchkey/mail"
	"latchkey/oidc"
	"latchkey/outbound"
	"latchkey/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	exit(ctx, stop) // cli.go: the subcommands
}

// config is everything Latchkey reads from the environment, with the
// embedded defaults that make a bare `go run .` work.
type config struct {
	Addr          string
	DB            string
	PublicURL     string
	AppName       string
	SecretKey     string
	AdminEmail    string
	AdminPassword string
	BcryptCost    int
	PhoneRegion   string
	SMTPURL       string
	MailFrom      string
	AppID         string
	TrustProxy    bool
	LogLevel      slog.Level

	// Operations (ops.go): metrics listener, log format, trusted proxies.
	MetricsAddr    string
	LogFormat      string
	TrustedProxies []*net.IPNet

	// SMS (main_sms.go): LATCHKEY_SMS_URL and friends.
	SMS smsConfig
	// ShutdownTimeout bounds how long SIGTERM waits for requests in
	// flight (an import of 10,000 records with plaintext passwords takes
	// minutes at bcrypt cost 10).
	ShutdownTimeout time.Duration
	// SignInSlots and SignInTarget size the admission queue in front of
	// password checks (0: cores + 1; 1 s).
	SignInSlots  int
	SignInTarget time.Duration
	// WorkerLease overrides how long a claimed email, text or webhook
	// delivery stays hidden from other instances (LATCHKEY_WORKER_LEASE,
	// main_lease.go); 0: the workers' defaults.
	WorkerLease time.Duration
}

func loadConfig(args []string, getenv func(string) string) (config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr:          env("LATCHKEY_ADDR", "127.0.0.1:8080"),
		DB:            env("LATCHKEY_DB", "latchkey.db"),
		PublicURL:     strings.TrimRight(env("LATCHKEY_PUBLIC_URL", "http://localhost:8080"), "/"),
		AppName:       env("LATCHKEY_APP_NAME", "Latchkey"),
		SecretKey:     getenv("LATCHKEY_SECRET_KEY"),
		AdminEmail:    env("LATCHKEY_ADMIN_EMAIL", ""),
		AdminPassword: getenv("LATCHKEY_ADMIN_PASSWORD"),
		PhoneRegion:   strings.ToUpper(env("LATCHKEY_PHONE_REGION", "US")),
		SMTPURL:       env("LATCHKEY_SMTP_URL", ""),
		AppID:         env("LATCHKEY_APP_ID", "latchkey"),
		MetricsAddr:   env("LATCHKEY_METRICS_ADDR", ""),
		LogFormat:     env("LATCHKEY_LOG_FORMAT", "text"),
	}
	c.MailFrom = env("LATCHKEY_MAIL_FROM", c.AppName+" <no-reply@localhost>")
	if err := serveFlags(&c).Parse(args); err != nil {
		return c, err
	}
	if err := c.loadOps(env); err != nil {
		return c, err
	}
	cost, err := strconv.Atoi(env("LATCHKEY_BCRYPT_COST", "10"))
	if err != nil || cost < 4 || cost > 31 {
		return c, fmt.Errorf("LATCHKEY_BCRYPT_COST must be a number from 4 to 31")
	}
	c.BcryptCost = cost
	if c.ShutdownTimeout, err = time.ParseDuration(env("LATCHKEY_SHUTDOWN_TIMEOUT", "2m")); err != nil || c.ShutdownTimeout <= 0 {
		return c, fmt.Errorf("LATCHKEY_SHUTDOWN_TIMEOUT must be a duration like 2m or 30s")
	}
	if c.SignInSlots, err = strconv.Atoi(env("LATCHKEY_SIGNIN_SLOTS", "0")); err != nil || c.SignInSlots < 0 {
		return c, fmt.Errorf("LATCHKEY_SIGNIN_SLOTS must be a number (0: the core count plus one)")
	}
	if c.SignInTarget, err = time.ParseDuration(env("LATCHKEY_SIGNIN_TARGET", "1s")); err != nil || c.SignInTarget <= 0 {
		return c, fmt.Errorf("LATCHKEY_SIGNIN_TARGET must be a duration like 1s")
	}
	if c.WorkerLease, err = parseWorkerLease(env("LATCHKEY_WORKER_LEASE", "")); err != nil {
		return c, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(env("LATCHKEY_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("LATCHKEY_LOG_LEVEL: %w", err)
	}
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return c, fmt.Errorf("LATCHKEY_PUBLIC_URL must start with http:// or https://")
	}
	if c.SecretKey != "" {
		if _, err := secretKeyBytes(c.SecretKey); err != nil { // secretkey.go: plain or base64:
			return c, err
		}
	}
	if store.IsPostgresURL(c.DB) && c.SecretKey == "" {
		// Instances sharing one database must share the secret that
		// sessions and sealed data derive from; a generated one kept in
		// the database would be read by all, but an operator must be able
		// to rotate and keep it apart from the data, so it is required.
		return c, fmt.Errorf("LATCHKEY_SECRET_KEY is required with a PostgreSQL LATCHKEY_DB (every instance needs the same one, at least 32 characters)")
	}
	if c.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(c.SMTPURL); err != nil {
			return c, err
		}
	}
	if _, err := netmail.ParseAddress(c.MailFrom); err != nil {
		return c, fmt.Errorf("LATCHKEY_MAIL_FROM must be an email address, like Acme <no-reply@example.com>")
	}
	if c.SMS, err = loadSMSConfig(getenv, c.AppID); err != nil {
		return c, err
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		return c, fmt.Errorf("set both LATCHKEY_ADMIN_EMAIL and LATCHKEY_ADMIN_PASSWORD, or neither")
	}
	return c, nil
}

// serveFlags is the flag set of `latchkey serve`, writing into c.
func serveFlags(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (LATCHKEY_ADDR, default 127.0.0.1:8080)")
	fs.StringVar(&c.DB, "db", c.DB, "SQLite database file, or a postgres:// URL (LATCHKEY_DB, default latchkey.db)")
	return fs
}

// run starts Latchkey and blocks until ctx is done, then shuts down
// gracefully. Tests call it with their own args and environment.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return serve(ctx, args, getenv, os.Stderr)
}

// serve is run with the log going to logOut.
func serve(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, logOut)

	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	st.SetLog(log)
	// The database closes last, and only once no handler can use it:
	// drain clears closeStore when handlers outlive the shutdown bound.
	closeStore := true
	defer func() {
		if closeStore {
			st.Close()
		}
	}()

	secret, err := serverSecret(ctx, st, cfg.SecretKey)
	if err != nil {
		return err
	}

	// Events: the event log, webhook delivery (a worker that stops before
	// the store closes) and blocking hooks.
	hk, err := hooks.New(st, secret, hooks.Config{AppID: cfg.AppID, Outbound: outbound.FromEnv(getenv), Lease: cfg.WorkerLease}, log)
	if err != nil {
		return err
	}
	hooksCtx, stopHooks := context.WithCancel(context.Background())
	hooksDone := make(chan struct{})
	go func() { hk.Run(hooksCtx); close(hooksDone) }()
	go hk.WarmScripts(hooksCtx)
	defer func() { stopHooks(); <-hooksDone; hk.Close() }()

	cfg.SMS.Provider.Schemes = smsSchemesWith(hk) // script://HOOK runs a TypeScript hook
	hk.SetSMSScriptRef(smsScriptRef(cfg.SMS))     // its "Run with a sample event" gets a sample text
	outbox, closeMail, err := startMail(ctx, st, cfg, secret, hk, log)
	if err != nil {
		return err
	}
	defer closeMail()

	acct, err := account.New(ctx, st, account.Config{BcryptCost: cfg.BcryptCost, PhoneRegion: cfg.PhoneRegion, SMS: cfg.SMS.Limits}, outbox, hk, log)
	if err != nil {
		return err
	}
	if err := acct.SetSecret(secret); err != nil { // seals admins' TOTP secrets
		return err
	}
	if err := bootstrapAdmin(ctx, acct, cfg, log); err != nil {
		return err
	}
	// OpenID Connect provider: makes its first signing key on first start.
	oidcProvider, err := oidc.New(ctx, acct, oidc.Config{Issuer: cfg.PublicURL, Secret: secret, Log: log})
	if err != nil {
		return err
	}

	e := handlers.New(handlers.Config{
		AppName:    cfg.AppName,
		PublicURL:  cfg.PublicURL,
		SessionKey: secret,
		DevMailbox: cfg.SMTPURL == "",
		Mail:       outbox,
		TrustProxy: cfg.TrustProxy,
		Log:        log,
		Hooks:      hk,
		OIDC:       oidcProvider,

		TrustedProxies: cfg.TrustedProxies,
		Admission:      handlers.NewAdmission(cfg.SignInSlots, cfg.SignInTarget, 0),
	}, acct)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	var handlersRunning atomic.Int64
	srv := &http.Server{Handler: trackHandlers(&handlersRunning, e), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("latchkey listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "db", store.RedactDB(cfg.DB))
	warnListen(cfg, ln.Addr(), log)
	stopMetrics, err := startMetrics(cfg, st, log)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer stopMetrics()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	closeStore = drain(srv, &handlersRunning, cfg.ShutdownTimeout, log)
	return nil
}

// trackHandlers counts the requests being handled, so that shutdown can
// wait for the last handler to return before it closes the database.
func trackHandlers(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		defer n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// drain shuts the server down gracefully: it stops accepting connections
// at once, lets the requests in flight finish (an import included) for up
// to bound, then closes the connections still open, which cancels their
// requests (an import rolls back as a whole: it is one transaction), and
// waits a little longer for those handlers to return. It reports whether
// every handler has returned, so the database may be closed.
func drain(srv *http.Server, running *atomic.Int64, bound time.Duration, log *slog.Logger) bool {
	log.Info("shutting down: no new connections; waiting for requests in flight", "bound", bound)
	shutCtx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutting down: requests still running after the bound; cancelling them", "bound", bound)
		_ = srv.Close()
	}
	// No new request can start now; wait for the handlers still running.
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() > 0 {
		if time.Now().After(deadline) {
			log.Error("shutting down: a handler did not return; leaving the database open (SQLite recovers it at the next start)")
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// startMail builds the email outbox over SMTP (or the dev mailbox when
// LATCHKEY_SMTP_URL is empty) and starts its worker. The returned func
// stops the worker, letting messages being sent finish; queued ones wait
// for the next start.
func startMail(ctx context.Context, st *store.Store, cfg config, secret []byte, events account.Events, log *slog.Logger) (*mail.Outbox, func(), error) {
	var sender mail.Sender
	var smtpSender *mail.SMTPSender
	if cfg.SMTPURL == "" {
		sender = mail.NewDevMailbox(0)
		log.Warn("email is not configured (LATCHKEY_SMTP_URL): messages go to the dev mailbox at /portal/mail")
	} else {
		sc, err := mail.ParseSMTPURL(cfg.SMTPURL)
		if err != nil {
			return nil, nil, err
		}
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
			sc.HelloName = u.Hostname()
		}
		smtpSender = mail.NewSMTPSender(sc)
		sender = smtpSender
	}
	outbox, err := mail.New(st, sender, mail.Config{AppName: cfg.AppName, PublicURL: cfg.PublicURL, From: cfg.MailFrom,
		Secret: secret, Log: log, Lease: cfg.WorkerLease})
	if err != nil {
		return nil, nil, err
	}
	outbox.SetEvents(events) // email.sent / email.failed; before Start
	if err := setTextSender(outbox, cfg, log); err != nil {
		return nil, nil, err
	}
	if err := outbox.Start(ctx); err != nil {
		return nil, nil, err
	}
	return outbox, func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
		defer cancel()
		if err := outbox.Stop(stopCtx); err != nil {
			log.Error("mail: stop worker", "err", err)
		}
		if smtpSender != nil {
			_ = smtpSender.Close()
		}
	}, nil
}

// serverSecret returns the secret that session and encryption keys derive
// from: LATCHKEY_SECRET_KEY, or one generated on first start and kept in
// the database so that restarts keep sessions and queued mail readable.
func serverSecret(ctx context.Context, st *store.Store, fromEnv string) ([]byte, error) {
	if fromEnv != "" {
		return secretKeyBytes(fromEnv)
	}
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return st.InsertSettingIfAbsent(ctx, "secret_key", b)
}

// bootstrapAdmin creates the admin named in the environment, or logs the
// one-time setup link when no admin exists.
func bootstrapAdmin(ctx context.Context, acct *account.Service, cfg config, log *slog.Logger) error {
	if cfg.AdminEmail != "" {
		created, err := acct.BootstrapAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
		if err != nil {
			return fmt.Errorf("create admin from LATCHKEY_ADMIN_EMAIL: %w", err)
		}
		if created {
			log.Info("admin created from the environment", "email", strings.ToLower(cfg.AdminEmail))
		} else {
			log.Info("LATCHKEY_ADMIN_EMAIL and LATCHKEY_ADMIN_PASSWORD are ignored: admins exist already (to recover one, use `latchkey admin reset-password --email E`)")
		}
		return nil
	}
	has, err := acct.HasAdmin(ctx)
	if err != nil || has {
		return err
	}
	token, err := acct.NewSetupToken(ctx)
	if err != nil {
		return err
	}
	log.Warn("no admin exists yet: open this one-time link to create one", "url", cfg.PublicURL+"/portal/setup?token="+token)
	return nil
}
