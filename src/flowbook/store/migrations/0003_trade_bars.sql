-- flowbook store, migration 3: 1-minute trade bars kept at ingest.
--
-- trade_bars_1m holds, per instrument and UTC minute (ts = start of the minute, ns), the OHLC of the
-- trades, their volume split by aggressor side and their count.  PostgresStore.write() adds the
-- trades it inserts to the bars in the same transaction, so the bars always equal the aggregate of
-- the stored trades.  open/close are the prices of the first/last trade in natural-key order
-- (ts_exchange, trade_id, seq); that key is kept in open_*/close_* so later trades of the same minute
-- merge exactly.  Dropping days of trades (fb_drop_before, retention) drops the same days of bars.
-- fb_rebuild_trade_bars recomputes a range from the trades (after rows were changed by hand).

SELECT fb_create_series('trade_bars_1m', $$
    instrument_id integer NOT NULL, ts bigint NOT NULL,
    open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL, close numeric NOT NULL,
    volume numeric NOT NULL, buy_volume numeric NOT NULL, sell_volume numeric NOT NULL, trades bigint NOT NULL,
    open_ts bigint NOT NULL, open_trade_id bigint NOT NULL, open_seq integer NOT NULL,
    close_ts bigint NOT NULL, close_trade_id bigint NOT NULL, close_seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts)$$, 'ts', 'instrument_id', 'ts');

CREATE VIEW trade_bars_1m_v AS
SELECT i.venue, i.symbol, to_timestamp(b.ts / 1e9) AS time, b.*
FROM trade_bars_1m b JOIN instruments i USING (instrument_id);

-- the ON CONFLICT clause that merges new bars into stored ones (shared with the client's bars)
CREATE FUNCTION fb_trade_bars_merge() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT
AS $f$
SELECT $q$
ON CONFLICT (instrument_id, ts) DO UPDATE SET
    open = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_trade_id, EXCLUDED.open_seq) < (b.open_ts, b.open_trade_id, b.open_seq)
                THEN EXCLUDED.open ELSE b.open END,
    open_trade_id = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_trade_id, EXCLUDED.open_seq) < (b.open_ts, b.open_trade_id, b.open_seq)
                THEN EXCLUDED.open_trade_id ELSE b.open_trade_id END,
    open_seq = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_trade_id, EXCLUDED.open_seq) < (b.open_ts, b.open_trade_id, b.open_seq)
                THEN EXCLUDED.open_seq ELSE b.open_seq END,
    open_ts = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_trade_id, EXCLUDED.open_seq) < (b.open_ts, b.open_trade_id, b.open_seq)
                THEN EXCLUDED.open_ts ELSE b.open_ts END,
    close = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_trade_id, EXCLUDED.close_seq) > (b.close_ts, b.close_trade_id, b.close_seq)
                THEN EXCLUDED.close ELSE b.close END,
    close_trade_id = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_trade_id, EXCLUDED.close_seq) > (b.close_ts, b.close_trade_id, b.close_seq)
                THEN EXCLUDED.close_trade_id ELSE b.close_trade_id END,
    close_seq = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_trade_id, EXCLUDED.close_seq) > (b.close_ts, b.close_trade_id, b.close_seq)
                THEN EXCLUDED.close_seq ELSE b.close_seq END,
    close_ts = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_trade_id, EXCLUDED.close_seq) > (b.close_ts, b.close_trade_id, b.close_seq)
                THEN EXCLUDED.close_ts ELSE b.close_ts END,
    high = greatest(b.high, EXCLUDED.high), low = least(b.low, EXCLUDED.low),
    volume = b.volume + EXCLUDED.volume, buy_volume = b.buy_volume + EXCLUDED.buy_volume,
    sell_volume = b.sell_volume + EXCLUDED.sell_volume, trades = b.trades + EXCLUDED.trades
$q$
$f$;

