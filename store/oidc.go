package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// OIDCClient is an application that signs its users in through Latchkey.
// SecretHash is the hex SHA-256 of a confidential client's secret ("" for
// a public client, which proves itself with PKCE instead).
type OIDCClient struct {
	ID                     string
	Name                   string
	Confidential           bool
	SecretHash             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Scopes                 []string
	Disabled               bool
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

const oidcClientCols = `id, name, confidential, secret_hash, redirect_uris, post_logout_redirect_uris, scopes, disabled, created_at, updated_at`

func splitList(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

func scanOIDCClient(row interface{ Scan(...any) error }) (*OIDCClient, error) {
	var c OIDCClient
	var redirects, logouts, scopes string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Confidential, &c.SecretHash, &redirects, &logouts, &scopes, &c.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	c.RedirectURIs, c.PostLogoutRedirectURIs, c.Scopes = splitList(redirects, "\n"), splitList(logouts, "\n"), splitList(scopes, " ")
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return &c, nil
}

// InsertOIDCClient stores a new application.
func (t *Tx) InsertOIDCClient(ctx context.Context, c *OIDCClient) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO oidc_clients (`+oidcClientCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Confidential, c.SecretHash, strings.Join(c.RedirectURIs, "\n"), strings.Join(c.PostLogoutRedirectURIs, "\n"),
		strings.Join(c.Scopes, " "), c.Disabled, ms(c.CreatedAt), ms(c.UpdatedAt))
	return mapErr("insert oidc client", err)
}

// UpdateOIDCClient saves an application's editable fields (not its type
// or secret).
func (t *Tx) UpdateOIDCClient(ctx context.Context, c *OIDCClient) error {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_clients SET name = ?, redirect_uris = ?, post_logout_redirect_uris = ?, scopes = ?,
		disabled = ?, updated_at = ? WHERE id = ?`, c.Name, strings.Join(c.RedirectURIs, "\n"), strings.Join(c.PostLogoutRedirectURIs, "\n"),
		strings.Join(c.Scopes, " "), c.Disabled, ms(c.UpdatedAt), c.ID)
	return oneRow("update oidc client", res, err)
}

// SetOIDCClientSecret replaces a confidential application's secret hash.
func (t *Tx) SetOIDCClientSecret(ctx context.Context, id, hash string, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_clients SET secret_hash = ?, updated_at = ? WHERE id = ?`, hash, ms(at), id)
	return oneRow("set oidc client secret", res, err)
}

// DeleteOIDCClient removes an application with its requests and tokens.
func (t *Tx) DeleteOIDCClient(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM oidc_clients WHERE id = ?`, id)
	return oneRow("delete oidc client", res, err)
}

func oneRow(op string, res sql.Result, err error) error {
	if err != nil {
		return mapErr(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr(op, sql.ErrNoRows)
	}
	return nil
}

// OIDCClientByID finds an application.
func (t *Tx) OIDCClientByID(ctx context.Context, id string) (*OIDCClient, error) {
	c, err := scanOIDCClient(t.q.QueryRowContext(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients WHERE id = ?`, id))
	return c, mapErr("oidc client by id", err)
}

// ListOIDCClients lists every application by name. Applications are few
// (one per app an admin connects), so the list is not paged.
func (t *Tx) ListOIDCClients(ctx context.Context) ([]OIDCClient, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients ORDER BY name, id`)
	if err != nil {
		return nil, mapErr("list oidc clients", err)
	}
	defer rows.Close()
	var out []OIDCClient
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, mapErr("list oidc clients", err)
		}
		out = append(out, *c)
	}
	return out, mapErr("list oidc clients", rows.Err())
}

// OIDCAuthRequest is one /oauth2/authorize request. Params is the
// validated request (JSON, owned by the oidc package).
type OIDCAuthRequest struct {
	ID            string
	ClientID      string
	Params        string
	UserID        string
	AuthTime      *time.Time
	Done          bool
	CodeHash      string
	CodeExpiresAt *time.Time
	CodeUsedAt    *time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	// UserDisabled is filled in by OIDCAuthRequestByCode.
	UserDisabled bool
}

