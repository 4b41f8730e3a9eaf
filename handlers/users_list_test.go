package handlers

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"latchkey/account"
)

var (
	nextRE = regexp.MustCompile(`href="([^"]+)" rel="next"`)
	prevRE = regexp.MustCompile(`href="([^"]+)" rel="prev"`)
	rowRE  = regexp.MustCompile(`data-user-id="([^"]+)"`)
)

func rowIDs(body string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestUsersListFindsPeople: substring and phone-digit search, the status
// filters (combined with the search), the total, Previous page, the
// kind of each login ID, international phone format, relative times and
// the new badges.
func TestUsersListFindsPeople(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	ctx := context.Background()
	phone := a.createUser("phone", "+12125550110", "Passw0rd-long")
	smith := a.createUser("email", "john.smith@example.org", "Passw0rd-long")
	nopw, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "blacksmith"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.acct.SetDisabledStatus(ctx, account.SystemActor, smith.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]string{
		"smith":          {nopw.ID, smith.ID},
		"example.org":    {smith.ID},
		"2125550110":     {phone.ID},
		"(212) 555-0110": {phone.ID},
	} {
		r := a.get("/portal/users?q=" + urlQuery(q))
		wantStatus(t, r, http.StatusOK)
		if got := rowIDs(r.Body); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("search %q = %v, want %v", q, got, want)
		}
	}
	r := a.get("/portal/users?q=smith&disabled=1")
	if got := rowIDs(r.Body); len(got) != 1 || got[0] != smith.ID {
		t.Fatalf("smith + disabled = %v", got)
	}
	wantContains(t, r.Body, `name="disabled" value="1" checked`, "1 user", `href="/portal/users/export?disabled=1&amp;q=smith"`)
	r = a.get("/portal/users?no_password=1")
	if got := rowIDs(r.Body); len(got) != 1 || got[0] != nopw.ID {
		t.Fatalf("no password = %v", got)
	}
	wantContains(t, r.Body, "No password")
	r = a.get("/portal/users")
	wantContains(t, r.Body, "3 users", "+1 212-555-0110", `<span class="kind">Phone</span>`, `<span class="kind">Username</span>`,
		"just now", `title="`, "Disabled", "data-select-all")
	// The user page shows the No password badge.
	wantContains(t, a.get("/portal/users/"+nopw.ID).Body, `badge-muted">No password`)

	// Locked: the list badge and filter.
	if err := a.acct.SavePolicy(ctx, account.SystemActor, func() account.Policy { p := a.acct.Policy(); p.LockoutThreshold = 1; return p }()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.acct.Login(ctx, account.Actor{IP: "192.0.2.9"}, account.LoginInput{LoginID: "+12125550110", Password: "wrong-password"}); err == nil {
		t.Fatal("wrong password signed in")
	}
	r = a.get("/portal/users?locked=1")
	if got := rowIDs(r.Body); len(got) != 1 || got[0] != phone.ID {
		t.Fatalf("locked = %v", got)
	}
	wantContains(t, r.Body, `badge-danger">Locked`)
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "+", "(", "%28", ")", "%29").Replace(s)
}

// TestUsersListPreviousPage: Next then Previous returns exactly the page
// before; the first page has no Previous; the total is exact.
func TestUsersListPreviousPage(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	insertUsers(t, a.store, 120, "page")
	first := a.get("/portal/users")
	wantContains(t, first.Body, "120 users")
	if prevRE.MatchString(first.Body) {
		t.Fatal("first page has Previous")
	}
	m := nextRE.FindStringSubmatch(first.Body)
	if m == nil {
		t.Fatal("no Next page")
	}
	second := a.get(html.UnescapeString(m[1]))
	p := prevRE.FindStringSubmatch(second.Body)
	if p == nil {
		t.Fatal("second page has no Previous")
	}
	back := a.get(html.UnescapeString(p[1]))
	if strings.Join(rowIDs(back.Body), ",") != strings.Join(rowIDs(first.Body), ",") {
		t.Fatal("Previous page is not the first page")
	}
	if prevRE.MatchString(back.Body) {
		t.Fatal("Previous reached the top but still offers Previous")
	}
	if !nextRE.MatchString(back.Body) {
		t.Fatal("the page reached with Previous has no Next")
	}
	m = nextRE.FindStringSubmatch(second.Body)
	third := a.get(html.UnescapeString(m[1]))
	if n := len(rowIDs(third.Body)); n != 20 || nextRE.MatchString(third.Body) {
		t.Fatalf("third page: %d rows, next %v", n, nextRE.MatchString(third.Body))
	}
}
