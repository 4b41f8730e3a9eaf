package main

import (
	"fmt"
	"time"
)

// parseWorkerLease reads LATCHKEY_WORKER_LEASE: how long a claimed email,
// text message or webhook delivery stays hidden from the other instances'
// workers; when an instance dies mid-delivery, another takes the message
// over once the lease has run out. Empty keeps the defaults (an email: two
// send timeouts plus a minute; a webhook: its longest attempt plus 20 s).
// A lease shorter than an attempt can take lets a slow attempt be taken
// over while it is still running, so that the message goes out twice:
// shorten it only in tests, or with short timeouts.
func parseWorkerLease(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("LATCHKEY_WORKER_LEASE must be a duration of at least 1s, like 90s or 2m")
	}
	return d, nil
}
