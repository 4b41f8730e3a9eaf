package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// exportUserCols are summaryCols without the login IDs, which
// EachUserForExport reads in a second, merged query.
const exportUserCols = `u.seq, u.id, u.created_at, u.updated_at, u.last_login_at, u.is_disabled, COALESCE(u.disable_reason, ''),
	u.name, u.given_name, u.family_name,
	p.expire_after, p.user_id IS NOT NULL, ` + failedChannelCol

// EachUserForExport calls fn for every user p selects (its cursors and
// limit are ignored), as EachUser does, for the export: without a search
// it walks the users in user ID order.
//
// On SQLite, without a search, it reads two ordered streams in one read
// transaction (one snapshot) and merges them: the users (with their
// password, failed-message and lockout columns) by user ID, and every
// login ID by user ID through the identities_user_order index. The
// per-user subquery that gathers a user's login IDs (an index search and
// a group_concat for each of a million users) was most of the export's
// database time; two forward scans cost a fraction of it. Text compares
// bytewise on SQLite, as Go compares strings, so the merge can skip the
// login IDs of users a filter leaves out. With a search, or on
// PostgreSQL (whose text order follows the database's collation), it is
// EachUser.
func (s *Store) EachUserForExport(ctx context.Context, p ListUsersParams, fn func(*UserSummary) error) error {
	if s.pg || searchTerm(p.Search) != "" || s.rdb == nil {
		p.After, p.Before, p.Limit = "", "", 0
		return s.EachUser(ctx, p, fn)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	from, _, where, args, err := s.userMatch(ctx, ListUsersParams{Filters: p.Filters, Now: now})
	if err != nil {
		return err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return mapErr("export users", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	args = append([]any{ms(now)}, args...)
	users, err := tx.QueryContext(ctx, `SELECT `+exportUserCols+`, EXISTS (SELECT 1 FROM login_lockouts l WHERE l.user_id = u.id AND l.locked_until > ?)
		FROM `+from+` WHERE `+strings.Join(where, " AND ")+` ORDER BY u.id`, args...)
	if err != nil {
		return mapErr("export users", err)
	}
	defer users.Close()
	ids, err := tx.QueryContext(ctx, `SELECT user_id, kind, value FROM identities ORDER BY user_id, created_at, id`)
	if err != nil {
		return mapErr("export users", err)
	}
	defer ids.Close()
	var idUser, idKind, idValue string
	nextID := func() (bool, error) {
		if !ids.Next() {
			return false, ids.Err()
		}
		return true, ids.Scan(&idUser, &idKind, &idValue)
	}
	haveID, err := nextID()
	if err != nil {
		return mapErr("export users", err)
	}
	var u UserSummary
	var created, updated int64
	var last, exp sql.NullInt64
	for users.Next() {
		u = UserSummary{}
		if err := users.Scan(&u.Seq, &u.ID, &created, &updated, &last, &u.IsDisabled, &u.DisableReason,
			&u.Name, &u.GivenName, &u.FamilyName, &exp, &u.HasPassword, &u.FailedChannel, &u.Locked); err != nil {
			return mapErr("export users", err)
		}
		u.CreatedAt, u.UpdatedAt, u.LastLoginAt, u.ExpireAfter = fromMS(created), fromMS(updated), timePtr(last), timePtr(exp)
		u.EmailFailed = u.FailedChannel != ""
		u.Cursor = strconv.FormatInt(u.Seq, 10)
		// Login IDs of users before this one were left out by a filter.
		for haveID && idUser < u.ID {
			if haveID, err = nextID(); err != nil {
				return mapErr("export users", err)
			}
		}
		for haveID && idUser == u.ID {
			u.LoginIDKinds = append(u.LoginIDKinds, idKind)
			u.LoginIDs = append(u.LoginIDs, idValue)
			if haveID, err = nextID(); err != nil {
				return mapErr("export users", err)
			}
		}
		if err := fn(&u); err != nil {
			return err
		}
	}
	return mapErr("export users", users.Err())
}
