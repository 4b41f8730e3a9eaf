-- Users created at once deadlocked on PostgreSQL (SQLSTATE 40P01): each
-- new login ID adds its search grams, and a row trigger bumped each
-- gram's count in gram_counts in whatever order the grams came, so two
-- transactions adding login IDs with grams in common ("@example.com")
-- could each hold a count the other was waiting for. The counts are now
-- kept by statement triggers that update them in gram order, so every
-- transaction takes those row locks in one global order.
DROP TRIGGER gram_counts_track ON login_id_grams;
DROP FUNCTION gram_counts_track();

CREATE FUNCTION gram_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gram_counts (gram, n)
    SELECT gram, COUNT(*) FROM new_grams GROUP BY gram ORDER BY gram
    ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION gram_counts_sub() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN SELECT gram, COUNT(*) AS c FROM old_grams GROUP BY gram ORDER BY gram LOOP
        UPDATE gram_counts SET n = n - r.c WHERE gram = r.gram;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER gram_counts_add AFTER INSERT ON login_id_grams
    REFERENCING NEW TABLE AS new_grams FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_add();
CREATE TRIGGER gram_counts_sub AFTER DELETE ON login_id_grams
    REFERENCING OLD TABLE AS old_grams FOR EACH STATEMENT EXECUTE FUNCTION gram_counts_sub();
