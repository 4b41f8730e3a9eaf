-- Rate-limit counters shared by every instance (store/ratelimit.go): one
-- row per limited key (a limiter and a client, hashed), holding the hits
-- of the current and the previous fixed window, so that the sliding-window
-- estimate of the in-memory limiter is computed by one atomic upsert.
-- UNLOGGED: no WAL for these hot, short-lived counters (a crash of the
-- database empties them, which only forgives recent hits). fillfactor
-- leaves room on each page so that the updates within a window, which do
-- not change the indexed expires_at, stay HOT.
CREATE UNLOGGED TABLE rate_limits (
    key BYTEA PRIMARY KEY,
    window_start BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    lim INTEGER NOT NULL,
    prev INTEGER NOT NULL,
    curr INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