const oidcAuthRequestCols = `id, client_id, params, user_id, auth_time, done, code_hash, code_expires_at, code_used_at, created_at, expires_at`

func scanOIDCAuthRequest(row interface{ Scan(...any) error }) (*OIDCAuthRequest, error) {
	var r OIDCAuthRequest
	var user, code sql.NullString
	var authTime, codeExp, codeUsed sql.NullInt64
	var created, expires int64
	if err := row.Scan(&r.ID, &r.ClientID, &r.Params, &user, &authTime, &r.Done, &code, &codeExp, &codeUsed, &created, &expires); err != nil {
		return nil, err
	}
	r.UserID, r.CodeHash = user.String, code.String
	r.AuthTime, r.CodeExpiresAt, r.CodeUsedAt = timePtr(authTime), timePtr(codeExp), timePtr(codeUsed)
	r.CreatedAt, r.ExpiresAt = fromMS(created), fromMS(expires)
	return &r, nil
}

// InsertOIDCAuthRequest stores a new authorization request.
func (t *Tx) InsertOIDCAuthRequest(ctx context.Context, r *OIDCAuthRequest) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO oidc_auth_requests (id, client_id, params, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.Params, ms(r.CreatedAt), ms(r.ExpiresAt))
	return mapErr("insert oidc auth request", err)
}

// OIDCAuthRequestByID finds an unexpired authorization request.
func (t *Tx) OIDCAuthRequestByID(ctx context.Context, id string, now time.Time) (*OIDCAuthRequest, error) {
	r, err := scanOIDCAuthRequest(t.q.QueryRowContext(ctx, `SELECT `+oidcAuthRequestCols+` FROM oidc_auth_requests
		WHERE id = ? AND expires_at > ?`, id, ms(now)))
	return r, mapErr("oidc auth request", err)
}

// OIDCAuthRequestByCode finds the request a code was issued for, used or
// not, expired or not: the caller decides what a stale code means.
func (t *Tx) OIDCAuthRequestByCode(ctx context.Context, codeHash string) (*OIDCAuthRequest, error) {
	var disabled bool
	r, err := scanOIDCAuthRequest(scanPlus{t.q.QueryRowContext(ctx, `SELECT r.`+strings.ReplaceAll(oidcAuthRequestCols, ", ", ", r.")+`,
		COALESCE(u.is_disabled, 1) FROM oidc_auth_requests r LEFT JOIN users u ON u.id = r.user_id WHERE r.code_hash = ?`, codeHash), &disabled})
	if err != nil {
		return nil, mapErr("oidc auth request by code", err)
	}
	r.UserDisabled = disabled
	return r, nil
}

// scanPlus scans a row with extra columns after the ones a scan function knows.
type scanPlus struct {
	row   interface{ Scan(...any) error }
	extra any
}

func (s scanPlus) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra)...) }

// CompleteOIDCAuthRequest records who signed in for a pending request.
// It reports false when the request is gone, expired or already done.
func (t *Tx) CompleteOIDCAuthRequest(ctx context.Context, id, userID string, authTime, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_auth_requests SET user_id = ?, auth_time = ?, done = 1
		WHERE id = ? AND done = 0 AND expires_at > ?`, userID, ms(authTime), id, ms(now))
	if err != nil {
		return false, mapErr("complete oidc auth request", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SaveOIDCAuthCode attaches a code to a completed request, once. The row
// is then kept until keepUntil so that a reused code can be recognised.
func (t *Tx) SaveOIDCAuthCode(ctx context.Context, id, codeHash string, codeExpires, keepUntil time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, code_expires_at = ?, expires_at = ?
		WHERE id = ? AND done = 1 AND code_hash IS NULL`, codeHash, ms(codeExpires), ms(keepUntil), id)
	return oneRow("save oidc auth code", res, err)
}

