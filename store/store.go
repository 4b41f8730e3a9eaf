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
	"strconv"
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
	n           *notifier // Notify's listeners (notify.go)
}

// Store is the SQLite database. Its embedded Tx runs queries outside any
// transaction: SELECTs on the read pool, everything else on the writer.
//
// SQLite lets one connection write at a time. Store keeps a pool of one
// write connection behind a FIFO queue in Go (wsem) and a separate pool of
// read connections: writers wait their turn in Go, never in SQLite's
// busy handler (which sleeps and polls, leaving the CPU idle and
// stretching the tail under load), and reads never wait for writers (WAL).
type Store struct {
	Tx
	db  *sql.DB // the writer: one connection, BEGIN IMMEDIATE
	rdb *sql.DB // readers: query_only
	// wsem is the write queue: a goroutine holds its one slot while it
	// uses the write connection. Blocked channel senders are served in
	// arrival order.
	wsem         chan struct{}
	writeTimeout time.Duration
	// group queues InTxGrouped's writes (group.go).
	group groupQueue
	// ckpt checkpoints the WAL in the background (checkpoint.go).
	ckpt *checkpointer
	// pg: the database is PostgreSQL (postgres.go); db is then the one
	// pool for reads and writes, rdb is nil and wsem unused.
	pg bool
	n  *notifier // Listen and Notify (notify.go)
}

// Options tune Open; the zero value gives the defaults.
type Options struct {
	// WriteTimeout is a write's budget: how long it may wait for its turn
	// on the write connection, and then how long SQLite waits on a lock
	// held by another process. Past it the write fails with ErrBusy
	// (HTTP 503 with Retry-After). Default 5s.
	WriteTimeout time.Duration
	// ReadConns is the size of the read pool (default 8).
	ReadConns int
}

// DefaultWriteTimeout is Options.WriteTimeout's default.
const DefaultWriteTimeout = 5 * time.Second

// ErrBusy is returned when a write could not get the database within its
// budget (Options.WriteTimeout), or SQLite reported the database busy or
// locked. It is temporary: the caller should answer 503 and ask the client
// to retry.
var ErrBusy = errors.New("store: database busy")

