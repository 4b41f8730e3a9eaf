-- Issue 14 on PostgreSQL: profile attributes, session "last seen", and
-- the substring search index of the Users list (the same posting lists as
-- on SQLite, kept by triggers, so the store's search query is the same).
-- A pg_trgm index on identities.value_norm could replace them later.

ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN given_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN family_name TEXT NOT NULL DEFAULT '';

ALTER TABLE user_sessions ADD COLUMN last_seen_at BIGINT;

-- SQLite's instr(), which the search query uses.
CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT strpos(haystack, needle) $$;

CREATE TABLE login_id_grams (
    gram     TEXT COLLATE "C" NOT NULL,
    user_seq BIGINT NOT NULL,
    PRIMARY KEY (gram, user_seq)
);

CREATE TABLE gram_positions (pos INTEGER PRIMARY KEY);
INSERT INTO gram_positions (pos) SELECT generate_series(1, 400);

INSERT INTO login_id_grams (gram, user_seq)
SELECT DISTINCT substr(i.value_norm, p.pos, 3), u.seq
FROM identities i JOIN users u ON u.id = i.user_id JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2
ON CONFLICT DO NOTHING;

CREATE FUNCTION login_id_grams_add(uid TEXT, v TEXT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO login_id_grams (gram, user_seq)
    SELECT DISTINCT substr(v, p.pos, 3), (SELECT seq FROM users WHERE id = uid)
    FROM gram_positions p WHERE p.pos <= length(v) - 2 AND EXISTS (SELECT 1 FROM users WHERE id = uid)
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION login_id_grams_drop(uid TEXT, v TEXT) RETURNS void LANGUAGE sql AS $$
    DELETE FROM login_id_grams
    WHERE user_seq = (SELECT seq FROM users WHERE id = uid)
      AND gram IN (SELECT substr(v, p.pos, 3) FROM gram_positions p WHERE p.pos <= length(v) - 2)
      AND NOT EXISTS (SELECT 1 FROM identities j WHERE j.user_id = uid AND strpos(j.value_norm, login_id_grams.gram) > 0)
$$;

CREATE FUNCTION login_id_grams_identities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM login_id_grams_add(NEW.user_id, NEW.value_norm);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM login_id_grams_drop(OLD.user_id, OLD.value_norm);
    ELSIF NEW.value_norm IS DISTINCT FROM OLD.value_norm THEN
        PERFORM login_id_grams_drop(OLD.user_id, OLD.value_norm);
        PERFORM login_id_grams_add(NEW.user_id, NEW.value_norm);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER login_id_grams_identities AFTER INSERT OR DELETE OR UPDATE OF value_norm ON identities
    FOR EACH ROW EXECUTE FUNCTION login_id_grams_identities();

CREATE FUNCTION login_id_grams_user_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM login_id_grams
    WHERE user_seq = OLD.seq
      AND gram IN (SELECT substr(i.value_norm, p.pos, 3) FROM identities i JOIN gram_positions p ON p.pos <= length(i.value_norm) - 2 WHERE i.user_id = OLD.id);
    RETURN OLD;
END $$;

CREATE TRIGGER login_id_grams_user_delete BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION login_id_grams_user_delete();

CREATE INDEX users_disabled ON users(seq) WHERE is_disabled = 1;
CREATE INDEX passwords_expire_after ON passwords(expire_after) WHERE expire_after IS NOT NULL;
