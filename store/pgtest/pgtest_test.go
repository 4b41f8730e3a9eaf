package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClusterGivesSeparateDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx)
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skip("SKIPPING: no PostgreSQL binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	a, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two databases share a URL: %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := ca.QueryRow(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 42 {
		t.Fatalf("read back %d, %v; want 42", v, err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	if _, err := cb.Exec(ctx, "SELECT v FROM x"); err == nil {
		t.Fatal("table from database a is visible in database b")
	}
}

func TestCloseStopsServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx)
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skip("SKIPPING: no PostgreSQL binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after Close")
	}
}

func TestKeptClusterStartsAgainWithItsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Not under t.TempDir(), whose parents the postgres user (as which
	// the cluster runs under root) cannot enter.
	parent, err := os.MkdirTemp("", "pgtest-kept-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	_ = os.Chmod(parent, 0o755)
	dir := filepath.Join(parent, "kept")
	c, err := StartWith(ctx, Options{Dir: dir, Settings: []string{"work_mem=8MB"}})
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skip("SKIPPING: no PostgreSQL binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	url, err := c.EnsureDatabase(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var wm string
	if err := conn.QueryRow(ctx, "SHOW work_mem").Scan(&wm); err != nil || wm != "8MB" {
		t.Fatalf("work_mem %q (%v), want the setting given, 8MB", wm, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c, err = StartWith(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url2, err := c.EnsureDatabase(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, url2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after a restart read %d (%v), want the row kept, 7", v, err)
	}
}
