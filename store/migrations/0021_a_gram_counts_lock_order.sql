-- PostgreSQL only (see migrations_pg/0021_a_gram_counts_lock_order.sql):
-- there, gram counts are now updated in gram order so that concurrent
-- user creations cannot deadlock. SQLite writes one transaction at a
-- time, so nothing changes here.
SELECT 1;
