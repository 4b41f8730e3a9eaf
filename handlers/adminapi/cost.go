package adminapi

import (
	"fmt"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// Query cost budget. Depth and length limits do not stop a query that
// asks for the same large page under many aliases (550 aliased
// users(first:100){totalCount …} made 15 MB in 6 s), so every request is
// priced before it runs: each field costs 1, a list multiplies what is
// under it by its size (users: first, default 50; identities: first,
// at most 10; nodes: the number of IDs), and totalCount, a count over every
// user, costs TotalCountCost (a user's identities' totalCount costs 1). A request over MaxQueryCost is refused
// whole, before any resolver runs.
const (
	MaxQueryCost   = 20000
	TotalCountCost = 500

	identitiesListMax = 10
	costCeiling       = 1 << 40
)

// costError is the answer to a query over the budget.
type costError struct{ cost int64 }

func (e costError) Error() string {
	return fmt.Sprintf("This query would cost %d, over the limit of %d per request. Ask for fewer items (first), use fewer aliases, or leave out totalCount.", e.cost, MaxQueryCost)
}

// queryCost prices the operation that the request would run. ok is false
// when the query cannot be parsed or has no such operation.
func queryCost(query, opName string, vars map[string]any) (cost int64, ok bool) {
	if len(query) > maxQueryLength {
		return 0, false // refused by the schema's MaxQueryLength
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return 0, false
	}
	op := doc.Operations.ForName(opName)
	if op == nil {
		return 0, false
	}
	p := pricer{frags: doc.Fragments, vars: vars, visiting: map[string]bool{}}
	return p.set(op.SelectionSet, "", 0), true
}

type pricer struct {
	frags    ast.FragmentDefinitionList
	vars     map[string]any
	visiting map[string]bool
}

// set prices a selection set; conn names the connection it belongs to
// ("users", "identities"; "" for none) and n is the connection's page size.
func (p *pricer) set(sel ast.SelectionSet, conn string, n int64) int64 {
	var total int64
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			total = add(total, p.field(s, conn, n))
		case *ast.InlineFragment:
			total = add(total, p.set(s.SelectionSet, conn, n))
		case *ast.FragmentSpread:
			f := p.frags.ForName(s.Name)
			if f == nil || p.visiting[s.Name] {
				continue // graphql-go's validation reports it
			}
			p.visiting[s.Name] = true
			total = add(total, p.set(f.SelectionSet, conn, n))
			delete(p.visiting, s.Name)
		}
	}
	return total
}

func (p *pricer) field(f *ast.Field, conn string, n int64) int64 {
	if f.Name == "__typename" {
		return 0
	}
	if conn != "" {
		switch f.Name {
		case "edges":
			return add(1, mul(n, add(1, p.set(f.SelectionSet, "", 0))))
		case "totalCount":
			if conn == "users" {
				return TotalCountCost
			}
			return 1
		}
	}
	switch f.Name {
	case "users":
		size := p.intArg(f, "first", 50)
		return add(1, p.set(f.SelectionSet, "users", clamp(size, 0, 100)))
	case "identities":
		size := p.intArg(f, "first", identitiesListMax)
		return add(1, p.set(f.SelectionSet, "identities", clamp(size, 0, identitiesListMax)))
	case "nodes":
		return add(1, mul(clamp(p.listLen(f, "ids"), 0, 100), add(1, p.set(f.SelectionSet, "", 0))))
	}
	return add(1, p.set(f.SelectionSet, "", 0))
}

// intArg is an Int argument's value, literal or variable, or def.
func (p *pricer) intArg(f *ast.Field, name string, def int64) int64 {
	a := f.Arguments.ForName(name)
	if a == nil || a.Value == nil {
		return def
	}
	switch a.Value.Kind {
	case ast.IntValue:
		if v, err := strconv.ParseInt(a.Value.Raw, 10, 64); err == nil {
			return v
		}
	case ast.Variable:
		switch v := p.vars[a.Value.Raw].(type) {
		case int32:
			return int64(v)
		case float64:
			return int64(v)
		}
	}
	return def
}

// listLen is the length of a list argument, literal or variable (a
// single value counts as one).
func (p *pricer) listLen(f *ast.Field, name string) int64 {
	a := f.Arguments.ForName(name)
	if a == nil || a.Value == nil {
		return 0
	}
	switch a.Value.Kind {
	case ast.ListValue:
		return int64(len(a.Value.Children))
	case ast.Variable:
		if l, ok := p.vars[a.Value.Raw].([]any); ok {
			return int64(len(l))
		}
	}
	return 1
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

func add(a, b int64) int64 { return min(a+b, costCeiling) }

func mul(a, b int64) int64 {
	if a != 0 && b > costCeiling/a {
		return costCeiling
	}
	return min(a*b, costCeiling)
}
