-- Admin API keys. The secret part of a key is never stored: only its
-- SHA-256 (keys are 256-bit random, so a fast hash is enough), compared in
-- constant time. revoked_at set: the key no longer authenticates.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    last_used_at BIGINT,
    last_used_ip TEXT NOT NULL DEFAULT '',
    revoked_at   BIGINT
);
CREATE INDEX api_keys_created ON api_keys(created_at);
