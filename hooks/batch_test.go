package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// orderedReceiver is a webhook endpoint that keeps the user IDs of the
// events it receives, in arrival order; onRequest (if set) runs first.
type orderedReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	got       []int
	onRequest func(id int)
}

func newOrderedReceiver(t *testing.T) *orderedReceiver {
	r := &orderedReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev struct {
			Payload struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"payload"`
		}
		_ = json.NewDecoder(req.Body).Decode(&ev)
		id, _ := strconv.Atoi(ev.Payload.User.ID)
		if r.onRequest != nil {
			r.onRequest(id)
		}
		r.mu.Lock()
		r.got = append(r.got, id)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *orderedReceiver) ids() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...)
}

// queueEvents records n user.created events (user IDs 0..n-1) in one
// transaction.
func (e *env) queueEvents(n int) {
	e.t.Helper()
	ctx := context.Background()
	err := e.st.InTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			if err := e.svc.Record(ctx, tx, admin, account.Event{Type: UserCreated, UserID: fmt.Sprint(i),
				Payload: map[string]any{"user": map[string]any{"id": fmt.Sprint(i)}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitSucceeded(n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d deliveries succeeded", e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchHandsBackWhenLeaseRunsShort: a hook's deliveries are claimed
// in batches, and an attempt starts only while its claim's lease has room
// for a whole attempt. When the clock jumps past the lease mid-batch (a
// hook turned slow), the rest of the batch is handed back, still due and
// in its place, and claimed afresh: every attempt starts under a live
// lease, and every event goes out once, in order.
func TestBatchHandsBackWhenLeaseRunsShort(t *testing.T) {
	e := newEnv(t, "")
	var skew atomic.Int64
	e.svc.Now = func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) }
	r := newOrderedReceiver(t)
	var mu sync.Mutex // the receiver's goroutines write, the test reads
	jumped := 0
	var shortLeases []string
	r.onRequest = func(id int) {
		mu.Lock()
		defer mu.Unlock()
		var until int64
		if err := e.st.DB().QueryRow(`SELECT d.next_attempt_at FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
			WHERE e.user_id = ?`, strconv.Itoa(id)).Scan(&until); err != nil {
			t.Error(err)
		}
		if left := time.UnixMilli(until).Sub(e.svc.Now()); left < e.svc.lease()-16*time.Second {
			shortLeases = append(shortLeases, fmt.Sprintf("event %d with %s left", id, left.Round(time.Second)))
		}
		if id == 5 || id == 20 {
			skew.Add(int64(e.svc.lease() + 10*time.Second)) // the attempt "took" longer than the lease
			jumped++
		}
	}
	e.addHook(r.URL, WebhookInput{Events: []string{UserCreated}})
	const n = 40
	e.queueEvents(n)
	e.run()
	e.waitSucceeded(n)
	got := r.ids()
	if len(got) != n {
		t.Fatalf("%d requests for %d events (each once): %v", len(got), n, got)
	}
	for i, id := range got {
		if id != i {
			t.Fatalf("request %d was event %d: out of order %v", i, id, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if jumped != 2 || len(shortLeases) != 0 {
		t.Fatalf("clock jumped %d times; attempts started on a lease too short: %v", jumped, shortLeases)
	}
}

// TestBatchShutdownHandsBack: a shutdown in the middle of a batch records
// what was delivered and hands the rest back due at once; the next start
// delivers them, in order.
func TestBatchShutdownHandsBack(t *testing.T) {
	e := newEnv(t, "")
	r := newOrderedReceiver(t)
	stopAt := make(chan struct{})
	var once sync.Once
	r.onRequest = func(id int) {
		if id == 12 {
			once.Do(func() { close(stopAt) })
		}
	}
	e.addHook(r.URL, WebhookInput{Events: []string{UserCreated}})
	const n = 30
	e.queueEvents(n)
	stop := e.run()
	<-stopAt
	stop()
	done := e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`)
	sent := len(r.ids())
	if done < 12 || done > sent || done == n {
		t.Fatalf("after shutdown: %d succeeded, %d sent", done, sent)
	}
	now := time.Now().UnixMilli()
	if late := e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > ?`, now); late != 0 {
		t.Fatalf("%d deliveries left hidden under a lease after shutdown", late)
	}
	e.run()
	e.waitSucceeded(n)
	got := r.ids()
	// At least once: an attempt cut short by the shutdown may be sent
	// again; otherwise each once, in order.
	next := 0
	for _, id := range got {
		switch {
		case id == next:
			next++
		case id == next-1:
		default:
			t.Fatalf("event %d out of order (want %d): %v", id, next, got)
		}
	}
	if next != n || len(got) > n+1 {
		t.Fatalf("delivered %d of %d in %d requests: %v", next, n, len(got), got)
	}
}

// TestBatchRecordsAnsweredAttemptsWhenReceiverStalls: when the receiver
// stalls in the middle of a batch, the attempts it already answered are
// recorded while the stalled one is still waiting, so that a crash then
// (SIGKILL) would send only the stalled attempt again, not the batch.
func TestBatchRecordsAnsweredAttemptsWhenReceiverStalls(t *testing.T) {
	e := newEnv(t, "")
	r := newOrderedReceiver(t)
	release := make(chan struct{})
	stalled := make(chan struct{})
	var once sync.Once
	const stallAt = 30
	r.onRequest = func(id int) {
		if id == stallAt {
			once.Do(func() { close(stalled) })
			<-release
		}
	}
	e.addHook(r.URL, WebhookInput{Events: []string{UserCreated}})
	const n = 40
	e.queueEvents(n)
	e.run()
	<-stalled
	// Every attempt answered before the stall is recorded within a
	// moment, while the stalled one is still in flight.
	deadline := time.Now().Add(5 * time.Second)
	for {
		done := e.count(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`)
		if done == stallAt {
			break
		}
		if done > stallAt || time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d deliveries recorded while the receiver stalls at event %d; want %d", done, stallAt, stallAt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	e.waitSucceeded(n)
	got := r.ids()
	if len(got) != n {
		t.Fatalf("%d requests for %d events: %v", len(got), n, got)
	}
	for i, id := range got {
		if id != i {
			t.Fatalf("request %d was event %d: out of order %v", i, id, got)
		}
	}
}
