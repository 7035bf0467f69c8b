-- 00_roles: the three group roles dispatch grants to, created when missing.
-- Roles are cluster-wide, so a second database installing dispatch reuses them.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dispatch_admin') THEN
    CREATE ROLE dispatch_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dispatch_agent') THEN
    CREATE ROLE dispatch_agent NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dispatch_reader') THEN
    CREATE ROLE dispatch_reader NOLOGIN;
  END IF;
END
$roles$;

GRANT USAGE ON SCHEMA dispatch TO dispatch_admin, dispatch_agent, dispatch_reader;
