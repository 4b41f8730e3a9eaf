package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"latchkey/store/pgtest"
)

// benchPGSettings tune the benchmark cluster (on top of pgtest's fsync
// off): a shared_buffers that holds the million users' hot pages, as a
// production server with a few GB of memory would have, and room for the
// fill's index builds. The defaults (128MB, 64MB) serve the tests.
var benchPGSettings = []string{"shared_buffers=1GB", "maintenance_work_mem=1GB", "effective_cache_size=4GB"}

// startBenchPG starts the benchmark cluster: kept in $LATCHKEY_BENCH_PGDIR
// (so that the million users are filled once and found again by the
// next run), else in a temporary directory removed at the end.
func startBenchPG(b *testing.B) *pgtest.Cluster {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := pgtest.StartWith(ctx, pgtest.Options{Dir: os.Getenv("LATCHKEY_BENCH_PGDIR"), Settings: benchPGSettings})
	if err != nil {
		b.Skipf("SKIPPING PostgreSQL benchmark: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// fillSearchUsersSQL writes in a few set-based statements exactly what
// fillSearchUsers writes row by row through the triggers (the same users,
// seqs, login IDs, passwords and disabled flags; TestFillSearchUsersSQLMatches
// compares the two): users, identities and passwords by generate_series,
// with the foreign-key triggers off (session_replication_role, a
// superuser setting the throwaway cluster allows) since the rows are
// consistent by construction. A million users take a few minutes.
func fillSearchUsersSQL(ctx context.Context, db *sql.DB, n int, now int64) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	arr := func(xs []string) string { return "ARRAY['" + strings.Join(xs, "','") + "']" }
	steps := []string{
		`SET session_replication_role = replica`,
		`SET maintenance_work_mem = '1GB'`,
		`BEGIN`,
		fmt.Sprintf(`INSERT INTO users (seq, id, created_at, updated_at, is_disabled)
			SELECT i + 1, '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'), %[1]d + i, %[1]d + i, CASE WHEN i %% 1000 = 7 THEN 1 ELSE 0 END
			FROM generate_series(0, %[2]d - 1) AS i`, now, n),
		`SELECT setval(pg_get_serial_sequence('users', 'seq'), (SELECT MAX(seq) FROM users))`,
		fmt.Sprintf(`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
			SELECT 'i0-' || u, u, 'email', e, e, %[1]d FROM (
				SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0') AS u,
					(%[3]s)[i %% 16 + 1] || '.' || (%[4]s)[(i / 16) %% 16 + 1] || i::text || '@' || (%[5]s)[(i / 256) %% 8 + 1] AS e
				FROM generate_series(0, %[2]d - 1) AS i) AS x`, now, n, arr(benchFirst), arr(benchLast), arr(benchDomains)),
		fmt.Sprintf(`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
			SELECT 'i1-' || u, u, 'phone', p, p, %[1]d FROM (
				SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0') AS u,
					'+1' || lpad((201 + (i / 10000) %% 700)::text, 3, '0') || '555' || lpad((i %% 10000)::text, 4, '0') AS p
				FROM generate_series(0, %[2]d - 1, 4) AS i) AS x`, now, n),
		fmt.Sprintf(`INSERT INTO identities (id, user_id, kind, value, value_norm, created_at)
			SELECT CASE WHEN i %% 4 = 0 THEN 'i2-' ELSE 'i1-' END || u, u, 'username', v, v, %[1]d FROM (
				SELECT i, '00000000-0000-4000-8000-' || lpad(i::text, 12, '0') AS u, (%[3]s)[i %% 16 + 1] || '_' || i::text AS v
				FROM generate_series(0, %[2]d - 1, 10) AS i) AS x`, now, n, arr(benchLast)),
		fmt.Sprintf(`INSERT INTO passwords (user_id, hash, created_at, updated_at, expire_after, set_by_admin)
			SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'), 'bcrypt-sha512$x', %[1]d, %[1]d, %[1]d, 1
			FROM generate_series(0, %[2]d - 1, 3) AS i`, now, n),
		`COMMIT`,
		`SET session_replication_role = DEFAULT`,
		`VACUUM ANALYZE`,
	}
	for _, q := range steps {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			_, _ = conn.ExecContext(ctx, `ROLLBACK`)
			return fmt.Errorf("%.80s: %w", strings.TrimSpace(q), err)
		}
	}
	return nil
}

// OpenSearchBenchPG opens a PostgreSQL store holding n users from
// fillSearchUsersSQL, in database "search<n>" of the benchmark cluster:
// filled on the first run, reused by the next ones with
// LATCHKEY_BENCH_PGDIR set.
func OpenSearchBenchPG(b *testing.B, n int) *Store {
	b.Helper()
	ctx := context.Background()
	c := startBenchPG(b)
	url, err := c.EnsureDatabase(ctx, fmt.Sprintf("search%d", n))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	have, err := s.CountUsers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	switch {
	case have == n:
		b.Logf("reusing the %d users in %s", n, url)
	case have == 0:
		start := time.Now()
		if err := fillSearchUsersSQL(ctx, s.db, n, time.Now().UnixMilli()); err != nil {
			b.Fatal(err)
		}
		var ids int64
		_ = s.db.QueryRow(`SELECT COUNT(*) FROM identities`).Scan(&ids)
		b.Logf("filled %d users (%d login IDs) in %s", n, ids, time.Since(start).Round(time.Millisecond))
	default:
		b.Fatalf("%s has %d users, want 0 or %d", url, have, n)
	}
	return s
}

// listBenchQueries are the Users list without a search (first page, a
// deep page, filters) and the one- and two-character prefix searches,
// the "under 10 ms" targets; searchBenchQueries adds the
// substring searches.
var listBenchQueries = []ListUsersParams{
	{},
	{After: "500000"},
	{Search: "j"},
	{Search: "jo"},
	{Search: "m"},
	{Search: "zz"},
	{Search: "+1"},
	{Search: "ch", After: "500000"},
}

func describeParams(p ListUsersParams) string {
	var parts []string
	if p.Search != "" {
		parts = append(parts, fmt.Sprintf("search %q", p.Search))
	}
	if p.Filters.Disabled {
		parts = append(parts, "disabled")
	}
	if p.Filters.MustChange {
		parts = append(parts, "must change")
	}
	if p.After != "" {
		parts = append(parts, "after "+p.After)
	}
	if len(parts) == 0 {
		return "first page"
	}
	return strings.Join(parts, ", ")
}

// recordingQueryer passes statements through and keeps them, so that the
// benchmark can EXPLAIN ANALYZE what ListUsers really ran (one or two
// queries).
type recordingQueryer struct {
	queryer
	queries []string
	args    [][]any
}

func (r *recordingQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.queries, r.args = append(r.queries, query), append(r.args, args)
	return r.queryer.QueryContext(ctx, query, args...)
}

// explainList runs EXPLAIN (ANALYZE, BUFFERS) of the list query p runs
// and returns the plan and the shared buffers (8 kB pages) it touched,
// a measure of the query's work that does not depend on the machine's load.
func explainList(b *testing.B, s *Store, p ListUsersParams) (string, int) {
	ctx := context.Background()
	rec := &recordingQueryer{queryer: s.db}
	t := &Tx{q: pgQueryer{rec}}
	if _, err := t.ListUsers(ctx, p); err != nil {
		b.Fatal(err)
	}
	var plan []string
	total := 0
	for i, q := range rec.queries {
		rows, err := s.db.QueryContext(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+q, rec.args[i]...)
		if err != nil {
			b.Fatal(err)
		}
		buffers := -1
		plan = append(plan, fmt.Sprintf("-- statement %d of %d", i+1, len(rec.queries)))
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				b.Fatal(err)
			}
			plan = append(plan, line)
			// The first "Buffers:" line is the top node's: the whole query's.
			if f := strings.Fields(line); buffers < 0 && len(f) > 0 && f[0] == "Buffers:" {
				buffers = 0
				for _, kv := range f[1:] {
					if k, v, ok := strings.Cut(kv, "="); ok && (k == "hit" || k == "read") {
						n, _ := strconv.Atoi(v)
						buffers += n
					}
				}
			}
		}
		rows.Close()
		total += max(buffers, 0)
	}
	return strings.Join(plan, "\n"), total
}

