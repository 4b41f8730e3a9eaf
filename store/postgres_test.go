package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRebind(t *testing.T) {
	cases := map[string]string{
		`SELECT a FROM t WHERE b = ? AND c = ?`:                         `SELECT a FROM t WHERE b = $1 AND c = $2`,
		`SELECT '?' FROM t WHERE "x?" = ? -- why?` + "\n" + `AND d = ?`: `SELECT '?' FROM t WHERE "x?" = $1 -- why?` + "\n" + `AND d = $2`,
		`SELECT 1`: `SELECT 1`,
	}
	for in, want := range cases {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPgRewriteAddsReturningForIdentityTables(t *testing.T) {
	st := pgRewrite(`INSERT INTO users (id, created_at) VALUES (?, ?)`)
	if !st.returning || st.text != `INSERT INTO users (id, created_at) VALUES ($1, $2) RETURNING seq` {
		t.Fatalf("users insert: %+v", st)
	}
	if st := pgRewrite(`INSERT INTO settings (key, value) VALUES (?, ?)`); st.returning {
		t.Fatalf("settings has no identity column, got %+v", st)
	}
	if st := pgRewrite(`INSERT INTO mail_outbox (a) VALUES (?) RETURNING id`); st.returning || st.text != `INSERT INTO mail_outbox (a) VALUES ($1) RETURNING id` {
		t.Fatalf("explicit RETURNING kept: %+v", st)
	}
}

func TestSQLitePathForms(t *testing.T) {
	for in, want := range map[string]string{
		"latchkey.db":            "latchkey.db",
		"sqlite:latchkey.db":     "latchkey.db",
		"sqlite:///var/lib/l.db": "/var/lib/l.db",
		"/srv/x.db":              "/srv/x.db",
	} {
		if got := sqlitePath(in); got != want {
			t.Errorf("sqlitePath(%q) = %q, want %q", in, got, want)
		}
	}
	if !IsPostgresURL("postgres://u@h/db") || !IsPostgresURL("PostgreSQL://h/db") || IsPostgresURL("latchkey.db") {
		t.Fatal("IsPostgresURL")
	}
}

// Instances starting together on one empty database: the advisory lock
// makes one apply the migrations and the others find them applied.
func TestPostgresConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, url)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	names, err := migrationsPG.ReadDir("migrations_pg")
	if err != nil {
		t.Fatal(err)
	}
	var rows, distinct int
	if err := stores[0].db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(names) || distinct != len(names) {
		t.Fatalf("schema_migrations has %d rows (%d distinct), want %d", rows, distinct, len(names))
	}
	// Every instance works on the one schema.
	if err := stores[1].InsertUser(ctx, &User{ID: "u1", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[2].UserByID(ctx, "u1"); err != nil {
		t.Fatalf("user written by one instance, read by another: %v", err)
	}
	if err := stores[3].InsertUser(ctx, &User{ID: "u1", CreatedAt: time.Now(), UpdatedAt: time.Now()}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v, want ErrConflict", err)
	}
}

// Every SQLite migration has its PostgreSQL mirror, and no more.
func TestPostgresMigrationsMirrorSQLite(t *testing.T) {
	lite, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrationsPG.ReadDir("migrations_pg")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range pg {
		have[e.Name()] = true
	}
	for _, e := range lite {
		if !have[e.Name()] {
			t.Errorf("migrations/%s has no migrations_pg/%s", e.Name(), e.Name())
		}
		delete(have, e.Name())
	}
	for name := range have {
		t.Errorf("migrations_pg/%s mirrors no SQLite migration", name)
	}
}

func TestRedactDB(t *testing.T) {
	got := RedactDB("postgres://latchkey:s3cret@db:5432/l?sslmode=require")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "latchkey:xxxxx@db:5432/l") {
		t.Fatalf("RedactDB = %q", got)
	}
	if RedactDB("latchkey.db") != "latchkey.db" {
		t.Fatal("a file path is not a secret")
	}
}
