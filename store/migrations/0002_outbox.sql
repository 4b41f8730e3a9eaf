-- Email outbox: each row is one message, written in the same transaction as
-- the change that asks for it (user created, password reset, forgot password).
-- secret holds the AES-GCM-sealed message parameters (the password, the code
-- and link); it is set to NULL once the message is delivered or abandoned.
-- status: queued (waiting, maybe retrying: attempts > 0), sending (claimed by
-- the worker until lease_until), delivered, failed (permanent or gave up).
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    secret          BLOB,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
-- The worker's queue: due rows in order.
CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
-- The user page's message list.
CREATE INDEX mail_outbox_user ON mail_outbox(user_id, id);
-- The Users list's "password email failed" mark: an EXISTS over this
-- partial index costs one probe per listed user.
CREATE INDEX mail_outbox_failed ON mail_outbox(user_id) WHERE status = 'failed';
