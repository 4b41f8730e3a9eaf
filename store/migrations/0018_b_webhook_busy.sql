-- Nothing to do on SQLite: one process sends, and its worker keeps the
-- list of webhooks with a delivery in flight. The PostgreSQL mirror adds
-- webhooks.busy_until so that instances sharing a database see each
-- other's (see migrations_pg).
SELECT 1;
