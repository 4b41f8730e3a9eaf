-- Auth UI: end-user sign-in lockout, server-side end-user sessions, and
-- forgot-password codes and links. Times are unix milliseconds.

-- One row per user who has failed to sign in. failures counts password
-- attempts since the last success or lock, INCLUDING attempts still being
-- verified: an attempt is reserved (failures + 1) before the hash is
-- checked, so parallel attempts can never exceed the threshold.
-- lock_count grows the lock time; a success or an admin clears both.
CREATE TABLE login_lockouts (
    user_id        TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures       BIGINT NOT NULL DEFAULT 0,
    lock_count     BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    last_failed_at BIGINT
);

-- End-user sessions. The cookie holds a random token; only its SHA-256
-- is stored, so a copy of the database cannot be used to sign in.
-- restricted: the session may only change an expired password or sign out.
CREATE TABLE user_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    restricted   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX user_sessions_user ON user_sessions(user_id);

-- Forgot-password requests: a 6-digit code and a link token, both stored
-- only as hashes, each with its own expiry; used_at makes them single-use.
-- code_failures burns the code after a few wrong guesses.
CREATE TABLE password_resets (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash       TEXT NOT NULL,
    link_hash       TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    code_expires_at BIGINT NOT NULL,
    link_expires_at BIGINT NOT NULL,
    code_failures   BIGINT NOT NULL DEFAULT 0,
    used_at         BIGINT
);
CREATE INDEX password_resets_user ON password_resets(user_id, created_at);
