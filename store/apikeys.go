package store

import (
	"context"
	"database/sql"
	"time"
)

// APIKey is an Admin API key. SecretHash is the hex SHA-256 of the key's
// secret part; the secret itself is shown once and never stored.
type APIKey struct {
	ID         string
	Name       string
	SecretHash string
	CreatedAt  time.Time
	CreatedBy  string
	LastUsedAt *time.Time
	LastUsedIP string
	RevokedAt  *time.Time
}

const apiKeyCols = `id, name, secret_hash, created_at, created_by, last_used_at, last_used_ip, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (*APIKey, error) {
	var k APIKey
	var created int64
	var used, revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.Name, &k.SecretHash, &created, &k.CreatedBy, &used, &k.LastUsedIP, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMS(created), timePtr(used), timePtr(revoked)
	return &k, nil
}

// InsertAPIKey stores a new key.
func (t *Tx) InsertAPIKey(ctx context.Context, k APIKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO api_keys (id, name, secret_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.SecretHash, ms(k.CreatedAt), k.CreatedBy)
	return mapErr("insert api key", err)
}

// APIKeyByID finds a key, revoked or not.
func (t *Tx) APIKeyByID(ctx context.Context, id string) (*APIKey, error) {
	k, err := scanAPIKey(t.q.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE id = ?`, id))
	return k, mapErr("api key by id", err)
}

// ListAPIKeys lists every key, newest first. Keys are few (one per
// integration), so the list is not paged.
func (t *Tx) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, mapErr("list api keys", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, mapErr("list api keys", err)
		}
		out = append(out, *k)
	}
	return out, mapErr("list api keys", rows.Err())
}

// RevokeAPIKey marks a key revoked; revoking a revoked key keeps the first
// time. ErrNotFound when there is no such key.
func (t *Tx) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, ms(at), id)
	if err != nil {
		return mapErr("revoke api key", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("revoke api key", sql.ErrNoRows)
	}
	return nil
}

// TouchAPIKey records a use of the key.
func (t *Tx) TouchAPIKey(ctx context.Context, id string, at time.Time, ip string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ?, last_used_ip = ? WHERE id = ?`, ms(at), ip, id)
	return mapErr("touch api key", err)
}
