package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/handlers/adminapi"
	"latchkey/metrics"
	"latchkey/views"
)

// Admission is the bounded queue in front of password verification.
//
// Verifying a bcrypt hash is the one expensive thing a stranger can ask
// for. At most Slots requests verify at once (the core count plus one, so
// a core never idles while a request does its few database writes); up to
// a bound more wait their turn in arrival order, and the rest are refused
// at once with 503 and Retry-After instead of joining a queue whose wait
// would pass the latency target. The bound follows the measured time a
// request holds its slot: Slots × Target ÷ that time. A refused request
// has done no work: it is not a failed attempt, and it spends none of the
// client's rate limits.
type Admission struct {
	slots   chan struct{}
	waiting atomic.Int64
	// fixedQueue, when > 0, is the queue bound instead of the derived one.
	fixedQueue int
	target     time.Duration
	// service is a moving average of how long a request holds a slot, in
	// nanoseconds.
	service atomic.Int64
	// refusals counts refusals for the log, reported at most every 10 s.
	refusals refusalLog
}

// refusalLog counts refusals and says when to report them.
type refusalLog struct {
	mu   sync.Mutex
	n    int
	last time.Time
}

// note counts a refusal; it returns the count to report (and resets it)
// when the last report is 10 s old.
func (r *refusalLog) note() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if time.Since(r.last) < 10*time.Second {
		return 0, false
	}
	n := r.n
	r.n, r.last = 0, time.Now()
	return n, true
}

// Admission defaults: a verification at bcrypt cost 10 takes 50-100 ms
// of one core; a sign-in should wait at most about a second.
const (
	DefaultSignInTarget = time.Second
	initialService      = 80 * time.Millisecond
	maxSignInQueue      = 4096
)

// NewAdmission makes a queue with slots concurrent verifications (0: the
// core count plus one) and a latency target (0: DefaultSignInTarget).
// queue > 0 fixes the number that may wait instead of deriving it.
func NewAdmission(slots int, target time.Duration, queue int) *Admission {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0) + 1
	}
	if target <= 0 {
		target = DefaultSignInTarget
	}
	a := &Admission{slots: make(chan struct{}, slots), fixedQueue: queue, target: target}
	a.service.Store(int64(initialService))
	return a
}

// Slots is how many verifications run at once.
func (a *Admission) Slots() int { return cap(a.slots) }

// QueueBound is how many requests may wait now.
func (a *Admission) QueueBound() int {
	if a.fixedQueue > 0 {
		return a.fixedQueue
	}
	svc := max(time.Duration(a.service.Load()), time.Millisecond)
	n := int(float64(cap(a.slots)) * float64(a.target) / float64(svc))
	return min(max(n, cap(a.slots)), maxSignInQueue)
}

// retryAfter is the wait a refused client is told: about how long the
// requests ahead of it take, at least one second.
func (a *Admission) retryAfter() time.Duration {
	svc := time.Duration(a.service.Load())
	ahead := int64(a.waiting.Load()) + int64(cap(a.slots))
	d := time.Duration(float64(svc) * float64(ahead) / float64(cap(a.slots)))
	return max(d, time.Second)
}

// BusyError is a refusal: the queue is full.
type BusyError struct {
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("busy: try again in %d seconds", e.Seconds())
}

// Seconds is RetryAfter rounded up to whole seconds, as Retry-After says it.
func (e *BusyError) Seconds() int { return int(math.Ceil(e.RetryAfter.Seconds())) }

// Enter waits for a slot and returns the function that frees it; it
// returns *BusyError at once when the queue is full, or ctx's error when
// the client goes away while waiting.
func (a *Admission) Enter(ctx context.Context) (func(), error) {
	select {
	case a.slots <- struct{}{}:
		return a.leave(time.Now()), nil
	default:
	}
	n := a.waiting.Add(1)
	if n > int64(a.QueueBound()) {
		a.waiting.Add(-1)
		return nil, &BusyError{RetryAfter: a.retryAfter()}
	}
	metrics.SetSignInQueue(int(n))
	defer func() { metrics.SetSignInQueue(int(a.waiting.Add(-1))) }()
	select {
	case a.slots <- struct{}{}:
		return a.leave(time.Now()), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *Admission) leave(start time.Time) func() {
	var once atomic.Bool
	return func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
		d := time.Since(start)
		<-a.slots
		// Exponential moving average, weight 1/8 for the new sample.
		for {
			old := a.service.Load()
			nv := old + (int64(d)-old)/8
			if a.service.CompareAndSwap(old, nv) {
				return
			}
		}
	}
}

