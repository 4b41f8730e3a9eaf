package testdb

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// helperDB is run in a child process by the tests below: it asks for a
// database and reports what it got.
func TestHelperDB(t *testing.T) {
	if os.Getenv("TESTDB_HELPER") != "1" {
		t.Skip("run by TestMissingPostgresFails and TestUnknownValueRefused")
	}
	t.Log("got " + DB(t, "/tmp/x.db"))
}

func runHelper(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDB$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{"TESTDB_HELPER=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Without the variable a test gets the SQLite path it gave.
func TestSQLiteByDefault(t *testing.T) {
	out, err := runHelper(t, Env+"=")
	if err != nil || !strings.Contains(out, "got /tmp/x.db") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// LATCHKEY_TEST_DB=postgres without PostgreSQL binaries is a failure, not
// a skip and not a quiet fallback to SQLite.
func TestMissingPostgresFails(t *testing.T) {
	out, err := runHelper(t, Env+"=postgres", "LATCHKEY_PG_BIN="+t.TempDir(), "LATCHKEY_PG=")
	if err == nil || !strings.Contains(out, "--- FAIL: TestHelperDB") || strings.Contains(out, "got ") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
	if !strings.Contains(out, Env+"=postgres") {
		t.Fatalf("the failure does not name %s:\n%s", Env, out)
	}
}

// A misspelt value is refused before any test runs.
func TestUnknownValueRefused(t *testing.T) {
	out, err := runHelper(t, Env+"=postgresql")
	if err == nil || !strings.Contains(out, "want sqlite or postgres") || strings.Contains(out, "got ") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
