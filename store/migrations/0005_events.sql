-- Events (the audit log), webhooks and the durable webhook delivery queue.
-- Times are unix milliseconds.

-- seq is the global, monotonic event sequence; the event's id is seq as 16
-- hex digits. payload and context are JSON; the envelope
-- {id, seq, type, payload, context} is assembled from them on read, so one
-- INSERT writes the event. user_id has no foreign key: events outlive users.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL,
    user_id    TEXT,
    created_at INTEGER NOT NULL,
    payload    TEXT NOT NULL,
    context    TEXT NOT NULL
);
CREATE INDEX events_type ON events(type, seq);
CREATE INDEX events_user ON events(user_id, seq);
-- Date filters find their seq bounds through this index (seq follows time).
CREATE INDEX events_created ON events(created_at);

-- kind: 'non_blocking' hooks get events from the delivery queue;
-- 'blocking' hooks are called before the change (user.pre_create).
-- events: JSON array of chosen types; all_events = 1 sends every
-- webhook-able type. secret: the signing key, AES-GCM encrypted.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('non_blocking', 'blocking')),
    all_events INTEGER NOT NULL DEFAULT 0,
    events     TEXT NOT NULL DEFAULT '[]',
    enabled    INTEGER NOT NULL DEFAULT 1,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per (event, hook) delivery, written in the event's transaction.
-- status: pending (next_attempt_at is when it is due; a claimed row has its
-- next_attempt_at pushed forward by a lease), succeeded, or failed (gave up).
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL REFERENCES events(seq),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_latency_ms  INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
-- The worker's claim: each webhook's oldest due delivery, one probe per webhook.
CREATE INDEX webhook_deliveries_hook_due ON webhook_deliveries(webhook_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