// admit is Enter for a handler: on refusal it sets Retry-After and gives
// back the hits the request counted on limiters (a refusal spends
// nothing), and returns the *BusyError for the handler to render.
func (s *Server) admit(c echo.Context, refund ...limiterHit) (func(), *BusyError, error) {
	release, err := s.admission.Enter(c.Request().Context())
	var be *BusyError
	if errors.As(err, &be) {
		// Every refused password check counts as a shed sign-in: most
		// are sign-ins, and the rest (a password change) are refused for
		// the same reason.
		metrics.SignIn(metrics.SignInShed)
		c.Response().Header().Set("Retry-After", fmt.Sprint(be.Seconds()))
		for _, h := range refund {
			h.l.UndoCtx(c.Request().Context(), h.key)
		}
		if n, ok := s.admission.refusals.note(); ok {
			s.log.Warn("password checks refused: the queue is full", "refused_since_last_report", n,
				"slots", s.admission.Slots(), "queue", s.admission.QueueBound(), "retry_after", be.Seconds())
		}
		return nil, be, nil
	}
	return release, nil, err
}

// limiterHit is a hit counted on a limiter, to give back on refusal.
type limiterHit struct {
	l   *Limiter
	key string
}

// busyMessage is what the sign-in and password pages show on refusal.
func busyMessage(be *BusyError) string {
	n := be.Seconds()
	unit := "seconds"
	if n == 1 {
		unit = "second"
	}
	return fmt.Sprintf("Latchkey is busy right now. Try again in %d %s.", n, unit)
}

// busyHTTPError is the refusal as an error for pages without their own
// message slot (the error page shows it).
func busyHTTPError(be *BusyError) error {
	return echo.NewHTTPError(http.StatusServiceUnavailable, busyMessage(be))
}

// Undo takes back one hit counted for key in the current window (a
// request refused before doing any work).
func (l *Limiter) Undo(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.keys[key]; w != nil && w.curr > 0 {
		w.curr--
	}
}

// databaseRetryAfter is the Retry-After of a 503 for a busy database: a
// write waited its whole budget, so the jam is not a matter of
// milliseconds.
const databaseRetryAfter = adminapi.BusyRetryAfter

// busyDatabase answers a request whose write could not get the database
// within its budget: 503 with Retry-After, not a 500. The Admin API gets
// errorName ServiceUnavailable, reason DatabaseBusy.
func (s *Server) busyDatabase(err error, c echo.Context) {
	s.log.Warn("database busy", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	c.Response().Header().Set("Retry-After", fmt.Sprint(databaseRetryAfter))
	const msg = "Latchkey is busy right now. Try again in a few seconds."
	code := http.StatusServiceUnavailable
	if strings.HasPrefix(c.Path(), "/_api/") || strings.HasPrefix(c.Request().URL.Path, "/_api/") {
		_ = c.JSON(code, map[string]any{"errors": []map[string]any{{
			"message":    msg,
			"extensions": map[string]any{"errorName": "ServiceUnavailable", "reason": "DatabaseBusy", "info": map[string]any{"retry_after": databaseRetryAfter}},
		}}})
		return
	}
	if strings.Contains(c.Request().Header.Get("Accept"), "application/json") && !strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		_ = c.JSON(code, map[string]any{"error": msg})
		return
	}
	l := views.LayoutData{Title: http.StatusText(code), AppName: s.cfg.AppName}
	if rerr := render(c, code, views.ErrorPage(l, code, msg)); rerr != nil {
		s.log.Error("render error page", "err", rerr)
	}
}
