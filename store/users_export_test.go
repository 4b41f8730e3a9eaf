package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestEachUserForExportMatchesEachUser: the export's merged walk (users
// and login IDs as two ordered streams) gives exactly what EachUser gives,
// user for user and login ID for login ID in their order, with and
// without filters (whose left-out users' login IDs it must skip), for
// users with several login IDs and with none.
func TestEachUserForExportMatchesEachUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		for i := range 40 {
			id := fmt.Sprintf("u%03d", (i*37)%40) // not created in ID order
			var ids []Identity
			for k := range i % 4 {
				kind := []string{"email", "phone", "username"}[k%3]
				ids = append(ids, Identity{Kind: kind, Value: fmt.Sprintf("%s-%d-%s", kind, k, id)})
			}
			addSearchUser(t, s, id, ids...)
			if i%5 == 0 {
				if _, err := s.q.ExecContext(ctx, `UPDATE users SET is_disabled = 1, disable_reason = 'r' WHERE id = ?`, id); err != nil {
					t.Fatal(err)
				}
			}
			if i%3 == 0 {
				if _, err := s.q.ExecContext(ctx, `INSERT INTO passwords (user_id, hash, created_at, updated_at, expire_after, set_by_admin) VALUES (?, 'h', ?, ?, ?, 1)`,
					id, ms(now), ms(now), ms(now.Add(-time.Hour))); err != nil {
					t.Fatal(err)
				}
			}
			if i%7 == 0 {
				if _, err := s.q.ExecContext(ctx, `INSERT INTO login_lockouts (user_id, failures, lock_count, locked_until) VALUES (?, 5, 1, ?)`,
					id, ms(now.Add(time.Hour))); err != nil {
					t.Fatal(err)
				}
			}
		}
		walk := func(each func(context.Context, ListUsersParams, func(*UserSummary) error) error, p ListUsersParams) []UserSummary {
			t.Helper()
			var out []UserSummary
			if err := each(ctx, p, func(u *UserSummary) error { out = append(out, *u); return nil }); err != nil {
				t.Fatal(err)
			}
			return out
		}
		for name, f := range map[string]UserFilters{
			"all": {}, "disabled": {Disabled: true}, "must change": {MustChange: true}, "locked": {Locked: true}, "no password": {NoPassword: true},
		} {
			p := ListUsersParams{Filters: f, Now: now}
			want := walk(s.EachUser, p)
			got := walk(s.EachUserForExport, p)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: export walk differs from EachUser:\n got %+v\nwant %+v", name, got, want)
			}
		}
		// A search takes EachUser's path (newest first, by the gram index).
		p := ListUsersParams{Search: "email-0", Now: now}
		if got, want := walk(s.EachUserForExport, p), walk(s.EachUser, p); len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("search: %d users, want %d", len(got), len(want))
		}
	})
}
