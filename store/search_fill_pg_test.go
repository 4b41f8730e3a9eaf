package store

import (
	"context"
	"testing"
	"time"
)

// TestFillSearchUsersSQLMatches proves that the PostgreSQL benchmark's
// set-based fill writes exactly what the row-by-row fill writes through
// the application's tables and triggers: the same users, login IDs,
// and passwords. Otherwise the benchmark would
// measure a database the application cannot produce.
func TestFillSearchUsersSQLMatches(t *testing.T) {
	ctx := context.Background()
	const n = 2500 // past the 1000 (disabled) and 256 (domain) periods
	now := time.Now().UnixMilli()
	viaTriggers, viaSQL := openPGTest(t), openPGTest(t)
	fillSearchUsersAt(t, viaTriggers, n, now)
	if err := fillSearchUsersSQL(ctx, viaSQL.db, n, now); err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{
		"users":      `SELECT seq || ' ' || id || ' ' || created_at || ' ' || updated_at || ' ' || is_disabled AS r FROM users`,
		"identities": `SELECT id || ' ' || user_id || ' ' || kind || ' ' || value || ' ' || value_norm || ' ' || created_at AS r FROM identities`,
		"passwords":  `SELECT user_id || ' ' || hash || ' ' || created_at || ' ' || expire_after || ' ' || set_by_admin AS r FROM passwords`,
	}
	for table, q := range tables {
		digest := func(s *Store) (string, int) {
			var d string
			var c int
			if err := s.db.QueryRowContext(ctx, `SELECT md5(COALESCE(string_agg(r, chr(10) ORDER BY r), '')), COUNT(*) FROM (`+q+`) AS t`).Scan(&d, &c); err != nil {
				t.Fatal(err)
			}
			return d, c
		}
		d1, c1 := digest(viaTriggers)
		d2, c2 := digest(viaSQL)
		if c1 == 0 || d1 != d2 || c1 != c2 {
			t.Errorf("%s: %d rows (%s) through the triggers, %d rows (%s) from the set-based fill", table, c1, d1, c2, d2)
		}
	}
	// The fill leaves the search index working: a new login ID is found.
	if _, err := viaSQL.db.ExecContext(ctx, `INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
		VALUES ('ix', '00000000-0000-4000-8000-000000000001', 'username', 'qqxyz', 'qqxyz', 1)`); err != nil {
		t.Fatal(err)
	}
	rows, err := viaSQL.ListUsers(ctx, ListUsersParams{Search: "qxy"})
	if err != nil || len(rows) != 1 || rows[0].ID != "00000000-0000-4000-8000-000000000001" {
		t.Fatalf("search for a login ID added after the fill: %d rows, %v", len(rows), err)
	}
}
