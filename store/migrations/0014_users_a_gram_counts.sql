-- (Named 0014_users_a_... so that it sorts after 0014_users, whose table it counts.)
-- How many users each search gram has, so a search walks the posting list
-- of its rarest gram (an exact count, kept by triggers on the postings in
-- the same transaction). SQLite only, like login_id_grams.
CREATE TABLE gram_counts (
    gram TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO gram_counts (gram, n) SELECT gram, COUNT(*) FROM login_id_grams GROUP BY gram;

CREATE TRIGGER gram_counts_insert AFTER INSERT ON login_id_grams BEGIN
    INSERT INTO gram_counts (gram, n) VALUES (NEW.gram, 1) ON CONFLICT (gram) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER gram_counts_delete AFTER DELETE ON login_id_grams BEGIN
    UPDATE gram_counts SET n = n - 1 WHERE gram = OLD.gram;
END;

-- The Users list and the export read each user's login IDs in order:
-- this index gives them without a sort per user.
CREATE INDEX identities_user_order ON identities(user_id, created_at, id);