// UseOIDCAuthCode marks a request's code used. It reports false when the
// code was used already or has expired, so a code works once even when
// two exchanges race.
func (t *Tx) UseOIDCAuthCode(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_auth_requests SET code_used_at = ?
		WHERE id = ? AND code_used_at IS NULL AND code_expires_at > ?`, ms(now), id, ms(now))
	if err != nil {
		return false, mapErr("use oidc auth code", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DeleteOIDCAuthRequest removes a request whose code was never issued.
func (t *Tx) DeleteOIDCAuthRequest(ctx context.Context, id string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM oidc_auth_requests WHERE id = ? AND code_hash IS NULL`, id)
	return mapErr("delete oidc auth request", err)
}

// DeleteExpiredOIDCRows removes authorization requests and tokens that
// ended before now, so the tables stay small.
func (t *Tx) DeleteExpiredOIDCRows(ctx context.Context, now time.Time) error {
	for _, table := range []string{"oidc_auth_requests", "oidc_access_tokens", "oidc_refresh_tokens"} {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at <= ?`, ms(now)); err != nil {
			return mapErr("delete expired "+table, err)
		}
	}
	return nil
}

// OIDCAccessToken is an issued access token; apps hold an encrypted form
// of its ID.
type OIDCAccessToken struct {
	ID            string
	ChainID       string
	ClientID      string
	UserID        string
	AuthRequestID string
	Scopes        []string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	RevokedAt     *time.Time
	// UserDisabled is filled in by OIDCAccessTokenByID.
	UserDisabled bool
}

// InsertOIDCAccessToken stores an issued access token.
func (t *Tx) InsertOIDCAccessToken(ctx context.Context, a *OIDCAccessToken) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO oidc_access_tokens (id, chain_id, client_id, user_id, auth_request_id, scopes, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.ChainID, a.ClientID, a.UserID, a.AuthRequestID, strings.Join(a.Scopes, " "), ms(a.CreatedAt), ms(a.ExpiresAt))
	return mapErr("insert oidc access token", err)
}

// OIDCAccessTokenByID finds an access token, revoked or not.
func (t *Tx) OIDCAccessTokenByID(ctx context.Context, id string) (*OIDCAccessToken, error) {
	var a OIDCAccessToken
	var scopes string
	var created, expires int64
	var revoked sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT a.id, a.chain_id, a.client_id, a.user_id, a.auth_request_id, a.scopes, a.created_at, a.expires_at,
		a.revoked_at, u.is_disabled FROM oidc_access_tokens a JOIN users u ON u.id = a.user_id WHERE a.id = ?`, id).
		Scan(&a.ID, &a.ChainID, &a.ClientID, &a.UserID, &a.AuthRequestID, &scopes, &created, &expires, &revoked, &a.UserDisabled)
	if err != nil {
		return nil, mapErr("oidc access token", err)
	}
	a.Scopes, a.CreatedAt, a.ExpiresAt, a.RevokedAt = splitList(scopes, " "), fromMS(created), fromMS(expires), timePtr(revoked)
	return &a, nil
}

// RevokeOIDCAccessToken revokes one access token.
func (t *Tx) RevokeOIDCAccessToken(ctx context.Context, id string, now time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE oidc_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(now), id)
	return mapErr("revoke oidc access token", err)
}

// OIDCRefreshToken is an issued refresh token; only its hash is stored.
type OIDCRefreshToken struct {
	ID            string
	TokenHash     string
	ChainID       string
	ClientID      string
	UserID        string
	AuthRequestID string
	Scopes        []string
	AMR           []string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        *time.Time
	RevokedAt     *time.Time
	// UserDisabled is filled in by OIDCRefreshTokenByHash.
	UserDisabled bool
}

