package store

// Moving a deployment from SQLite to PostgreSQL (`latchkey
// migrate-to-postgres`): the SQLite file is read as one snapshot without
// writing to it, and its rows are copied into an empty PostgreSQL database
// in one transaction with COPY. This file is the only place that knows how
// the two schemas line up (which tables are derived, which are seeded by
// migrations, which columns are identities).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrTargetNotEmpty is returned when the PostgreSQL database to copy into
// already holds data (or tables that are not Latchkey's).
var ErrTargetNotEmpty = errors.New("store: the PostgreSQL database is not empty")

// copyNotCopied are tables never copied row by row: the migrations'
// bookkeeping and seed data, which each database has its own of, and
// SQLite's Users search posting lists, which are derived from identities.
// PostgreSQL has no such tables since 0022 (it searches with a pg_trgm
// index on identities, built as the rows arrive).
var copyNotCopied = map[string]bool{
	"schema_migrations": true, // each dialect's own migration record
	"gram_positions":    true, // seeded by the 0014 migration on both
	"login_id_grams":    true, // SQLite's search index, derived from identities
	"gram_counts":       true, // derived from login_id_grams
}

// copySkipRows are rows left behind on purpose: the server secret that a
// SQLite deployment without LATCHKEY_SECRET_KEY generated and kept in its
// database. On PostgreSQL the secret comes from LATCHKEY_SECRET_KEY only,
// kept apart from the data (the command tells the operator what to set).
var copySkipRows = map[string]string{
	"settings": `key <> 'secret_key'`,
}

// Snapshot is a SQLite database opened read-only and read inside one read
// transaction, so every table comes from the same committed state even
// while a server keeps writing to it. Its embedded Tx runs the store's
// read methods on the snapshot.
//
// The file is opened with mode=ro (and query_only): SQLite writes nothing
// to the database or its -wal, and reads committed transactions still in
// the -wal (a live server's, or a crashed one's). Not immutable=1, which
// would ignore the -wal and read a torn state of a live database.
type Snapshot struct {
	Tx
	path string
	db   *sql.DB
	tx   *sql.Tx
}

// OpenSnapshot opens the SQLite database at path (a file path or a
// sqlite: URL) read-only and starts the read transaction.
func OpenSnapshot(ctx context.Context, path string) (*Snapshot, error) {
	path = sqlitePath(path)
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: no SQLite database at %s", path)
		}
		return nil, fmt.Errorf("store: source %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("store: source %s is a directory, not a SQLite database", path)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "true")
	q.Set("_busy_timeout", "5000")
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite3", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	s := &Snapshot{Tx: Tx{q: tx, inTx: true, afterCommit: new([]func())}, path: path, db: db, tx: tx}
	// The first read fixes the snapshot; it also tells a file that is not
	// a SQLite database.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master`).Scan(&n); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: read %s: %w", path, err)
	}
	return s, nil
}

// Close ends the read transaction and closes the file.
func (s *Snapshot) Close() error {
	_ = s.tx.Rollback()
	return s.db.Close()
}

