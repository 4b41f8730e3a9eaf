// Package testdb chooses the database that the handler and main-package
// test suites run on: SQLite by default, PostgreSQL when
// LATCHKEY_TEST_DB=postgres (as .ci/run sets it for its second run).
//
// On PostgreSQL one throwaway cluster (store/pgtest) serves the whole test
// package: it starts on the first test that asks for a database and Main
// stops it when the package's tests end. The migrations are applied once,
// to a template database, and every test gets a fresh copy of it (CREATE
// DATABASE ... TEMPLATE), which takes milliseconds where migrating takes
// a second. Without PostgreSQL binaries a test that asks for a database
// fails: LATCHKEY_TEST_DB=postgres asks for PostgreSQL, so running on
// SQLite instead would be a false pass.
package testdb

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"latchkey/store"
	"latchkey/store/pgtest"
)

// Env is the variable that selects the database.
const Env = "LATCHKEY_TEST_DB"

// Postgres reports whether the suite runs on PostgreSQL.
func Postgres() bool { return os.Getenv(Env) == "postgres" }

var (
	once     sync.Once
	cluster  *pgtest.Cluster
	template string
	startErr error
)

// Main runs a test package's tests (call it from TestMain) and stops the
// PostgreSQL cluster, if one was started. An unknown LATCHKEY_TEST_DB is
// refused rather than silently run on SQLite.
func Main(m *testing.M) {
	switch v := os.Getenv(Env); v {
	case "", "sqlite", "postgres":
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want sqlite or postgres\n", Env, v)
		os.Exit(2)
	}
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

func start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, startErr = pgtest.Start(ctx)
	if startErr != nil {
		startErr = fmt.Errorf("%s=postgres: %w", Env, startErr)
		return
	}
	template, startErr = cluster.NewDatabase(ctx)
	if startErr != nil {
		return
	}
	st, err := store.Open(ctx, template)
	if err != nil {
		startErr = fmt.Errorf("testdb: migrate the template database: %w", err)
		return
	}
	startErr = st.Close()
}

// DB returns the LATCHKEY_DB value for a fresh database for t: sqlitePath
// itself on SQLite; on PostgreSQL the URL of a new database that already
// has the migrations applied.
func DB(t testing.TB, sqlitePath string) string {
	t.Helper()
	if !Postgres() {
		return sqlitePath
	}
	once.Do(start)
	if startErr != nil {
		t.Fatal(startErr)
	}
	url, err := cluster.NewDatabaseFrom(context.Background(), template)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// SkipOnPostgres skips a test that is about SQLite itself (its files, its
// single writer, its locks) when the suite runs on PostgreSQL. why names
// what the test exercises that PostgreSQL does not have.
func SkipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if Postgres() {
		t.Skip("SQLite-specific, skipped on PostgreSQL: " + why)
	}
}
