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

var testLogW = func() io.Writer {
	if os.Getenv("P3DEBUG") != "" {
		return os.Stderr
	}
	return io.Discard
}()
