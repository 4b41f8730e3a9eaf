package hooks

import (
	"context"
	"errors"
	"testing"

	"latchkey/account"
	"latchkey/store"
)

// failingEvents wraps the real event recorder and fails on one event
// type, after writing it (after) or instead of writing it.
type failingEvents struct {
	inner account.Events
	typ   string
	after bool
}

var errInjected = errors.New("injected failure")

func (f failingEvents) Record(ctx context.Context, tx *store.Tx, actor account.Actor, ev account.Event) error {
	if ev.Type == f.typ && !f.after {
		return errInjected
	}
	if err := f.inner.Record(ctx, tx, actor, ev); err != nil {
		return err
	}
	if ev.Type == f.typ {
		return errInjected
	}
	return nil
}

func (f failingEvents) Blocking(ctx context.Context, actor account.Actor, ev account.Event) error {
	return f.inner.Blocking(ctx, actor, ev)
}

// TestEventCommitsWithTheChange: user.created is written in the user's own
// transaction. A failure right after the event is written leaves no user,
// no event and no webhook delivery; a failure in the event write leaves no
// user. Writing the event in a transaction of its own, before or after the
// user's, fails one of the two.
func TestEventCommitsWithTheChange(t *testing.T) {
	for _, after := range []bool{true, false} {
		e := newEnv(t, "")
		e.addHook("http://127.0.0.1:9/hook", WebhookInput{AllEvents: true})
		e.acct.SetEvents(failingEvents{inner: e.svc, typ: UserCreated, after: after})
		_, err := e.createUser("email", "atomic@example.com", nil)
		if !errors.Is(err, errInjected) {
			t.Fatalf("after=%v: create: %v, want the injected failure", after, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM users`); n != 0 {
			t.Errorf("after=%v: %d users exist", after, n)
		}
		if n := e.count(`SELECT COUNT(*) FROM identities`); n != 0 {
			t.Errorf("after=%v: %d identities exist", after, n)
		}
		if n := e.count(`SELECT COUNT(*) FROM events WHERE type LIKE 'user.%' OR type LIKE 'admin_api.%'`); n != 0 {
			t.Errorf("after=%v: %d events exist", after, n)
		}
		if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries`); n != 0 {
			t.Errorf("after=%v: %d webhook deliveries exist", after, n)
		}
		// Without the failure the same call commits all three.
		e.acct.SetEvents(e.svc)
		if _, err := e.createUser("email", "atomic@example.com", nil); err != nil {
			t.Fatal(err)
		}
		if e.count(`SELECT COUNT(*) FROM events WHERE type = 'user.created'`) != 1 || e.count(`SELECT COUNT(*) FROM webhook_deliveries`) == 0 {
			t.Fatalf("after=%v: the clean create did not record its event and delivery", after)
		}
	}
}
