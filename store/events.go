package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Event is one row of the event log: something that happened, written in
// the same transaction as the change it records. Payload and Context are
// JSON; the hooks package builds the envelope from them.
type Event struct {
	Seq       int64
	Type      string
	UserID    string
	CreatedAt time.Time
	Payload   json.RawMessage
	Context   json.RawMessage
}

// InsertEvent appends an event and fills in e.Seq. Event times never go
// back: if the clock stepped back, the event takes its predecessor's time
// (e.CreatedAt is set to the time stored), so seq order is also time order, which the
// audit log's date filters rely on. Writes are serialised, so inside a
// transaction this is exact.
//
// On PostgreSQL writes are not serialised, so the event insert is: see
// pgEventsLock.
func (t *Tx) InsertEvent(ctx context.Context, e *Event) error {
	err := t.serialized(ctx, `SELECT pg_advisory_xact_lock(?)`, []any{pgEventsLock}, func(t *Tx) error {
		return t.insertEvent(ctx, e)
	})
	return mapErr("insert event", err)
}

// pgEventsLock is the transaction-level advisory lock key that event
// inserts take on PostgreSQL, just before the insert, and hold until their
// transaction ends.
//
// seq comes from an identity sequence, which hands out numbers in the
// order nextval is called, not the order transactions commit: without the
// lock, an event with seq 10 can commit after one with seq 11, and a
// reader paging forward (seq > last) that has already seen 11 never sees
// 10. Under the lock, the sequence number is taken, and the transaction
// commits, before the next event writer may take its own; PostgreSQL
// releases transaction locks after the commit is visible, so whenever a
// reader sees seq n, every smaller seq is already committed (or rolled
// back, a gap that stays a gap). The latest created_at read below is then
// exact across instances too, as it is on SQLite.
//
// The alternative, a "committed up to" bound that readers must respect
// (the oldest in-flight seq, from a table of open writers or
// pg_snapshot_xmin), would keep writers parallel but burden every reader
// and need its own bookkeeping; events are written last in their
// transactions (the change, then its event and deliveries, then commit),
// so the serialised window is short: the measured cost is in
// docs/scale-out.md. A transaction writing several events takes the lock
// once and keeps it (advisory locks nest).
const pgEventsLock = 0x6576656e7473 // "events"

// insertEvent reads the latest event's time and inserts in one statement,
// one round trip inside the serialised window.
func (t *Tx) insertEvent(ctx context.Context, e *Event) error {
	var created int64
	err := t.q.QueryRowContext(ctx, `INSERT INTO events (type, user_id, created_at, payload, context)
		VALUES (?, ?, `+t.greatest()+`(?, COALESCE((SELECT created_at FROM events ORDER BY seq DESC LIMIT 1), 0)), ?, ?)
		RETURNING seq, created_at`,
		e.Type, nullString(e.UserID), ms(e.CreatedAt), string(e.Payload), string(e.Context)).Scan(&e.Seq, &created)
	if err != nil {
		return err
	}
	e.CreatedAt = fromMS(created)
	return nil
}

const eventCols = `seq, type, COALESCE(user_id, ''), created_at, payload, context`

func scanEvent(row interface{ Scan(...any) error }) (*Event, error) {
	var e Event
	var created int64
	var payload, ctxJSON string
	if err := row.Scan(&e.Seq, &e.Type, &e.UserID, &created, &payload, &ctxJSON); err != nil {
		return nil, err
	}
	e.CreatedAt, e.Payload, e.Context = fromMS(created), json.RawMessage(payload), json.RawMessage(ctxJSON)
	return &e, nil
}

// EventBySeq finds one event.
func (t *Tx) EventBySeq(ctx context.Context, seq int64) (*Event, error) {
	e, err := scanEvent(t.q.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE seq = ?`, seq))
	return e, mapErr("event by seq", err)
}

// ListEventsParams selects a page of the audit log, newest first. Zero
// values mean "no filter".
type ListEventsParams struct {
	Types  []string
	UserID string
	// From and To bound created_at: From <= created_at < To.
	From, To time.Time
	// Before is the seq of the last event of the previous page.
	Before int64
	Limit  int
}

// ListEvents returns one page of events by keyset pagination on seq, so
// every page costs the same however long the log grows.
func (t *Tx) ListEvents(ctx context.Context, p ListEventsParams) ([]Event, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	before := int64(1<<63 - 1)
	if p.Before > 0 {
		before = p.Before
	}
	var where []string
	var args []any
	if len(p.Types) > 0 {
		list, typeArgs := inList(p.Types)
		where = append(where, "type IN "+list)
		args = append(args, typeArgs...)
	}
	if p.UserID != "" {
		where = append(where, "user_id = ?")
		args = append(args, p.UserID)
	}
	// Dates: seq order is created_at order (InsertEvent keeps it so), so
	// each date bound becomes a seq bound, found through the created_at
	// index, and the page is a plain range scan down seq.
	if !p.From.IsZero() {
		lo, ok, err := t.firstSeqAt(ctx, p.From)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil // nothing at or after From
		}
		where = append(where, "seq >= ?")
		args = append(args, lo)
	}
	if !p.To.IsZero() {
		hi, ok, err := t.firstSeqAt(ctx, p.To)
		if err != nil {
			return nil, err
		}
		if ok {
			before = min(before, hi)
		}
	}
	// One upper bound only: with two, SQLite may range-scan on the looser one.
	where = append(where, "seq < ?")
	args = append(args, before, p.Limit)
	rows, err := t.q.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE `+strings.Join(where, " AND ")+` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, mapErr("list events", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, mapErr("list events", err)
		}
		out = append(out, *e)
	}
	return out, mapErr("list events", rows.Err())
}

// firstSeqAt finds the first event at or after at.
func (t *Tx) firstSeqAt(ctx context.Context, at time.Time) (int64, bool, error) {
	var seq int64
	err := t.q.QueryRowContext(ctx, `SELECT seq FROM events WHERE created_at >= ? ORDER BY created_at, seq LIMIT 1`, ms(at)).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, mapErr("list events", err)
	}
	return seq, true, nil
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
