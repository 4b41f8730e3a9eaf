package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rate limits in the database.
//
// A rate limit allows at most Limit hits per key in a sliding window,
// approximated by two fixed windows (the previous one weighted by how much
// of it still overlaps the sliding window) exactly as the in-memory
// limiter of the handlers does. In the database a key's counter is one row
// of rate_limits holding the previous and the current window's hits, and
// a hit is ONE upsert that rolls the row forward to the current window,
// decides, counts the hit only when it is allowed, and returns the row:
// atomic on both databases (the row is locked by the upsert on
// PostgreSQL; SQLite writes one at a time), so instances sharing the
// database never let more than Limit hits through together.
//
// SharesRateLimits says whether a caller should keep its counters here:
// true where several instances can share the database (PostgreSQL); on
// SQLite one process owns the file and counters in memory are exact and
// cost nothing. The methods work on both, and are tested on both.

// SharesRateLimits reports whether rate-limit counters should live in the
// database (HitRateLimits) rather than in each process's memory: true on
// PostgreSQL, where several instances share the database and counters in
// memory would let each instance allow the whole rate.
func (s *Store) SharesRateLimits() bool { return s.pg }

// RateHit is one hit to count against a rate limit.
type RateHit struct {
	// Key names the counter: the limiter and the client, hashed by the
	// caller (at most a few dozen bytes; it is the primary key).
	Key []byte
	// Limit is how many hits the sliding window allows; Window its length
	// (at least a millisecond).
	Limit  int
	Window time.Duration
}

// RateCount is a rate-limit counter as a hit left it.
type RateCount struct {
	// Allowed: the hit was within the limit, and was counted.
	Allowed bool
	// WindowStart is the start of the current fixed window; Prev and Curr
	// the hits counted in the previous and the current window.
	WindowStart time.Time
	Prev, Curr  int
}

