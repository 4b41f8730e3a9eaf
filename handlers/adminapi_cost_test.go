package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"latchkey/account"
	"latchkey/handlers/adminapi"
)

// TestAdminAPICostBudget: the review's 550 aliased users(first:100)
// {totalCount …} is refused whole with a clear error, as are the same
// through fragments and variables; an ordinary full page still runs.
func TestAdminAPICostBudget(t *testing.T) {
	a := newAPIApp(t)
	ctx := context.Background()
	for i := range 3 {
		if _, err := a.acct.CreateUser(ctx, account.Actor{Kind: "admin"}, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: fmt.Sprintf("c%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var q strings.Builder
	q.WriteString("{")
	for i := range 550 {
		fmt.Fprintf(&q, " a%d: users(first: 100) { totalCount edges { node { id createdAt } } }", i)
	}
	q.WriteString(" }")
	refused := func(name, query string, vars map[string]any) {
		t.Helper()
		r := a.gql(query, vars)
		if r.Status != http.StatusBadRequest || len(r.Errors) != 1 || r.Data != nil {
			t.Fatalf("%s: status %d, %.300s", name, r.Status, r.Raw)
		}
		e := r.Errors[0]
		if !strings.Contains(e.Message, fmt.Sprintf("over the limit of %d", adminapi.MaxQueryCost)) || e.Extensions["reason"] != "QueryTooCostly" {
			t.Fatalf("%s: error %+v", name, e)
		}
		if len(r.Raw) > 2000 {
			t.Fatalf("%s: %d bytes for a refusal", name, len(r.Raw))
		}
	}
	refused("550 aliases", q.String(), nil)

	// Aliases behind a fragment cost the same.
	var g strings.Builder
	g.WriteString("query {")
	for i := range 40 {
		fmt.Fprintf(&g, " a%d: users(first: 100) { ...Conn }", i)
	}
	g.WriteString(" } fragment Conn on UserConnection { totalCount edges { node { id } } }")
	refused("fragments", g.String(), nil)

	var v strings.Builder
	v.WriteString("query($n: Int) {")
	for i := range 40 {
		fmt.Fprintf(&v, " a%d: users(first: $n) { totalCount }", i)
	}
	v.WriteString(" }")
	refused("variables", v.String(), map[string]any{"n": 100})

	// A full page with every field runs.
	d := a.gqlOK(`{ users(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id createdAt updatedAt lastLoginAt
		isDisabled disableReason standardAttributes passwordExpired identities { totalCount edges { node { id type claims createdAt } } } } } } }`, nil)
	if n := path(d, "users", "totalCount"); n != float64(3) {
		t.Fatalf("totalCount %v", n)
	}
	// Few aliases of the same run too.
	a.gqlOK(`{ a: users(first: 100) { totalCount } b: users(first: 100) { totalCount } }`, nil)
}