// InsertOIDCRefreshToken stores an issued refresh token.
func (t *Tx) InsertOIDCRefreshToken(ctx context.Context, r *OIDCRefreshToken) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO oidc_refresh_tokens (id, token_hash, chain_id, client_id, user_id, auth_request_id, scopes, amr,
		auth_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.TokenHash, r.ChainID, r.ClientID, r.UserID,
		r.AuthRequestID, strings.Join(r.Scopes, " "), strings.Join(r.AMR, " "), ms(r.AuthTime), ms(r.CreatedAt), ms(r.ExpiresAt))
	return mapErr("insert oidc refresh token", err)
}

// OIDCRefreshTokenByHash finds a refresh token, used, revoked or not.
func (t *Tx) OIDCRefreshTokenByHash(ctx context.Context, hash string) (*OIDCRefreshToken, error) {
	var r OIDCRefreshToken
	var scopes, amr string
	var authTime, created, expires int64
	var used, revoked sql.NullInt64
	err := t.q.QueryRowContext(ctx, `SELECT r.id, r.token_hash, r.chain_id, r.client_id, r.user_id, r.auth_request_id, r.scopes, r.amr,
		r.auth_time, r.created_at, r.expires_at, r.used_at, r.revoked_at, u.is_disabled
		FROM oidc_refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?`, hash).
		Scan(&r.ID, &r.TokenHash, &r.ChainID, &r.ClientID, &r.UserID, &r.AuthRequestID, &scopes, &amr, &authTime, &created, &expires,
			&used, &revoked, &r.UserDisabled)
	if err != nil {
		return nil, mapErr("oidc refresh token", err)
	}
	r.Scopes, r.AMR = splitList(scopes, " "), splitList(amr, " ")
	r.AuthTime, r.CreatedAt, r.ExpiresAt, r.UsedAt, r.RevokedAt = fromMS(authTime), fromMS(created), fromMS(expires), timePtr(used), timePtr(revoked)
	return &r, nil
}

// UseOIDCRefreshToken marks a refresh token used (rotated). It reports
// false when it was used or revoked already, so one token refreshes once
// even when two refreshes race.
func (t *Tx) UseOIDCRefreshToken(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_refresh_tokens SET used_at = ?
		WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?`, ms(now), id, ms(now))
	if err != nil {
		return false, mapErr("use oidc refresh token", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RevokeOIDCChain revokes every refresh token of a grant and the access
// tokens issued with them.
func (t *Tx) RevokeOIDCChain(ctx context.Context, chainID string, now time.Time) error {
	if chainID == "" {
		return nil
	}
	if _, err := t.q.ExecContext(ctx, `UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE chain_id = ? AND revoked_at IS NULL`, ms(now), chainID); err != nil {
		return mapErr("revoke oidc chain", err)
	}
	_, err := t.q.ExecContext(ctx, `UPDATE oidc_access_tokens SET revoked_at = ? WHERE chain_id = ? AND revoked_at IS NULL`, ms(now), chainID)
	return mapErr("revoke oidc chain", err)
}

// RevokeOIDCAuthRequestTokens revokes every token issued from one
// authorization code, with the refresh chains that grew from it.
func (t *Tx) RevokeOIDCAuthRequestTokens(ctx context.Context, authRequestID string, now time.Time) error {
	if _, err := t.q.ExecContext(ctx, `UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND chain_id IN
		(SELECT chain_id FROM oidc_refresh_tokens WHERE auth_request_id = ?)`, ms(now), authRequestID); err != nil {
		return mapErr("revoke oidc code tokens", err)
	}
	_, err := t.q.ExecContext(ctx, `UPDATE oidc_access_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (auth_request_id = ? OR chain_id IN
		(SELECT chain_id FROM oidc_refresh_tokens WHERE auth_request_id = ?))`, ms(now), authRequestID, authRequestID)
	return mapErr("revoke oidc code tokens", err)
}

// RevokeUserOIDCTokens revokes every refresh and access token of a user,
// for every application. Account code calls it in the transaction that
// disables the user, resets or changes their password, or ends all their
// sessions. It reports how many refresh tokens it revoked.
func (t *Tx) RevokeUserOIDCTokens(ctx context.Context, userID string, now time.Time) (int, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, ms(now), userID)
	if err != nil {
		return 0, mapErr("revoke user oidc tokens", err)
	}
	n, _ := res.RowsAffected()
	_, err = t.q.ExecContext(ctx, `UPDATE oidc_access_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, ms(now), userID)
	return int(n), mapErr("revoke user oidc tokens", err)
}

