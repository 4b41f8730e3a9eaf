-- Core tables: settings, portal admins, end users, their identities and passwords.
-- Times are unix milliseconds (INTEGER); NULL means "never" / "not set".

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

-- seq gives users a stable creation order for keyset pagination.
CREATE TABLE users (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    is_disabled    INTEGER NOT NULL DEFAULT 0,
    disable_reason TEXT
);

-- value is what the user sees (normalised form); value_norm is the lowercased
-- key used for uniqueness and case-insensitive prefix search. Email, phone
-- (E.164, starts with '+') and username (no '@' or '+') never collide.
CREATE TABLE identities (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'username')),
    value      TEXT NOT NULL,
    value_norm TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX identities_user_id ON identities(user_id);

-- One password per user. expire_after: the user must change it once now >= expire_after.
-- set_by_admin: the current password was set by an admin (create or reset).
CREATE TABLE passwords (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    hash         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    expire_after INTEGER,
    set_by_admin INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE password_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX password_history_user ON password_history(user_id, created_at);