// rateLimitHit is the upsert of HitRateLimits for n hits, built once per
// n. In the DO UPDATE clause every expression reads the row as it was
// (rate_limits.*) and the hit (excluded.*, whose updated_at is now), and
// never a parameter, so the statement is the same on both databases but
// for GREATEST/MAX:
//
//	ws   the current window: the later of the row's and the hit's (an
//	     instance whose clock lags counts into the newer window);
//	rp   the previous window's hits once the row is rolled to ws: the
//	     row's prev if it is still current, its curr if it is the window
//	     just before, else 0;
//	rc   the current window's hits: the row's curr if still current, else 0;
//	ok   rp × (w − elapsed) + (rc + 1) × w ≤ limit × w, which is the
//	     in-memory test rp × (1 − elapsed/w) + rc + 1 ≤ limit in integers
//	     (elapsed = now − ws, at least 0).
func rateLimitHit(n int, greatest string) string {
	const (
		same = `rate_limits.window_start >= excluded.window_start`
		adj  = `rate_limits.window_start = excluded.window_start - excluded.window_ms`
	)
	rp := `(CASE WHEN ` + same + ` THEN rate_limits.prev WHEN ` + adj + ` THEN rate_limits.curr ELSE 0 END)`
	rc := `(CASE WHEN ` + same + ` THEN rate_limits.curr ELSE 0 END)`
	ws := greatest + `(rate_limits.window_start, excluded.window_start)`
	elapsed := greatest + `(excluded.updated_at - ` + ws + `, 0)`
	ok := `(` + rp + ` * (excluded.window_ms - ` + elapsed + `) + (` + rc + ` + 1) * excluded.window_ms <= excluded.lim * excluded.window_ms)`
	var b strings.Builder
	b.WriteString(`INSERT INTO rate_limits (key, window_start, window_ms, lim, prev, curr, allowed, updated_at, expires_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, 0, ?, ?, ?, ?)")
	}
	b.WriteString(` ON CONFLICT (key) DO UPDATE SET
		window_start = ` + ws + `,
		window_ms = excluded.window_ms,
		lim = excluded.lim,
		prev = ` + rp + `,
		curr = ` + rc + ` + CASE WHEN ` + ok + ` THEN 1 ELSE 0 END,
		allowed = CASE WHEN ` + ok + ` THEN 1 ELSE 0 END,
		updated_at = excluded.updated_at,
		expires_at = ` + ws + ` + 2 * excluded.window_ms
		RETURNING key, window_start, prev, curr, allowed`)
	return b.String()
}

// HitRateLimits counts one hit on each counter at now, in one statement
// (one round trip), and returns each counter as the hit left it, in the
// order of hits. A hit over its limit is not counted (Allowed false), as
// in memory. Keys must be distinct. The rows are written in key order, so
// that two callers hitting the same keys cannot deadlock.
func (t *Tx) HitRateLimits(ctx context.Context, now time.Time, hits []RateHit) ([]RateCount, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(hits[a].Key, hits[b].Key) })
	nowMS := ms(now)
	args := make([]any, 0, 8*len(hits))
	for i, j := range order {
		h := hits[j]
		if i > 0 && bytes.Equal(h.Key, hits[order[i-1]].Key) {
			return nil, errors.New("store: hit rate limits: the same key twice")
		}
		w := h.Window.Milliseconds()
		if w <= 0 || len(h.Key) == 0 {
			return nil, fmt.Errorf("store: hit rate limits: bad key or window %s", h.Window)
		}
		ws := nowMS - nowMS%w
		first := 0
		if h.Limit >= 1 {
			first = 1
		}
		args = append(args, h.Key, ws, w, h.Limit, first, first, nowMS, ws+2*w)
	}
	rows, err := t.q.QueryContext(ctx, rateLimitHit(len(hits), t.greatest()), args...)
	if err != nil {
		return nil, mapErr("hit rate limits", err)
	}
	defer rows.Close()
	out := make([]RateCount, len(hits))
	found := 0
	for rows.Next() {
		var key []byte
		var ws int64
		var c RateCount
		var allowed int64
		if err := rows.Scan(&key, &ws, &c.Prev, &c.Curr, &allowed); err != nil {
			return nil, mapErr("hit rate limits", err)
		}
		c.WindowStart, c.Allowed = fromMS(ws), allowed != 0
		i := slices.IndexFunc(hits, func(h RateHit) bool { return bytes.Equal(h.Key, key) })
		if i < 0 {
			return nil, errors.New("store: hit rate limits: a key came back that was not hit")
		}
		out[i] = c
		found++
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("hit rate limits", err)
	}
	if found != len(hits) {
		return nil, fmt.Errorf("store: hit rate limits: %d of %d counters came back", found, len(hits))
	}
	return out, nil
}

// RateLimitCount returns key's counter as it is (ErrNotFound when it has
// none), without counting a hit; the caller rolls it to now.
func (t *Tx) RateLimitCount(ctx context.Context, key []byte) (RateCount, error) {
	var c RateCount
	var ws, allowed int64
	err := t.q.QueryRowContext(ctx, `SELECT window_start, prev, curr, allowed FROM rate_limits WHERE key = ?`, key).
		Scan(&ws, &c.Prev, &c.Curr, &allowed)
	c.WindowStart, c.Allowed = fromMS(ws), allowed != 0
	return c, mapErr("rate limit count", err)
}

// UndoRateHit takes back one hit counted on key in the window that holds
// now (a request refused before it did any work); a hit of an earlier
// window stays.
func (t *Tx) UndoRateHit(ctx context.Context, key []byte, now time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE rate_limits SET curr = curr - 1
		WHERE key = ? AND curr > 0 AND window_start <= ? AND window_start + window_ms > ?`, key, ms(now), ms(now))
	return mapErr("undo rate hit", err)
}

// ResetRateLimit forgets key's hits (after a successful sign-in, say).
func (t *Tx) ResetRateLimit(ctx context.Context, key []byte) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM rate_limits WHERE key = ?`, key)
	return mapErr("reset rate limit", err)
}

// PruneRateLimits deletes the counters whose hits no longer count at now
// (two windows old) and returns how many.
func (t *Tx) PruneRateLimits(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.q.ExecContext(ctx, `DELETE FROM rate_limits WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, mapErr("prune rate limits", err)
	}
	n, err := res.RowsAffected()
	return n, mapErr("prune rate limits", err)
}
