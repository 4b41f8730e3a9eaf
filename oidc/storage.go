package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"latchkey/account"
	"latchkey/store"
)

// Errors the storage returns for the library to turn into protocol errors.
var (
	errCodeReused     = errors.New("oidc: authorization code used twice: the tokens issued from it are revoked")
	errRefreshReused  = errors.New("oidc: refresh token used twice: its grant is revoked")
	errTokenInvalid   = errors.New("oidc: token is invalid, expired or revoked")
	errUserDisabled   = errors.New("oidc: the user is disabled")
	errClientNotFound = errors.New("oidc: no such application")
)

// hashSecret is how client secrets, codes and refresh tokens are stored:
// hex SHA-256 (they are long random strings, so no slow hash is needed).
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newID() string {
	u := uuid.New()
	return hex.EncodeToString(u[:])
}

// authParams is the validated authorization request, kept as JSON.
type authParams struct {
	RedirectURI         string   `json:"redirect_uri"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              *uint    `json:"max_age,omitempty"`
	LoginHint           string   `json:"login_hint,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
}

// authRequest is a stored authorization request; it satisfies op.AuthRequest.
type authRequest struct {
	row *store.OIDCAuthRequest
	p   authParams
	// claims are the user's, read with the code (nil otherwise).
	claims *store.OIDCUserClaims
}

func loadAuthRequest(row *store.OIDCAuthRequest) (*authRequest, error) {
	a := &authRequest{row: row}
	if err := json.Unmarshal([]byte(row.Params), &a.p); err != nil {
		return nil, fmt.Errorf("oidc: auth request %s: %w", row.ID, err)
	}
	return a, nil
}

func (a *authRequest) GetID() string  { return a.row.ID }
func (a *authRequest) GetACR() string { return "" }
func (a *authRequest) GetAMR() []string {
	if a.row.Done {
		return []string{"pwd"}
	}
	return nil
}
func (a *authRequest) GetAudience() []string { return []string{a.row.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	if a.row.AuthTime == nil {
		return time.Time{}
	}
	return *a.row.AuthTime
}
func (a *authRequest) GetClientID() string { return a.row.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.p.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.p.CodeChallenge, Method: oidc.CodeChallengeMethod(a.p.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.p.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.p.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.p.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.p.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.p.Scopes }
func (a *authRequest) GetState() string                   { return a.p.State }
func (a *authRequest) GetSubject() string                 { return a.row.UserID }
func (a *authRequest) Done() bool                         { return a.row.Done }

// refreshRequest is a presented refresh token; it satisfies op.RefreshTokenRequest.
type refreshRequest struct {
	t *store.OIDCRefreshToken
	// claims are the user's, read with the token.
	claims *store.OIDCUserClaims
}

func (r *refreshRequest) GetAMR() []string            { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.t.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.t.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.t.Scopes }
func (r *refreshRequest) GetSubject() string          { return r.t.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.t.Scopes = s }

// storage is Latchkey's op.Storage: everything goes through store.
type storage struct{ p *Provider }

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

func (s *storage) now() time.Time { return s.p.now() }

// CreateAuthRequest stores a validated authorization request. The library
// has checked the client and the redirect URI; Latchkey's own rules on top:
// openid is required, a public client must send an S256 PKCE challenge, a
// challenge must be S256, and scopes are cut to what the application allows.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.p.clientByID(ctx, req.ClientID)
	if err != nil {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client").WithParent(err)
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("The openid scope is required.")
	}
	if req.CodeChallenge == "" && !c.Confidential {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with code_challenge_method=S256) is required for this application.")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256.")
	}
	var scopes []string
	for _, sc := range req.Scopes {
		if sc == oidc.ScopeOpenID || slices.Contains(c.Scopes, sc) {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	p := authParams{RedirectURI: req.RedirectURI, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		Scopes: scopes, State: req.State, Nonce: req.Nonce, Prompt: req.Prompt, MaxAge: req.MaxAge, LoginHint: req.LoginHint,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod)}
	if len(p.LoginHint) > 300 {
		p.LoginHint = ""
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	now := s.now()
	row := &store.OIDCAuthRequest{ID: newID(), ClientID: c.ID, Params: string(params), CreatedAt: now, ExpiresAt: now.Add(AuthRequestTTL)}
	err = s.p.st.InTxGrouped(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteExpiredOIDCRows(ctx, now); err != nil {
			return err
		}
		return tx.InsertOIDCAuthRequest(ctx, row)
	})
	if err != nil {
		return nil, noteBusy(ctx, err)
	}
	return &authRequest{row: row, p: p}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	row, err := s.p.st.OIDCAuthRequestByID(ctx, id, s.now())
	if err != nil {
		return nil, err
	}
	return loadAuthRequest(row)
}

