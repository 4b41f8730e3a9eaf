-- Issue 14: profile attributes, session "last seen", and the substring
-- search index of the Users list. Times are unix milliseconds.

-- The reference product's standard attributes an admin can edit.
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN given_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN family_name TEXT NOT NULL DEFAULT '';

-- When the session last made a request (updated at most once a minute).
ALTER TABLE user_sessions ADD COLUMN last_seen_at INTEGER;

-- Substring search of login IDs without FTS5 (mattn/go-sqlite3 builds it
-- only with a build tag): a trigram posting list per user. Each row says
-- "some login ID of the user with this seq contains this 3-character
-- gram". The key (gram, user_seq) lets the Users list walk one gram's
-- users newest first and stop after a page; each candidate is then checked
-- with instr() against the real login IDs. The table is kept by the
-- triggers below, so every path that writes identities (create, import,
-- edit, delete) keeps it in the same transaction. SQLite only: the
-- PostgreSQL store will use a pg_trgm index on identities.value_norm.
CREATE TABLE login_id_grams (
    gram     TEXT NOT NULL,
    user_seq INTEGER NOT NULL,
    PRIMARY KEY (gram, user_seq)
) WITHOUT ROWID;

-- 1..400: the character positions a gram can start at (login IDs are at
-- most 320 characters). Triggers cannot use WITH RECURSIVE, so they join this.
CREATE TABLE gram_positions (pos INTEGER PRIMARY KEY);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
INSERT INTO gram_positions (pos) SELECT i FROM n;

INSERT OR IGNORE INTO login_id_grams (gram, user_seq)
SELECT substr(i.value_norm, p.pos, 3), u.seq
FROM identities i JOIN users u ON u.id = i.user_id JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2;

CREATE TRIGGER login_id_grams_insert AFTER INSERT ON identities BEGIN
    INSERT OR IGNORE INTO login_id_grams (gram, user_seq)
    SELECT substr(NEW.value_norm, p.pos, 3), (SELECT seq FROM users WHERE id = NEW.user_id)
    FROM gram_positions p WHERE p.pos <= length(NEW.value_norm) - 2;
END;

-- A gram leaves the user's list only when no other login ID of theirs has it.
CREATE TRIGGER login_id_grams_delete AFTER DELETE ON identities BEGIN
    DELETE FROM login_id_grams
    WHERE user_seq = (SELECT seq FROM users WHERE id = OLD.user_id)
      AND gram IN (SELECT substr(OLD.value_norm, p.pos, 3) FROM gram_positions p WHERE p.pos <= length(OLD.value_norm) - 2)
      AND NOT EXISTS (SELECT 1 FROM identities j WHERE j.user_id = OLD.user_id AND instr(j.value_norm, login_id_grams.gram) > 0);
END;

CREATE TRIGGER login_id_grams_update AFTER UPDATE OF value_norm ON identities BEGIN
    DELETE FROM login_id_grams
    WHERE user_seq = (SELECT seq FROM users WHERE id = OLD.user_id)
      AND gram IN (SELECT substr(OLD.value_norm, p.pos, 3) FROM gram_positions p WHERE p.pos <= length(OLD.value_norm) - 2)
      AND NOT EXISTS (SELECT 1 FROM identities j WHERE j.user_id = OLD.user_id AND instr(j.value_norm, login_id_grams.gram) > 0);
    INSERT OR IGNORE INTO login_id_grams (gram, user_seq)
    SELECT substr(NEW.value_norm, p.pos, 3), (SELECT seq FROM users WHERE id = NEW.user_id)
    FROM gram_positions p WHERE p.pos <= length(NEW.value_norm) - 2;
END;

-- Deleting a user: drop their grams while their identities still exist
-- (the identities' own delete trigger then finds no user and does nothing).
CREATE TRIGGER login_id_grams_user_delete BEFORE DELETE ON users BEGIN
    DELETE FROM login_id_grams
    WHERE user_seq = OLD.seq
      AND gram IN (SELECT substr(i.value_norm, p.pos, 3) FROM identities i JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2 WHERE i.user_id = OLD.id);
END;

-- The Users list's "Disabled" filter walks only disabled users.
CREATE INDEX users_disabled ON users(seq) WHERE is_disabled = 1;
-- The "Must change password" filter and the export's flag.
CREATE INDEX passwords_expire_after ON passwords(expire_after) WHERE expire_after IS NOT NULL;
