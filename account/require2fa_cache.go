package account

import (
	"sync"
	"time"
)

// require2FACacheTTL is how long a read of the "every admin must use
// two-factor" setting is reused. The portal's gate asks on every request;
// this instance drops the cache when it changes the setting, so only a
// change made on another instance sharing the database (PostgreSQL) can
// go unseen here, and for at most this long.
const require2FACacheTTL = 2 * time.Second

// settingCache keeps one boolean setting for require2FACacheTTL. Each
// invalidate bumps a generation; a load that began before an invalidate
// does not store its (possibly stale) answer, so a change on this
// instance is seen by the very next request.
type settingCache struct {
	mu    sync.Mutex
	gen   uint64
	valid bool
	value bool
	at    time.Time
}

// get returns the cached value while fresh, else load's (cached unless an
// invalidate came while it ran). Errors are not cached.
func (c *settingCache) get(load func() (bool, error)) (bool, error) {
	c.mu.Lock()
	if c.valid && time.Since(c.at) < require2FACacheTTL {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	gen := c.gen
	c.mu.Unlock()
	start := time.Now()
	v, err := load()
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.valid, c.value, c.at = true, v, start
	}
	c.mu.Unlock()
	return v, nil
}

// invalidate forgets the cached value.
func (c *settingCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.valid = false
	c.mu.Unlock()
}