// AuthRequestByCode finds the request of a code. A code seen a second time
// revokes every token issued from its first use (and their refresh
// chains); an expired code, or one whose user is now disabled, gets nothing.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	// The user's claims come with the code (one read): the ID token
	// needs them a moment later.
	row, claims, err := s.p.st.OIDCAuthRequestByCodeWithClaims(ctx, hashSecret(code))
	if err != nil {
		return nil, noteBusy(ctx, err)
	}
	now := s.now()
	if row.CodeUsedAt != nil {
		s.p.codeReused(ctx, row.ID, row.ClientID)
		return nil, errCodeReused
	}
	if row.CodeExpiresAt == nil || !now.Before(*row.CodeExpiresAt) {
		return nil, errTokenInvalid
	}
	if row.UserDisabled || claims == nil {
		return nil, errUserDisabled
	}
	a, err := loadAuthRequest(row)
	if err != nil {
		return nil, err
	}
	a.claims = claims
	return a, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	now := s.now()
	return noteBusy(ctx, s.p.st.SaveOIDCAuthCode(ctx, id, hashSecret(code), now.Add(CodeTTL), now.Add(CodeKeep)))
}

// DeleteAuthRequest is called once tokens are issued; the row of a used
// code stays (until it expires, see DeleteExpiredOIDCRows) to recognise a
// second use, so it deletes nothing.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, _, exp, err := s.issue(ctx, req, false)
	return id, exp, err
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, _ string) (string, string, time.Time, error) {
	return s.issue(ctx, req, true)
}

// issue stores new tokens in one transaction: for a code, it marks the
// code used (once only); for a refresh token, it marks that token used and
// adds the next one of the chain.
func (s *storage) issue(ctx context.Context, req op.TokenRequest, withRefresh bool) (accessID, refresh string, exp time.Time, err error) {
	now := s.now()
	exp = now.Add(AccessTokenTTL)
	at := &store.OIDCAccessToken{ID: newID(), UserID: req.GetSubject(), Scopes: req.GetScopes(), CreatedAt: now, ExpiresAt: exp}
	var rt *store.OIDCRefreshToken
	if withRefresh {
		refresh = account.NewToken()
		rt = &store.OIDCRefreshToken{ID: newID(), TokenHash: hashSecret(refresh), UserID: req.GetSubject(), Scopes: req.GetScopes(),
			CreatedAt: now, ExpiresAt: now.Add(RefreshTokenTTL)}
	}
	var reuse error
	var chain string
	switch r := req.(type) {
	case *authRequest:
		at.ClientID, at.AuthRequestID = r.row.ClientID, r.row.ID
		if rt != nil {
			rt.ChainID, rt.ClientID, rt.AuthRequestID = newID(), r.row.ClientID, r.row.ID
			rt.AMR, rt.AuthTime = r.GetAMR(), r.GetAuthTime()
			at.ChainID = rt.ChainID
		}
	case *refreshRequest:
		at.ClientID, at.ChainID = r.t.ClientID, r.t.ChainID
		chain = r.t.ChainID
		if rt != nil {
			rt.ChainID, rt.ClientID, rt.AuthRequestID, rt.AMR, rt.AuthTime = r.t.ChainID, r.t.ClientID, r.t.AuthRequestID, r.t.AMR, r.t.AuthTime
		}
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	err = s.p.st.InTxGrouped(ctx, func(tx *store.Tx) error {
		switch r := req.(type) {
		case *authRequest:
			ok, err := tx.UseOIDCAuthCode(ctx, r.row.ID, now)
			if err != nil {
				return err
			}
			if !ok {
				reuse = errCodeReused
				return reuse
			}
		case *refreshRequest:
			ok, err := tx.UseOIDCRefreshToken(ctx, r.t.ID, now)
			if err != nil {
				return err
			}
			if !ok {
				reuse = errRefreshReused
				return reuse
			}
		}
		if err := tx.InsertOIDCAccessToken(ctx, at); err != nil {
			return err
		}
		if rt != nil {
			return tx.InsertOIDCRefreshToken(ctx, rt)
		}
		return nil
	})
	switch {
	case errors.Is(reuse, errCodeReused):
		s.p.codeReused(ctx, at.AuthRequestID, at.ClientID)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("The code has been used already.").WithParent(reuse)
	case errors.Is(reuse, errRefreshReused):
		s.p.refreshReused(ctx, chain, at.ClientID)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("The refresh token has been used already.").WithParent(reuse)
	case err != nil:
		return "", "", time.Time{}, noteBusy(ctx, err)
	}
	return at.ID, refresh, exp, nil
}

// TokenRequestByRefreshToken checks a presented refresh token. A used one
// means it leaked (or a client replays it): the whole chain is revoked.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	t, claims, err := s.p.st.OIDCRefreshTokenByHashWithClaims(ctx, hashSecret(token))
	if err != nil {
		noteBusy(ctx, err)
		return nil, errTokenInvalid
	}
	switch {
	case t.RevokedAt != nil:
		return nil, errTokenInvalid
	case t.UsedAt != nil:
		s.p.refreshReused(ctx, t.ChainID, t.ClientID)
		return nil, errRefreshReused
	case !s.now().Before(t.ExpiresAt):
		return nil, errTokenInvalid
	case t.UserDisabled || claims == nil:
		return nil, errUserDisabled
	}
	return &refreshRequest{t: t, claims: claims}, nil
}

