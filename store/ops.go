package store

import (
	"context"
	"database/sql"
	"time"
)

// QueueStat is the number of outbox rows of one channel in one state, and
// when the oldest of them was created (zero when there is none).
type QueueStat struct {
	Channel string
	State   string
	Count   int64
	Oldest  time.Time
}

// OpsStats are the figures an operator watches that live in the database.
type OpsStats struct {
	// Queues lists every channel's backlog and failed states, zero rows
	// included, so a series never vanishes when a queue drains.
	Queues []QueueStat
	// EventsWritten is the number of events ever written (the highest
	// sequence number: sequences only grow).
	EventsWritten int64
}

// queueStates lists the states reported per channel, each with a query
// that an index answers: outbox rows (email and sms share mail_outbox)
// through mail_outbox_due (status first), webhook rows through the
// partial indexes on pending and failed.
var queueStates = func() []struct{ channel, state, query string } {
	var out []struct{ channel, state, query string }
	for _, ch := range []string{ChannelEmail, ChannelSMS} {
		for _, st := range []string{OutboxQueued, OutboxSending, OutboxFailed} {
			out = append(out, struct{ channel, state, query string }{ch, st,
				`SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE status = '` + st + `' AND channel = '` + ch + `'`})
		}
	}
	return append(out,
		struct{ channel, state, query string }{"webhook", DeliveryPending, `SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'`},
		struct{ channel, state, query string }{"webhook", DeliveryFailed, `SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'failed'`},
	)
}()

// OpsStats reads the queue depths and the event count for the metrics
// endpoint; it runs at every scrape, so each query is an index lookup.
func (t *Tx) OpsStats(ctx context.Context) (*OpsStats, error) {
	out := &OpsStats{}
	for _, q := range queueStates {
		var n int64
		var oldest sql.NullInt64
		if err := t.q.QueryRowContext(ctx, q.query).Scan(&n, &oldest); err != nil {
			return nil, mapErr("ops stats", err)
		}
		s := QueueStat{Channel: q.channel, State: q.state, Count: n}
		if oldest.Valid {
			s.Oldest = fromMS(oldest.Int64)
		}
		out.Queues = append(out.Queues, s)
	}
	if err := t.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&out.EventsWritten); err != nil {
		return nil, mapErr("ops stats", err)
	}
	return out, nil
}
