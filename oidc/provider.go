// Package oidc makes Latchkey an OpenID Connect provider. The protocol is
// zitadel/oidc's certified pkg/op; this package adapts it to Latchkey: its
// storage goes through store (applications, authorization requests and
// codes, tokens, sealed signing keys), users and the sign-in events come
// from account, and the sign-in page is the Auth UI, which hands back here
// (Finish) once the user has signed in.
package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"latchkey/account"
	"latchkey/store"
)

// Endpoint paths, under the public URL.
const (
	AuthorizePath  = "/oauth2/authorize"
	TokenPath      = "/oauth2/token"
	UserinfoPath   = "/oauth2/userinfo"
	JWKSPath       = "/oauth2/jwks"
	EndSessionPath = "/oauth2/end_session"
	RevokePath     = "/oauth2/revoke"
	IntrospectPath = "/oauth2/introspect"
	DiscoveryPath  = "/.well-known/openid-configuration"
	// ContinuePath is Latchkey's own step between /oauth2/authorize and the
	// Auth UI: it sends the browser to sign in, then back to the app.
	ContinuePath = "/oauth2/continue"
)

// Lifetimes.
const (
	// AuthRequestTTL is how long a user has to sign in (and replace an
	// expired password) before the app must start again.
	AuthRequestTTL = 30 * time.Minute
	// CodeTTL is an authorization code's life; a code works once.
	CodeTTL = 60 * time.Second
	// CodeKeep is how long a used code is remembered, so that a second use
	// revokes the tokens the first one got.
	CodeKeep = 24 * time.Hour
	// AccessTokenTTL and IDTokenTTL are the tokens' lives.
	AccessTokenTTL = time.Hour
	IDTokenTTL     = time.Hour
	// RefreshTokenTTL is how long a refresh token (offline_access) lasts
	// unused; each use replaces it with a new one.
	RefreshTokenTTL = 30 * 24 * time.Hour
	// KeyKeep is how long a retired signing key stays in JWKS: the life of
	// the longest token it signed, and a margin for clocks and caches.
	KeyKeep = IDTokenTTL + 10*time.Minute
)

// Config is what the provider needs from the environment.
type Config struct {
	// Issuer is Latchkey's public URL (LATCHKEY_PUBLIC_URL).
	Issuer string
	// Secret is the server secret: it seals the signing keys and keys the
	// encryption of codes and access tokens.
	Secret []byte
	// KeyAlg is the algorithm of the first signing key: RS256 (default) or ES256.
	KeyAlg string
	Log    *slog.Logger
}

// Provider is Latchkey's OpenID Connect provider.
type Provider struct {
	op    *op.Provider
	st    *store.Store
	acct  *account.Service
	keys  *Keyring
	log   *slog.Logger
	now   func() time.Time
	iss   string
	authz *authorizer

	// clients keeps the applications token requests use in memory.
	clients clientCache

	// failures counts failed token requests (issue and refresh) since start;
	// each failure is logged with the running count.
	failures atomic.Int64
}

