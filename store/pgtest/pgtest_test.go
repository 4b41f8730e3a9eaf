package pgtest

import (
	"context"
	"errors"
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
