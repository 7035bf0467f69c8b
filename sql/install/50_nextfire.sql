-- 50_nextfire: schedule specs from SQL: when does a spec fire next, is it valid, what kind
-- is it. Thin wrappers over src/nextfire.c; doc/specs.md describes the accepted forms.
-- next_fire and validate_spec read PostgreSQL's time-zone database, whose rules change with
-- tzdata updates, so they are STABLE, not IMMUTABLE; spec_kind depends on the text alone.

CREATE FUNCTION dispatch.next_fire(spec text, after timestamptz,
                                   timezone text DEFAULT 'UTC',
                                   anchor timestamptz DEFAULT NULL)
RETURNS timestamptz
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'dispatch_sql_next_fire';
COMMENT ON FUNCTION dispatch.next_fire(text, timestamptz, text, timestamptz) IS
  'The first fire of a schedule spec strictly after "after": cron specs match wall-clock time in "timezone" (an IANA name; a time skipped by a DST change fires at the end of the gap, a repeated one at its first occurrence), rate specs fire on the grid anchor + k * interval (anchor defaults to 1970-01-01 00:00 UTC), one-shots fire once. NULL when the schedule never fires again, or when spec, after or timezone is NULL. Raises 22023 for a bad spec or unknown time zone.';

CREATE FUNCTION dispatch.validate_spec(spec text, timezone text DEFAULT 'UTC')
RETURNS void
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'dispatch_sql_validate_spec';
COMMENT ON FUNCTION dispatch.validate_spec(text, text) IS
  'Raises an error (SQLSTATE 22023, with a hint listing the accepted forms) unless spec is a valid schedule spec and timezone a known IANA time zone; 22004 when either is NULL. Returns nothing when both are valid.';

CREATE FUNCTION dispatch.spec_kind(spec text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'dispatch_sql_spec_kind';
COMMENT ON FUNCTION dispatch.spec_kind(text) IS
  'The kind of a schedule spec: ''cron'' (5-field cron, @-shorthands, cron(...)), ''rate'' (rate(...) and 30S/30M/2H/1D) or ''once'' (at <timestamp>). Raises 22023 for a bad spec.';
