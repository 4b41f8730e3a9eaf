-- How many users each search gram has (see the SQLite migration).
CREATE TABLE gram_counts (
    gram TEXT COLLATE "C" PRIMARY KEY,
    n    BIGINT NOT NULL
);

INSERT INTO gram_counts (gram, n) SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram;

CREATE FUNCTION gram_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO gram_counts (gram, n) VALUES (NEW.gram, 1) ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + 1;
    ELSE
        UPDATE gram_counts SET n = n - 1 WHERE gram = OLD.gram;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER gram_counts_track AFTER INSERT OR DELETE ON login_id_grams
    FOR EACH ROW EXECUTE FUNCTION gram_counts_track();

CREATE INDEX identities_user_order ON identities(user_id, created_at, id);
