package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"latchkey/account"
	"latchkey/store"
	"latchkey/store/testdb"
)

// TestSIGTERMDuringImportLetsItFinish: an import is running (held in
// flight by another connection's write lock, as a slow import would be)
// when the process is told to stop (main maps SIGTERM to cancelling run's
// context). New connections are refused at once, the import finishes and
// answers 200 with every user created, and run returns cleanly only after
// it; the database holds the users.
func TestSIGTERMDuringImportLetsItFinish(t *testing.T) {
	testSIGTERMDuringImport(t, "2m")
}

// TestSIGTERMPastTheBoundCancelsTheImportWhole: with a shutdown bound
// shorter than the import, the import is cancelled when the bound passes;
// being one transaction it leaves nothing behind, run returns without an
// error, and the database is closed only after the handler returned.
func TestSIGTERMPastTheBoundCancelsTheImportWhole(t *testing.T) {
	testSIGTERMDuringImport(t, "500ms")
}

func testSIGTERMDuringImport(t *testing.T, shutdownTimeout string) {
	finish := shutdownTimeout != "500ms"
	hold := 1500 * time.Millisecond // less than the 5 s write budget
	if !finish {
		hold = 3 * time.Second // past the 500 ms bound
	}
	dir := t.TempDir()
	dbPath := testdb.DB(t, filepath.Join(dir, "latchkey.db"))
	token := makeAPIKey(t, dbPath)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{
		"LATCHKEY_ADDR": addr, "LATCHKEY_DB": dbPath, "LATCHKEY_PUBLIC_URL": "http://" + addr,
		"LATCHKEY_BCRYPT_COST": "4", "LATCHKEY_LOG_LEVEL": "error", "LATCHKEY_SHUTDOWN_TIMEOUT": shutdownTimeout,
	}
	if testdb.Postgres() {
		vars["LATCHKEY_SECRET_KEY"] = pgSecretKey
	}
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }) }()
	base := "http://" + addr
	waitHealthy(t, base, done)

	const n = 200
	hash, err := bcrypt.GenerateFromPassword([]byte("Passw0rd-import"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for i := 0; i < n; i++ {
		recs = append(recs, fmt.Sprintf(`{"email": "import%d@example.com", "password_hash": %q}`, i, hash))
	}
	// Another connection holds the write lock, so the import stays in
	// flight until it lets go.
	// (On PostgreSQL: a lock on the users table that makes the import's
	// INSERT wait; the hold is within the 5 s lock_timeout.)
	driver, dsn, holdLock := "sqlite3", "file:"+dbPath+"?_txlock=immediate", `INSERT INTO settings (key, value) VALUES ('lock-holder', x'00')`
	if testdb.Postgres() {
		driver, dsn, holdLock = "pgx", dbPath, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`
	}
	other, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(holdLock); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(hold, func() { _ = lock.Rollback() })
	body := `{"upsert": false, "records": [` + strings.Join(recs, ",") + `]}`
	type result struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	res := make(chan result, 1)
	started := time.Now()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/_api/admin/users/import", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err, at: time.Now()}
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		res <- result{status: r.StatusCode, body: string(b), at: time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	sigterm()
	time.Sleep(100 * time.Millisecond)

	// No new connections while draining.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		select {
		case r := <-res:
			t.Fatalf("import finished in %v, before the test could see the drain (%d)", r.at.Sub(started), r.status)
		default:
		}
		t.Fatal("a new connection was accepted after SIGTERM")
	}

	var r result
	select {
	case r = <-res:
	case <-time.After(2 * time.Minute):
		t.Fatal("the import did not finish")
	}
	if !finish {
		if r.err == nil && r.status == http.StatusOK {
			t.Fatalf("the import finished within a 500ms bound (%v) while the database was locked", r.at.Sub(started))
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return")
		}
		st, err := store.Open(context.Background(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if c, err := st.CountUsers(context.Background()); err != nil || c != 0 {
			t.Fatalf("a cancelled import left %d users (%v)", c, err)
		}
		return
	}
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("import after SIGTERM: %d %v %.300s", r.status, r.err, r.body)
	}
	var out struct {
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Summary["created"] != n {
		t.Fatalf("import summary %v (%v)", out.Summary, err)
	}
	t.Logf("import took %v, SIGTERM after 300ms", r.at.Sub(started))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the import")
	}
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err := st.CountUsers(context.Background()); err != nil || c != n {
		t.Fatalf("users in the database: %d (%v)", c, err)
	}
}

// makeAPIKey creates the database at path with an Admin API key and
// returns its token.
func makeAPIKey(t testing.TB, path string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := acct.CreateAPIKey(ctx, account.SystemActor, "test")
	if err != nil {
		t.Fatal(err)
	}
	return k.Token
}

func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := http.Get(base + "/healthz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("app exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("app not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
