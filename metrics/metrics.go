// Package metrics holds Latchkey's Prometheus series. Other packages record
// with the one-line functions here (ObserveHTTP, SignIn, WebhookAttempt,
// SetSignInQueue); Handler serves them, with the Go runtime, the database
// pool and the queue depths read from the store at scrape time, on the
// separate LATCHKEY_METRICS_ADDR listener.
package metrics

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"latchkey/store"
)

const namespace = "latchkey"

// Sign-in outcomes, the values of the outcome label of
// latchkey_sign_ins_total.
const (
	SignInOK       = "ok"       // signed in with a full session
	SignInWrong    = "wrong"    // unknown login ID or wrong password
	SignInLocked   = "locked"   // refused: the account is locked out
	SignInExpired  = "expired"  // password expired (forced change) or temporary password lapsed
	SignInDisabled = "disabled" // right password, disabled account
	SignInLimited  = "limited"  // refused by the per-IP or per-account rate limit
	SignInShed     = "shed"     // refused by admission control under overload
	SignInError    = "error"    // failed on our side
)

var signInOutcomes = []string{SignInOK, SignInWrong, SignInLocked, SignInExpired, SignInDisabled, SignInLimited, SignInShed, SignInError}

var (
	httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "HTTP requests by method, route pattern and status, and how long they took.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "status"})

	signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sign_ins_total",
		Help: "End-user sign-in attempts by outcome (ok, wrong, locked, expired, disabled, limited, shed, error).",
	}, []string{"outcome"})

	adminSignIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "admin_sign_ins_total",
		Help: "Portal (admin) sign-in attempts by outcome (ok, wrong, limited, shed).",
	}, []string{"outcome"})

	signInQueue = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "sign_in_queue_length",
		Help: "Sign-in attempts waiting for admission (a password hash slot).",
	})

	blockingHooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "blocking_hook_calls_total",
		Help: "Blocking hook calls (webhooks and TypeScript) by result: allowed, disallowed (a veto) or failed (timeout, unreachable, bad answer, script error).",
	}, []string{"result"})

	webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_attempts_total",
		Help: "Webhook delivery attempts by result (ok: 2xx answer; error: anything else).",
	}, []string{"result"})
)

func init() {
	for _, o := range signInOutcomes {
		signIns.WithLabelValues(o)
	}
	for _, o := range []string{SignInOK, SignInWrong, SignInLimited, SignInShed} {
		adminSignIns.WithLabelValues(o)
	}
	for _, r := range []string{"allowed", "disallowed", "failed"} {
		blockingHooks.WithLabelValues(r)
	}
	webhookAttempts.WithLabelValues("ok")
	webhookAttempts.WithLabelValues("error")
}

// ObserveHTTP records one answered request. route is the router's pattern
// (like /portal/users/:id), never the raw path, so the series stay few.
func ObserveHTTP(method, route string, status int, d time.Duration) {
	httpDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}

// SignIn counts one end-user sign-in attempt with one of the SignIn*
// outcomes.
func SignIn(outcome string) { signIns.WithLabelValues(outcome).Inc() }

// AdminSignIn counts one portal sign-in attempt (password step) with one
// of SignInOK, SignInWrong (a wrong email or password, or a paused
// account: the same answer), SignInLimited or SignInShed.
func AdminSignIn(outcome string) { adminSignIns.WithLabelValues(outcome).Inc() }

// SetSignInQueue sets how many sign-ins wait for admission now.
func SetSignInQueue(n int) { signInQueue.Set(float64(n)) }

// BlockingHook counts one blocking hook call by result ("allowed",
// "disallowed" or "failed").
func BlockingHook(result string) { blockingHooks.WithLabelValues(result).Inc() }

// WebhookAttempt counts one webhook delivery attempt.
func WebhookAttempt(ok bool) {
	if ok {
		for _, r := range []string{"allowed", "disallowed", "failed"} {
			blockingHooks.WithLabelValues(r)
		}
		webhookAttempts.WithLabelValues("ok").Inc()
	} else {
		webhookAttempts.WithLabelValues("error").Inc()
	}
}

// StatsSource reads the figures that live in the database; *store.Store
// is one.
type StatsSource interface {
	OpsStats(ctx context.Context) (*store.OpsStats, error)
}

// Options is what Handler reports on besides the process-wide series.
type Options struct {
	// DBs are the connection pools, by name (the db_name label of the
	// go_sql_* series).
	DBs map[string]*sql.DB
	// Stats, when set, is queried at each scrape for queue depths and
	// event counts.
	Stats StatsSource
	Log   *slog.Logger
}

// Handler serves the Prometheus text format: the series recorded through
// this package, the Go runtime and process, the pools, and the store's
// queue figures. Each call builds its own registry, so several servers in
// one process (tests) do not collide.
func Handler(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpDuration, signIns, adminSignIns, signInQueue, blockingHooks, webhookAttempts,
	)
	for name, db := range o.DBs {
		reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
	if o.Stats != nil {
		reg.MustRegister(&storeCollector{src: o.Stats, log: o.Log})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var (
	queueDepthDesc = prometheus.NewDesc(namespace+"_outbox_messages",
		"Outbox rows (email, webhook) by channel and state: queued/sending/pending are the backlog, failed the given-up ones.",
		[]string{"channel", "state"}, nil)
	queueAgeDesc = prometheus.NewDesc(namespace+"_outbox_oldest_age_seconds",
		"Age of the oldest outbox row by channel and state (0 when there is none).",
		[]string{"channel", "state"}, nil)
	eventsDesc = prometheus.NewDesc(namespace+"_events_written_total",
		"Events written to the event log since the database was created.", nil, nil)
	scrapeErrDesc = prometheus.NewDesc(namespace+"_store_scrape_error",
		"1 when reading the store figures failed at this scrape.", nil, nil)
)

// storeCollector queries the store at scrape time, so the figures are
// right however many processes share the database.
type storeCollector struct {
	src StatsSource
	log *slog.Logger
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
	ch <- eventsDesc
	ch <- scrapeErrDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.src.OpsStats(ctx)
	if err != nil {
		c.log.Error("metrics: read store figures", "err", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 0)
	now := time.Now()
	for _, q := range st.Queues {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.Count), q.Channel, q.State)
		age := 0.0
		if q.Count > 0 && !q.Oldest.IsZero() {
			age = max(now.Sub(q.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age, q.Channel, q.State)
	}
	ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(st.EventsWritten))
}