// New builds the provider, loading (or, at first start, generating) the
// signing keys.
func New(ctx context.Context, acct *account.Service, cfg Config) (*Provider, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	issuer := strings.TrimRight(cfg.Issuer, "/")
	keys, err := NewKeyring(ctx, acct.Store(), cfg.Secret, cfg.KeyAlg, KeyKeep)
	if err != nil {
		return nil, err
	}
	if s := keys.RSASigner(); s != "" {
		cfg.Log.Info("oidc: RS256 tokens signed by " + s)
	}
	p := &Provider{st: acct.Store(), acct: acct, keys: keys, log: cfg.Log, iss: issuer,
		now: func() time.Time { return time.Now().UTC() }}
	p.clients.ttl = clientTTL
	legacyKey := sha256.Sum256(account.DeriveKey(cfg.Secret, "oidc-codes-and-access-tokens"))
	tc, err := newTokenCrypto(sha256.Sum256(account.DeriveKey(cfg.Secret, "oidc-codes-and-access-tokens-xchacha20poly1305")),
		op.NewAES256GCMCrypto(legacyKey, "lk1"))
	if err != nil {
		return nil, err
	}
	conf := &op.Config{
		CryptoKey:                legacyKey,
		CryptoKeyId:              "lk1",
		DefaultLogoutRedirectURI: "/login",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
	}
	opts := []op.Option{
		op.WithCrypto(tc),
		op.WithCustomEndpoints(op.NewEndpoint(strings.TrimPrefix(AuthorizePath, "/")), op.NewEndpoint(strings.TrimPrefix(TokenPath, "/")),
			op.NewEndpoint(strings.TrimPrefix(UserinfoPath, "/")), op.NewEndpoint(strings.TrimPrefix(RevokePath, "/")),
			op.NewEndpoint(strings.TrimPrefix(EndSessionPath, "/")), op.NewEndpoint(strings.TrimPrefix(JWKSPath, "/"))),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(strings.TrimPrefix(IntrospectPath, "/"))),
		// Browser apps (public clients) call token, userinfo, revoke and the
		// documents from any origin, but never with cookies: none of these
		// endpoints reads the Auth UI session.
		op.WithCORSOptions(&cors.Options{
			AllowOriginFunc:  func(string) bool { return true },
			AllowedHeaders:   []string{"Accept", "Accept-Language", "Authorization", "Content-Type"},
			AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
			AllowCredentials: false,
		}),
	}
	if strings.HasPrefix(issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(conf, &storage{p: p}, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	p.authz = &authorizer{Provider: p.op}
	return p, nil
}

// Keys is the signing keyring (rotation from the portal or the CLI).
func (p *Provider) Keys() *Keyring { return p.keys }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.iss }

// SetNow replaces the clock (tests).
func (p *Provider) SetNow(now func() time.Time) { p.now = now; p.keys.now = now }

// Handler serves discovery, token, userinfo, JWKS, revocation,
// introspection and end_session (the library's router). Failed token
// requests are counted and logged.
func (p *Provider) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != TokenPath && r.URL.Path != RevokePath {
			p.op.ServeHTTP(w, r)
			return
		}
		// The endpoints that write hold their answer until it is known
		// whether a write found the database busy: that is a 503 with
		// Retry-After, not the library's server_error.
		r, busy := withBusyFlag(r)
		bw := &bufferedWriter{header: http.Header{}}
		if r.URL.Path == RevokePath {
			p.op.ServeHTTP(bw, r)
			if busy.Load() {
				keepCORS(w, bw)
				writeBusy(w)
				return
			}
			p.flushHidingInternal(w, r, bw)
			return
		}
		// Parse the form here: the library parses it on its own copy of
		// the request, which would leave this one's body read and its
		// form empty for the failure log. Parsed once, it is shared.
		_ = r.ParseForm()
		sw := &statusWriter{ResponseWriter: bw}
		p.op.ServeHTTP(sw, r)
		if busy.Load() {
			p.log.WarnContext(r.Context(), "oidc: token request refused: database busy", "grant_type", r.PostForm.Get("grant_type"))
			keepCORS(w, bw)
			writeBusy(w)
			return
		}
		defer p.flushHidingInternal(w, r, bw)
		if sw.status >= 400 {
			clientID := r.PostForm.Get("client_id")
			if id, _, ok := r.BasicAuth(); ok && clientID == "" {
				clientID, _ = url.QueryUnescape(id)
			}
			p.failed(r.Context(), "token request failed", "grant_type", r.PostForm.Get("grant_type"), "status", sw.status,
				"client_id", clientID)
		}
	})
}

