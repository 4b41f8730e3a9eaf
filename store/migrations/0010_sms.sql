-- SMS (issue 10): text messages share the email outbox, so retries,
-- sealing, wiping, status and events are written once. channel says how a
-- row is delivered: 'email' (every row before this migration) or 'sms'.
ALTER TABLE mail_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';

-- One row per text message queued, for the abuse limits (per phone number,
-- per client IP, per country calling code, and a global daily cap). Kept in
-- the database rather than in memory so the limits hold across restarts
-- (and, later, across instances). Rows older than two days are pruned as
-- new ones are written. ip is NULL for texts an admin or the API asked for.
CREATE TABLE sms_sends (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    phone        TEXT NOT NULL,
    calling_code TEXT NOT NULL,
    ip           TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX sms_sends_at ON sms_sends(created_at);
CREATE INDEX sms_sends_phone ON sms_sends(phone, created_at);
CREATE INDEX sms_sends_code ON sms_sends(calling_code, created_at);
CREATE INDEX sms_sends_ip ON sms_sends(ip, created_at);
