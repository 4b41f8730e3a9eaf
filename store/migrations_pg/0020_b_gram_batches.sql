-- The Users search index (0014) was kept by per-row triggers: each new
-- login ID added its grams, and each new gram row bumped its count in
-- gram_counts. In a bulk import (one transaction of 500-row INSERTs) the
-- same gram_counts row was then updated once per imported user, and since
-- PostgreSQL keeps every version of a row updated within one transaction,
-- each update walked all the earlier ones: a 10,000-user import ran for
-- many minutes. Inserts are now indexed once per statement, over all its
-- new rows (transition tables); deletes and renames stay per row.

DROP TRIGGER login_id_grams_identities ON identities;
CREATE TRIGGER login_id_grams_identities AFTER DELETE OR UPDATE OF value_norm ON identities
    FOR EACH ROW EXECUTE FUNCTION login_id_grams_identities();

CREATE FUNCTION login_id_grams_identities_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO login_id_grams (gram, user_seq)
    SELECT DISTINCT substr(a.value_norm, p.pos, 3), u.seq
    FROM added a JOIN users u ON u.id = a.user_id JOIN gram_positions p ON p.pos <= length(a.value_norm) - 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER login_id_grams_identities_added AFTER INSERT ON identities
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION login_id_grams_identities_added();

DROP TRIGGER gram_counts_track ON login_id_grams;
CREATE TRIGGER gram_counts_track AFTER DELETE ON login_id_grams
    FOR EACH ROW EXECUTE FUNCTION gram_counts_track();

CREATE FUNCTION gram_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gram_counts (gram, n) SELECT gram, COUNT(*) FROM added GROUP BY gram
    ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER gram_counts_added AFTER INSERT ON login_id_grams
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_added();
