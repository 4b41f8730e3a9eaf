package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func searchIDs(t *testing.T, s *Store, p ListUsersParams) []string {
	t.Helper()
	rows, err := s.ListUsers(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

func addSearchUser(t *testing.T, s *Store, id string, ids ...Identity) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := s.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for n, i := range ids {
		i.ID, i.UserID, i.CreatedAt = fmt.Sprintf("%s-%d", id, n), id, now
		if i.ValueNorm == "" {
			i.ValueNorm = strings.ToLower(i.Value)
		}
		if err := s.InsertIdentity(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubstringSearch: a search matches anywhere in a login ID, phone
// numbers match by their digits however they are typed, and the gram
// index follows identity edits, deletes and user deletion in the same
// transaction.
func TestSubstringSearch(t *testing.T) {
	forEachBackend(t, testSubstringSearch)
}

func testSubstringSearch(t *testing.T, s *Store) {
	ctx := context.Background()
	addSearchUser(t, s, "u1", Identity{Kind: "email", Value: "John.Smith@example.org"})
	addSearchUser(t, s, "u2", Identity{Kind: "phone", Value: "+12125550110"})
	addSearchUser(t, s, "u3", Identity{Kind: "username", Value: "blacksmith"}, Identity{Kind: "email", Value: "b@other.net"})
	addSearchUser(t, s, "u4", Identity{Kind: "email", Value: "zoe@example.com"})
	addSearchUser(t, s, "u5", Identity{Kind: "username", Value: "x_y%z"})
	addSearchUser(t, s, "u6", Identity{Kind: "username", Value: "xaybz"})
	for q, want := range map[string]string{
		"example.org":      "u1",
		"SMITH":            "u3,u1",
		"2125550110":       "u2",
		"(212) 555-0110":   "u2",
		"+1 212-555-0110":  "u2",
		"555.0110":         "u2",
		"other.net":        "u3",
		"example":          "u4,u1",
		"nomatch":          "",
		"b@":               "u3", // two characters: prefix
		"zo":               "u4",
		"xample.com":       "u4",
		"smith@example.co": "",
		// LIKE's wildcards in a search match themselves only.
		"x_y%": "u5",
		"_y%z": "u5",
		"x_y":  "u5",
		"y%z":  "u5",
		"ayb":  "u6",
		"x\\y": "",
	} {
		if got := strings.Join(searchIDs(t, s, ListUsersParams{Search: q}), ","); got != want {
			t.Errorf("search %q = %q, want %q", q, got, want)
		}
	}
	// Pages of one: a full page from the newest users (on PostgreSQL the
	// window), then the next page after its cursor.
	first, err := s.ListUsers(ctx, ListUsersParams{Search: "smith", Limit: 1})
	if err != nil || len(first) != 1 || first[0].ID != "u3" {
		t.Fatalf("first page of one: %+v, %v", first, err)
	}
	next, err := s.ListUsers(ctx, ListUsersParams{Search: "smith", Limit: 1, After: first[0].Cursor})
	if err != nil || len(next) != 1 || next[0].ID != "u1" {
		t.Fatalf("next page of one: %+v, %v", next, err)
	}
	if last, err := s.ListUsers(ctx, ListUsersParams{Search: "smith", Limit: 1, After: next[0].Cursor}); err != nil || len(last) != 0 {
		t.Fatalf("page after the last: %+v, %v", last, err)
	}
	// Edit: u4's email changes; the old substring no longer finds them.
	if err := s.UpdateIdentity(ctx, "u4-0", "zoe@smith.io", "zoe@smith.io"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(searchIDs(t, s, ListUsersParams{Search: "smith"}), ","); got != "u4,u3,u1" {
		t.Errorf("after update: smith = %q", got)
	}
	if got := searchIDs(t, s, ListUsersParams{Search: "example.com"}); len(got) != 0 {
		t.Errorf("after update: example.com = %v", got)
	}
	// Delete one of u3's two login IDs: grams the other still has stay.
	if err := s.DeleteIdentity(ctx, "u3-1"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, ListUsersParams{Search: "other"}); len(got) != 0 {
		t.Errorf("deleted login ID still found: %v", got)
	}
	if got := strings.Join(searchIDs(t, s, ListUsersParams{Search: "blacksmith"}), ","); got != "u3" {
		t.Errorf("remaining login ID lost: %q", got)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, ListUsersParams{Search: "john.smith"}); len(got) != 0 {
		t.Errorf("deleted user still found: %v", got)
	}
	if !s.pg {
		var left int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM login_id_grams WHERE user_seq = 1`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("deleted user's grams left: %d %v", left, err)
		}
	}
	checkSearchGrams(t, s)
}

// checkSearchGrams fails t unless the search grams and their counts
// equal a rebuild from the login IDs.
func checkSearchGrams(t *testing.T, s *Store) {
	t.Helper()
	if s.pg {
		return // PostgreSQL searches by its pg_trgm index, which it keeps itself
	}
	var diff int
	err := s.db.QueryRow(`SELECT COUNT(*) FROM (
		SELECT gram, user_seq FROM login_id_grams
		EXCEPT SELECT DISTINCT substr(i.value_norm, p.pos, 3), u.seq FROM identities i JOIN users u ON u.id = i.user_id JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2
		UNION ALL
		SELECT * FROM (SELECT DISTINCT substr(i.value_norm, p.pos, 3), u.seq FROM identities i JOIN users u ON u.id = i.user_id JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2
			EXCEPT SELECT gram, user_seq FROM login_id_grams) AS missing) AS d`).Scan(&diff)
	if err != nil || diff != 0 {
		t.Fatalf("stale or missing grams: %d %v", diff, err)
	}
	// And the counts the search picks its gram by match the postings.
	err = s.db.QueryRow(`SELECT COUNT(*) FROM (
		SELECT * FROM (SELECT gram, n FROM gram_counts WHERE n > 0 EXCEPT SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram) AS a
		UNION ALL
		SELECT * FROM (SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram EXCEPT SELECT gram, n FROM gram_counts) AS b) AS d`).Scan(&diff)
	if err != nil || diff != 0 {
		t.Fatalf("gram counts off: %d %v", diff, err)
	}
}

// TestListFiltersPagingAndCount: filters combine with the search and
// each other, Previous page returns the page before, and the bounded
// count says when it stopped.
func TestListFiltersPagingAndCount(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Now()
	for i := 1; i <= 7; i++ {
		addSearchUser(t, s, fmt.Sprintf("u%d", i), Identity{Kind: "email", Value: fmt.Sprintf("user%d@example.org", i)})
	}
	for _, id := range []string{"u1", "u2", "u3"} {
		if err := s.PutPassword(ctx, Password{UserID: id, Hash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	past := now.Add(-time.Minute)
	if err := s.SetPasswordExpireAfter(ctx, "u2", &past, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserDisabled(ctx, "u2", true, "", now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserDisabled(ctx, "u5", true, "", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveLoginAttempt(ctx, "u3", 1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailLoginAttempt(ctx, "u3", 1, now, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		p    ListUsersParams
		want string
	}{
		"disabled":          {ListUsersParams{Filters: UserFilters{Disabled: true}}, "u5,u2"},
		"must change":       {ListUsersParams{Filters: UserFilters{MustChange: true}}, "u2"},
		"no password":       {ListUsersParams{Filters: UserFilters{NoPassword: true}}, "u7,u6,u5,u4"},
		"locked":            {ListUsersParams{Filters: UserFilters{Locked: true}}, "u3"},
		"disabled+search":   {ListUsersParams{Search: "user5", Filters: UserFilters{Disabled: true}}, "u5"},
		"disabled+nopw":     {ListUsersParams{Filters: UserFilters{Disabled: true, NoPassword: true}}, "u5"},
		"email failed none": {ListUsersParams{Filters: UserFilters{EmailFailed: true}}, ""},
	} {
		if got := strings.Join(searchIDs(t, s, tc.p), ","); got != tc.want {
			t.Errorf("%s = %q, want %q", name, got, tc.want)
		}
	}
	rows, _ := s.ListUsers(ctx, ListUsersParams{Search: "example", Limit: 3})
	if len(rows) != 3 || rows[0].ID != "u7" || rows[0].HasPassword {
		t.Fatalf("first page %v", rows)
	}
	next, _ := s.ListUsers(ctx, ListUsersParams{Search: "example", Limit: 3, After: rows[2].Cursor})
	if got := []string{next[0].ID, next[1].ID, next[2].ID}; strings.Join(got, ",") != "u4,u3,u2" {
		t.Fatalf("second page %v", got)
	}
	prev, _ := s.ListUsers(ctx, ListUsersParams{Search: "example", Limit: 3, Before: next[0].Cursor})
	if got := []string{prev[0].ID, prev[1].ID, prev[2].ID}; strings.Join(got, ",") != "u7,u6,u5" {
		t.Fatalf("previous page %v", got)
	}
	if !next[1].Locked || next[0].Locked {
		t.Error("locked flag wrong")
	}
	if len(next[0].LoginIDKinds) != 1 || next[0].LoginIDKinds[0] != "email" || next[0].LoginIDs[0] != "user4@example.org" {
		t.Errorf("login IDs %v %v", next[0].LoginIDs, next[0].LoginIDKinds)
	}
	for _, tc := range []struct {
		p     ListUsersParams
		bound int
		n     int
		exact bool
	}{
		{ListUsersParams{}, 3, 7, true},
		{ListUsersParams{Search: "example"}, 0, 7, true},
		{ListUsersParams{Search: "example"}, 5, 5, false},
		{ListUsersParams{Search: "user3"}, 5, 1, true},
		{ListUsersParams{Filters: UserFilters{Disabled: true}}, 5, 2, true},
	} {
		n, exact, err := s.CountUsersBounded(ctx, tc.p, tc.bound)
		if err != nil || n != tc.n || exact != tc.exact {
			t.Errorf("count %+v bound %d = %d %v %v, want %d %v", tc.p, tc.bound, n, exact, err, tc.n, tc.exact)
		}
	}
}
