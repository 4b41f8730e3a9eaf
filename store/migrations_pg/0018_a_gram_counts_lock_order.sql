-- gram_counts rows are locked in gram order (PostgreSQL only).
--
-- 0014's row trigger upserted gram_counts once per login_id_grams row, in
-- whatever order the INSERT ... SELECT DISTINCT produced its grams (a hash
-- order). Two transactions adding login IDs at once (two users created on
-- two instances) then locked common grams ("exa", "com", ...) in different
-- orders and deadlocked. Statement-level triggers over the transition
-- tables now touch each statement's grams once, in gram order, so
-- concurrent writers queue on the first shared gram instead.
DROP TRIGGER gram_counts_track ON login_id_grams;

CREATE FUNCTION gram_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gram_counts (gram, n)
    SELECT gram, COUNT(*) FROM new_grams GROUP BY gram ORDER BY gram
    ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION gram_counts_sub() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Lock first, in gram order: UPDATE ... FROM visits rows in plan order.
    PERFORM 1 FROM gram_counts WHERE gram IN (SELECT gram FROM old_grams) ORDER BY gram FOR UPDATE;
    UPDATE gram_counts SET n = gram_counts.n - d.c
    FROM (SELECT gram, COUNT(*) AS c FROM old_grams GROUP BY gram) d
    WHERE gram_counts.gram = d.gram;
    RETURN NULL;
END $$;

CREATE TRIGGER gram_counts_add AFTER INSERT ON login_id_grams
    REFERENCING NEW TABLE AS new_grams FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_add();
CREATE TRIGGER gram_counts_sub AFTER DELETE ON login_id_grams
    REFERENCING OLD TABLE AS old_grams FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_sub();
