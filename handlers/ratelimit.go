package handlers

import (
	"sync"
	"time"
)

const minute = time.Minute

// Limiter allows at most Limit hits per key in each Window (a sliding log
// approximated by two fixed windows), for everything a stranger can hammer.
type Limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	keys   map[string]*window
	now    func() time.Time
	sweep  time.Time
}

type window struct {
	start      time.Time
	prev, curr int
}

// NewLimiter makes a limiter of limit hits per window.
func NewLimiter(limit int, per time.Duration) *Limiter {
	return &Limiter{limit: limit, window: per, keys: map[string]*window{}, now: time.Now}
}

// Allow counts one hit for key and reports whether it is within the limit,
// and if not, how long until it would be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.sweep) > l.window {
		for k, w := range l.keys {
			if now.Sub(w.start) > 2*l.window {
				delete(l.keys, k)
			}
		}
		l.sweep = now
	}
	w := l.keys[key]
	if w == nil {
		w = &window{start: now.Truncate(l.window)}
		l.keys[key] = w
	}
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
	// Weight the previous window by how much of it still overlaps the
	// sliding window ending now.
	frac := 1 - float64(now.Sub(w.start))/float64(l.window)
	estimate := float64(w.prev)*frac + float64(w.curr)
	if estimate+1 > float64(l.limit) {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.curr++
	return true, 0
}

// Reset forgets key's hits (after a successful sign-in, say).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}