// IsBusy reports whether err means the database was busy: ErrBusy, or an
// SQLite SQLITE_BUSY / SQLITE_LOCKED that did not go through mapErr.
func IsBusy(err error) bool {
	if errors.Is(err, ErrBusy) {
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// Open opens (creating if needed) the SQLite file at path with the
// default Options and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenOptions(ctx, path, Options{})
}

// OpenOptions is Open with Options. Every pooled connection gets WAL,
// foreign keys and a busy timeout through the DSN; the writer uses
// immediate write transactions, readers are query_only.
//
// The database may hold the server secret, so Open creates it (and
// SQLite then its -wal and -shm files, which take the database's mode)
// readable by the owner only, and refuses an existing database that
// others can read or write.
//
// A path that is a postgres:// or postgresql:// URL opens PostgreSQL
// instead (postgres.go); "sqlite:" before a path is allowed.
func OpenOptions(ctx context.Context, path string, o Options) (*Store, error) {
	if IsPostgresURL(path) {
		return openPostgres(ctx, path, o)
	}
	path = sqlitePath(path)
	if err := secureFiles(path); err != nil {
		return nil, err
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 8
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", strconv.FormatInt(o.WriteTimeout.Milliseconds(), 10))
	q.Set("_synchronous", "NORMAL")
	// Deleted and overwritten content is zeroed, so a wiped outbox secret
	// leaves no bytes behind in the database file.
	q.Set("_secure_delete", "on")
	// Each connection keeps its most recent prepared statements: the hot
	// paths (sign-in, token exchange) run the same few queries, and
	// preparing one costs as much as running it.
	q.Set("_stmt_cache_size", "128")
	// The path is a URI here: escape what SQLite would read as a query,
	// a fragment or an escape ("#" appears in Go subtest directories).
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	wq := cloneValues(q)
	wq.Set("_txlock", "immediate")
	db, err := sql.Open(writerDriverName(), "file:"+escaped+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, wsem: make(chan struct{}, 1), writeTimeout: o.WriteTimeout, n: newNotifier("")}
	s.Tx = Tx{q: routed{s}, n: s.n}
	// Migrations first: the read connections must not see (or, with
	// query_only, try to create) a half-made schema.
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	rq := cloneValues(q)
	rq.Set("_query_only", "true")
	rq.Del("_journal_mode") // set by the writer; a query_only connection cannot change it
	rdb, err := sql.Open("sqlite3", "file:"+escaped+"?"+rq.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(o.ReadConns)
	rdb.SetMaxIdleConns(o.ReadConns)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := rdb.PingContext(ctx); err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.rdb = rdb
	cq := cloneValues(q)
	cq.Del("_journal_mode")
	cdb, err := sql.Open("sqlite3", "file:"+escaped+"?"+cq.Encode())
	if err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetMaxIdleConns(1)
	cdb.SetConnMaxIdleTime(0)
	s.ckpt = startCheckpointer(cdb)
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close closes the database.
func (s *Store) Close() error {
	s.closeGroup()
	if s.ckpt != nil {
		_ = s.ckpt.close()
	}
	if s.n != nil {
		s.n.close()
	}
	var rerr error
	if s.rdb != nil {
		rerr = s.rdb.Close()
	}
	if err := s.db.Close(); err != nil {
		return err
	}
	return rerr
}

// Closed reports whether Close has been called (closeGroup marks the
// group queue closed on either database): a retry loop stops then.
func (s *Store) Closed() bool {
	g := &s.group
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// ReadDB is the read-only pool, for metrics on its connections.
func (s *Store) ReadDB() *sql.DB {
	if s.rdb == nil {
		return s.db
	}
	return s.rdb
}

// DB exposes the write connection for benchmarks, tests and maintenance;
// application code uses the query methods. Holding a *sql.Rows from it
// holds the only write connection.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers, on the read pool, so that a
// health check does not queue behind a long write (an import).
func (s *Store) Ping(ctx context.Context) error {
	if s.rdb == nil {
		return s.db.PingContext(ctx)
	}
	return s.rdb.PingContext(ctx)
}

// acquireWrite takes the write connection's slot, waiting in line at
// most the write budget (less if ctx ends sooner). The caller must call
// the returned release.
func (s *Store) acquireWrite(ctx context.Context) (func(), error) {
	select {
	case s.wsem <- struct{}{}:
		return s.releaseWrite, nil
	default:
	}
	t := time.NewTimer(s.writeTimeout)
	defer t.Stop()
	select {
	case s.wsem <- struct{}{}:
		return s.releaseWrite, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: wait for the writer: %w", ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("%w: no turn on the write connection within %s", ErrBusy, s.writeTimeout)
	}
}

func (s *Store) releaseWrite() {
	if s.ckpt != nil {
		s.ckpt.writes.Add(1)
	}
	<-s.wsem
}

// routed is the Store's queryer outside transactions: a statement that
// starts with SELECT goes to the read pool, anything else (INSERT,
// UPDATE ... RETURNING, PRAGMA) takes its turn on the writer.
type routed struct{ s *Store }

func isRead(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// doneCtx is a context that is over, with err as its error.
type doneCtx struct {
	context.Context
	err error
}

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c doneCtx) Done() <-chan struct{} { return closedDone }
func (c doneCtx) Err() error            { return c.err }

func (r routed) reader() *sql.DB {
	if r.s.rdb == nil {
		return r.s.db
	}
	return r.s.rdb
}

func (r routed) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := r.s.acquireWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return r.s.db.ExecContext(ctx, query, args...)
}

// QueryContext and QueryRowContext for a write release the queue slot as
// soon as the statement has run; the rows keep the connection itself until
// they are read, so the next writer waits for them in database/sql.
func (r routed) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if isRead(query) {
		return r.reader().QueryContext(ctx, query, args...)
	}
	release, err := r.s.acquireWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return r.s.db.QueryContext(ctx, query, args...)
}

func (r routed) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if isRead(query) {
		return r.reader().QueryRowContext(ctx, query, args...)
	}
	release, err := r.s.acquireWrite(ctx)
	if err != nil {
		// A *sql.Row cannot be made with an error from outside
		// database/sql; a context that is already done with err gives
		// one whose Scan reports err.
		return r.s.db.QueryRowContext(doneCtx{ctx, err}, query, args...)
	}
	defer release()
	return r.s.db.QueryRowContext(ctx, query, args...)
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return forEachMigration(migrations, "migrations", func(version, body string) error {
		return s.InTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.q.ExecContext(ctx, body); err != nil {
				return err
			}
			_, err := tx.q.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixMilli())
			return err
		})
	})
}

// forEachMigration calls apply on each dir/*.sql file of fsys in name
// order, with its version (the file name without .sql) and its body. Both
// dialects' migrate use it, so they read and order migrations alike.
func forEachMigration(fsys embed.FS, dir string, apply func(version, body string) error) error {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, dir+"/"), ".sql")
		body, err := fsys.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", version, err)
		}
		if err := apply(version, string(body)); err != nil {
			return fmt.Errorf("store: migrate %s: %w", version, err)
		}
	}
	return nil
}

// InTx runs fn in one write transaction. It commits when fn returns nil and
// rolls back otherwise. Functions registered with AfterCommit run once the
// commit has succeeded.
//
// The transaction runs on the one write connection: it waits its turn in
// line (at most the write budget, then ErrBusy) and holds the line until
// it ends, so keep fn short and never call a Store write from inside fn
// (use tx): it would wait for the transaction itself, and fail with ErrBusy.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	after, err := s.inTx(ctx, fn)
	if err != nil {
		return err
	}
	for _, f := range after {
		f()
	}
	return nil
}

// inTx runs the transaction holding the writer's slot, and returns the
// after-commit functions for InTx to run once the slot is free.
func (s *Store) inTx(ctx context.Context, fn func(tx *Tx) error) ([]func(), error) {
	if s.pg {
		return s.inTxPG(ctx, fn)
	}
	release, err := s.acquireWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, mapErr("begin", err)
	}
	var after []func()
	tx := &Tx{q: sqlTx, inTx: true, afterCommit: &after, n: s.n}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return nil, err
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, mapErr("commit", err)
	}
	return after, nil
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
	if pe := mapPgErr(op, err); pe != nil {
		return pe
	}
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		return fmt.Errorf("store: %s: %w: %v", op, ErrBusy, err)
	}
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
