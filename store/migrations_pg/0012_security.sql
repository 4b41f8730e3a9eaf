-- Security hardening (issue 12): server-side portal sessions and per-admin
-- sign-in lockout. Times are unix milliseconds.

-- Portal admin sessions. The cookie holds a random token; only its SHA-256
-- is stored. A session ends at expires_at (absolute) or when it has been
-- idle since last_seen_at for longer than the idle timeout; deleting the
-- row (sign-out, "sign out all sessions", removing the admin) ends it at once.
CREATE TABLE admin_sessions (
    token_hash   TEXT PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX admin_sessions_admin ON admin_sessions(admin_id);

-- Per-admin sign-in failures, as login_lockouts for end users (see
-- 0012_b_lockout_pending): failures counts settled wrong passwords,
-- pending the attempts reserved before the hash check and not yet
-- settled; reserved_at lets a reservation that was never settled lapse.
CREATE TABLE admin_lockouts (
    admin_id       TEXT PRIMARY KEY REFERENCES admins(id) ON DELETE CASCADE,
    failures       BIGINT NOT NULL DEFAULT 0,
    pending        BIGINT NOT NULL DEFAULT 0,
    reserved_at    BIGINT,
    lock_count     BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    last_failed_at BIGINT
);
