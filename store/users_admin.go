package store

import (
	"context"
	"database/sql"
)

// DeleteUser removes a user; identities, password and password history go
// with it (ON DELETE CASCADE). ErrNotFound when there is no such user.
func (t *Tx) DeleteUser(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return mapErr("delete user", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("delete user", sql.ErrNoRows)
	}
	return nil
}

// IdentitiesByUsers loads the login IDs of several users in one query
// (a page of the Admin API's users list), oldest first per user.
func (t *Tx) IdentitiesByUsers(ctx context.Context, userIDs []string) (map[string][]Identity, error) {
	out := make(map[string][]Identity, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	list, args := inList(userIDs)
	rows, err := t.q.QueryContext(ctx, `SELECT `+identityCols+` FROM identities
		WHERE user_id IN `+list+` ORDER BY user_id, created_at, id`, args...)
	if err != nil {
		return nil, mapErr("identities by users", err)
	}
	defer rows.Close()
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, mapErr("identities by users", err)
		}
		out[i.UserID] = append(out[i.UserID], i)
	}
	return out, mapErr("identities by users", rows.Err())
}