// flushHidingInternal passes on a buffered token or revoke answer. A
// server_error there carries the library's text of the failure (store
// and SQL errors) as its description: that goes to the log, and the app
// gets a description that says nothing of Latchkey's insides.
func (p *Provider) flushHidingInternal(w http.ResponseWriter, r *http.Request, bw *bufferedWriter) {
	if bw.status < 500 {
		bw.flush(w)
		return
	}
	p.log.ErrorContext(r.Context(), "oidc: request failed", "path", r.URL.Path, "status", bw.status, "answer", strings.TrimSpace(bw.body.String()))
	keepCORS(w, bw)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(bw.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "server_error",
		"error_description": "Something went wrong on the server. Try again later."})
}

// keepCORS copies the CORS headers of a held answer that is replaced, so
// that a browser app can read the replacement.
func keepCORS(w http.ResponseWriter, bw *bufferedWriter) {
	for k, v := range bw.header {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			w.Header()[k] = v
		}
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// failed logs a failure with the running count of failures.
func (p *Provider) failed(ctx context.Context, msg string, args ...any) {
	n := p.failures.Add(1)
	p.log.WarnContext(ctx, "oidc: "+msg, append(args, "failures_total", n)...)
}

// Failures is the number of failed token requests since start.
func (p *Provider) Failures() int64 { return p.failures.Load() }

func (p *Provider) codeReused(ctx context.Context, authRequestID, clientID string) {
	err := p.st.InTx(ctx, func(tx *store.Tx) error { return tx.RevokeOIDCAuthRequestTokens(ctx, authRequestID, p.now()) })
	noteBusy(ctx, err)
	p.failed(ctx, "authorization code reused: tokens from its first use revoked", "client_id", clientID, "err", err)
}

func (p *Provider) refreshReused(ctx context.Context, chainID, clientID string) {
	err := p.st.InTx(ctx, func(tx *store.Tx) error { return tx.RevokeOIDCChain(ctx, chainID, p.now()) })
	noteBusy(ctx, err)
	p.failed(ctx, "refresh token reused: its grant is revoked", "client_id", clientID, "err", err)
}

// userinfo fills the claims of scopes for a user; a disabled user gets none.
func (p *Provider) userinfo(ctx context.Context, ui *oidc.UserInfo, userID string, scopes []string) error {
	// One read (the user's state and login IDs together).
	u, err := p.st.OIDCUserClaims(ctx, userID)
	if err != nil {
		return err
	}
	return fillUserinfo(ui, u, scopes)
}

// fillUserinfo sets the claims of scopes from u; a disabled user gets none.
func fillUserinfo(ui *oidc.UserInfo, u *store.OIDCUserClaims, scopes []string) error {
	if u.IsDisabled {
		return errUserDisabled
	}
	ids := u.Identities
	first := func(kind string) string {
		for _, i := range ids {
			if i.Kind == kind {
				return i.Value
			}
		}
		return ""
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeOpenID:
			ui.Subject = u.UserID
		case oidc.ScopeEmail:
			// Latchkey does not verify addresses yet, so email_verified is false.
			ui.Email, ui.EmailVerified = first(account.KindEmail), false
			if ui.Email != "" {
				ui.AppendClaims("email_verified", false)
			}
		case oidc.ScopePhone:
			ui.PhoneNumber, ui.PhoneNumberVerified = first(account.KindPhone), false
			if ui.PhoneNumber != "" {
				ui.AppendClaims("phone_number_verified", false)
			}
		case oidc.ScopeProfile:
			ui.PreferredUsername = first(account.KindUsername)
			ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		}
	}
	return nil
}

// authorizer checks a redirect URI by exact match before the library's
// own validation, so that no registered-URI rule is looser than "exactly
// one of these".
type authorizer struct{ *op.Provider }

