package store

import (
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPGPool opens the PostgreSQL pool with the write budget as every
// connection's lock_timeout (unless the URL sets one): a statement that
// waits longer than that for a row or table lock held by another
// connection fails with lock_not_available, which mapErr turns into
// ErrBusy, so the request answers 503 with Retry-After, as on SQLite,
// instead of hanging for as long as the lock is held.
func openPGPool(url string, writeTimeout time.Duration) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	if _, ok := cfg.RuntimeParams["lock_timeout"]; !ok {
		cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(writeTimeout.Milliseconds(), 10)
	}
	return stdlib.OpenDB(*cfg), nil
}
