package adminapi

import "testing"

func TestQueryCost(t *testing.T) {
	for _, c := range []struct {
		q    string
		vars map[string]any
		want int64
	}{
		{`{ users { edges { node { id } } } }`, nil, 1 + 1 + 50*(1+1+1)},
		{`{ users(first: 100) { totalCount } }`, nil, 1 + TotalCountCost},
		{`query($n: Int) { users(first: $n) { edges { node { id } } } }`, map[string]any{"n": int32(10)}, 1 + 1 + 10*3},
		{`{ users(first: 5000) { edges { cursor } } }`, nil, 1 + 1 + 100*2}, // first is capped by the resolver at 100
		{`{ nodes(ids: ["a", "b", "c"]) { id ... on User { identities { totalCount } } } }`, nil, 1 + 3*(1+1+1+1)},
		{`query Q { a: users(first: 1) { ...F } } fragment F on UserConnection { pageInfo { hasNextPage } __typename }`, nil, 1 + 2},
	} {
		got, ok := queryCost(c.q, "", c.vars)
		if !ok || got != c.want {
			t.Errorf("%s: cost %d (%v), want %d", c.q, got, ok, c.want)
		}
	}
	if _, ok := queryCost(`{ users(`, "", nil); ok {
		t.Error("a syntax error was priced")
	}
	// A fragment that spreads itself is not followed forever.
	if _, ok := queryCost(`{ ...A } fragment A on Query { users { ...B } } fragment B on UserConnection { ...B totalCount }`, "", nil); !ok {
		t.Error("a self-spreading fragment could not be priced")
	}
}
