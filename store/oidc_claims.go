package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// OIDCUserClaims is what an ID token or userinfo says about a user.
type OIDCUserClaims struct {
	UserID     string
	IsDisabled bool
	UpdatedAt  time.Time
	// Identities are the user's login IDs, oldest first (Kind and Value
	// only).
	Identities []Identity
}

// OIDCUserClaims reads a user's state and login IDs in one query: every
// token issue and refresh needs them, so it is one read, not two.
func (t *Tx) OIDCUserClaims(ctx context.Context, userID string) (*OIDCUserClaims, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT u.is_disabled, u.updated_at, COALESCE(i.kind, ''), COALESCE(i.value, '')
		FROM users u LEFT JOIN identities i ON i.user_id = u.id WHERE u.id = ? ORDER BY i.created_at, i.id`, userID)
	if err != nil {
		return nil, mapErr("oidc user claims", err)
	}
	defer rows.Close()
	var out *OIDCUserClaims
	for rows.Next() {
		var disabled bool
		var updated int64
		var kind, value string
		if err := rows.Scan(&disabled, &updated, &kind, &value); err != nil {
			return nil, mapErr("oidc user claims", err)
		}
		if out == nil {
			out = &OIDCUserClaims{UserID: userID, IsDisabled: disabled, UpdatedAt: fromMS(updated)}
		}
		if kind != "" {
			out.Identities = append(out.Identities, Identity{UserID: userID, Kind: kind, Value: value})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("oidc user claims", err)
	}
	if out == nil {
		return nil, mapErr("oidc user claims", ErrNotFound)
	}
	return out, nil
}

// claimsRow collects the user and login-ID columns that the *WithClaims
// queries add after their own, one row per login ID.
type claimsRow struct {
	disabled    sql.NullBool
	updated     sql.NullInt64
	kind, value string
}

func (c *claimsRow) dest() []any { return []any{&c.disabled, &c.updated, &c.kind, &c.value} }

func (c *claimsRow) add(out **OIDCUserClaims, userID string) {
	if *out == nil {
		*out = &OIDCUserClaims{UserID: userID, IsDisabled: !c.disabled.Valid || c.disabled.Bool, UpdatedAt: fromMS(c.updated.Int64)}
	}
	if c.kind != "" {
		(*out).Identities = append((*out).Identities, Identity{UserID: userID, Kind: c.kind, Value: c.value})
	}
}

const claimsCols = `, u.is_disabled, u.updated_at, COALESCE(i.kind, ''), COALESCE(i.value, '')`

// OIDCAuthRequestByCodeWithClaims is OIDCAuthRequestByCode with the
// user's claims (OIDCUserClaims) from the same query: the code exchange
// needs both. UserDisabled is set as OIDCAuthRequestByCode sets it.
func (t *Tx) OIDCAuthRequestByCodeWithClaims(ctx context.Context, codeHash string) (*OIDCAuthRequest, *OIDCUserClaims, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT r.`+strings.ReplaceAll(oidcAuthRequestCols, ", ", ", r.")+claimsCols+`
		FROM oidc_auth_requests r LEFT JOIN users u ON u.id = r.user_id LEFT JOIN identities i ON i.user_id = u.id
		WHERE r.code_hash = ? ORDER BY i.created_at, i.id`, codeHash)
	if err != nil {
		return nil, nil, mapErr("oidc auth request by code", err)
	}
	defer rows.Close()
	var r *OIDCAuthRequest
	var claims *OIDCUserClaims
	for rows.Next() {
		var c claimsRow
		row, err := scanOIDCAuthRequest(scanExtra{rows, c.dest()})
		if err != nil {
			return nil, nil, mapErr("oidc auth request by code", err)
		}
		if r == nil {
			r = row
			r.UserDisabled = !c.disabled.Valid || c.disabled.Bool
		}
		if c.updated.Valid {
			c.add(&claims, r.UserID)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapErr("oidc auth request by code", err)
	}
	if r == nil {
		return nil, nil, mapErr("oidc auth request by code", sql.ErrNoRows)
	}
	return r, claims, nil
}

// OIDCRefreshTokenByHashWithClaims is OIDCRefreshTokenByHash with the
// user's claims from the same query: a refresh needs both.
func (t *Tx) OIDCRefreshTokenByHashWithClaims(ctx context.Context, hash string) (*OIDCRefreshToken, *OIDCUserClaims, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT r.id, r.token_hash, r.chain_id, r.client_id, r.user_id, r.auth_request_id, r.scopes, r.amr,
		r.auth_time, r.created_at, r.expires_at, r.used_at, r.revoked_at`+claimsCols+`
		FROM oidc_refresh_tokens r JOIN users u ON u.id = r.user_id LEFT JOIN identities i ON i.user_id = u.id
		WHERE r.token_hash = ? ORDER BY i.created_at, i.id`, hash)
	if err != nil {
		return nil, nil, mapErr("oidc refresh token", err)
	}
	defer rows.Close()
	var r *OIDCRefreshToken
	var claims *OIDCUserClaims
	for rows.Next() {
		var x OIDCRefreshToken
		var scopes, amr string
		var authTime, created, expires int64
		var used, revoked sql.NullInt64
		var c claimsRow
		dest := append([]any{&x.ID, &x.TokenHash, &x.ChainID, &x.ClientID, &x.UserID, &x.AuthRequestID, &scopes, &amr, &authTime, &created, &expires,
			&used, &revoked}, c.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, mapErr("oidc refresh token", err)
		}
		if r == nil {
			x.Scopes, x.AMR = splitList(scopes, " "), splitList(amr, " ")
			x.AuthTime, x.CreatedAt, x.ExpiresAt, x.UsedAt, x.RevokedAt = fromMS(authTime), fromMS(created), fromMS(expires), timePtr(used), timePtr(revoked)
			x.UserDisabled = !c.disabled.Valid || c.disabled.Bool
			r = &x
		}
		c.add(&claims, r.UserID)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapErr("oidc refresh token", err)
	}
	if r == nil {
		return nil, nil, mapErr("oidc refresh token", sql.ErrNoRows)
	}
	return r, claims, nil
}

// scanExtra scans a row with extra columns after the ones a scan function
// knows.
type scanExtra struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (s scanExtra) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }
