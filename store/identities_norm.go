package store

import "context"

// IdentitiesWithNonASCII lists the email and username identities whose
// value has a character outside printable ASCII: the only rows that
// Unicode normalisation rules can change. GLOB with a character class is
// SQLite's; PostgreSQL would use value ~ '[^ -~]'.
func (t *Tx) IdentitiesWithNonASCII(ctx context.Context) ([]Identity, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+identityCols+` FROM identities
		WHERE kind IN ('email', 'username') AND (value GLOB '*[^ -~]*' OR value_norm GLOB '*[^ -~]*') ORDER BY id`)
	if err != nil {
		return nil, mapErr("identities with non-ascii", err)
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, mapErr("identities with non-ascii", err)
		}
		out = append(out, i)
	}
	return out, mapErr("identities with non-ascii", rows.Err())
}

// UpdateIdentityValue rewrites a login ID's value and key (a change of
// normalisation rules); a key another identity has gives ErrConflict.
func (t *Tx) UpdateIdentityValue(ctx context.Context, id, value, norm string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE identities SET value = ?, value_norm = ? WHERE id = ?`, value, norm, id)
	return mapErr("update identity value", err)
}
