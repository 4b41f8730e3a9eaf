package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/mail/mailtest"
	"latchkey/store"
	"latchkey/store/pgtest"
	"latchkey/store/testdb"
)

// startPG starts a throwaway PostgreSQL cluster for one test, or skips
// the test when none is installed (a failure with LATCHKEY_PG=1).
func startPG(t *testing.T) *pgtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) && !pgtest.Required() {
		t.Skip("SKIPPING: no PostgreSQL binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newPGDatabase(t *testing.T, c *pgtest.Cluster) string {
	t.Helper()
	u, err := c.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fileHash is the SHA-256 of path's content, or "absent".
func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// runMigrate runs `latchkey migrate-to-postgres` in process.
func runMigrate(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli(context.Background(), append([]string{"migrate-to-postgres"}, args...), func(k string) string { return env[k] },
		strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// hookRecorder is a webhook receiver on loopback that keeps every body.
type hookRecorder struct {
	mu     sync.Mutex
	bodies []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(b))
	h.mu.Unlock()
}

func (h *hookRecorder) waitFor(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h.mu.Lock()
		all := strings.Join(h.bodies, "\n")
		h.mu.Unlock()
		if strings.Contains(all, substr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook with %q; got:\n%s", substr, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// graphQLUsers asks the Admin API for the number of users with token.
func graphQLUsers(t *testing.T, base, token string) (int, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/_api/admin/graphql", strings.NewReader(`{"query":"{ users(first: 1) { totalCount } }"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Users struct{ TotalCount int } `json:"users"`
		} `json:"data"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Data.Users.TotalCount
}

func jwksKeyIDs(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range jwks.Keys {
		ids = append(ids, k.Kid)
	}
	return ids
}

// TestMigrateToPostgres builds a SQLite deployment through the running
// app (without LATCHKEY_SECRET_KEY, so with a generated secret): users
// with passwords, the admin, an API key, an OpenID Connect application and
// its signing key, a webhook, events, and a password email still queued
// because the SMTP server is down. A writer keeps the database open with
// a change still in the -wal. The copy leaves the file and its -wal byte
// for byte as they were, prints the counts and the secret to set, and the
// app started on PostgreSQL with that secret carries on where SQLite
// stopped.
func TestMigrateToPostgres(t *testing.T) {
	if testdb.Postgres() {
		t.Skip("migrate-to-postgres copies from a SQLite file: it runs in the SQLite pass (with a PostgreSQL target)")
	}
	ctx := context.Background()
	pg := startPG(t)
	smtp := mailtest.Reserve(t) // down: the password email stays queued
	hooks := &hookRecorder{}
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()

	app := startApp(t, map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()})
	p := newPortalClient(t, app.URL)
	p.signIn()
	p.get("/portal/hooks")
	if code, _, _ := p.post("/portal/hooks", url.Values{"kind": {"non_blocking"}, "url": {receiver.URL + "/hook"}, "events_mode": {"all"}}); code != http.StatusSeeOther {
		t.Fatalf("add webhook: %d", code)
	}
	p.get("/portal/users/new")
	if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"ada@example.com"}, "passwordMode": {"manual"},
		"password": {"Ada's own passw0rd"}}); code != http.StatusSeeOther {
		t.Fatalf("create ada: %d", code)
	}
	p.get("/portal/users/new")
	if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"queued@example.com"}, "passwordMode": {"auto"},
		"sendPassword": {"true"}, "setPasswordExpired": {"true"}}); code != http.StatusSeeOther {
		t.Fatalf("create queued: %d", code)
	}
	p.get("/portal/users/new")
	if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"phone"}, "loginID": {"+14155550123"}, "passwordMode": {"none"}}); code != http.StatusSeeOther {
		t.Fatalf("create phone user: %d", code)
	}
	p.get("/portal/applications/new")
	code, _, appLoc := p.post("/portal/applications", url.Values{"name": {"Wiki"}, "client_type": {"confidential"},
		"redirect_uris": {"https://wiki.example.com/callback"}, "scopes": {"openid", "email"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(appLoc, "/portal/applications/") {
		t.Fatalf("add application: %d %q", code, appLoc)
	}
	hooks.waitFor(t, "+14155550123") // the webhook's secret works on SQLite
	var out bytes.Buffer
	if code := cli(ctx, []string{"apikey", "create", "--name", "ci", "--db", app.DB}, func(string) string { return "" }, nil, &out, io.Discard); code != 0 {
		t.Fatalf("apikey create: exit %d", code)
	}
	token := strings.TrimSpace(out.String())
	kids := jwksKeyIDs(t, app.URL)
	if len(kids) != 1 {
		t.Fatalf("JWKS on SQLite: %v", kids)
	}
	app.stop()
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d messages while the SMTP server was down", n)
	}

	// A writer holds the database open with its last change in the -wal.
	w, err := store.Open(ctx, app.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Its background checkpoints would copy that change into the file
	// while the test compares the files before and after the copy.
	defer w.HoldCheckpoints()()
	if err := w.PutSetting(ctx, "wal_probe", []byte("in the wal")); err != nil {
		t.Fatal(err)
	}
	var before struct{ users, events, maxSeq int64 }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.DB().QueryRow(`SELECT COUNT(*), MAX(seq) FROM users`).Scan(&before.users, new(int64)))
	must(w.DB().QueryRow(`SELECT COUNT(*), MAX(seq) FROM events`).Scan(&before.events, &before.maxSeq))
	var maxUserSeq int64
	must(w.DB().QueryRow(`SELECT MAX(seq) FROM users`).Scan(&maxUserSeq))
	walPath := app.DB + "-wal"
	if fi, err := os.Stat(walPath); err != nil || fi.Size() == 0 {
		t.Fatalf("no -wal to read from: %v", err)
	}
	hashDB, hashWAL := fileHash(t, app.DB), fileHash(t, walPath)

	target := newPGDatabase(t, pg)
	code, stdout, stderr := runMigrate(t, nil, "--from", app.DB, "--to", target)
	if code != 0 {
		t.Fatalf("migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("migrate-to-postgres printed:\n%s", stdout)
	if fileHash(t, app.DB) != hashDB || fileHash(t, walPath) != hashWAL {
		t.Fatal("the migration changed the SQLite file or its -wal")
	}
	for _, re := range []string{`(?m)^users\s+3\s+3\s*$`, `(?m)^admins\s+1\s+1\s*$`, `(?m)^api_keys\s+1\s+1\s*$`, `(?m)^oidc_clients\s+1\s+1\s*$`,
		`(?m)^oidc_keys\s+1\s+1\s*$`, `(?m)^webhooks\s+1\s+1\s*$`, `(?m)^mail_outbox\s+\d+\s+\d+\s*$`, `(?m)^identities\s+3\s+3\s*$`,
		`(?m)^events\s+` + itoa(before.events) + `\s+` + itoa(before.events) + `\s*$`} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("migrate output lacks %s:\n%s", re, stdout)
		}
	}
	m := regexp.MustCompile(`(?m)^\s+LATCHKEY_SECRET_KEY=(base64:\S+)$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no LATCHKEY_SECRET_KEY to set in:\n%s", stdout)
	}
	secret := m[1]
	stored, err := w.Setting(ctx, "secret_key")
	must(err)
	if secretKeyEnv(stored) != secret {
		t.Fatal("the printed secret is not the one the SQLite deployment generated")
	}
	w.Close()

	// Nothing secret was copied into PostgreSQL, and the -wal's change was.
	pgs, err := store.Open(ctx, target)
	must(err)
	defer pgs.Close()
	if _, err := pgs.Setting(ctx, "secret_key"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("secret_key in PostgreSQL: %v", err)
	}
	if v, err := pgs.Setting(ctx, "wal_probe"); err != nil || string(v) != "in the wal" {
		t.Fatalf("the -wal's committed change: %q, %v", v, err)
	}

	// The app on PostgreSQL, with the secret it was told to set.
	smtp.Up()
	app2 := startApp(t, map[string]string{"LATCHKEY_DB": target, "LATCHKEY_SECRET_KEY": secret, "LATCHKEY_SMTP_URL": smtp.URL()})
	// The queued email (sealed with the old secret) goes out, once.
	msg := smtp.MessageTo("queued@example.com", 15*time.Second)
	pw := regexp.MustCompile(`Your temporary password: (\S+)`).FindStringSubmatch(msg.Text)
	if pw == nil {
		t.Fatalf("no password in:\n%s", msg.Text)
	}
	u := newPortalClient(t, app2.URL)
	u.get("/login")
	if code, _, loc := u.post("/login", url.Values{"login_id": {"queued@example.com"}, "password": {pw[1]}}); code != http.StatusSeeOther || loc != "/change-password" {
		t.Fatalf("the emailed password on PostgreSQL: %d %q", code, loc)
	}
	// A migrated user signs in with their own password.
	u = newPortalClient(t, app2.URL)
	u.get("/login")
	if code, _, loc := u.post("/login", url.Values{"login_id": {"ada@example.com"}, "password": {"Ada's own passw0rd"}}); code != http.StatusSeeOther || loc != "/settings" {
		t.Fatalf("ada on PostgreSQL: %d %q", code, loc)
	}
	u.get("/login")
	if code, _, loc := u.post("/login", url.Values{"login_id": {"ada@example.com"}, "password": {"not her password"}}); code == http.StatusSeeOther {
		t.Fatalf("a wrong password signed ada in: %d %q", code, loc)
	}
	// The admin signs in; the application and the signing key came along.
	a, code, loc := signInAs(t, app2.URL, e2eAdminEmail, e2eAdminPassword)
	if code != http.StatusSeeOther || loc != "/portal/users" {
		t.Fatalf("admin on PostgreSQL: %d %q", code, loc)
	}
	if code, body, _ := a.get(appLoc); code != http.StatusOK || !strings.Contains(body, "wiki.example.com/callback") {
		t.Fatalf("the application on PostgreSQL: %d", code)
	}
	if got := jwksKeyIDs(t, app2.URL); len(got) != 1 || got[0] != kids[0] {
		t.Fatalf("JWKS on PostgreSQL %v, on SQLite %v", got, kids)
	}
	// The API key works.
	if code, n := graphQLUsers(t, app2.URL, token); code != http.StatusOK || n != 3 {
		t.Fatalf("Admin API with the migrated key: %d, %d users", code, n)
	}
	// A new user gets a new seq past the copied ones, its event a seq past
	// the copied events, and the webhook (its secret sealed with the old
	// secret) delivers it.
	a.get("/portal/users/new")
	if code, body, _ := a.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"after@example.com"}, "passwordMode": {"manual"},
		"password": {"After the move passw0rd"}}); code != http.StatusSeeOther {
		t.Fatalf("create a user on PostgreSQL: %d\n%s", code, body)
	}
	hooks.waitFor(t, "after@example.com")
	var seq, evSeq int64
	must(pgs.DB().QueryRow(`SELECT u.seq FROM users u JOIN identities i ON i.user_id = u.id WHERE i.value_norm = 'after@example.com'`).Scan(&seq))
	must(pgs.DB().QueryRow(`SELECT MIN(seq) FROM events WHERE seq > $1`, before.maxSeq).Scan(&evSeq))
	if seq != maxUserSeq+1 || evSeq <= before.maxSeq {
		t.Fatalf("new user seq %d (copied up to %d), new event seq %d (copied up to %d)", seq, maxUserSeq, evSeq, before.maxSeq)
	}
	// The Users search (rebuilt postings) finds migrated users.
	if code, body, _ := a.get("/portal/users?q=" + url.QueryEscape("da@exa")); code != http.StatusOK || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("search for a migrated user: %d", code)
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Fatalf("%d messages, want the queued one exactly once", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMigrateToPostgresRefuses: a missing source, an unreachable target,
// a target with data or with other tables, the wrong secret and a copy
// that fails half-way each end with a clear error, leave the SQLite file
// as it was and write nothing into PostgreSQL (or leave it empty).
func TestMigrateToPostgresRefuses(t *testing.T) {
	if testdb.Postgres() {
		t.Skip("migrate-to-postgres copies from a SQLite file: it runs in the SQLite pass (with a PostgreSQL target)")
	}
	ctx := context.Background()
	pg := startPG(t)
	const secret = "the SQLite server's own secret key, 40+ chars"
	app := startApp(t, map[string]string{"LATCHKEY_SECRET_KEY": secret})
	p := newPortalClient(t, app.URL)
	p.signIn()
	p.get("/portal/users/new")
	if code, _, _ := p.post("/portal/users", url.Values{"loginIDKey": {"email"}, "loginID": {"bo@example.com"}, "passwordMode": {"manual"},
		"password": {"Bo's own passw0rd"}}); code != http.StatusSeeOther {
		t.Fatalf("create user: %d", code)
	}
	app.stop()
	src := app.DB
	hash := fileHash(t, src)
	withSecret := map[string]string{"LATCHKEY_SECRET_KEY": secret}
	noTables := func(u string) {
		t.Helper()
		if err := store.CheckPostgresTarget(ctx, u, nil); err != nil {
			t.Fatalf("target not left empty: %v", err)
		}
		if n := countTables(t, u); n != 0 {
			t.Fatalf("target has %d tables; want none written", n)
		}
	}
	want := func(code int, stderr string, wantCode int, has string) {
		t.Helper()
		t.Logf("exit %d: %s", code, stderr)
		if code != wantCode || !strings.Contains(stderr, has) {
			t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, wantCode, stderr, has)
		}
	}

	target := newPGDatabase(t, pg)
	code, _, stderr := runMigrate(t, withSecret, "--from", src+".missing", "--to", target)
	want(code, stderr, 1, "no SQLite database at "+src+".missing")
	noTables(target)
	code, _, stderr = runMigrate(t, withSecret, "--from", src)
	want(code, stderr, 2, "give both --from FILE and --to")
	code, _, stderr = runMigrate(t, withSecret, "--from", src, "--to", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=3")
	want(code, stderr, 1, "cannot reach the PostgreSQL database")
	if strings.Contains(stderr, secret) {
		t.Fatal("the secret in an error message")
	}
	// The secret: without it, or with another one, the signing keys do
	// not open and nothing is copied.
	code, _, stderr = runMigrate(t, nil, "--from", src, "--to", target)
	want(code, stderr, 1, "run this command with that LATCHKEY_SECRET_KEY set")
	code, _, stderr = runMigrate(t, map[string]string{"LATCHKEY_SECRET_KEY": strings.Repeat("w", 40)}, "--from", src, "--to", target)
	want(code, stderr, 1, "neither the LATCHKEY_SECRET_KEY given nor the secret kept in the database opens")
	noTables(target)

	// A database with tables that are not Latchkey's is left alone.
	foreign := newPGDatabase(t, pg)
	execPG(t, foreign, `CREATE TABLE invoices (id INT PRIMARY KEY)`)
	code, _, stderr = runMigrate(t, withSecret, "--from", src, "--to", foreign)
	want(code, stderr, 1, "holds tables that are not Latchkey's (invoices)")
	if n := countTables(t, foreign); n != 1 {
		t.Fatalf("%d tables in the foreign database after the refusal", n)
	}

	// A copy that fails half-way (a row PostgreSQL's foreign keys refuse)
	// rolls back whole: the schema is there, no row is.
	broken := t.TempDir() + "/broken.db"
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, b, 0o600); err != nil {
		t.Fatal(err)
	}
	execSQLite(t, broken, `INSERT INTO passwords (user_id, hash, created_at, updated_at) VALUES ('no-such-user', 'x', 1, 1)`)
	half := newPGDatabase(t, pg)
	code, _, stderr = runMigrate(t, withSecret, "--from", broken, "--to", half)
	want(code, stderr, 1, "rolled back: the PostgreSQL database holds no rows")
	if !strings.Contains(stderr, "foreign key passwords_user_id_fkey of passwords") {
		t.Fatalf("the error does not name the table: %s", stderr)
	}
	// The indexes and foreign keys dropped for the copy are back.
	fresh := newPGDatabase(t, pg)
	if s, err := store.Open(ctx, fresh); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	if a, b := countSchema(t, half), countSchema(t, fresh); a != b {
		t.Fatalf("schema after the failed copy: %s; freshly migrated: %s", a, b)
	}
	if err := store.CheckPostgresTarget(ctx, half, nil); err != nil {
		t.Fatalf("after the failed copy: %v", err)
	}

	// The right secret: the copy goes through, into a database that holds
	// Latchkey's schema and no rows too ...
	code, stdout, stderr := runMigrate(t, withSecret, "--from", src, "--to", half)
	if code != 0 || !strings.Contains(stdout, "Set that same LATCHKEY_SECRET_KEY on every PostgreSQL instance") || strings.Contains(stdout, secret) {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if a, b := countSchema(t, half), countSchema(t, fresh); a != b {
		t.Fatalf("schema after the copy: %s; freshly migrated: %s", a, b)
	}
	// ... and not a second time: the target has data now.
	code, _, stderr = runMigrate(t, withSecret, "--from", src, "--to", half)
	want(code, stderr, 1, "already holds Latchkey data (rows in ")
	st, err := store.Open(ctx, half)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("users after the refused second copy: %d, %v", n, err)
	}
	if fileHash(t, src) != hash {
		t.Fatal("the SQLite file changed")
	}
}

// countTables counts the tables in the PostgreSQL database at u.
func countTables(t *testing.T, u string) int {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func execPG(t *testing.T, u, q string) {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// execSQLite runs q on the SQLite file at path with foreign keys off.
func execSQLite(t *testing.T, path, q string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=off")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// countSchema describes the indexes and constraints of the database at u.
func countSchema(t *testing.T, u string) string {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var idx, cons int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()),
		(SELECT COUNT(*) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)`).Scan(&idx, &cons); err != nil {
		t.Fatal(err)
	}
	if idx < 20 || cons < 20 {
		t.Fatalf("only %d indexes and %d constraints", idx, cons)
	}
	return strconv.Itoa(idx) + " indexes, " + strconv.Itoa(cons) + " constraints"
}
