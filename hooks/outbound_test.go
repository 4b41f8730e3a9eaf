package hooks

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/outbound"
)

// A webhook saved while private addresses were allowed (or whose name
// resolved to a public address then) is refused when it is dialled under
// the default policy: the receiver gets nothing, and the delivery log
// says why without a dial error to map the network with.
func TestWebhookRefusedAtDialTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dial.db")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e1 := newEnv(t, path)
	w, _ := e1.addHook(srv.URL, WebhookInput{AllEvents: true})
	e1.st.Close()

	e2 := newEnv(t, path, func(c *Config) { c.Outbound = outbound.Policy{} })
	if _, err := e2.createUser("email", "dial@example.com", nil); err != nil {
		t.Fatal(err)
	}
	e2.run()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := e2.svc.Deliveries(ctx, w.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Attempts > 0 {
			if !strings.Contains(ds[0].LastError, "private") || strings.Contains(ds[0].LastError, "127.0.0.1") {
				t.Fatalf("delivery error %q", ds[0].LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt recorded: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case d := <-rcv.got:
		t.Fatalf("the loopback receiver got %v", d.Env["type"])
	default:
	}
}

// A blocking hook pointing at a private address refuses the change with
// a clear reason and never reaches the address.
func TestBlockingHookRefusedAtDialTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "block.db")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e1 := newEnv(t, path)
	e1.addHook(srv.URL, WebhookInput{Blocking: true})
	e1.st.Close()
	e2 := newEnv(t, path, func(c *Config) { c.Outbound = outbound.Policy{} })
	_, err := e2.createUser("email", "blocked@example.com", nil)
	ae, ok := account.AsError(err)
	if !ok || !strings.Contains(ae.Message, "private") {
		t.Fatalf("error %v, want a refusal naming the private address", err)
	}
	if n := e2.count(`SELECT COUNT(*) FROM users`); n != 0 {
		t.Fatalf("%d users created", n)
	}
	select {
	case d := <-rcv.got:
		t.Fatalf("the loopback receiver got %v", d.Env["type"])
	default:
	}
}

func TestCreateWebhookRefusesPrivateURL(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.Outbound = outbound.Policy{} })
	for _, u := range []string{"http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://0.0.0.0/", "http://10.0.0.1/", "http://localhost:8080/"} {
		_, _, err := e.svc.CreateWebhook(context.Background(), admin, WebhookInput{URL: u, AllEvents: true})
		if fe := account.FieldErrors(err); !strings.Contains(fe["url"], "private network") {
			t.Errorf("%s: errors %v", u, fe)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM webhooks`); n != 0 {
		t.Fatalf("%d webhooks stored", n)
	}
}
