package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/store"
	"latchkey/store/testdb"
)

// seedUsers inserts n users (with an email identity and a password hash)
// in bulk, so the database is big enough that a backup takes many steps.
func seedUsers(t *testing.T, st *store.Store, n int) {
	t.Helper()
	now := time.Now()
	hash := "bcrypt-sha512$" + strings.Repeat("x", 60)
	for start := 0; start < n; start += 5000 {
		var batch []store.ImportedUser
		for i := start; i < min(start+5000, n); i++ {
			id := uuid.NewString()
			email := fmt.Sprintf("seed%06d@example.com", i)
			batch = append(batch, store.ImportedUser{
				User:     store.User{ID: id, CreatedAt: now, UpdatedAt: now},
				Identity: store.Identity{ID: uuid.NewString(), UserID: id, Kind: "email", Value: email, ValueNorm: email, CreatedAt: now},
				Password: &store.Password{UserID: id, Hash: hash, CreatedAt: now, UpdatedAt: now},
			})
		}
		if err := st.InTx(context.Background(), func(tx *store.Tx) error { return tx.InsertImportedUsers(context.Background(), batch) }); err != nil {
			t.Fatal(err)
		}
	}
}

func userIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite3", sqliteURI(path, "mode=ro"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// TestBackupUnderWriteLoad: writers keep creating users (through the
// account service, as the portal does), and the WAL is scrubbed as the
// mail worker does, while `latchkey backup` copies the database in small
// steps. The copy passes integrity_check, holds every
// user committed before the backup began, and the writers' p99 during the
// backup stays under 200 ms.
func TestBackupUnderWriteLoad(t *testing.T) {
	testdb.SkipOnPostgres(t, "latchkey backup copies a SQLite database file")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "latchkey.db")
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seedUsers(t, st, 40000)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}

	type write struct {
		id         string
		start, end time.Time
	}
	var mu sync.Mutex
	var writes []write
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pw := "Writer-Pass-" + uuid.NewString()[:8]
				start := time.Now()
				u, err := acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: account.KindEmail,
					LoginIDValue: fmt.Sprintf("w%d-%d-%s@example.com", w, i, uuid.NewString()[:6]), Password: &pw})
				end := time.Now()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				writes = append(writes, write{u.ID, start, end})
				mu.Unlock()
			}
		}()
	}
	// The mail worker scrubs the WAL after each delivered password email;
	// do that too, all along: a scrub must not hold writers behind the
	// backup's read snapshot.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := st.ScrubWAL(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // writers under way

	out := filepath.Join(dir, "backup", "copy.db")
	if err := os.Mkdir(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	began := time.Now()
	code := cli(ctx, []string{"backup", "-db", dbPath, "-step-pages", "32", "-step-pause", "2ms", out}, func(string) string { return "" }, nil, &stdout, &stderr)
	ended := time.Now()
	// The same writers for as long again without a backup: the baseline
	// the machine's load gives (logged, to read the p99 against).
	time.Sleep(min(ended.Sub(began), 5*time.Second))
	afterEnd := time.Now()
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "integrity_check ok") {
		t.Fatalf("backup output: %q", stdout.String())
	}
	t.Logf("%s (load %s)", strings.TrimSpace(stdout.String()), loadavg())

	// The copy is one file, private, and passes integrity_check.
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*"))
	if len(left) != 1 {
		t.Errorf("backup directory holds %v, want only the copy", left)
	}
	if err := verifyDB(ctx, out); err != nil {
		t.Fatal(err)
	}

	copied := userIDs(t, out)
	var before, during, after []time.Duration
	missing := 0
	for _, w := range writes {
		if w.end.Before(began) && !copied[w.id] {
			missing++
		}
		if !w.start.Before(began) && w.start.Before(ended) { // started during the backup, however long it took
			during = append(during, w.end.Sub(w.start))
		} else if w.end.Before(began) {
			before = append(before, w.end.Sub(w.start))
		} else if w.start.After(ended) && w.end.Before(afterEnd) {
			after = append(after, w.end.Sub(w.start))
		}
	}
	if missing > 0 {
		t.Errorf("%d users committed before the backup began are missing from the copy", missing)
	}
	if len(copied) < 40000 {
		t.Errorf("the copy holds %d users, want the 40000 seeded and more", len(copied))
	}
	if len(during) < 20 {
		t.Fatalf("only %d writes ran during the %s backup: no load to measure", len(during), ended.Sub(began))
	}
	p99 := percentile(during, 0.99)
	t.Logf("backup took %s; writes before: %d (p99 %s); during: %d (p50 %s, p99 %s); after, no backup: %d (p50 %s, p99 %s); load %s",
		ended.Sub(began).Round(time.Millisecond), len(before), percentile(before, 0.99), len(during), percentile(during, 0.5), p99,
		len(after), percentile(after, 0.5), percentile(after, 0.99), loadavg())
	switch base := percentile(after, 0.99); {
	case raceEnabled:
		t.Log("race detector on: the p99 bound is not checked (it measures the detector, not the backup)")
	case p99 < 200*time.Millisecond:
	case base >= 150*time.Millisecond:
		// The same writers without a backup came near the bound: the
		// machine's load, not the backup, sets the figure.
		t.Logf("INCONCLUSIVE: writers' p99 during the backup = %s, but %s without one (load %s): too loaded to check the 200 ms bound", p99, base, loadavg())
	default:
		t.Errorf("writers' p99 during the backup = %s (%s without one), want < 200ms", p99, base)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// TestBackupRefusals: bad usage exits 2, an existing file is kept unless
// -force, a missing database is an error, and nothing is left behind.
func TestBackupRefusals(t *testing.T) {
	testdb.SkipOnPostgres(t, "latchkey backup copies a SQLite database file")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "latchkey.db")
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	seedUsers(t, st, 10)
	st.Close()
	env := func(k string) string { return map[string]string{"LATCHKEY_DB": dbPath}[k] }
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := cli(context.Background(), args, env, nil, &out, &errOut)
		return code, errOut.String()
	}
	if code, msg := run("backup"); code != 2 || !strings.Contains(msg, "PATH") {
		t.Errorf("no PATH: exit %d, %q", code, msg)
	}
	if code, _ := run("backup", "-nope", "x.db"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := run("backup", existing); code != 1 || !strings.Contains(msg, "exists") {
		t.Errorf("existing file: exit %d, %q", code, msg)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("existing file changed: %q", b)
	}
	if code, msg := run("backup", dbPath); code != 1 || !strings.Contains(msg, "database itself") {
		t.Errorf("backup onto the database: exit %d, %q", code, msg)
	}
	if code, msg := run("backup", "-db", filepath.Join(dir, "missing.db"), filepath.Join(dir, "out.db")); code != 1 || !strings.Contains(msg, "no such file") {
		t.Errorf("missing database: exit %d, %q", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("backup created the missing database")
	}
	// LATCHKEY_DB is the default source; -force replaces.
	if code, msg := run("backup", "-force", existing); code != 0 {
		t.Fatalf("-force: exit %d, %q", code, msg)
	}
	if ids := userIDs(t, existing); len(ids) != 10 {
		t.Errorf("forced copy holds %d users, want 10", len(ids))
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestVerifyCatchesCorruption: a copy with damaged pages fails the check.
func TestVerifyCatchesCorruption(t *testing.T) {
	testdb.SkipOnPostgres(t, "latchkey backup copies a SQLite database file")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "latchkey.db")
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	seedUsers(t, st, 2000)
	st.Close()
	good := filepath.Join(dir, "good.db")
	if _, err := backupDB(context.Background(), dbPath, good, backupOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over the middle pages (not the header), as a bad disk would.
	for i := len(b) / 3; i < len(b)/3+3*4096 && i < len(b); i++ {
		b[i] = 0x5a
	}
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := verifyDB(context.Background(), bad); err == nil {
		t.Fatal("a damaged copy passed verification")
	}
}

// TestRestoreFromBackup follows docs/deploy.md: back up the running
// server, stop it, start it on the copy. What was committed before the
// backup is there, what came after is not, and, with no
// LATCHKEY_SECRET_KEY, a session cookie from before still signs in: the
// secret travels inside the file.
func TestRestoreFromBackup(t *testing.T) {
	testdb.SkipOnPostgres(t, "latchkey backup copies a SQLite database file")
	app := startApp(t, nil)
	p := newPortalClient(t, app.URL)
	p.signIn()
	create := func(email string) {
		t.Helper()
		p.get("/portal/users/new")
		if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {email}, "passwordMode": {"none"}}); code != http.StatusSeeOther {
			t.Fatalf("create %s: %d", email, code)
		}
	}
	create("kept@example.com")
	copyPath := filepath.Join(t.TempDir(), "restore.db")
	var out, errOut bytes.Buffer
	if code := cli(context.Background(), []string{"backup", "-db", app.DB, copyPath}, func(string) string { return "" }, nil, &out, &errOut); code != 0 {
		t.Fatalf("backup: %d %s", code, errOut.String())
	}
	create("lost@example.com")
	app.stop()

	addr := strings.TrimPrefix(app.URL, "http://")
	restored := startApp(t, map[string]string{"LATCHKEY_DB": copyPath, "LATCHKEY_ADDR": addr, "LATCHKEY_PUBLIC_URL": app.URL})
	code, body, _ := p.get("/portal/users") // the cookie from before the backup
	if code != http.StatusOK {
		t.Fatalf("the old session after the restore: %d", code)
	}
	if !strings.Contains(body, "kept@example.com") || strings.Contains(body, "lost@example.com") {
		t.Errorf("restored user list: kept=%v lost=%v", strings.Contains(body, "kept@example.com"), strings.Contains(body, "lost@example.com"))
	}
	if res, err := http.Get(restored.URL + "/readyz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("readyz after the restore: %v %v", res, err)
	}
}