// TerminateSession does nothing here: end_session's handler signs the
// browser out of the Auth UI, and refresh tokens (offline access) outlive
// a browser session by design.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken revokes an access token, or a refresh token with its chain. Unknown tokens and other clients' tokens are
// ignored, as RFC 7009 asks.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	now := s.now()
	if userID != "" {
		// An ID: of an access token (decrypted by the library), or of a
		// refresh token (looked up through GetRefreshTokenInfo).
		if a, err := s.p.st.OIDCAccessTokenByID(ctx, tokenOrID); err == nil {
			if a.ClientID == clientID {
				if err := s.p.st.RevokeOIDCAccessToken(ctx, a.ID, now); err != nil {
					return oidc.ErrServerError().WithParent(noteBusy(ctx, err))
				}
			}
			return nil
		}
		chain, owner, err := s.p.st.OIDCRefreshTokenChain(ctx, tokenOrID)
		if err != nil || owner != clientID {
			return nil
		}
		if err := s.p.st.RevokeOIDCChain(ctx, chain, now); err != nil {
			return oidc.ErrServerError().WithParent(noteBusy(ctx, err))
		}
		return nil
	}
	t, err := s.p.st.OIDCRefreshTokenByHash(ctx, hashSecret(tokenOrID))
	if err != nil || t.ClientID != clientID {
		return nil
	}
	if err := s.p.st.RevokeOIDCChain(ctx, t.ChainID, now); err != nil {
		return oidc.ErrServerError().WithParent(noteBusy(ctx, err))
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := s.p.st.OIDCRefreshTokenByHash(ctx, hashSecret(token))
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.UserID, t.ID, nil
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k := s.p.keys.current(ctx).active
	if k == nil {
		return nil, errors.New("oidc: no active signing key")
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.p.keys.current(ctx).algs, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	set := s.p.keys.current(ctx)
	out := make([]op.Key, len(set.published))
	for i, k := range set.published {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	// An unknown or disabled application is invalid_client (401), as the
	// token endpoint's client authentication answers it: the refresh
	// grant asks for the client here first, and a plain error there
	// would be a 500 server_error.
	c, err := s.p.clientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oidc.ErrInvalidClient().WithParent(errClientNotFound)
	} else if err != nil {
		return nil, oidc.ErrServerError().WithParent(noteBusy(ctx, err))
	}
	if c.Disabled {
		return nil, oidc.ErrInvalidClient().WithParent(errClientNotFound)
	}
	return &client{c: c}, nil
}

// AuthorizeClientIDSecret compares the hash of the presented secret in
// constant time; an unknown client costs the same hash and compare.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	got := hashSecret(secret)
	c, err := s.p.clientByID(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return oidc.ErrServerError().WithParent(noteBusy(ctx, err))
	}
	want := hashSecret("")
	if c != nil && c.Confidential {
		want = c.SecretHash
	}
	ok := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	if c == nil || !c.Confidential || c.Disabled || secret == "" || !ok {
		s.p.failed(ctx, "client authentication failed", "client_id", id)
		return errors.New("oidc: wrong client credentials")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims from the ones read
// with the code or refresh token (same request, no second read).
func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	switch r := req.(type) {
	case *authRequest:
		if r.claims != nil && r.claims.UserID == r.GetSubject() {
			return fillUserinfo(ui, r.claims, scopes)
		}
	case *refreshRequest:
		if r.claims != nil && r.claims.UserID == r.GetSubject() {
			return fillUserinfo(ui, r.claims, scopes)
		}
	}
	return s.p.userinfo(ctx, ui, req.GetSubject(), scopes)
}

func (s *storage) liveAccessToken(ctx context.Context, id, subject string) (*store.OIDCAccessToken, error) {
	a, err := s.p.st.OIDCAccessTokenByID(ctx, id)
	if err != nil || a.RevokedAt != nil || !s.now().Before(a.ExpiresAt) || a.UserID != subject {
		return nil, errTokenInvalid
	}
	if a.UserDisabled {
		return nil, errUserDisabled
	}
	return a, nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	a, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	return s.p.userinfo(ctx, ui, a.UserID, a.Scopes)
}

// SetIntrospectionFromToken answers for the application the token was
// issued to only; to any other it is inactive.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	a, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if a.ClientID != clientID {
		return errTokenInvalid
	}
	ui := new(oidc.UserInfo)
	if err := s.p.userinfo(ctx, ui, a.UserID, a.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(ui)
	resp.Scope, resp.ClientID, resp.TokenType = a.Scopes, a.ClientID, oidc.BearerToken
	resp.Expiration, resp.IssuedAt, resp.Audience = oidc.FromTime(a.ExpiresAt), oidc.FromTime(a.CreatedAt), []string{a.ClientID}
	resp.Subject, resp.JWTID = a.UserID, a.ID
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("oidc: JWT client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidc: JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.p.st.DB().PingContext(ctx) }
