package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// TestChainedDeliveriesKeepOrder: with one delivery slot, two webhooks
// with 30 queued events each, interleaved. A webhook's next delivery is
// claimed in the transaction that records the previous one (chaining), yet
// each webhook gets its events one at a time, in order, and the other
// webhook is not shut out: its first event goes out before the first
// webhook's maxChain+1-th.
func TestChainedDeliveriesKeepOrder(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.Concurrency = 1 })
	var mu sync.Mutex
	var order []string // "A3", "B0", ...
	running := map[string]int{}
	most := 0
	mk := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ev struct {
				Payload struct {
					User struct {
						ID string `json:"id"`
					} `json:"user"`
				} `json:"payload"`
			}
			_ = json.NewDecoder(r.Body).Decode(&ev)
			mu.Lock()
			running[name]++
			most = max(most, running[name])
			order = append(order, name+ev.Payload.User.ID)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running[name]--
			mu.Unlock()
		}))
	}
	a, b := mk("A"), mk("B")
	defer a.Close()
	defer b.Close()
	e.addHook(a.URL, WebhookInput{Events: []string{UserCreated}})
	e.addHook(b.URL, WebhookInput{Events: []string{UserDeleted}})
	ctx := context.Background()
	const n = 30
	err := e.st.InTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			for _, typ := range []string{UserCreated, UserDeleted} {
				if err := e.svc.Record(ctx, tx, admin, account.Event{Type: typ, UserID: fmt.Sprint(i),
					Payload: map[string]any{"user": map[string]any{"id": fmt.Sprint(i)}}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := e.run()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(order)
		mu.Unlock()
		// Every request arrived and every outcome is recorded (stopping
		// earlier would hand the last claim back, as at shutdown).
		if got >= 2*n && e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) == 2*n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries made", got, 2*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	next := map[byte]int{'A': 0, 'B': 0}
	firstB, aBeforeB := -1, 0
	for i, s := range order {
		id, _ := strconv.Atoi(s[1:])
		if id != next[s[0]] {
			t.Fatalf("delivery %d is %s, want %c%d: out of order (%v)", i, s, s[0], next[s[0]], order)
		}
		next[s[0]]++
		if s[0] == 'B' && firstB < 0 {
			firstB = i
		} else if firstB < 0 {
			aBeforeB++
		}
	}
	if len(order) != 2*n {
		t.Fatalf("%d deliveries, want %d (each once)", len(order), 2*n)
	}
	if most != 1 {
		t.Errorf("%d deliveries at once to one webhook, want 1", most)
	}
	if aBeforeB > 16 { // maxChain
		t.Errorf("%d deliveries to A before B's first, want at most 16", aBeforeB)
	}
	if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status != 'succeeded'`); n != 0 {
		t.Errorf("%d deliveries not recorded as succeeded", n)
	}
}
