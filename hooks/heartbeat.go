package hooks

import "time"

// Heartbeat reports when the webhook worker last went round its loop (it
// does at least once a minute while it runs); zero before the first round.
func (s *Service) Heartbeat() time.Time { return s.hb.Last() }