// BenchmarkSearch1MPostgres is BenchmarkSearch1M on PostgreSQL: 1,000,000
// users (about 1.35 million login IDs) filled once, then a first page
// (51 rows) of each query: the Users list without a search and the
// prefix searches (listBenchQueries, target p95 < 10 ms), and the
// substring searches (searchBenchQueries); p50 and p95 per query.
// LATCHKEY_BENCH_EXPLAIN=1 logs each query's plan.
//
//	LATCHKEY_BENCH_PGDIR=/tmp/latchkey-bench-pg go test ./store -run '^$' -bench Search1MPostgres -benchtime 200x -timeout 60m -v
func BenchmarkSearch1MPostgres(b *testing.B) {
	s := OpenSearchBenchPG(b, 1_000_000)
	ctx := context.Background()
	all := append(append([]ListUsersParams(nil), listBenchQueries...), searchBenchQueries...)
	if os.Getenv("LATCHKEY_BENCH_EXPLAIN") == "1" {
		for _, p := range all {
			p.Limit = 51
			plan, _ := explainList(b, s, p)
			b.Logf("EXPLAIN ANALYZE, %s:\n%s", describeParams(p), plan)
		}
	}
	type result struct {
		name          string
		rows, buffers int
		p50, p95      time.Duration
	}
	var results []result
	bench := func(prefix string, qs []ListUsersParams) {
		for i, p := range qs {
			p.Limit = 51
			name := fmt.Sprintf("%s%02d", prefix, i)
			b.Run(name, func(b *testing.B) {
				var times []time.Duration
				n := 0
				for b.Loop() {
					t0 := time.Now()
					rows, err := s.ListUsers(ctx, p)
					if err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
					n = len(rows)
				}
				sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
				_, buffers := explainList(b, s, p)
				r := result{name: name + " " + describeParams(p), rows: n, buffers: buffers, p50: times[len(times)/2], p95: times[len(times)*95/100]}
				b.ReportMetric(float64(n), "rows")
				b.ReportMetric(float64(buffers), "buffers")
				b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(r.p95.Microseconds())/1000, "p95-ms")
				results = append(results, r)
			})
		}
	}
	bench("List", listBenchQueries)
	bench("Search", searchBenchQueries)
	// The Users list's "about N users" line: the bounded count that each
	// page with a search or a filter runs beside the page.
	for i, p := range searchBenchQueries {
		name := fmt.Sprintf("Count%02d", i)
		b.Run(name, func(b *testing.B) {
			var times []time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				var err error
				if n, _, err = s.CountUsersBounded(ctx, p, countBoundForBench); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			r := result{name: name + " count, " + describeParams(p), rows: n, p50: times[len(times)/2], p95: times[len(times)*95/100]}
			b.ReportMetric(float64(n), "counted")
			b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.p95.Microseconds())/1000, "p95-ms")
			results = append(results, r)
		})
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "load average %s\n| query | rows | p50 ms | p95 ms | buffers |\n|---|---|---|---|---|\n", loadAvg())
	for _, r := range results {
		fmt.Fprintf(&sb, "| %s | %d | %.2f | %.2f | %d |\n", r.name, r.rows, float64(r.p50.Microseconds())/1000, float64(r.p95.Microseconds())/1000, r.buffers)
	}
	b.Log("\n" + sb.String())
}

func loadAvg() string {
	bs, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(bs))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
