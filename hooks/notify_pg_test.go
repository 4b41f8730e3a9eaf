package hooks

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"latchkey/store/pgtest"
)

// Two instances on one PostgreSQL database: a user created on A (whose
// worker is not running) reaches the webhook through B's worker within
// 2 s, though B otherwise looks for due deliveries once a minute: A's
// commit wakes B through LISTEN/NOTIFY.
func TestPostgresDeliveryWakesOtherInstance(t *testing.T) {
	url := pgtest.Database(t)
	var mu sync.Mutex
	var got []string
	arrived := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type    string `json:"type"`
			Payload struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"payload"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev.Type+" "+ev.Payload.User.ID)
		mu.Unlock()
		arrived <- struct{}{}
	}))
	defer recv.Close()
	a := newEnv(t, url)
	b := newEnv(t, url)
	a.addHook(recv.URL, WebhookInput{Events: []string{"user.created"}})
	b.run()
	// Let B's first round and its listener's connect wake pass, so that
	// what follows can only be woken by a notification.
	time.Sleep(time.Second)

	for i, login := range []string{"first@example.com", "second@example.com"} {
		start := time.Now()
		u, err := a.createUser("email", login, nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-arrived:
		case <-time.After(2 * time.Second):
			t.Fatalf("user.created %d on A not delivered by B within 2 s (B looks once a minute)", i+1)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if last != "user.created "+u.ID {
			t.Fatalf("delivered %q, want user.created %s", last, u.ID)
		}
		t.Logf("event %d: recorded on A, delivered by B after %s", i+1, time.Since(start).Round(time.Millisecond))
	}
}
