package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"

	"latchkey/store"
)

// BusyRetryAfter is the Retry-After, in seconds, of a 503 for a busy
// database (the same as the rest of Latchkey's: a write waited its whole
// budget, so the jam is not a matter of milliseconds).
const BusyRetryAfter = 5

// busyKey marks a request's context with a flag that storage sets when a
// write failed with store.ErrBusy. The library turns every storage error
// into server_error (HTTP 500) or worse, invalid_grant; the flag lets the
// provider answer 503 temporarily_unavailable with Retry-After instead.
type busyKey struct{}

func withBusyFlag(r *http.Request) (*http.Request, *atomic.Bool) {
	b := new(atomic.Bool)
	return r.WithContext(context.WithValue(r.Context(), busyKey{}, b)), b
}

// noteBusy records on ctx's flag that err means a busy database, and
// returns err unchanged.
func noteBusy(ctx context.Context, err error) error {
	if err != nil && store.IsBusy(err) {
		if b, ok := ctx.Value(busyKey{}).(*atomic.Bool); ok {
			b.Store(true)
		}
	}
	return err
}

// writeBusy answers an OAuth endpoint whose write found the database busy:
// 503 with Retry-After and the RFC 6749 error temporarily_unavailable.
func writeBusy(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.Itoa(BusyRetryAfter))
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable",
		"error_description": "The server is busy right now. Try again in a few seconds."})
}
