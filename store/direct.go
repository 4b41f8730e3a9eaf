package store

import (
	"context"
	"database/sql"
)

// Direct runs statements written as the store writes its own (SQLite text,
// "?" placeholders) straight on the database, outside the store's methods
// and the write queue; on PostgreSQL they are rewritten as the store's own
// statements are (dialect.go). It is for tests and maintenance that need a
// statement no method offers; the methods of *sql.DB it mirrors are named
// alike so that DB() and Direct() are interchangeable in such code.
type Direct struct{ q queryer }

// Direct returns a Direct on the store's write connection (SQLite) or its
// pool (PostgreSQL).
func (s *Store) Direct() Direct {
	if s.pg {
		return Direct{pgQueryer{s.db}}
	}
	return Direct{s.db}
}

// Postgres reports whether the store runs on PostgreSQL.
func (s *Store) Postgres() bool { return s.pg }

func (d Direct) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.q.ExecContext(ctx, query, args...)
}

func (d Direct) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.q.QueryContext(ctx, query, args...)
}

func (d Direct) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.q.QueryRowContext(ctx, query, args...)
}

func (d Direct) Exec(query string, args ...any) (sql.Result, error) {
	return d.q.ExecContext(context.Background(), query, args...)
}

func (d Direct) Query(query string, args ...any) (*sql.Rows, error) {
	return d.q.QueryContext(context.Background(), query, args...)
}

func (d Direct) QueryRow(query string, args ...any) *sql.Row {
	return d.q.QueryRowContext(context.Background(), query, args...)
}
