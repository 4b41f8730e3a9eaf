-- The search grams (0014_users, 0014_users_a_gram_counts) kept per
-- statement instead of per row on PostgreSQL, so that a bulk import's
-- multi-row INSERT of 500 login IDs writes their grams and counts in two
-- set-based statements rather than ~15,000 trigger calls (100,000
-- imported users took many minutes; issue 15 wants under 10 s). The
-- grams and counts written are the same as before; the row triggers stay
-- for DELETE and UPDATE of a login ID, which come one at a time.
-- (PostgreSQL allows transition tables only on single-event triggers,
-- hence one trigger per event.) SQLite has no statement-level triggers:
-- its 0022 is empty.

DROP TRIGGER login_id_grams_identities ON identities;
CREATE TRIGGER login_id_grams_identities AFTER DELETE OR UPDATE OF value_norm ON identities
    FOR EACH ROW EXECUTE FUNCTION login_id_grams_identities();

CREATE FUNCTION login_id_grams_identities_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO login_id_grams (gram, user_seq)
    SELECT DISTINCT substr(n.value_norm, p.pos, 3), u.seq
    FROM new_identities n JOIN users u ON u.id = n.user_id JOIN gram_positions p ON p.pos <= length(n.value_norm) - 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER login_id_grams_identities_insert AFTER INSERT ON identities
    REFERENCING NEW TABLE AS new_identities
    FOR EACH STATEMENT EXECUTE FUNCTION login_id_grams_identities_insert();

-- The counts: one upsert per distinct gram of the statement, in gram
-- order, so that two transactions adding users at once lock the count
-- rows in the same order (no deadlock between them).
DROP TRIGGER gram_counts_track ON login_id_grams;

CREATE FUNCTION gram_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gram_counts (gram, n)
    SELECT gram, COUNT(*) FROM new_grams GROUP BY gram ORDER BY gram
    ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION gram_counts_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gram_counts g SET n = g.n - d.c
    FROM (SELECT gram, COUNT(*) AS c FROM old_grams GROUP BY gram) AS d
    WHERE g.gram = d.gram;
    RETURN NULL;
END $$;

CREATE TRIGGER gram_counts_add AFTER INSERT ON login_id_grams
    REFERENCING NEW TABLE AS new_grams
    FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_add();

CREATE TRIGGER gram_counts_drop AFTER DELETE ON login_id_grams
    REFERENCING OLD TABLE AS old_grams
    FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_drop();
