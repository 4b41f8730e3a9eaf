// Package store keeps Latchkey's data in SQLite: one method per query,
// embedded migrations, and a transaction helper that the account package
// uses so that a change, its event and its outbox rows commit together.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a write breaks a unique constraint.
var ErrConflict = errors.New("store: conflict")

type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx runs queries either inside a transaction (from Store.InTx) or directly
// on the pool (the Tx embedded in Store). Every query method is defined on
// Tx so that it works in both places.
type Tx struct {
	q           queryer
	inTx        bool
	afterCommit *[]func()
}

// Store is the SQLite database. Its embedded Tx runs queries outside any
// transaction.
type Store struct {
	Tx
	db *sql.DB
}

// Open opens (creating if needed) the SQLite file at path and applies
// pending migrations. Every pooled connection gets WAL, foreign keys, a busy
// timeout and immediate write transactions through the DSN.
//
// The database may hold the server secret, so Open creates it (and
// SQLite then its -wal and -shm files, which take the database's mode)
// readable by the owner only, and refuses an existing database that
// others can read or write.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := secureFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", "NORMAL")
	// Deleted and overwritten content is zeroed, so a wiped outbox secret
	// leaves no bytes behind in the database file.
	q.Set("_secure_delete", "on")
	// The path is a URI here: escape what SQLite would read as a query,
	// a fragment or an escape ("#" appears in Go subtest directories).
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	dsn := "file:" + escaped + "?" + q.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{Tx: Tx{q: db}, db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the pool for benchmarks and maintenance; application code uses
// the query methods.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", version, err)
		}
		err = s.InTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.q.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.q.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", version, err)
		}
	}
	return nil
}

// InTx runs fn in one write transaction. It commits when fn returns nil and
// rolls back otherwise. Functions registered with AfterCommit run once the
// commit has succeeded.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	var after []func()
	tx := &Tx{q: sqlTx, inTx: true, afterCommit: &after}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for _, f := range after {
		f()
	}
	return nil
}

// AfterCommit registers f to run after the transaction commits; outside a
// transaction it runs f at once. Workers use it to wake up right after the
// rows they deliver become visible.
func (t *Tx) AfterCommit(f func()) {
	if !t.inTx {
		f()
		return
	}
	*t.afterCommit = append(*t.afterCommit, f)
}

// mapErr turns sqlite constraint errors into ErrConflict and sql.ErrNoRows
// into ErrNotFound, keeping the original error in the chain.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) {
		return fmt.Errorf("store: %s: %w: %v", op, ErrConflict, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// nullTime converts an optional time to a nullable unix-millisecond column.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// timePtr converts a nullable unix-millisecond column to an optional time.
func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// inList returns "(?, ?, ...)" for values and the values as arguments, for
// "col IN" and "col NOT IN"; values must not be empty.
func inList(values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return "(?" + strings.Repeat(", ?", len(values)-1) + ")", args
}
