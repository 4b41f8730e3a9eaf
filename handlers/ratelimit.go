package handlers

import (
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

const minute = time.Minute

// Limiter allows at most Limit hits per key in each Window (a sliding log
// approximated by two fixed windows), for everything a stranger can hammer.
//
// On a database that instances share (PostgreSQL) the counters live in the
// database (shared, ratelimit_shared.go) and keys holds this instance's
// last view of them; on SQLite they live in keys.
type Limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	keys   map[string]*window
	now    func() time.Time
	sweep  time.Time
	// name tells this limiter's counters from others' in the database;
	// shared is nil when the counters are kept in memory.
	name   string
	shared *sharedRates
}

type window struct {
	start      time.Time
	prev, curr int
}

// NewLimiter makes a limiter of limit hits per window.
func NewLimiter(limit int, per time.Duration) *Limiter {
	return &Limiter{limit: limit, window: per, keys: map[string]*window{}, now: time.Now}
}

// rolled is w moved forward to now: the current window becomes the
// previous one when a window has passed, and both are empty after two.
func (l *Limiter) rolled(w window, now time.Time) window {
	if elapsed := now.Sub(w.start); elapsed >= l.window {
		periods := int(elapsed / l.window)
		if periods == 1 {
			w.prev = w.curr
		} else {
			w.prev = 0
		}
		w.curr = 0
		w.start = w.start.Add(time.Duration(periods) * l.window)
	}
	return w
}

// full reports whether one more hit would pass the limit in the sliding
// window ending now (the previous window weighted by how much of it still
// overlaps), and if so how long until it would not.
func (l *Limiter) full(w window, now time.Time) (bool, time.Duration) {
	// At most 1: a start after now (a database window from an instance
	// whose clock runs ahead) weighs the previous window fully.
	frac := min(1, 1-float64(now.Sub(w.start))/float64(l.window))
	if float64(w.prev)*frac+float64(w.curr)+1 > float64(l.limit) {
		return true, w.start.Add(l.window).Sub(now)
	}
	return false, 0
}

// Allow counts one hit for key and reports whether it is within the limit,
// and if not, how long until it would be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepLocked(now)
	w := l.keys[key]
	if w == nil {
		w = &window{start: now.Truncate(l.window)}
		l.keys[key] = w
	}
	*w = l.rolled(*w, now)
	if full, wait := l.full(*w, now); full {
		return false, wait
	}
	w.curr++
	return true, 0
}

// sweepLocked forgets, once a window, the keys whose hits no longer count.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.sweep) > l.window {
		for k, w := range l.keys {
			if now.Sub(w.start) > 2*l.window {
				delete(l.keys, k)
			}
		}
		l.sweep = now
	}
}

// over reports, without counting a hit, whether key is at its limit, and
// if so how long until a hit would be allowed. On a shared limiter it
// answers from this instance's last view of the counter, without a round
// trip: counts only grow within a window, so a key over the limit in that
// view is over it in the database too.
func (l *Limiter) over(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil {
		return false, 0
	}
	now := l.now()
	return l.full(l.rolled(*w, now), now)
}

// Reset forgets key's hits (after a successful sign-in, say). On a shared
// limiter use ResetCtx.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}

// limited counts a hit for key and, when it is over the limit, sets
// Retry-After on the answer and reports true: the caller then answers 429.
func limited(c echo.Context, l *Limiter, key string) bool {
	ok, wait := l.AllowCtx(c.Request().Context(), key)
	if !ok {
		setRetryAfter(c, wait)
	}
	return !ok
}

func setRetryAfter(c echo.Context, wait time.Duration) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
}
