package oidc

import (
	"context"
	"sync"
	"time"

	"latchkey/store"
)

// clientTTL is how long an application read from the store serves token
// requests before it is read again. Changes made through this process
// (edit, disable, rotate secret, delete) take effect at once: they drop
// the entry. A change made by another instance on the same database
// (PostgreSQL) takes effect there within clientTTL; disabling an app also
// revokes its tokens in the database, which every instance checks on each
// refresh, so only a code issued before the change can still be exchanged
// in that window, as it could have been a moment before the change.
const clientTTL = 2 * time.Second

// clientCache keeps the applications that token requests name in memory:
// the library asks for the client two or three times per request, and
// every exchange and refresh needs it. Only applications that exist are
// kept (a stranger's unknown client_ids are not), so it holds at most one
// entry per registered application.
type clientCache struct {
	mu  sync.Mutex
	m   map[string]clientEntry
	gen uint64 // bumped by every forget: a read that overlapped one is not kept
	ttl time.Duration
}

type clientEntry struct {
	c  *store.OIDCClient
	at time.Time
}

// clientByID returns an application, from memory when it was read less
// than clientTTL ago. The returned client is shared: callers must not
// change it.
func (p *Provider) clientByID(ctx context.Context, id string) (*store.OIDCClient, error) {
	cc := &p.clients
	now := p.now()
	cc.mu.Lock()
	e, ok := cc.m[id]
	gen := cc.gen
	cc.mu.Unlock()
	if ok && now.Sub(e.at) < cc.ttl && now.Sub(e.at) >= 0 {
		return e.c, nil
	}
	c, err := p.st.OIDCClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.gen == gen {
		if cc.m == nil {
			cc.m = map[string]clientEntry{}
		}
		cc.m[id] = clientEntry{c: c, at: now}
	}
	cc.mu.Unlock()
	return c, nil
}

// forgetClient drops an application from memory; call it after a change
// to it commits (and it is harmless before).
func (p *Provider) forgetClient(id string) {
	cc := &p.clients
	cc.mu.Lock()
	delete(cc.m, id)
	cc.gen++
	cc.mu.Unlock()
}
