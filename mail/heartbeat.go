package mail

import "time"

// Heartbeat reports when the worker last went round its loop (it does at
// least every PollInterval while it runs); zero before the first round.
func (o *Outbox) Heartbeat() time.Time { return o.hb.Last() }
