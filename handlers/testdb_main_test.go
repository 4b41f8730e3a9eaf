package handlers

import (
	"io"
	"os"
	"testing"

	"latchkey/store/testdb"
)

// TestMain runs the suite on SQLite, or on PostgreSQL with
// LATCHKEY_TEST_DB=postgres (one throwaway cluster for the package).
func TestMain(m *testing.M) { testdb.Main(m) }

// testLogW receives the test apps' logs: discarded, or with
// LATCHKEY_TEST_LOG=1 written to stderr (to see why a handler answered 500).
var testLogW = func() io.Writer {
	if os.Getenv("LATCHKEY_TEST_LOG") == "1" {
		return os.Stderr
	}
	return io.Discard
}()
