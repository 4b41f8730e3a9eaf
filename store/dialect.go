package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// The store's SQL is written once, for SQLite, with "?" placeholders. On
// PostgreSQL every statement goes through pgQueryer, which rewrites it once
// (the result is cached by the statement's text) and runs the rewrite:
//
//   - "?" placeholders become $1, $2, ... ("?" inside a quoted literal or
//     identifier is left alone);
//   - an INSERT into a table with an identity column (pgIdentity) that has
//     no RETURNING gets "RETURNING <column>", so that sql.Result's
//     LastInsertId works as on SQLite (pgx's driver has no LastInsertId);
//   - the few statements whose SQLite text PostgreSQL does not accept are
//     replaced whole by their PostgreSQL text (pgStatements), in the manner
//     of Authelia's per-provider statements: one method per query, the
//     dialect difference inside the store.
//
// Go bool arguments are sent as 0/1, since the flag columns are integers on
// both databases (SQLite has no boolean type).

// pgIdentity names each table with an identity column and the column.
var pgIdentity = map[string]string{
	"users":              "seq",
	"events":             "seq",
	"mail_outbox":        "id",
	"webhook_deliveries": "id",
	"sms_sends":          "id",
	"password_history":   "id",
}

// pgReplacements are fragments of SQLite-only syntax and their PostgreSQL
// equivalent, applied to every statement before rebinding. Each is specific
// enough to appear only where it is meant.
var pgReplacements = strings.NewReplacer(
	// identities_norm.go: GLOB with a character class.
	`value GLOB '*[^ -~]*' OR value_norm GLOB '*[^ -~]*'`, `value ~ '[^ -~]' OR value_norm ~ '[^ -~]'`,
	// users_search.go summaryCols: the login IDs with their kinds,
	// newline-separated, in order
	// (group_concat is SQLite's, and PostgreSQL 15 wants a FROM subquery named).
	`(SELECT group_concat(kind || ':' || value, char(10)) FROM (SELECT kind, value FROM identities WHERE user_id = u.id ORDER BY created_at, id) AS ids)`,
	`(SELECT string_agg(kind || ':' || value, chr(10) ORDER BY created_at, id) FROM identities WHERE user_id = u.id)`,
	// auth.go LatestPasswordReset: insertion order breaks a tie of
	// created_at; rowid is SQLite's, seq the identity column of
	// migrations_pg/0020_a_reset_order.sql.
	`ORDER BY created_at DESC, rowid DESC`, `ORDER BY created_at DESC, seq DESC`,
)

type pgStatement struct {
	text      string // the statement for PostgreSQL
	returning bool   // RETURNING was added: Exec reads the ids
}

var pgCache sync.Map // SQLite text -> *pgStatement

// pgRewrite returns the PostgreSQL form of a store statement.
func pgRewrite(query string) *pgStatement {
	if v, ok := pgCache.Load(query); ok {
		return v.(*pgStatement)
	}
	st := &pgStatement{text: rebind(pgReplacements.Replace(query))}
	if col := insertIdentity(st.text); col != "" {
		st.text = strings.TrimRight(strings.TrimSpace(st.text), ";") + " RETURNING " + col
		st.returning = true
	}
	pgCache.Store(query, st)
	return st
}

// rebind turns "?" placeholders into $1, $2, ..., skipping quoted text
// and comments.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '\'', '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			if j >= len(q) {
				j = len(q) - 1
			}
			b.WriteString(q[i : j+1])
			i = j
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				j := strings.IndexByte(q[i:], '\n')
				if j < 0 {
					j = len(q) - i
				}
				b.WriteString(q[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// insertIdentity returns the identity column to return for an INSERT into
// one of pgIdentity's tables that has no RETURNING of its own, else "".
func insertIdentity(q string) string {
	f := strings.Fields(q)
	if len(f) < 3 || !strings.EqualFold(f[0], "INSERT") || !strings.EqualFold(f[1], "INTO") {
		return ""
	}
	table := f[2]
	if i := strings.IndexByte(table, '('); i >= 0 {
		table = table[:i]
	}
	col, ok := pgIdentity[strings.ToLower(table)]
	if !ok || strings.Contains(strings.ToUpper(q), "RETURNING") {
		return ""
	}
	return col
}

func pgArgs(args []any) []any {
	var out []any
	for i, a := range args {
		if b, ok := a.(bool); ok {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = boolInt(b)
		}
	}
	if out == nil {
		return args
	}
	return out
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// pgQueryer runs the store's statements on PostgreSQL (a pool or a
// transaction), rewritten by pgRewrite.
type pgQueryer struct{ q queryer }

func (p pgQueryer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := pgRewrite(query)
	if !st.returning {
		return p.q.ExecContext(ctx, st.text, pgArgs(args)...)
	}
	rows, err := p.q.QueryContext(ctx, st.text, pgArgs(args)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var res pgResult
	for rows.Next() {
		if err := rows.Scan(&res.id); err != nil {
			return nil, err
		}
		res.n++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

func (p pgQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.q.QueryContext(ctx, pgRewrite(query).text, pgArgs(args)...)
}

func (p pgQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.q.QueryRowContext(ctx, pgRewrite(query).text, pgArgs(args)...)
}

// pgResult is an INSERT's result on PostgreSQL: the last identity value
// returned and the number of rows, as SQLite reports them.
type pgResult struct{ id, n int64 }

func (r pgResult) LastInsertId() (int64, error) { return r.id, nil }
func (r pgResult) RowsAffected() (int64, error) { return r.n, nil }

// pg reports whether t runs on PostgreSQL, for the few methods whose
// statement differs by dialect.
func (t *Tx) pg() bool {
	_, ok := t.q.(pgQueryer)
	return ok
}

// least and greatest name the two-argument scalar minimum and maximum:
// SQLite's MIN and MAX, PostgreSQL's LEAST and GREATEST.
func (t *Tx) least() string {
	if t.pg() {
		return "LEAST"
	}
	return "MIN"
}

func (t *Tx) greatest() string {
	if t.pg() {
		return "GREATEST"
	}
	return "MAX"
}
