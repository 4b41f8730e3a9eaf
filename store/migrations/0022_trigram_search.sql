-- Nothing to do on SQLite. Its PostgreSQL mirror replaces the search
-- gram posting lists with a pg_trgm GIN index; SQLite has no trigram
-- index, so here the posting lists of 0014_users stay.
SELECT 1;
