package metrics

import (
	"sync/atomic"
	"time"
)

// Heartbeat is the time a worker last went round its loop, for /readyz.
// The zero value is ready to use.
type Heartbeat struct{ last atomic.Int64 }

// Beat records a round now.
func (h *Heartbeat) Beat() { h.last.Store(time.Now().UnixNano()) }

// Last is the time of the last round; zero before the first.
func (h *Heartbeat) Last() time.Time {
	if n := h.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
