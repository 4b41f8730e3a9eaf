package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"sync/atomic"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// Rate limits shared by instances.
//
// With several instances on one PostgreSQL database, counters in each
// instance's memory would let every instance allow the whole rate. When
// the store says its database is shared (store.SharesRateLimits), every
// limiter a stranger can hammer counts in the database instead: one
// atomic upsert per request, for all the limiters the request passes
// (a sign-in's per-IP and per-account counters together), so a sign-in
// pays one round trip for its limits. On SQLite nothing changes: the
// counters stay in memory.
//
// Each limiter keeps its last view of a counter in memory (Limiter.keys).
// A key over the limit in that view is refused without a round trip
// (counts only grow within a window), which also keeps a client that
// hammers one instance from turning every request into a database write.
// If the database cannot be reached the limiter counts in memory, as on
// SQLite, and logs it.

// sharedRates is the database behind the shared limiters.
type sharedRates struct {
	st *store.Store
	// mac keys the counters' names: the table holds HMACs of limiter
	// name and key, never a login ID or an address.
	mac []byte
	log *slog.Logger
	// pruneAt is when (unix ms) the next prune of old counters is due.
	pruneAt atomic.Int64
}

// ratePruneEvery is how often an instance deletes counters two windows old.
const ratePruneEvery = time.Minute

func newSharedRates(st *store.Store, secret []byte, log *slog.Logger) *sharedRates {
	if st == nil || !st.SharesRateLimits() {
		return nil
	}
	return &sharedRates{st: st, mac: account.DeriveKey(secret, "rate-limits"), log: log}
}

// key is the database key of the limiter name's counter for key.
func (r *sharedRates) key(name, key string) []byte {
	m := hmac.New(sha256.New, r.mac)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(key))
	return m.Sum(nil)[:16]
}

// maybePrune deletes old counters, in the background, at most once per
// ratePruneEvery on this instance.
func (r *sharedRates) maybePrune(now time.Time) {
	due := r.pruneAt.Load()
	if now.UnixMilli() < due || !r.pruneAt.CompareAndSwap(due, now.Add(ratePruneEvery).UnixMilli()) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if n, err := r.st.PruneRateLimits(ctx, time.Now()); err != nil {
			r.log.Debug("rate limits: prune", "err", err)
		} else if n > 0 {
			r.log.Debug("rate limits: pruned old counters", "count", n)
		}
	}()
}

// newLimiter makes a limiter of limit hits per window, shared through the
// database when the store says so. name must be unique among limiters.
func (s *Server) newLimiter(name string, limit int, per time.Duration) *Limiter {
	l := NewLimiter(limit, per)
	l.name, l.shared = name, s.rates
	return l
}

// AllowCtx is Allow with the request's context, for a shared limiter's
// round trip.
func (l *Limiter) AllowCtx(ctx context.Context, key string) (bool, time.Duration) {
	i, wait := allowAll(ctx, limiterHit{l, key})
	return i < 0, wait
}

// allowAll counts a hit on each limiter in turn, as Allow would, and
// returns the index of the first that refuses (-1: none) and its wait.
// The hits after a refusal are not counted. Shared limiters (all of hits
// share one database) count in one round trip.
func allowAll(ctx context.Context, hits ...limiterHit) (int, time.Duration) {
	if len(hits) == 0 {
		return -1, 0
	}
	r := hits[0].l.shared
	if r == nil {
		return allowLocal(hits)
	}
	// Refused in this instance's view: no need to ask. The hits before it
	// still count.
	k, kwait := len(hits), time.Duration(0)
	for i, h := range hits {
		if full, wait := h.l.over(h.key); full {
			k, kwait = i, wait
			break
		}
	}
	if k > 0 {
		batch := hits[:k]
		now := batch[0].l.now()
		rh := make([]store.RateHit, len(batch))
		for i, h := range batch {
			rh[i] = store.RateHit{Key: r.key(h.l.name, h.key), Limit: h.l.limit, Window: h.l.window}
		}
		counts, err := r.st.HitRateLimits(ctx, now, rh)
		if err != nil {
			if ctx.Err() == nil { // not just a client that went away
				r.log.Warn("rate limits: the database did not answer; counting in this instance's memory", "err", err)
			}
			if i, wait := allowLocal(batch); i >= 0 {
				return i, wait
			}
		} else {
			first, wait := -1, time.Duration(0)
			for i, h := range batch {
				h.l.remember(h.key, counts[i], now)
				if !counts[i].Allowed && first < 0 {
					first, wait = i, counts[i].WindowStart.Add(h.l.window).Sub(now)
				}
			}
			r.maybePrune(now)
			if first >= 0 {
				// In memory the hits after a refusal are never
				// counted: take back those the batch counted (a rare
				// path, so the extra round trips do not matter).
				for i, h := range batch[first+1:] {
					if counts[first+1+i].Allowed {
						h.l.UndoCtx(ctx, h.key)
					}
				}
				return first, wait
			}
		}
	}
	if k < len(hits) {
		return k, kwait
	}
	return -1, 0
}

// allowLocal is allowAll on the counters in memory.
func allowLocal(hits []limiterHit) (int, time.Duration) {
	for i, h := range hits {
		if ok, wait := h.l.Allow(h.key); !ok {
			return i, wait
		}
	}
	return -1, 0
}

// remember records the database's counter for key as this instance's view.
func (l *Limiter) remember(key string, c store.RateCount, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	l.keys[key] = &window{start: c.WindowStart, prev: c.Prev, curr: c.Curr}
}

// UndoCtx is Undo with the request's context: on a shared limiter the
// hit is taken back in the database too.
func (l *Limiter) UndoCtx(ctx context.Context, key string) {
	l.Undo(key)
	if l.shared == nil {
		return
	}
	if err := l.shared.st.UndoRateHit(ctx, l.shared.key(l.name, key), l.now()); err != nil {
		l.shared.log.Warn("rate limits: undo a hit", "err", err)
	}
}

// ResetCtx is Reset with the request's context. On a shared limiter a
// counter whose only hit in sight is the request's own (one hit in the
// current window, none in the previous one, as this instance last saw it)
// is left as it is: a successful sign-in then costs no second round trip,
// and the key keeps that one hit until its window passes. A counter with
// more hits is deleted in the database.
func (l *Limiter) ResetCtx(ctx context.Context, key string) {
	if l.shared == nil {
		l.Reset(key)
		return
	}
	l.mu.Lock()
	w, ok := l.keys[key]
	lone := ok && l.rolled(*w, l.now()).prev == 0 && l.rolled(*w, l.now()).curr <= 1
	l.mu.Unlock()
	if lone {
		return
	}
	l.Reset(key)
	if err := l.shared.st.ResetRateLimit(ctx, l.shared.key(l.name, key)); err != nil {
		l.shared.log.Warn("rate limits: reset a counter", "err", err)
	}
}
