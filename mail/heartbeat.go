package mail

import (
	"sync/atomic"
	"time"
)

// heartbeat is the time the worker last went round its loop, for /readyz.
type heartbeat struct{ last atomic.Int64 }

func (h *heartbeat) beat() { h.last.Store(time.Now().UnixNano()) }

// Heartbeat reports when the worker last went round its loop (it does at
// least every PollInterval while it runs); zero before the first round.
func (o *Outbox) Heartbeat() time.Time {
	if n := o.hb.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
