-- Nothing to do on SQLite: its PostgreSQL mirror turns the search-gram
-- triggers into statement-level ones for bulk imports, which SQLite does
-- not have (its row triggers are cheap, being in-process).
SELECT 1;
