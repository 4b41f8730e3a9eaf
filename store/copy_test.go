package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sqliteExec runs q on the SQLite file at path on a connection of its own.
func sqliteExec(t *testing.T, path, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// copySource makes a SQLite database with users (one with a non-ASCII
// login ID) and a row in every table with an identity column.
func copySource(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fillCopyUsers(t, s, 50)
	for _, q := range []string{
		`INSERT INTO users (id, created_at, updated_at) VALUES ('u-uni', 5, 5)`,
		`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at) VALUES ('i-uni', 'u-uni', 'email', 'Jürgen.Straße@例え.jp', 'jürgen.straße@例え.jp', 5)`,
		`INSERT INTO password_history (user_id, hash, created_at) VALUES ('u-uni', 'h', 5)`,
		`INSERT INTO mail_outbox (user_id, kind, recipient, subject, secret, status, next_attempt_at, created_at, updated_at) VALUES ('u-uni', 'welcome', 'x@y', 's', x'00ff10', 'queued', 1, 1, 1)`,
		`INSERT INTO sms_sends (phone, calling_code, created_at) VALUES ('+14155550100', '1', 1)`,
		`INSERT INTO webhooks (id, url, kind, secret, created_at, updated_at) VALUES ('w1', 'http://h', 'non_blocking', x'0102', 1, 1)`,
		`INSERT INTO webhook_deliveries (webhook_id, event_seq, status, created_at, updated_at) VALUES ('w1', (SELECT MAX(seq) FROM events), 'pending', 1, 1)`,
		`INSERT INTO settings (key, value) VALUES ('secret_key', x'deadbeef'), ('other', x'0001')`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	return path
}

func copyInto(t *testing.T, path, url string) ([]TableCount, error) {
	t.Helper()
	ctx := context.Background()
	src, err := OpenSnapshot(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.CheckMigrations(ctx); err != nil {
		t.Fatal(err)
	}
	dst, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	return dst.CopyFromSnapshot(ctx, src)
}

// The copy keeps every row and column as it is (BLOBs as bytea), leaves
// the generated secret behind, rebuilds the search postings to exactly
// SQLite's (non-ASCII login IDs included), and moves every identity
// sequence past the copied ids.
func TestCopyFromSnapshot(t *testing.T) {
	ctx := context.Background()
	path := copySource(t)
	url := pgURL(t)
	counts, err := copyInto(t, path, url)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TableCount{}
	for _, c := range counts {
		got[c.Table] = c
		if c.Source != c.Target && c.Table != "gram_counts" {
			t.Errorf("%s: %d in SQLite, %d in PostgreSQL", c.Table, c.Source, c.Target)
		}
	}
	if got["users"].Target != 51 || got["settings"].Target != 1 || got["mail_outbox"].Target != 1 {
		t.Fatalf("counts: %+v", counts)
	}
	lite, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	// PostgreSQL searches by pg_trgm (0022), not SQLite's postings: every
	// copied login ID is found by its whole value.
	rows, err := lite.Query(`SELECT value_norm FROM identities`)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	rows.Close()
	if len(values) != 63 {
		t.Fatalf("%d login IDs in the source", len(values))
	}
	for _, v := range values {
		if n, err := pg.CountUsersMatching(ctx, v); err != nil || n < 1 {
			t.Fatalf("search for copied %q: %d, %v", v, n, err)
		}
	}
	var secret []byte
	if err := pg.DB().QueryRow(`SELECT secret FROM mail_outbox`).Scan(&secret); err != nil || string(secret) != "\x00\xff\x10" {
		t.Fatalf("outbox secret: %x, %v", secret, err)
	}
	if _, err := pg.Setting(ctx, "secret_key"); err == nil {
		t.Fatal("the generated secret was copied")
	}
	if v, err := pg.Setting(ctx, "other"); err != nil || string(v) != "\x00\x01" {
		t.Fatalf("other setting: %x, %v", v, err)
	}
	// The search finds the non-ASCII user by a substring.
	if n, err := pg.CountUsersMatching(ctx, "straße@例"); err != nil || n != 1 {
		t.Fatalf("search after the copy: %d, %v", n, err)
	}
	for table, insert := range map[string]string{
		"users":              `INSERT INTO users (id, created_at, updated_at) VALUES ('u-new', 9, 9) RETURNING seq`,
		"events":             `INSERT INTO events (type, created_at, payload, context) VALUES ('t', 9, '{}', '{}') RETURNING seq`,
		"password_history":   `INSERT INTO password_history (user_id, hash, created_at) VALUES ('u-uni', 'h', 9) RETURNING id`,
		"mail_outbox":        `INSERT INTO mail_outbox (kind, recipient, subject, status, next_attempt_at, created_at, updated_at) VALUES ('k', 'r', 's', 'queued', 1, 1, 1) RETURNING id`,
		"sms_sends":          `INSERT INTO sms_sends (phone, calling_code, created_at) VALUES ('+1', '1', 1) RETURNING id`,
		"webhook_deliveries": `INSERT INTO webhook_deliveries (webhook_id, event_seq, status, created_at, updated_at) VALUES ('w1', 1, 'pending', 1, 1) RETURNING id`,
	} {
		col := pgIdentity[table]
		var max, next int64
		if err := lite.QueryRow(`SELECT MAX(` + col + `) FROM ` + table).Scan(&max); err != nil {
			t.Fatal(err)
		}
		if err := pg.DB().QueryRow(insert).Scan(&next); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if next != max+1 {
			t.Errorf("%s: new %s %d, copied up to %d", table, col, next, max)
		}
	}
}

// A source this binary cannot copy is refused before anything is written:
// not a database, another version's schema, a table PostgreSQL lacks.
func TestCopyRefusesWhatItCannotCopy(t *testing.T) {
	ctx := context.Background()
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not sqlite ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSnapshot(ctx, junk); err == nil {
		t.Fatal("a file that is not SQLite opened")
	}
	if _, err := OpenSnapshot(ctx, junk+".missing"); err == nil || !strings.Contains(err.Error(), "no SQLite database at") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(junk + ".missing"); !os.IsNotExist(err) {
		t.Fatal("opening a missing source created it")
	}

	check := func(path, want string) {
		t.Helper()
		src, err := OpenSnapshot(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if err := src.CheckMigrations(ctx); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckMigrations: %v, want %q", err, want)
		}
	}
	newer := copySource(t)
	sqliteExec(t, newer, `INSERT INTO schema_migrations (version, applied_at) VALUES ('9999_future', 1)`)
	check(newer, "made by a newer Latchkey (migrations 9999_future")
	older := copySource(t)
	sqliteExec(t, older, `DELETE FROM schema_migrations WHERE version = '0017_admins'`)
	check(older, "made by an older Latchkey (migrations 0017_admins not applied)")

	extra := copySource(t)
	sqliteExec(t, extra, `CREATE TABLE only_here (x INTEGER); INSERT INTO only_here VALUES (1)`)
	url := pgURL(t)
	if _, err := copyInto(t, extra, url); err == nil || !strings.Contains(err.Error(), "table only_here (1 rows) has no counterpart on PostgreSQL") {
		t.Fatalf("a table PostgreSQL lacks: %v", err)
	}
	if err := CheckPostgresTarget(ctx, url, nil); err != nil {
		t.Fatalf("the target after the refused copy: %v", err)
	}
	// An empty table only SQLite has is skipped and said so.
	sqliteExec(t, extra, `DELETE FROM only_here`)
	counts, err := copyInto(t, extra, url)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range counts {
		if c.Table == "only_here" && strings.Contains(c.Note, "SQLite only, empty") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no note for the SQLite-only table: %+v", counts)
	}
}

// A table only PostgreSQL has (a migration there may seed it) does not make
// the target look full, and the copy leaves it as it is.
func TestCopyIgnoresPostgresOnlyTables(t *testing.T) {
	ctx := context.Background()
	path := copySource(t)
	url := pgURL(t)
	dst, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.DB().Exec(`CREATE TABLE pg_only_state (id INT PRIMARY KEY, v BIGINT); INSERT INTO pg_only_state VALUES (1, 42)`); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSnapshot(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := CheckPostgresTarget(ctx, url, src); err != nil {
		t.Fatalf("a seeded PostgreSQL-only table: %v", err)
	}
	if err := CheckPostgresTarget(ctx, url, nil); err == nil {
		t.Fatal("without a source every table counts, and this one has a row")
	}
	if _, err := dst.CopyFromSnapshot(ctx, src); err != nil {
		t.Fatal(err)
	}
	var v int64
	if err := dst.DB().QueryRow(`SELECT v FROM pg_only_state WHERE id = 1`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("the PostgreSQL-only row: %d, %v", v, err)
	}
	// Once copied, the target holds data.
	if err := CheckPostgresTarget(ctx, url, src); err == nil || !strings.Contains(err.Error(), "already holds Latchkey data") {
		t.Fatalf("after the copy: %v", err)
	}
}
