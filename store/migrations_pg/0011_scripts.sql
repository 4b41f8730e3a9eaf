-- TypeScript hooks. A TypeScript hook is a row of webhooks (so its kind,
-- events, enabled flag and delivery queue are the webhooks' own) with its
-- code here; its url is empty and its secret unused. compiled is the
-- JavaScript esbuild made at save, so a run never compiles TypeScript.
CREATE TABLE hook_scripts (
    webhook_id TEXT PRIMARY KEY REFERENCES webhooks(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    source     TEXT NOT NULL,
    compiled   TEXT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What a script delivery's last attempt wrote with console.* (NULL for
-- webhooks).
ALTER TABLE webhook_deliveries ADD COLUMN last_output TEXT;