// CheckMigrations reports an error unless the snapshot's schema is the one
// this binary's migrations make: a database from an older Latchkey must be
// migrated by starting that SQLite server once with this version, and one
// from a newer Latchkey needs a newer binary.
func (s *Snapshot) CheckMigrations(ctx context.Context) error {
	rows, err := s.tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: %s is not a Latchkey database (no schema_migrations table): %w", s.path, err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		have[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[string]bool{}
	var missing []string
	err = forEachMigration(migrations, "migrations", func(version, _ string) error {
		want[version] = true
		if !have[version] {
			missing = append(missing, version)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("store: %s was made by an older Latchkey (migrations %s not applied): start this version of Latchkey on it once, stop it, then copy", s.path, strings.Join(missing, ", "))
	}
	var unknown []string
	for v := range have {
		if !want[v] {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("store: %s was made by a newer Latchkey (migrations %s unknown to this binary): use that version's latchkey to copy it", s.path, strings.Join(unknown, ", "))
	}
	return nil
}

// tables lists the snapshot's tables (SQLite's own excepted) with their
// columns in order.
func (s *Snapshot) tables(ctx context.Context) (map[string][]string, error) {
	rows, err := s.tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, n := range names {
		crows, err := s.tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, n)
		if err != nil {
			return nil, err
		}
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				crows.Close()
				return nil, err
			}
			out[n] = append(out[n], c)
		}
		crows.Close()
		if err := crows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Snapshot) count(ctx context.Context, table, where string) (int64, error) {
	q := `SELECT COUNT(*) FROM ` + quoteIdent(table)
	if where != "" {
		q += ` WHERE ` + where
	}
	var n int64
	err := s.tx.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TableCount is one table's rows in the source and in the target after a
// copy; Note says why a table was treated specially ("rebuilt", ...).
type TableCount struct {
	Table          string
	Source, Target int64
	Note           string
}

// pgColumn is a target column: its type and whether a sequence feeds it.
type pgColumn struct {
	name, dataType string
	identity       bool
	seqDefault     string // the sequence named by a nextval() default
}

// pgSchema is the target's tables, columns and foreign-key parents.
type pgSchema struct {
	cols    map[string][]pgColumn
	parents map[string][]string
}

var nextvalRE = regexp.MustCompile(`^nextval\('([^']+)'`)

func readPGSchema(ctx context.Context, c *pgx.Conn) (*pgSchema, error) {
	sc := &pgSchema{cols: map[string][]pgColumn{}, parents: map[string][]string{}}
	rows, err := c.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_identity, COALESCE(c.column_default, '')
		FROM information_schema.columns c JOIN information_schema.tables t
		  ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema = current_schema()
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var table, def, ident string
		var col pgColumn
		if err := rows.Scan(&table, &col.name, &col.dataType, &ident, &def); err != nil {
			rows.Close()
			return nil, err
		}
		col.identity = ident == "YES"
		if m := nextvalRE.FindStringSubmatch(def); m != nil {
			col.seqDefault = m[1]
		}
		sc.cols[table] = append(sc.cols[table], col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = c.Query(ctx, `SELECT DISTINCT ch.relname, pa.relname
		FROM pg_constraint k JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
		WHERE k.contype = 'f' AND ch.relnamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, err
		}
		if child != parent {
			sc.parents[child] = append(sc.parents[child], parent)
		}
	}
	rows.Close()
	return sc, rows.Err()
}

// order sorts tables so that every table comes after the tables its
// foreign keys point to (ties by name, so the order is stable).
func (sc *pgSchema) order(tables []string) ([]string, error) {
	in := map[string]bool{}
	for _, t := range tables {
		in[t] = true
	}
	sort.Strings(tables)
	done := map[string]bool{}
	var out []string
	for len(out) < len(tables) {
		progressed := false
		for _, t := range tables {
			if done[t] {
				continue
			}
			ready := true
			for _, p := range sc.parents[t] {
				if in[p] && !done[p] {
					ready = false
					break
				}
			}
			if ready {
				done[t] = true
				out = append(out, t)
				progressed = true
			}
		}
		if !progressed {
			return nil, errors.New("store: copy: the foreign keys between tables form a cycle")
		}
	}
	return out, nil
}

// CheckPostgresTarget connects to the PostgreSQL database at dbURL without
// changing anything and reports whether Latchkey may copy src into it: it
// must hold no tables at all, or Latchkey's schema with no rows in the
// tables the copy fills (the migration bookkeeping and seed tables, and
// tables only PostgreSQL has, aside). It returns ErrTargetNotEmpty (with
// what it found) otherwise, and a connection error as it is. A nil src
// checks every table.
func CheckPostgresTarget(ctx context.Context, dbURL string, src *Snapshot) error {
	var srcTables map[string][]string
	if src != nil {
		var err error
		if srcTables, err = src.tables(ctx); err != nil {
			return fmt.Errorf("store: read the SQLite schema: %w", err)
		}
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return fmt.Errorf("store: connect to %s: %w", RedactDB(dbURL), err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: connect to %s: %w", RedactDB(dbURL), err)
	}
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("store: inspect %s: %w", RedactDB(dbURL), err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	latchkey := false
	for _, t := range tables {
		if t == "schema_migrations" {
			latchkey = true
		}
	}
	if !latchkey {
		return fmt.Errorf("%w: it holds tables that are not Latchkey's (%s); give an empty database", ErrTargetNotEmpty, strings.Join(tables, ", "))
	}
	var full []string
	for _, t := range tables {
		if _, ok := srcTables[t]; copyNotCopied[t] || (src != nil && !ok) {
			continue
		}
		var has bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(t)+`)`).Scan(&has); err != nil {
			return fmt.Errorf("store: inspect %s: %w", t, err)
		}
		if has {
			full = append(full, t)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: it already holds Latchkey data (rows in %s); copy only into an empty database", ErrTargetNotEmpty, strings.Join(full, ", "))
	}
	return nil
}

// CopyFromSnapshot copies every table of src into this PostgreSQL store,
// whose migrations Open has applied, in one transaction: the target tables
// are locked and checked empty (ErrTargetNotEmpty otherwise), user
// triggers are held off while rows arrive with COPY (primary keys and all
// columns as they are; SQLite's integer times and flags go into BIGINT
// columns unchanged, BLOBs into bytea), SQLite's search index is left behind,
// identity sequences are moved past the largest copied id, and the row
// count of every table is compared with the source before the commit. On
// any error the transaction rolls back and the target stays empty.
//
// A sequence moved by setval stays moved after a rollback (PostgreSQL
// sequences are not transactional); that only makes new ids larger.
func (s *Store) CopyFromSnapshot(ctx context.Context, src *Snapshot) ([]TableCount, error) {
	if !s.pg {
		return nil, errors.New("store: copy: the target must be PostgreSQL")
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: copy: %w", err)
	}
	defer conn.Close()
	var counts []TableCount
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		counts, err = copyInTx(ctx, src, tx)
		if err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		if errors.Is(err, ErrTargetNotEmpty) {
			return nil, err
		}
		return nil, fmt.Errorf("store: copy: %w (rolled back: the PostgreSQL database holds no rows, only Latchkey's empty schema, and the copy can be run again)", err)
	}
	return counts, nil
}

func copyInTx(ctx context.Context, src *Snapshot, tx pgx.Tx) ([]TableCount, error) {
	sc, err := readPGSchema(ctx, tx.Conn())
	if err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}
	srcTables, err := src.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the SQLite schema: %w", err)
	}
	var names []string
	var counts []TableCount
	for t, cols := range srcTables {
		if copyNotCopied[t] {
			continue
		}
		n, err := src.count(ctx, t, copySkipRows[t])
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		tcols, ok := sc.cols[t]
		if !ok {
			if n > 0 {
				return nil, fmt.Errorf("table %s (%d rows) has no counterpart on PostgreSQL", t, n)
			}
			counts = append(counts, TableCount{Table: t, Note: "SQLite only, empty: skipped"})
			continue
		}
		for _, col := range cols {
			if findCol(tcols, col) == nil {
				return nil, fmt.Errorf("column %s.%s has no counterpart on PostgreSQL", t, col)
			}
		}
		names = append(names, t)
	}
	order, err := sc.order(names)
	if err != nil {
		return nil, err
	}
	locked := quoted(order)
	// No instance can write while the copy runs; then the check for rows
	// is final.
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(locked, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return nil, fmt.Errorf("lock the tables: %w", err)
	}
	var full []string
	for _, t := range locked {
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&has); err != nil {
			return nil, err
		}
		if has {
			full = append(full, strings.Trim(t, `"`))
		}
	}
	if len(full) > 0 {
		return nil, fmt.Errorf("%w: it already holds Latchkey data (rows in %s); copy only into an empty database", ErrTargetNotEmpty, strings.Join(full, ", "))
	}
	// Memory for the index builds, for this
	// transaction only (the defaults would sort on disk).
	// (JIT compiling costs more than it saves on these one-off statements.)
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '128MB'; SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL jit = off`); err != nil {
		return nil, err
	}
	// Rows arrive as they are: no user trigger runs per copied row.
	for _, t := range locked {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t+` DISABLE TRIGGER USER`); err != nil {
			return nil, fmt.Errorf("hold off the triggers of %s: %w", t, err)
		}
	}
	// As pg_restore does: secondary indexes and foreign keys are dropped
	// for the copy and made again after it (one sorted build, one
	// validating join each), which is much faster than keeping them up to
	// date row by row. Primary keys and unique constraints stay, so a
	// duplicate is still refused as it arrives. All of it is inside the
	// transaction: a failure leaves the schema as it was.
	deferred, err := dropDeferrable(ctx, tx, order)
	if err != nil {
		return nil, err
	}
	for _, t := range order {
		cols := srcTables[t]
		tcols := sc.cols[t]
		conv := make([]func(any) (any, error), len(cols))
		for i, col := range cols {
			conv[i] = converter(findCol(tcols, col).dataType)
		}
		q := `SELECT ` + joinQuoted(cols) + ` FROM ` + quoteIdent(t)
		if w := copySkipRows[t]; w != "" {
			q += ` WHERE ` + w
		}
		rows, err := src.tx.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		rs := &rowSource{rows: rows, table: t, cols: cols, conv: conv}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t}, cols, rs)
		rows.Close()
		if err == nil {
			err = rs.err
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t, err)
		}
		srcN, err := src.count(ctx, t, copySkipRows[t])
		if err != nil {
			return nil, err
		}
		tc := TableCount{Table: t, Source: srcN}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&tc.Target); err != nil {
			return nil, err
		}
		if tc.Target != srcN || n != srcN {
			return nil, fmt.Errorf("verify %s: %d rows in SQLite, %d copied, %d in PostgreSQL", t, srcN, n, tc.Target)
		}
		if t == "settings" {
			tc.Note = "the generated secret_key is not copied"
		}
		counts = append(counts, tc)
	}
	for _, d := range deferred {
		if _, err := tx.Exec(ctx, d.create); err != nil {
			return nil, fmt.Errorf("%s: %w", d.what, err)
		}
	}
	// Statistics for the copied rows, so that the first queries of the
	// instances are planned for their real sizes.
	if _, err := tx.Exec(ctx, `ANALYZE `+strings.Join(quoted(order), ", ")); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	for _, t := range locked {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t+` ENABLE TRIGGER USER`); err != nil {
			return nil, fmt.Errorf("turn the triggers of %s back on: %w", t, err)
		}
	}
	// Identity columns were given their values: their sequences go past
	// the largest, so new rows get fresh ids.
	for _, t := range order {
		for _, col := range sc.cols[t] {
			if !col.identity && col.seqDefault == "" {
				continue
			}
			seq := `pg_get_serial_sequence($1, $2)`
			args := []any{quoteIdent(t), col.name}
			if !col.identity {
				seq, args = `$1::regclass`, []any{col.seqDefault}
			}
			q := `SELECT setval(` + seq + `, COALESCE((SELECT MAX(` + quoteIdent(col.name) + `) FROM ` + quoteIdent(t) + `), 1),
				(SELECT MAX(` + quoteIdent(col.name) + `) FROM ` + quoteIdent(t) + `) IS NOT NULL)`
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return nil, fmt.Errorf("move the sequence of %s.%s: %w", t, col.name, err)
			}
		}
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].Table < counts[j].Table })
	return counts, nil
}

// deferredDDL is an index or foreign key dropped for the copy.
type deferredDDL struct{ what, create string }

// dropDeferrable drops the secondary indexes (those behind no constraint)
// and the foreign keys of tables, returning the statements that make them
// again: indexes first, then foreign keys (which validate the rows).
func dropDeferrable(ctx context.Context, tx pgx.Tx, tables []string) ([]deferredDDL, error) {
	var idx, fks []deferredDDL
	var drops []string
	rows, err := tx.Query(ctx, `SELECT i.indexname, i.indexdef FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)
		ORDER BY i.tablename, i.indexname`, tables)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return nil, err
		}
		idx = append(idx, deferredDDL{what: "make index " + name, create: def})
		drops = append(drops, `DROP INDEX `+quoteIdent(name))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT ch.relname, k.conname, pg_get_constraintdef(k.oid)
		FROM pg_constraint k JOIN pg_class ch ON ch.oid = k.conrelid
		WHERE k.contype = 'f' AND ch.relnamespace = current_schema()::regnamespace AND ch.relname = ANY($1)
		ORDER BY ch.relname, k.conname`, tables)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var table, name, def string
		if err := rows.Scan(&table, &name, &def); err != nil {
			rows.Close()
			return nil, err
		}
		fks = append(fks, deferredDDL{what: "check the foreign key " + name + " of " + table,
			create: `ALTER TABLE ` + quoteIdent(table) + ` ADD CONSTRAINT ` + quoteIdent(name) + ` ` + def})
		// Foreign keys go first: an index may not be dropped under one.
		drops = append([]string{`ALTER TABLE ` + quoteIdent(table) + ` DROP CONSTRAINT ` + quoteIdent(name)}, drops...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range drops {
		if _, err := tx.Exec(ctx, d); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
	}
	return append(idx, fks...), nil
}

