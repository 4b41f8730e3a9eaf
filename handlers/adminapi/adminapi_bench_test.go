package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/handlers/adminapi"
	"latchkey/store"
)

// benchAPI sets up an API over n users, inserted straight through the store.
func benchAPI(b *testing.B, n int) *adminapi.API {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	for done := 0; done < n; done += 5000 {
		err := st.InTx(ctx, func(tx *store.Tx) error {
			for i := done; i < min(done+5000, n); i++ {
				u := store.User{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertUser(ctx, &u); err != nil {
					return err
				}
				email := fmt.Sprintf("user%07d@example.com", i)
				if err := tx.InsertIdentity(ctx, store.Identity{ID: uuid.NewString(), UserID: u.ID, Kind: "email", Value: email, ValueNorm: email, CreatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	return adminapi.New(acct, log)
}

func runQuery(b *testing.B, api *adminapi.API, query string, vars map[string]any) map[string]any {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/_api/admin/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req = req.WithContext(adminapi.WithActor(req.Context(), account.Actor{Kind: "api_key"}))
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	var out struct {
		Data   map[string]any
		Errors []any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Errors) > 0 {
		b.Fatalf("%v %s", err, w.Body.String())
	}
	return out.Data
}

// BenchmarkUsersPage measures one users(first: 100) page with
// standardAttributes, deep into 100,000 users (keyset paging: the depth
// should not matter), with and without a search keyword.
func BenchmarkUsersPage(b *testing.B) {
	api := benchAPI(b, 100_000)
	const q = `query($after: String, $q: String) { users(first: 100, after: $after, searchKeyword: $q) {
		pageInfo { hasNextPage endCursor } edges { node { id createdAt standardAttributes } } } }`
	for _, tc := range []struct {
		name, search string
		skip         int
	}{{"first-page", "", 0}, {"page-500", "", 500}, {"search-first-page", "user00", 0}, {"search-page-50", "user00", 50}} {
		// Walk to the page once, outside the timer.
		var after any
		for i := 0; i < tc.skip; i++ {
			d := runQuery(b, api, q, map[string]any{"after": after, "q": tc.search})
			after = d["users"].(map[string]any)["pageInfo"].(map[string]any)["endCursor"]
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				runQuery(b, api, q, map[string]any{"after": after, "q": tc.search})
			}
		})
	}
}

// BenchmarkUsersTotalCount measures totalCount over 100,000 users: all of
// them, and a search every one of them matches (the worst case: a
// distinct count over the whole identities index range).
func BenchmarkUsersTotalCount(b *testing.B) {
	api := benchAPI(b, 100_000)
	for _, tc := range []struct{ name, search string }{{"all", ""}, {"search-matching-all", "user"}, {"search-matching-100", "user00001"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				runQuery(b, api, `query($q: String) { users(first: 1, searchKeyword: $q) { totalCount } }`, map[string]any{"q": tc.search})
			}
		})
	}
}
