-- 52_firewindow: the fires of a schedule spec inside a window of time (src/firewindow.c). The
-- scheduler uses them to catch up after downtime and to project costs; they give exactly the
-- instants that stepping with dispatch.next_fire gives. STABLE for the same reason as next_fire.

CREATE FUNCTION dispatch.count_fires(spec text, after timestamptz, until timestamptz,
                                     timezone text DEFAULT 'UTC', anchor timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'dispatch_sql_count_fires';
COMMENT ON FUNCTION dispatch.count_fires(text, timestamptz, timestamptz, text, timestamptz) IS
  'How many times spec fires in (after, until], in timezone, on the rate grid of anchor: the number of steps dispatch.next_fire takes from after without passing until. Rates are counted by arithmetic; cron specs are stepped, at most 10 million fires (54000 beyond). NULL when spec, after, until or timezone is NULL.';

CREATE FUNCTION dispatch.fire_times(spec text, after timestamptz, until timestamptz,
                                    timezone text DEFAULT 'UTC', anchor timestamptz DEFAULT NULL,
                                    max_rows int DEFAULT 1000, from_end boolean DEFAULT false)
RETURNS SETOF timestamptz
LANGUAGE C STABLE PARALLEL SAFE ROWS 100
AS 'MODULE_PATHNAME', 'dispatch_sql_fire_times';
COMMENT ON FUNCTION dispatch.fire_times(text, timestamptz, timestamptz, text, timestamptz, int, boolean) IS
  'The fires of spec in (after, until], in time order: the first max_rows of them (at most 100000), or with from_end the last max_rows. No rows when spec, after, until or timezone is NULL.';
