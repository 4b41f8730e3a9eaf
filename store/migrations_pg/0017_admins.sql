-- Admins that can be managed and recovered: invitations, TOTP two-factor
-- and recovery codes. Times are unix milliseconds.

-- An invited admin has an admins row with an empty password_hash (which no
-- password verifies) until they open the one-time link and choose one.
-- Only the link token's SHA-256 is kept.
CREATE TABLE admin_invites (
    token_hash  TEXT PRIMARY KEY,
    admin_id    TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX admin_invites_admin ON admin_invites(admin_id);

-- TOTP two-factor. secret is the base32 secret sealed (AES-GCM) under a key
-- derived from the server secret. confirmed_at NULL: enrolment started but
-- not yet confirmed with a code, so not required at sign-in.
-- last_step is the last accepted 30-second step: a code is accepted only for
-- a later step, so the same code cannot be used twice.
-- failures counts wrong codes since failures_since (the throttle window).
CREATE TABLE admin_totp (
    admin_id       TEXT PRIMARY KEY REFERENCES admins(id) ON DELETE CASCADE,
    secret         BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_step      BIGINT NOT NULL DEFAULT 0,
    failures       BIGINT NOT NULL DEFAULT 0,
    failures_since BIGINT
);

-- Recovery codes: each one 80 random bits, only its SHA-256 kept; used_at
-- set once it has been used, so each works once.
CREATE TABLE admin_recovery_codes (
    admin_id   TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (admin_id, code_hash)
);
