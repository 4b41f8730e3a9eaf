package pgtest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Database starts a throwaway cluster for the test, closed when the test
// ends, and returns a fresh database's URL; without PostgreSQL it skips
// the test (a failure with LATCHKEY_PG=1).
func Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx)
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skip("SKIPPING PostgreSQL: no binaries; set LATCHKEY_PG=1 to make this a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	url, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return url
}
