-- Nothing to do on SQLite: writes are serial, so the gram_counts triggers
-- cannot deadlock. The PostgreSQL mirror makes its triggers lock
-- gram_counts rows in gram order (see migrations_pg).
SELECT 1;
