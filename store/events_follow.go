package store

import "context"

// EventsAfter returns up to limit events with seq greater than after, in
// seq order: the read for a follower that pages forward through the log
// (an events feed, a replica of the audit log), remembering the last seq
// it saw.
//
// That is safe with several writers on PostgreSQL because InsertEvent
// makes seq order commit order (see pgEventsLock): once a reader has seen
// seq n, every event with a smaller seq has already committed, so none can
// appear behind the reader's position later.
func (t *Tx) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := t.q.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, mapErr("events after", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, mapErr("events after", err)
		}
		out = append(out, *e)
	}
	return out, mapErr("events after", rows.Err())
}