func (a *authorizer) ValidateAuthRequest(ctx context.Context, req *oidc.AuthRequest, st op.Storage, v *op.IDTokenHintVerifier) (string, error) {
	c, err := st.GetClientByClientID(ctx, req.ClientID)
	if err != nil {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("The application (client_id) is unknown or disabled.").WithParent(err)
	}
	if !slices.Contains(c.RedirectURIs(), req.RedirectURI) {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("The redirect_uri is not registered for this application.")
	}
	return op.ValidateAuthRequestClient(ctx, req, c, v)
}

// ErrorPage renders an error that must not go back to the app (unknown
// client, unregistered redirect URI, a request too broken to trust).
type ErrorPage func(w http.ResponseWriter, r *http.Request, status int, msg string)

// Authorize serves /oauth2/authorize. Errors the library may not send back
// to the app become errPage; the rest go back to the registered redirect
// URI per the spec. A valid request continues at ContinuePath.
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request, errPage ErrorPage) {
	r = r.WithContext(op.ContextWithIssuer(r.Context(), p.iss))
	bw := &bufferedWriter{header: http.Header{}}
	r, busy := withBusyFlag(r)
	op.Authorize(bw, r, p.authz)
	if busy.Load() {
		w.Header().Set("Retry-After", strconv.Itoa(BusyRetryAfter))
		errPage(w, r, http.StatusServiceUnavailable, "")
		return
	}
	if bw.status == http.StatusBadRequest || bw.status >= 500 {
		msg := strings.TrimSpace(bw.body.String())
		p.log.Info("oidc: authorize request refused", "client_id", r.FormValue("client_id"), "reason", msg)
		errPage(w, r, bw.status, msg)
		return
	}
	bw.flush(w)
}

// bufferedWriter holds a library answer until Latchkey decides to pass it on.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// EndSession serves /oauth2/end_session. When the library accepts the
// request (a valid id_token_hint or client_id, and a post_logout_redirect_uri
// registered for that app, or none) signOut ends the browser's Auth UI
// session before the redirect; a refused request signs no one out and
// redirects nowhere.
func (p *Provider) EndSession(w http.ResponseWriter, r *http.Request, signOut func() error, errPage ErrorPage) {
	r = r.WithContext(op.ContextWithIssuer(r.Context(), p.iss))
	bw := &bufferedWriter{header: http.Header{}}
	op.EndSession(bw, r, p.op)
	if bw.status != http.StatusFound {
		msg := strings.TrimSpace(bw.body.String())
		if e := new(oidc.Error); bytes.HasPrefix(bw.body.Bytes(), []byte("{")) && jsonDescription(bw.body.Bytes(), e) {
			msg = e.Description
		}
		errPage(w, r, http.StatusBadRequest, msg)
		return
	}
	if err := signOut(); store.IsBusy(err) {
		w.Header().Set("Retry-After", strconv.Itoa(BusyRetryAfter))
		errPage(w, r, http.StatusServiceUnavailable, "")
		return
	} else if err != nil {
		errPage(w, r, http.StatusInternalServerError, "")
		return
	}
	bw.flush(w)
}

// ErrRequestNotFound means the authorization request is unknown, expired
// or finished: the app must start the sign-in again.
var ErrRequestNotFound = errors.New("oidc: this sign-in request has expired")

// Pending is an authorization request waiting for the user to sign in.
type Pending struct {
	ID        string
	ClientID  string
	AppName   string
	Prompt    []string
	MaxAge    *time.Duration
	LoginHint string
	CreatedAt time.Time
	// RedirectURI is where the browser goes back to the app.
	RedirectURI string
}

// PromptNone reports whether the app asked for no interaction.
func (pd *Pending) PromptNone() bool { return slices.Contains(pd.Prompt, oidc.PromptNone) }

// Fresh reports whether a sign-in at authTime is good enough for this
// request: made during it, or within max_age (prompt=login is max_age 0).
func (pd *Pending) Fresh(authTime, now time.Time) bool {
	if !authTime.Before(pd.CreatedAt) {
		return true
	}
	return pd.MaxAge == nil || now.Sub(authTime) <= *pd.MaxAge
}

