-- SMS abuse-limit refusals (issue 10): when a limit refuses a text that a
-- stranger asked for (forgot password), nothing is queued, but the admin
-- must see why on the user page. A stranger must not be able to write
-- rows without bound, so refusals coalesce: one row per user, per limit,
-- per UTC hour (hour_start, unix ms), counting the attempts. Only known
-- accounts get a row. Rows older than 30 days are pruned as new ones are
-- written; a deleted user's rows go with it.
CREATE TABLE sms_refusals (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    limit_name TEXT NOT NULL,
    hour_start INTEGER NOT NULL,
    phone      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, limit_name, hour_start)
);
CREATE INDEX sms_refusals_at ON sms_refusals(hour_start);
