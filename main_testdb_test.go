package main

import (
	"testing"

	"latchkey/store/testdb"
)

// TestMain runs the suite on SQLite, or on PostgreSQL with
// LATCHKEY_TEST_DB=postgres (one throwaway cluster for the package).
func TestMain(m *testing.M) { testdb.Main(m) }
