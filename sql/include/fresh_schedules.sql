-- fresh_schedules.sql: the common start of the pg_regress files about schedules firing (\i
-- sql/include/fresh_schedules.sql); not a test itself. No schedules, fires or tasks from the
-- files before; times shown in UTC, ISO order, so every fire time reads the same everywhere.
\pset null '(null)'
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
DELETE FROM dispatch.fires;
DELETE FROM dispatch.schedules;
DELETE FROM dispatch.tasks;
