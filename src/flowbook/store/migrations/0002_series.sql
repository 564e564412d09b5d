-- flowbook store, migration 2: the time-series tables (columns as flowbook.store.schema; times are
-- bigint ns since the epoch, prices and sizes exact numeric) and a `<table>_v` view of each with the
-- instrument's venue and symbol and a timestamptz `time` column.  Primary keys are the natural keys:
-- INSERT ... ON CONFLICT DO NOTHING makes every re-import a no-op.

SELECT fb_create_series('trades', $$
    instrument_id integer NOT NULL, ts_exchange bigint NOT NULL, ts_local bigint NOT NULL,
    trade_id bigint NOT NULL, side smallint NOT NULL, price numeric NOT NULL, qty numeric NOT NULL,
    flags integer NOT NULL, seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts_exchange, trade_id, seq)$$, 'ts_exchange', 'instrument_id', 'ts_exchange');

SELECT fb_create_series('liquidations', $$
    instrument_id integer NOT NULL, ts_exchange bigint NOT NULL, ts_local bigint NOT NULL,
    side smallint NOT NULL, price numeric NOT NULL, qty numeric NOT NULL, avg_price double precision NOT NULL,
    seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts_exchange, side, seq)$$, 'ts_exchange', 'instrument_id', 'ts_exchange');

SELECT fb_create_series('funding_rates', $$
    instrument_id integer NOT NULL, ts_exchange bigint NOT NULL, ts_local bigint NOT NULL,
    funding_rate double precision NOT NULL, mark_price double precision NOT NULL,
    next_funding_time bigint NOT NULL, seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts_exchange, seq)$$, 'ts_exchange', 'instrument_id', 'ts_exchange');

SELECT fb_create_series('open_interest', $$
    instrument_id integer NOT NULL, ts_exchange bigint NOT NULL, ts_local bigint NOT NULL,
    open_interest double precision NOT NULL, seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts_exchange, seq)$$, 'ts_exchange', 'instrument_id', 'ts_exchange');

SELECT fb_create_series('features', $$
    instrument_id integer NOT NULL, ts bigint NOT NULL, ts_exchange bigint NOT NULL, update_id bigint NOT NULL,
    interval_ns bigint NOT NULL, config_hash bigint NOT NULL, seq integer NOT NULL,
    best_bid double precision, best_bid_qty double precision, best_ask double precision,
    best_ask_qty double precision, mid double precision, spread double precision, spread_bps double precision,
    spread_pct double precision, microprice double precision, imbalance_1 double precision,
    imbalance_n double precision, imbalance_dw double precision, bid_depth_n double precision,
    ask_depth_n double precision, bid_notional_n double precision, ask_notional_n double precision,
    total_depth_n double precision, depth_ratio double precision, depth_ratio_capped double precision,
    large_order_presence double precision, bid_depth_bps double precision, ask_depth_bps double precision,
    bid_notional_bps double precision, ask_notional_bps double precision, ofi double precision,
    mlofi_1 double precision, mlofi_2 double precision, mlofi_3 double precision, mlofi_4 double precision,
    mlofi_5 double precision, cvd double precision, delta_volume_k double precision,
    buy_volume double precision, sell_volume double precision, trade_count bigint, vwap double precision,
    vwap_k double precision, last_price double precision,
    PRIMARY KEY (instrument_id, config_hash, ts, update_id, seq)$$, 'ts', 'instrument_id, config_hash', 'ts');

SELECT fb_create_series('detector_events', $$
    instrument_id integer NOT NULL, ts bigint NOT NULL, ts_exchange bigint NOT NULL, detector text NOT NULL,
    side smallint NOT NULL, price numeric NOT NULL, qty numeric NOT NULL, score double precision,
    details text NOT NULL, seq integer NOT NULL,
    PRIMARY KEY (instrument_id, detector, ts, seq)$$, 'ts', 'instrument_id, detector', 'ts');

SELECT fb_create_series('book_deltas', $$
    instrument_id integer NOT NULL, ts_local bigint NOT NULL, ts_exchange bigint NOT NULL,
    update_id bigint NOT NULL, first_update_id bigint NOT NULL, kind smallint NOT NULL, side smallint NOT NULL,
    price numeric NOT NULL, qty numeric NOT NULL, flags integer NOT NULL, seq integer NOT NULL,
    PRIMARY KEY (instrument_id, ts_local, update_id, seq)$$, 'ts_local', 'instrument_id', 'ts_local');

SELECT fb_create_series('book_snapshots', $$
    instrument_id integer NOT NULL, ts_local bigint NOT NULL, ts_exchange bigint NOT NULL,
    update_id bigint NOT NULL, side smallint NOT NULL, level smallint NOT NULL, price numeric NOT NULL,
    qty numeric NOT NULL,
    PRIMARY KEY (instrument_id, ts_local, update_id, side, level)$$, 'ts_local', 'instrument_id', 'ts_local');

SELECT fb_create_series('liquidation_levels', $$
    instrument_id integer NOT NULL, ts bigint NOT NULL, side smallint NOT NULL, price numeric NOT NULL,
    leverage double precision NOT NULL, notional double precision NOT NULL,
    PRIMARY KEY (instrument_id, ts, side, price, leverage)$$, 'ts', 'instrument_id', 'ts');

DO $$
DECLARE
    t text;
    tc text;
BEGIN
    FOR t, tc IN SELECT * FROM (VALUES ('trades', 'ts_exchange'), ('liquidations', 'ts_exchange'),
            ('funding_rates', 'ts_exchange'), ('open_interest', 'ts_exchange'), ('features', 'ts'),
            ('detector_events', 'ts'), ('book_deltas', 'ts_local'), ('book_snapshots', 'ts_local'),
            ('liquidation_levels', 'ts')) AS v(t, tc)
    LOOP
        EXECUTE format('CREATE VIEW %I AS SELECT i.venue, i.symbol, to_timestamp(x.%I / 1e9) AS time, x.* '
                       'FROM %I x JOIN instruments i USING (instrument_id)', t || '_v', tc, t);
    END LOOP;
END
$$;
