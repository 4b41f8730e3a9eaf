-- Rate-limit counters kept in the database (store/ratelimit.go): one row
-- per limited key (a limiter and a client, hashed), holding the hits of
-- the current and the previous fixed window, so that the sliding-window
-- estimate of the in-memory limiter can be computed by one atomic upsert.
-- Only a database that several instances share (PostgreSQL) uses it: on
-- SQLite one process owns the file and the counters stay in memory. The
-- table exists on both so that the store's methods and tests are the same.
CREATE TABLE rate_limits (
    key BLOB PRIMARY KEY,
    window_start INTEGER NOT NULL,
    window_ms INTEGER NOT NULL,
    lim INTEGER NOT NULL,
    prev INTEGER NOT NULL,
    curr INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
