-- fresh.sql: the common start of the pg_regress files about tasks and agents (\i
-- sql/include/fresh.sql: pg_regress feeds a file to psql on stdin from the tree's top); not a
-- test itself. The files share one database and run in order, so each begins from empty
-- tables, shows NULL visibly and keeps notices out of its output.
\pset null '(null)'
SET client_min_messages = warning;
DELETE FROM dispatch.tasks;
DELETE FROM dispatch.decisions;
DELETE FROM dispatch.agents;
