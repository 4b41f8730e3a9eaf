package store

import (
	"context"
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
