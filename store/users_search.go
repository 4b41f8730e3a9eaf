package store

import (
	"context"
	"database/sql"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// UserSummary is one row of the Users list.
type UserSummary struct {
	User
	LoginIDs []string
	// LoginIDKinds holds the kind (email, phone, username) of each of LoginIDs.
	LoginIDKinds []string
	ExpireAfter  *time.Time
	HasPassword  bool
	// EmailFailed is set when the user's latest password message (an
	// email, or a text for a phone user) has failed.
	EmailFailed bool
	// FailedChannel is that failed message's channel ("email" or "sms"),
	// empty when EmailFailed is not set.
	FailedChannel string
	// Locked is set while the user's sign-in is locked out.
	Locked bool
	// Cursor is the keyset position of this row (the user's seq).
	Cursor string
}

// UserFilters narrow the Users list; set filters combine with AND, and
// with the search.
type UserFilters struct {
	Disabled    bool
	MustChange  bool
	Locked      bool
	EmailFailed bool
	NoPassword  bool
}

// Any reports whether a filter is set.
func (f UserFilters) Any() bool {
	return f.Disabled || f.MustChange || f.Locked || f.EmailFailed || f.NoPassword
}

// ListUsersParams selects a page of the Users list: newest first, with
// or without a search. A search of three or more characters matches
// anywhere in a login ID (case-insensitively; a phone number also by its
// digits alone, so "(212) 555-0110" finds +12125550110); one or two
// characters match the start of a login ID. After and Before are the
// Cursor of the last row of the previous page, or of the first row of the
// next one ("Previous page"); at most one is set.
type ListUsersParams struct {
	Search  string
	Filters UserFilters
	After   string
	Before  string
	Limit   int
	// Now is the clock for the time-based filters (zero: time.Now()).
	Now time.Time
}

// searchTerm normalises what was typed into the search box the way login
// IDs are stored: lowercased, and a phone-like input (digits with spaces,
// dashes, dots, parentheses or a leading +) reduced to its digits, which
// match inside the E.164 form.
func searchTerm(raw string) string {
	q := strings.ToLower(strings.TrimSpace(raw))
	digits := 0
	phoneLike := q != ""
	for i, r := range q {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || (r == '+' && i == 0):
		default:
			phoneLike = false
		}
	}
	if phoneLike && digits >= 3 {
		var b strings.Builder
		for _, r := range q {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return q
}

// grams returns the distinct 3-character grams of q, by characters as
// SQLite's substr counts them.
func grams(q string) []string {
	r := []rune(q)
	seen := map[string]bool{}
	var out []string
	for i := 0; i+3 <= len(r); i++ {
		g := string(r[i : i+3])
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// gramsByRarity orders gs by how many users have each gram (from
// gram_counts), rarest first, with each count; a gram no one has comes
// first with 0.
func (t *Tx) gramsByRarity(ctx context.Context, gs []string) ([]string, []int, error) {
	list, args := inList(gs)
	rows, err := t.q.QueryContext(ctx, `SELECT gram, n FROM gram_counts WHERE gram IN `+list, args...)
	if err != nil {
		return nil, nil, mapErr("search grams", err)
	}
	defer rows.Close()
	counts := make(map[string]int, len(gs))
	for rows.Next() {
		var g string
		var n int
		if err := rows.Scan(&g, &n); err != nil {
			return nil, nil, mapErr("search grams", err)
		}
		counts[g] = n
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapErr("search grams", err)
	}
	out := append([]string(nil), gs...)
	sort.SliceStable(out, func(i, j int) bool { return counts[out[i]] < counts[out[j]] })
	ns := make([]int, len(out))
	for i, g := range out {
		ns[i] = counts[g]
	}
	return out, ns, nil
}

// likeEscape escapes LIKE's wildcards (and its escape character, the
// backslash by default on PostgreSQL) so that q matches literally.
func likeEscape(q string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q)
}

// gramChecks is how many further grams a candidate must also have (a
// primary-key probe each) before its login IDs are read.
const gramChecks = 3

// userMatch builds the FROM and WHERE of a list, count or export query:
// the users matching p's search and filters. The seq column is "seq".
func (t *Tx) userMatch(ctx context.Context, p ListUsersParams) (from, seq string, where []string, args []any, err error) {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	q := searchTerm(p.Search)
	from = `users u LEFT JOIN passwords p ON p.user_id = u.id`
	seq = "u.seq"
	switch gs := grams(q); {
	case q == "":
	case len(gs) == 0:
		// One or two characters: a prefix of a login ID (an index range).
		where = append(where, `EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.value_norm >= ? AND i.value_norm < ?)`)
		args = append(args, q, prefixUpperBound(q))
	case t.pg():
		// PostgreSQL: the pg_trgm GIN index on value_norm (migration
		// 0022_trigram_search) answers LIKE '%q%'; the planner walks the
		// newest users when the term is common and reads the index when
		// it is rare (see the figures in docs/scale-out.md).
		where = append(where, `EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.value_norm LIKE ?)`)
		args = append(args, "%"+likeEscape(q)+"%")
	default:
		// Walk the rarest gram's users (newest first); each must have the
		// next rarest grams too (index probes) and then really contain q.
		ordered, counts, err := t.gramsByRarity(ctx, gs)
		if err != nil {
			return "", "", nil, nil, err
		}
		from = `login_id_grams g JOIN users u ON u.seq = g.user_seq LEFT JOIN passwords p ON p.user_id = u.id`
		seq = "g.user_seq"
		if counts[0] == 0 {
			where = append(where, `1 = 0`) // a gram no login ID has: nothing matches
		}
		where = append(where, `g.gram = ?`)
		args = append(args, ordered[0])
		for _, h := range ordered[1:min(len(ordered), 1+gramChecks)] {
			where = append(where, `EXISTS (SELECT 1 FROM login_id_grams h WHERE h.gram = ? AND h.user_seq = g.user_seq)`)
			args = append(args, h)
		}
		where = append(where, `EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND instr(i.value_norm, ?) > 0)`)
		args = append(args, q)
	}
	f := p.Filters
	if f.Disabled {
		where = append(where, `u.is_disabled = 1`)
	}
	if f.MustChange {
		where = append(where, `p.expire_after <= ?`)
		args = append(args, ms(now))
	}
	if f.NoPassword {
		where = append(where, `p.user_id IS NULL`)
	}
	if f.Locked {
		where = append(where, `EXISTS (SELECT 1 FROM login_lockouts l WHERE l.user_id = u.id AND l.locked_until > ?)`)
		args = append(args, ms(now))
	}
	if f.EmailFailed {
		where = append(where, emailFailedCol)
	}
	if len(where) == 0 {
		where = append(where, "1 = 1")
	}
	return from, seq, where, args, nil
}

const summaryCols = `u.seq, u.id, u.created_at, u.updated_at, u.last_login_at, u.is_disabled, COALESCE(u.disable_reason, ''),
	u.name, u.given_name, u.family_name,
	p.expire_after, p.user_id IS NOT NULL,
	(SELECT group_concat(kind || ':' || value, char(10)) FROM (SELECT kind, value FROM identities WHERE user_id = u.id ORDER BY created_at, id) AS ids),
	` + failedChannelCol

// ListUsers returns one page of users, newest first, by keyset
// pagination, so every page costs about the same at a million users.
func (t *Tx) ListUsers(ctx context.Context, p ListUsersParams) ([]UserSummary, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	var out []UserSummary
	err := t.EachUser(ctx, p, func(s *UserSummary) error {
		out = append(out, *s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.Before != "" {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// EachUser streams the users p selects to fn, newest first (oldest first
// with Before; by user ID for a whole walk without search), at most
// p.Limit of them (all with Limit 0), from one query: the export uses it to write a million users without holding
// them. fn must not keep the pointer; an error from fn stops the walk.
func (t *Tx) EachUser(ctx context.Context, p ListUsersParams, fn func(*UserSummary) error) error {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	from, seq, where, args, err := t.userMatch(ctx, p)
	if err != nil {
		return err
	}
	order := seq + " DESC"
	if p.Limit <= 0 && seq == "u.seq" && p.Before == "" && p.After == "" {
		// A whole walk (the export) goes in user ID order: the users'
		// login IDs, passwords, lockouts and mail rows are all keyed by
		// user ID, so every lookup moves forward through its index
		// instead of jumping around a file larger than the page cache.
		order = "u.id"
	}
	after := int64(math.MaxInt64)
	if p.Before != "" {
		v, _ := strconv.ParseInt(p.Before, 10, 64)
		where = append(where, seq+" > ?")
		args = append(args, v)
		order = seq + " ASC"
	} else if p.After != "" {
		v, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			v = 0 // a cursor from an older version: nothing after it
		}
		after = v
		where = append(where, seq+" < ?")
		args = append(args, v)
	}
	if t.pg() && p.Limit > 0 && p.Before == "" && !p.Filters.Any() && len(grams(searchTerm(p.Search))) > 0 {
		// PostgreSQL, a page of a substring search: first the newest
		// pgSearchWindow users (from the cursor), each checked. When they
		// hold a whole page, that is the page (a common term). Otherwise
		// the term is rare enough that reading its matches from the
		// trigram index and sorting them costs less than walking further
		// (the planner, left alone, walks on for terms one user in a few
		// hundred has: 100,000+ buffers at a million users).
		window := `(SELECT * FROM users WHERE seq < ? ORDER BY seq DESC LIMIT ?) AS u LEFT JOIN passwords p ON p.user_id = u.id`
		var page []UserSummary
		err := t.eachUserFrom(ctx, now, window, []any{after, pgSearchWindow}, where, args, order, p.Limit, func(s *UserSummary) error {
			page = append(page, *s)
			return nil
		})
		if err != nil {
			return err
		}
		if len(page) >= p.Limit {
			for i := range page {
				if err := fn(&page[i]); err != nil {
					return err
				}
			}
			return nil
		}
		// The matching users from the index, the page's newest of them
		// picked before anything else is joined to them; the search and
		// the cursor are inside, so nothing is left for the outer WHERE.
		// Each match's user is fetched by its key (LATERAL ... OFFSET 0
		// keeps the planner from hashing all million users instead, which
		// it prefers for a few thousand matches at the default
		// random_page_cost).
		matches := `(SELECT u.* FROM (SELECT DISTINCT i.user_id FROM identities i WHERE i.value_norm LIKE ?) AS m
			CROSS JOIN LATERAL (SELECT * FROM users WHERE id = m.user_id OFFSET 0) AS u
			WHERE u.seq < ? ORDER BY u.seq DESC LIMIT ?) AS u LEFT JOIN passwords p ON p.user_id = u.id`
		return t.eachUserFrom(ctx, now, matches, []any{"%" + likeEscape(searchTerm(p.Search)) + "%", after, p.Limit}, []string{"1 = 1"}, nil, order, p.Limit, fn)
	}
	return t.eachUserFrom(ctx, now, from, nil, where, args, order, p.Limit, fn)
}

// pgSearchWindow is how many of the newest users a PostgreSQL substring
// search checks one by one before it reads the trigram index instead:
// a term fewer than about 1 in 100 users have is cheaper from the index.
const pgSearchWindow = 5000

// eachUserFrom runs the Users list query over from (with fromArgs for
// its placeholders), where (with args), in order, at most limit rows (all
// with 0), and streams the rows to fn.
func (t *Tx) eachUserFrom(ctx context.Context, now time.Time, from string, fromArgs []any, where []string, args []any, order string, limit int, fn func(*UserSummary) error) error {
	args = append(append([]any{ms(now)}, fromArgs...), args...)
	query := `SELECT ` + summaryCols + `, EXISTS (SELECT 1 FROM login_lockouts l WHERE l.user_id = u.id AND l.locked_until > ?)
		FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := t.q.QueryContext(ctx, query, args...)
	if err != nil {
		return mapErr("list users", err)
	}
	defer rows.Close()
	var s UserSummary
	var created, updated int64
	var last, exp sql.NullInt64
	var ids sql.NullString
	for rows.Next() {
		s = UserSummary{}
		if err := rows.Scan(&s.Seq, &s.ID, &created, &updated, &last, &s.IsDisabled, &s.DisableReason,
			&s.Name, &s.GivenName, &s.FamilyName,
			&exp, &s.HasPassword, &ids, &s.FailedChannel, &s.Locked); err != nil {
			return mapErr("list users", err)
		}
		s.CreatedAt, s.UpdatedAt, s.LastLoginAt, s.ExpireAfter = fromMS(created), fromMS(updated), timePtr(last), timePtr(exp)
		s.EmailFailed = s.FailedChannel != ""
		if ids.String != "" {
			for _, kv := range strings.Split(ids.String, "\n") {
				k, v, _ := strings.Cut(kv, ":")
				s.LoginIDKinds = append(s.LoginIDKinds, k)
				s.LoginIDs = append(s.LoginIDs, v)
			}
		}
		s.Cursor = strconv.FormatInt(s.Seq, 10)
		if err := fn(&s); err != nil {
			return err
		}
	}
	return mapErr("list users", rows.Err())
}

// CountUsersMatching counts the users a search matches (all users when
// search is empty), each user once however many login IDs match.
func (t *Tx) CountUsersMatching(ctx context.Context, search string) (int, error) {
	n, _, err := t.CountUsersBounded(ctx, ListUsersParams{Search: search}, 0)
	return n, err
}

// CountUsersBounded counts the users p matches (ignoring its cursors),
// stopping at bound when bound > 0: then exact is false and n is bound
// when there are at least that many. Without search and filters it is
// an exact COUNT(*).
func (t *Tx) CountUsersBounded(ctx context.Context, p ListUsersParams, bound int) (n int, exact bool, err error) {
	if strings.TrimSpace(p.Search) == "" && !p.Filters.Any() {
		n, err = t.CountUsers(ctx)
		return n, true, err
	}
	from, _, where, args, err := t.userMatch(ctx, p)
	if err != nil {
		return 0, false, err
	}
	query := `SELECT 1 FROM ` + from + ` WHERE ` + strings.Join(where, " AND ")
	if bound > 0 {
		query += ` LIMIT ?`
		args = append(args, bound)
	}
	err = t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+query+`) AS matching`, args...).Scan(&n)
	if err != nil {
		return 0, false, mapErr("count users", err)
	}
	return n, bound <= 0 || n < bound, nil
}

// UserFlags reports the user page's status flags that live outside the
// users row: a failed password email (as the Users list marks it) and a
// sign-in lock at now.
func (t *Tx) UserFlags(ctx context.Context, userID string, now time.Time) (emailFailed, locked bool, err error) {
	err = t.q.QueryRowContext(ctx, `SELECT `+emailFailedCol+`, EXISTS (SELECT 1 FROM login_lockouts l WHERE l.user_id = u.id AND l.locked_until > ?)
		FROM users u WHERE u.id = ?`, ms(now), userID).Scan(&emailFailed, &locked)
	return emailFailed, locked, mapErr("user flags", err)
}
