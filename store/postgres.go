package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

//go:embed migrations_pg/*.sql
var migrationsPG embed.FS

// IsPostgresURL reports whether a LATCHKEY_DB value names a PostgreSQL
// database (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(db string) bool {
	l := strings.ToLower(strings.TrimSpace(db))
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// RedactDB returns a LATCHKEY_DB value fit for a log: a PostgreSQL URL
// with its password replaced by "xxxxx".
func RedactDB(db string) string {
	if !IsPostgresURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// sqlitePath strips an optional "sqlite:" scheme (sqlite:latchkey.db,
// sqlite:///var/lib/latchkey.db) from a LATCHKEY_DB value.
func sqlitePath(db string) string {
	if !strings.HasPrefix(strings.ToLower(db), "sqlite:") {
		return db
	}
	p := db[len("sqlite:"):]
	if strings.HasPrefix(p, "//") {
		p = p[2:]
	}
	return p
}

// pgMigrateLock is the pg_advisory_lock key under which migrations run, so
// that instances starting together apply each migration once.
const pgMigrateLock = 0x6c61746368 // "latch"

// openPostgres opens a PostgreSQL database through pgx's database/sql
// driver and applies pending migrations. There is no write queue: the pool
// serves reads and writes alike, and PostgreSQL's MVCC orders them; a
// transaction runs at READ COMMITTED, the counters being single atomic
// UPDATE ... RETURNING statements.
func openPostgres(ctx context.Context, url string, o Options) (*Store, error) {
	db, err := openPGPool(url, o.WriteTimeout)
	if err != nil {
		return nil, err
	}
	conns := o.ReadConns
	if conns <= 0 {
		conns = 16
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	s := &Store{db: db, pg: true, writeTimeout: o.WriteTimeout, n: newNotifier(url)}
	s.Tx = Tx{q: pgQueryer{db}, n: s.n}
	if err := s.migratePG(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migratePG applies migrations_pg in name order, each in its own
// transaction, holding a session-level advisory lock on one connection
// for the whole run.
func (s *Store) migratePG(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	// Another instance may migrate for longer than the lock_timeout that
	// bounds ordinary writes (openPGPool): wait for it without a bound.
	if _, err := conn.ExecContext(ctx, `SET lock_timeout = 0`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `RESET lock_timeout`)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, pgMigrateLock); err != nil {
		return fmt.Errorf("store: migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, pgMigrateLock)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return forEachMigration(migrationsPG, "migrations_pg", func(version, body string) error {
		return applyPG(ctx, conn, version, body)
	})
}

func applyPG(ctx context.Context, conn *sql.Conn, version, body string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	// No arguments: pgx sends the file with the simple protocol, which
	// runs several statements.
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// inTxPG runs fn in a READ COMMITTED transaction on the pool.
func (s *Store) inTxPG(ctx context.Context, fn func(tx *Tx) error) ([]func(), error) {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, mapErr("begin", err)
	}
	var after []func()
	tx := &Tx{q: pgQueryer{sqlTx}, inTx: true, afterCommit: &after, n: s.n}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return nil, err
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, mapErr("commit", err)
	}
	return after, nil
}

// mapPgErr maps PostgreSQL's unique violation to ErrConflict, and
// serialization failures, deadlocks and lock timeouts to ErrBusy (a retry
// may succeed). It returns nil for any other error.
func mapPgErr(op string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Code {
	case "23505":
		return fmt.Errorf("store: %s: %w: %v", op, ErrConflict, err)
	case "40001", "40P01", "55P03":
		return fmt.Errorf("store: %s: %w: %v", op, ErrBusy, err)
	}
	return nil
}

// serialized runs fn with every statement after lockSQL (a SELECT ... FOR
// UPDATE of a parent row) seeing the commits of those that held the lock
// before: on PostgreSQL at READ COMMITTED, a statement whose condition
// reads other rows (a sum over the user's rows) takes its snapshot when it
// starts, so two of them at once could both pass a cap. On SQLite, where
// writes are serial anyway, fn runs at once on t. Outside a transaction on
// PostgreSQL, one is opened for the lock and fn.
func (t *Tx) serialized(ctx context.Context, lockSQL string, lockArgs []any, fn func(t *Tx) error) error {
	p, ok := t.q.(pgQueryer)
	if !ok {
		return fn(t)
	}
	lock := func(t *Tx) error {
		rows, err := t.q.QueryContext(ctx, lockSQL, lockArgs...)
		if err != nil {
			return err
		}
		return rows.Close()
	}
	if t.inTx {
		if err := lock(t); err != nil {
			return err
		}
		return fn(t)
	}
	db, ok := p.q.(*sql.DB)
	if !ok {
		return errors.New("store: serialized: no pool to open a transaction on")
	}
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer sqlTx.Rollback()
	var after []func()
	tx := &Tx{q: pgQueryer{sqlTx}, inTx: true, afterCommit: &after, n: t.n}
	if err := lock(tx); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return err
	}
	for _, f := range after {
		f()
	}
	return nil
}

// pgClaimOutbox is ClaimOutbox's statement on PostgreSQL. The due rows are
// locked FOR UPDATE SKIP LOCKED: a row another instance is claiming is
// skipped rather than waited for, and one it has claimed since this
// statement began is re-checked against the condition and dropped, so two
// instances never take the same row. Arguments as the SQLite statement's.
const pgClaimOutbox = `UPDATE mail_outbox SET status = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ?
	WHERE id IN (
		SELECT id FROM mail_outbox
		WHERE (status = 'queued' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?)
		ORDER BY id LIMIT ?
		FOR UPDATE SKIP LOCKED)
	RETURNING ` + outboxCols