func findCol(cols []pgColumn, name string) *pgColumn {
	for i := range cols {
		if cols[i].name == name {
			return &cols[i]
		}
	}
	return nil
}

func quoted(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return q
}

func joinQuoted(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// converter turns a value SQLite returned into what the PostgreSQL
// column's type takes in COPY.
func converter(dataType string) func(any) (any, error) {
	switch dataType {
	case "bigint", "integer", "smallint":
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, int64:
				return x, nil
			case bool:
				return boolInt(x), nil
			}
			return nil, fmt.Errorf("a %T (%v) for an integer column", v, v)
		}
	case "boolean":
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, bool:
				return x, nil
			case int64:
				return x != 0, nil
			}
			return nil, fmt.Errorf("a %T (%v) for a boolean column", v, v)
		}
	case "text", "character varying":
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, string:
				return x, nil
			case []byte:
				return string(x), nil
			}
			return nil, fmt.Errorf("a %T (%v) for a text column", v, v)
		}
	case "bytea":
		return func(v any) (any, error) {
			switch x := v.(type) {
			case nil, []byte:
				return x, nil
			case string:
				return []byte(x), nil
			}
			return nil, fmt.Errorf("a %T for a bytea column", v)
		}
	}
	return func(v any) (any, error) { return v, nil }
}

// rowSource feeds one SQLite table's rows to COPY, converted per column.
type rowSource struct {
	rows  *sql.Rows
	table string
	cols  []string
	conv  []func(any) (any, error)
	vals  []any
	n     int64
	err   error
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	r.n++
	raw := make([]any, len(r.cols))
	ptrs := make([]any, len(r.cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		r.err = err
		return false
	}
	for i, v := range raw {
		cv, err := r.conv[i](v)
		if err != nil {
			r.err = fmt.Errorf("row %d, column %s: %w", r.n, r.cols[i], err)
			return false
		}
		raw[i] = cv
	}
	r.vals = raw
	return true
}

func (r *rowSource) Values() ([]any, error) { return r.vals, nil }

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}
