-- OpenID Connect provider: applications (clients), authorization
-- requests and codes, access and refresh tokens, and signing keys.
-- Times are unix milliseconds. Secrets, codes and tokens are stored only
-- as hex SHA-256; private keys only sealed with the server secret.

-- Applications. secret_hash is '' for public clients (PKCE, no secret).
-- The URI lists are newline-separated; scopes is space-separated.
CREATE TABLE oidc_clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    confidential              BIGINT NOT NULL,
    secret_hash               TEXT NOT NULL DEFAULT '',
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '',
    scopes                    TEXT NOT NULL,
    disabled                  BIGINT NOT NULL DEFAULT 0,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

-- An authorization request from /oauth2/authorize until its code is
-- exchanged. params is the validated request as JSON. A used code keeps
-- its row until expires_at, so a second use can be recognised and the
-- tokens from the first use revoked.
CREATE TABLE oidc_auth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    params          TEXT NOT NULL,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    auth_time       BIGINT,
    done            BIGINT NOT NULL DEFAULT 0,
    code_hash       TEXT UNIQUE,
    code_expires_at BIGINT,
    code_used_at    BIGINT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX oidc_auth_requests_expires ON oidc_auth_requests(expires_at);

-- Refresh tokens. Every token of one grant shares chain_id; each refresh
-- marks the presented token used and adds the next one. Presenting a used
-- token revokes the whole chain.
CREATE TABLE oidc_refresh_tokens (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    chain_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_request_id TEXT NOT NULL DEFAULT '',
    scopes          TEXT NOT NULL,
    amr             TEXT NOT NULL DEFAULT '',
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX oidc_refresh_tokens_chain ON oidc_refresh_tokens(chain_id);
CREATE INDEX oidc_refresh_tokens_user ON oidc_refresh_tokens(user_id);
CREATE INDEX oidc_refresh_tokens_request ON oidc_refresh_tokens(auth_request_id);
CREATE INDEX oidc_refresh_tokens_expires ON oidc_refresh_tokens(expires_at);

-- Access tokens (opaque to apps: an encrypted ID), kept so that userinfo
-- and introspection can tell a revoked one.
CREATE TABLE oidc_access_tokens (
    id              TEXT PRIMARY KEY,
    chain_id        TEXT NOT NULL DEFAULT '',
    client_id       TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_request_id TEXT NOT NULL DEFAULT '',
    scopes          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX oidc_access_tokens_user ON oidc_access_tokens(user_id);
CREATE INDEX oidc_access_tokens_chain ON oidc_access_tokens(chain_id);
CREATE INDEX oidc_access_tokens_request ON oidc_access_tokens(auth_request_id);
CREATE INDEX oidc_access_tokens_expires ON oidc_access_tokens(expires_at);

-- Signing keys. The active key signs; a retired one stays published in
-- JWKS until the tokens it signed have expired. private_key is PKCS#8,
-- sealed (AES-GCM) with a key derived from the server secret, bound to id.
CREATE TABLE oidc_keys (
    id          TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