// OIDCKey is a token signing key; PrivateKey is sealed.
type OIDCKey struct {
	ID         string
	Alg        string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// InsertOIDCKey stores a new signing key.
func (t *Tx) InsertOIDCKey(ctx context.Context, k *OIDCKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO oidc_keys (id, alg, private_key, created_at) VALUES (?, ?, ?, ?)`,
		k.ID, k.Alg, k.PrivateKey, ms(k.CreatedAt))
	return mapErr("insert oidc key", err)
}

// ListOIDCKeys lists the signing keys, newest first: the active one (not
// retired) and the retired ones still published.
func (t *Tx) ListOIDCKeys(ctx context.Context) ([]OIDCKey, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT id, alg, private_key, created_at, retired_at FROM oidc_keys
		ORDER BY CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id`)
	if err != nil {
		return nil, mapErr("list oidc keys", err)
	}
	defer rows.Close()
	var out []OIDCKey
	for rows.Next() {
		var k OIDCKey
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Alg, &k.PrivateKey, &created, &retired); err != nil {
			return nil, mapErr("list oidc keys", err)
		}
		k.CreatedAt, k.RetiredAt = fromMS(created), timePtr(retired)
		out = append(out, k)
	}
	return out, mapErr("list oidc keys", rows.Err())
}

// ActiveOIDCKeyID is the ID of the newest unretired key, or ErrNotFound.
// It is the cheap check a running server makes to notice a rotation done
// by another process.
func (t *Tx) ActiveOIDCKeyID(ctx context.Context) (string, error) {
	var id string
	err := t.q.QueryRowContext(ctx, `SELECT id FROM oidc_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id LIMIT 1`).Scan(&id)
	return id, mapErr("active oidc key", err)
}

// RetireOIDCKeys marks every active key retired at now.
func (t *Tx) RetireOIDCKeys(ctx context.Context, now time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE oidc_keys SET retired_at = ? WHERE retired_at IS NULL`, ms(now))
	return mapErr("retire oidc keys", err)
}

// DeleteOIDCKeysRetiredBefore removes keys retired before t: no token
// they signed is still valid.
func (t *Tx) DeleteOIDCKeysRetiredBefore(ctx context.Context, before time.Time) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM oidc_keys WHERE retired_at IS NOT NULL AND retired_at < ?`, ms(before))
	return mapErr("delete retired oidc keys", err)
}

// OIDCRefreshTokenChain returns the chain and client of the refresh token
// with this ID (revocation by ID).
func (t *Tx) OIDCRefreshTokenChain(ctx context.Context, id string) (chainID, clientID string, err error) {
	err = t.q.QueryRowContext(ctx, `SELECT chain_id, client_id FROM oidc_refresh_tokens WHERE id = ?`, id).Scan(&chainID, &clientID)
	return chainID, clientID, mapErr("oidc refresh token chain", err)
}

// RevokeOIDCClientTokens revokes every token issued to an application
// (it was disabled).
func (t *Tx) RevokeOIDCClientTokens(ctx context.Context, clientID string, now time.Time) error {
	for _, table := range []string{"oidc_refresh_tokens", "oidc_access_tokens"} {
		if _, err := t.q.ExecContext(ctx, `UPDATE `+table+` SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, ms(now), clientID); err != nil {
			return mapErr("revoke oidc client tokens", err)
		}
	}
	return nil
}