// Pending returns the waiting authorization request with this ID.
func (p *Provider) Pending(ctx context.Context, id string) (*Pending, *authRequest, error) {
	row, err := p.st.OIDCAuthRequestByID(ctx, id, p.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrRequestNotFound
	} else if err != nil {
		return nil, nil, err
	}
	if row.Done {
		return nil, nil, ErrRequestNotFound
	}
	a, err := loadAuthRequest(row)
	if err != nil {
		return nil, nil, err
	}
	c, err := p.clientByID(ctx, row.ClientID)
	if err != nil || c.Disabled {
		return nil, nil, ErrRequestNotFound
	}
	pd := &Pending{ID: row.ID, ClientID: c.ID, AppName: c.Name, Prompt: a.p.Prompt, LoginHint: a.p.LoginHint, CreatedAt: row.CreatedAt,
		RedirectURI: a.p.RedirectURI}
	if a.p.MaxAge != nil {
		d := time.Duration(*a.p.MaxAge) * time.Second
		pd.MaxAge = &d
	}
	return pd, a, nil
}

// LoginInfo describes a pending request for the sign-in page: the app's
// name and the login hint. It reports false for any other next URL.
func (p *Provider) LoginInfo(ctx context.Context, next string) (*Pending, bool) {
	u, err := url.Parse(next)
	if err != nil || u.Path != ContinuePath {
		return nil, false
	}
	pd, _, err := p.Pending(ctx, u.Query().Get("id"))
	if err != nil {
		return nil, false
	}
	return pd, true
}

// Finish completes a pending request for a user who has signed in at
// authTime: it records user.authenticated for the app (in the same
// transaction that binds the request to the user) and redirects the
// browser to the app with a code. A disabled user is sent back with
// access_denied and gets no code.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, id, userID string, authTime time.Time, actor account.Actor) error {
	ctx := op.ContextWithIssuer(r.Context(), p.iss)
	r = r.WithContext(ctx)
	pd, a, err := p.Pending(ctx, id)
	if err != nil {
		return err
	}
	now := p.now()
	err = p.st.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.CompleteOIDCAuthRequest(ctx, id, userID, authTime, now)
		if err != nil {
			return err
		}
		if !ok {
			return ErrRequestNotFound
		}
		_, err = p.acct.AuthenticatedForApp(ctx, tx, actor, userID, pd.ClientID, now)
		return err
	})
	if ae, ok := account.AsError(err); ok && ae.Reason == account.ReasonUserDisabled {
		op.AuthRequestError(w, r, a, oidc.ErrAccessDenied().WithDescription("The account is disabled."), p.op)
		return nil
	}
	if err != nil {
		return err
	}
	done, err := p.st.OIDCAuthRequestByID(ctx, id, now)
	if err != nil {
		return err
	}
	a, err = loadAuthRequest(done)
	if err != nil {
		return err
	}
	p.log.Info("oidc: sign-in completed for application", "client_id", pd.ClientID, "user_id", userID)
	op.AuthResponse(a, p.op, w, r)
	return nil
}

// Refuse sends the browser back to the app with an error (login_required
// for prompt=none without a usable session) and forgets the request.
func (p *Provider) Refuse(w http.ResponseWriter, r *http.Request, id string, e *oidc.Error) error {
	_, a, err := p.Pending(r.Context(), id)
	if err != nil {
		return err
	}
	if err := p.st.DeleteOIDCAuthRequest(r.Context(), id); err != nil {
		return err
	}
	op.AuthRequestError(w, r, a, e, p.op)
	return nil
}

// LoginRequired is the error for prompt=none when the user must sign in.
func LoginRequired() *oidc.Error {
	return oidc.ErrLoginRequired().WithDescription("The user must sign in.")
}

func jsonDescription(b []byte, e *oidc.Error) bool {
	var v struct {
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return false
	}
	e.Description = v.Description
	return true
}