-- the statement that merges the bars of the trades in `src` into trade_bars_1m: `src` is spliced in
-- after FROM as given (a table, a CTE name, or `trades WHERE ...`) and must have instrument_id,
-- ts_exchange, trade_id, seq, side, price and qty
CREATE FUNCTION fb_trade_bars_sql(src text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT
AS $f$
SELECT format($q$
INSERT INTO trade_bars_1m AS b
SELECT a.instrument_id, a.m, o.price, a.high, a.low, c.price, a.volume, a.buy_volume, a.sell_volume, a.trades,
       o.ts_exchange, o.trade_id, o.seq, c.ts_exchange, c.trade_id, c.seq
FROM (SELECT instrument_id, m, max(price) AS high, min(price) AS low, sum(qty) AS volume,
             coalesce(sum(qty) FILTER (WHERE side > 0), 0) AS buy_volume,
             coalesce(sum(qty) FILTER (WHERE side < 0), 0) AS sell_volume, count(*) AS trades
      FROM %1$s GROUP BY instrument_id, m) AS a
JOIN (SELECT DISTINCT ON (instrument_id, m) instrument_id, m, price, ts_exchange, trade_id, seq
      FROM %1$s ORDER BY instrument_id, m, ts_exchange, trade_id, seq) AS o USING (instrument_id, m)
JOIN (SELECT DISTINCT ON (instrument_id, m) instrument_id, m, price, ts_exchange, trade_id, seq
      FROM %1$s ORDER BY instrument_id, m, ts_exchange DESC, trade_id DESC, seq DESC) AS c USING (instrument_id, m)
ORDER BY a.instrument_id, a.m
%2$s
$q$, format('(SELECT instrument_id, ts_exchange, trade_id, seq, side, price, qty, '
            'ts_exchange - ((ts_exchange %% 60000000000) + 60000000000) %% 60000000000 AS m FROM %s) AS s', src),
   fb_trade_bars_merge())
$f$;

-- recompute the bars of [from_ns, to_ns) (whole minutes) from the stored trades; returns the bars written
CREATE FUNCTION fb_rebuild_trade_bars(from_ns bigint, to_ns bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    lo bigint := from_ns - ((from_ns % 60000000000) + 60000000000) % 60000000000;
    d date;
    n bigint;
BEGIN
    FOR d IN SELECT DISTINCT (date '1970-01-01'
                              + ((ts_exchange - ((ts_exchange % 86400000000000) + 86400000000000) % 86400000000000)
                                 / 86400000000000)::integer)
             FROM trades WHERE ts_exchange >= lo AND ts_exchange < to_ns
    LOOP
        PERFORM fb_ensure_partition('trade_bars_1m', d);
    END LOOP;
    DELETE FROM trade_bars_1m WHERE ts >= lo AND ts < to_ns;
    EXECUTE fb_trade_bars_sql(format('trades WHERE ts_exchange >= %s AND ts_exchange < %s', lo, to_ns));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- fb_drop_before as in migration 1, and dropping days of trades drops the same days of bars
CREATE OR REPLACE FUNCTION fb_drop_before(tbl text, cutoff_ns bigint) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'no table %', tbl;
    END IF;
    IF tbl = 'trades' THEN
        PERFORM fb_drop_before('trade_bars_1m', cutoff_ns);
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

-- fb_set_retention as in migration 1; on TimescaleDB a policy on trades gets the same one on the bars
-- (natively, fb_drop_before drops the bars of the trades it drops)
CREATE OR REPLACE FUNCTION fb_set_retention(tbl text, keep interval) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    t text;
BEGIN
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'no table %', tbl;
    END IF;
    IF NOT fb_is_partitioned(tbl) THEN
        FOREACH t IN ARRAY CASE WHEN tbl = 'trades' THEN ARRAY[tbl, 'trade_bars_1m'] ELSE ARRAY[tbl] END LOOP
            EXECUTE format('SELECT remove_retention_policy(%L, if_exists => true)', t);
            EXECUTE format('SELECT add_retention_policy(%L, drop_after => %s::bigint)', t,
                           (extract(epoch FROM keep) * 1e9)::bigint);
        END LOOP;
    END IF;
    INSERT INTO retention (table_name, keep) VALUES (tbl, keep)
    ON CONFLICT (table_name) DO UPDATE SET keep = EXCLUDED.keep;
END
$$;

-- trades stored before this migration get their bars now
SELECT fb_rebuild_trade_bars(min(ts_exchange), max(ts_exchange) + 1) FROM trades HAVING count(*) > 0;
