-- flowbook store, migration 1: instruments, retention settings and the helper functions that create
-- time-series tables (TimescaleDB hypertables when the extension can be used, native range partitions
-- by day otherwise), create partitions on demand and drop old data.
-- Applied by flowbook.store.migrate with search_path = <store schema>, public; every function keeps
-- that search_path (SET search_path FROM CURRENT), so it acts on its own schema whoever calls it.

CREATE TABLE instruments (
    instrument_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    venue text NOT NULL,
    symbol text NOT NULL,
    tick_size numeric NOT NULL,
    lot_size numeric NOT NULL,
    multiplier double precision NOT NULL DEFAULT 1,
    inverse boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (venue, symbol)
);

-- tables whose data older than `keep` fb_apply_retention() drops (native mode; TimescaleDB uses policies)
CREATE TABLE retention (
    table_name text PRIMARY KEY,
    keep interval NOT NULL
);

-- current time in ns since the epoch (TimescaleDB's integer_now function for bigint time columns)
CREATE FUNCTION fb_now_ns() RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $$ SELECT (extract(epoch FROM now()) * 1e9)::bigint $$;

-- true when TimescaleDB is installed here, or available and preloaded; the custom setting
-- flowbook.timescale = 'off' forces native partitioning
CREATE FUNCTION fb_timescale_available() RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $$
    SELECT coalesce(current_setting('flowbook.timescale', true), 'on') <> 'off'
       AND (EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
            OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
                AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%'))
$$;

-- the statements that create one time-series table (pure: tested for both modes)
CREATE FUNCTION fb_series_ddl(tbl text, cols text, time_col text, segment_by text, order_by text,
                              timescale boolean) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT timescale THEN
        RETURN ARRAY[format('CREATE TABLE %I (%s) PARTITION BY RANGE (%I)', tbl, cols, time_col)];
    END IF;
    RETURN ARRAY[
        'CREATE EXTENSION IF NOT EXISTS timescaledb',
        format('CREATE TABLE %I (%s)', tbl, cols),
        format('SELECT create_hypertable(%L, %L, chunk_time_interval => 86400000000000::bigint)', tbl, time_col),
        format('SELECT set_integer_now_func(%L, %L)', tbl, 'fb_now_ns'),
        format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
               'timescaledb.compress_orderby = %L)', tbl, segment_by, order_by),
        format('SELECT add_compression_policy(%L, compress_after => 604800000000000::bigint)', tbl)
    ];
END
$$;

CREATE FUNCTION fb_create_series(tbl text, cols text, time_col text, segment_by text, order_by text)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    stmt text;
BEGIN
    FOREACH stmt IN ARRAY fb_series_ddl(tbl, cols, time_col, segment_by, order_by, fb_timescale_available())
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

-- true when `tbl` is natively partitioned (partitions are then created by fb_ensure_partition)
CREATE FUNCTION fb_is_partitioned(tbl text) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $$ SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(tbl) $$;

-- the partition of `tbl` holding UTC day `day` (bounds in ns); true when it was created now
CREATE FUNCTION fb_ensure_partition(tbl text, day date) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    part text := tbl || '_p' || to_char(day, 'YYYYMMDD');
    lo bigint := (day - date '1970-01-01')::bigint * 86400000000000;
BEGIN
    IF NOT fb_is_partitioned(tbl) OR to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || tbl));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                   part, tbl, lo, lo + 86400000000000);
    RETURN true;
END
$$;

-- drop whole days of `tbl` that end at or before `cutoff_ns`; returns the partitions/chunks dropped
CREATE FUNCTION fb_drop_before(tbl text, cutoff_ns bigint) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'no table %', tbl;
    END IF;
    IF NOT fb_is_partitioned(tbl) THEN  -- a hypertable
        EXECUTE format('SELECT count(*) FROM drop_chunks(%L, older_than => %s::bigint)', tbl, cutoff_ns) INTO n;
        RETURN n;
    END IF;
    FOR r IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(tbl) AND c.relname ~ '_p[0-9]{8}$'
    LOOP
        IF ((to_date(right(r.relname, 8), 'YYYYMMDD') - date '1970-01-01')::bigint + 1) * 86400000000000
           <= cutoff_ns THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- keep `keep` of `tbl`: a TimescaleDB retention policy, or a row fb_apply_retention() acts on
CREATE FUNCTION fb_set_retention(tbl text, keep interval) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
BEGIN
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'no table %', tbl;
    END IF;
    IF NOT fb_is_partitioned(tbl) THEN
        EXECUTE format('SELECT remove_retention_policy(%L, if_exists => true)', tbl);
        EXECUTE format('SELECT add_retention_policy(%L, drop_after => %s::bigint)', tbl,
                       (extract(epoch FROM keep) * 1e9)::bigint);
    END IF;
    INSERT INTO retention (table_name, keep) VALUES (tbl, keep)
    ON CONFLICT (table_name) DO UPDATE SET keep = EXCLUDED.keep;
END
$$;

-- apply every retention setting now (native mode; hypertables are handled by their policies)
CREATE FUNCTION fb_apply_retention() RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT table_name, keep FROM retention LOOP
        IF fb_is_partitioned(r.table_name) THEN
            n := n + fb_drop_before(r.table_name, fb_now_ns() - (extract(epoch FROM r.keep) * 1e9)::bigint);
        END IF;
    END LOOP;
    RETURN n;
END
$$;
