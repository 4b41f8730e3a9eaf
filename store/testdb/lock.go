package testdb

import (
	"database/sql"
	"sync"
	"testing"
)

// HoldSQLiteWriteLock takes SQLite's write lock on the database file at
// path from a connection of its own, as another process would (a backup,
// a sqlite3 shell), and keeps it until the returned func (or the test's
// end) releases it.
func HoldSQLiteWriteLock(t testing.TB, path string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`INSERT INTO settings (key, value) VALUES ('lock-holder', x'00')`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := lock.Rollback(); err != nil {
				t.Error(err)
			}
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}
