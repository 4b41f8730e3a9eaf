package store

import (
	"context"
	"strings"
)

// ImportedUser is one new user of a bulk import: the user row, its one
// login ID and its password (nil: none).
type ImportedUser struct {
	User     User
	Identity Identity
	Password *Password
}

// importChunk is how many rows one multi-row INSERT carries: few
// statements, each well under SQLite's 32,766 bound parameters.
const importChunk = 500

// IdentityOwners maps each of the given normalised login IDs that exists
// to its user ID, in a few IN queries.
func (t *Tx) IdentityOwners(ctx context.Context, norms []string) (map[string]string, error) {
	out := map[string]string{}
	for start := 0; start < len(norms); start += importChunk {
		chunk := norms[start:min(start+importChunk, len(norms))]
		list, args := inList(chunk)
		rows, err := t.q.QueryContext(ctx, `SELECT value_norm, user_id FROM identities WHERE value_norm IN `+list, args...)
		if err != nil {
			return nil, mapErr("identity owners", err)
		}
		for rows.Next() {
			var n, u string
			if err := rows.Scan(&n, &u); err != nil {
				rows.Close()
				return nil, mapErr("identity owners", err)
			}
			out[n] = u
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, mapErr("identity owners", err)
		}
	}
	return out, nil
}

// InsertImportedUsers writes new users, their login IDs and passwords with
// multi-row INSERTs, so a 10,000-user import is a few dozen statements. A
// login ID that already exists gives ErrConflict (the caller checks first,
// inside the same transaction).
func (t *Tx) InsertImportedUsers(ctx context.Context, users []ImportedUser) error {
	for start := 0; start < len(users); start += importChunk {
		chunk := users[start:min(start+importChunk, len(users))]
		args := make([]any, 0, len(chunk)*6)
		for _, u := range chunk {
			args = append(args, u.User.ID, ms(u.User.CreatedAt), ms(u.User.UpdatedAt))
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at, is_disabled) VALUES `+
			placeholders("(?, ?, ?, 0)", len(chunk)), args...); err != nil {
			return mapErr("import users", err)
		}
		args = args[:0]
		for _, u := range chunk {
			i := u.Identity
			args = append(args, i.ID, i.UserID, i.Kind, i.Value, i.ValueNorm, ms(i.CreatedAt))
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO identities (id, user_id, kind, value, value_norm, created_at) VALUES `+
			placeholders("(?, ?, ?, ?, ?, ?)", len(chunk)), args...); err != nil {
			return mapErr("import identities", err)
		}
		args = args[:0]
		n := 0
		for _, u := range chunk {
			if p := u.Password; p != nil {
				args = append(args, p.UserID, p.Hash, ms(p.CreatedAt), ms(p.UpdatedAt), nullTime(p.ExpireAfter), p.SetByAdmin)
				n++
			}
		}
		if n > 0 {
			if _, err := t.q.ExecContext(ctx, `INSERT INTO passwords (user_id, hash, created_at, updated_at, expire_after, set_by_admin) VALUES `+
				placeholders("(?, ?, ?, ?, ?, ?)", n), args...); err != nil {
				return mapErr("import passwords", err)
			}
		}
	}
	return nil
}

func placeholders(row string, n int) string {
	var b strings.Builder
	b.Grow(n * (len(row) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}
