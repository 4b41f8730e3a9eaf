-- Sign-in attempts reserved before the hash check are counted apart from
-- settled failures, so that an attempt that is never settled (a request
-- that died mid-way) can no longer leave an account refused forever:
-- pending attempts older than a minute no longer count.
-- Existing rows keep their failures as settled ones; an account stuck by
-- unsettled reservations (failures at the threshold, no lock) gets its
-- attempts back at its next sign-in, because the reservation clamps
-- failures below the threshold in force.
ALTER TABLE login_lockouts ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_lockouts ADD COLUMN reserved_at BIGINT;
