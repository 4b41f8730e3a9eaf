package adminapi

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkQueryCost prices the review's 550-alias query: the work every
// Admin API request now does before it runs.
func BenchmarkQueryCost(b *testing.B) {
	var q strings.Builder
	q.WriteString("{")
	for i := range 550 {
		fmt.Fprintf(&q, " a%d: users(first: 100) { totalCount edges { node { id createdAt } } }", i)
	}
	q.WriteString(" }")
	query := q.String()
	small := `{ users(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id createdAt identities { edges { node { id claims } } } } } } }`
	b.Run("550-aliases", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c, ok := queryCost(query, "", nil); !ok || c <= MaxQueryCost {
				b.Fatal(c, ok)
			}
		}
	})
	b.Run("one-page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c, ok := queryCost(small, "", nil); !ok || c > MaxQueryCost {
				b.Fatal(c, ok)
			}
		}
	})
}
