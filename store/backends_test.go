package store

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"latchkey/store/pgtest"
)

// One throwaway PostgreSQL cluster serves the whole package: it starts on
// the first test that asks for it, every test gets a fresh database, and
// TestMain stops it at the end.
var (
	pgOnce    sync.Once
	pgCluster *pgtest.Cluster
	pgErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		pgCluster.Close()
	}
	os.Exit(code)
}

// pgURL returns the URL of a fresh, empty PostgreSQL database, or skips the
// test when no PostgreSQL is installed (a failure with LATCHKEY_PG=1).
func pgURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pgCluster, pgErr = pgtest.Start(ctx)
	})
	if errors.Is(pgErr, pgtest.ErrUnavailable) && !pgtest.Required() {
		t.Skip("SKIPPING PostgreSQL: no binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	url, err := pgCluster.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// openPGTest opens a Store on a fresh PostgreSQL database.
func openPGTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachBackend runs f as two subtests, "sqlite" and "postgres", each with
// a fresh store. A test moved onto it runs against both databases.
func forEachBackend(t *testing.T, f func(t *testing.T, s *Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, openTest(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, openPGTest(t)) })
}
