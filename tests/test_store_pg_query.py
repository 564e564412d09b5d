"""PostgreSQL query results through binary COPY decoded with NumPy (``flowbook.store.pgread``), checked
value by value against psycopg's own ``fetchall`` on the real server: every common type, NULLs,
exact decimals, special floats, empty results, statement forms, parameters and errors."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal

import numpy as np
import polars as pl
import psycopg
import pytest
from psycopg.adapt import Transformer

from flowbook.store import PostgresStore, StoreError
from flowbook.store.pgread import Unframed, copyable, decode_messages

ALL_TYPES = """
SELECT i::int2 AS i2, (i * 70000)::int4 AS i4, i::int8 * 1000000000007 AS i8, (i % 3 = 0) AS b,
       (i / 3.0)::float4 AS f4, i::float8 / 7 AS f8,
       CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS i4_nulls,
       CASE WHEN i % 4 = 0 THEN NULL ELSE i / 9.0 END::float8 AS f8_nulls,
       (i * 12345.678)::numeric(20, 3) AS num3, (i / 8.0)::numeric AS num_mixed,
       CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 1e-9)::numeric END AS num_small,
       'x' || repeat('é', abs(i) % 4) || '☃' AS txt, CASE WHEN i % 7 = 0 THEN NULL ELSE '' END AS txt_empty,
       ('ab' || i)::varchar(10) AS vc, ('c' || i)::char(4) AS bp, 'name'::name AS nm,
       DATE '2024-01-01' + i AS d, TIMESTAMP '2024-01-01 00:00:00.123456' + i * INTERVAL '1 second' AS ts,
       TIMESTAMPTZ '2024-08-08 00:00:00.000001+00' + i * INTERVAL '1 minute' AS tstz,
       CASE WHEN i % 2 = 0 THEN NULL ELSE TIMESTAMPTZ '1999-12-31 23:59:59+00' END AS tstz_nulls,
       (i + 100)::oid AS o, ARRAY[i, i + 1] AS arr, i * INTERVAL '1 hour' AS iv,
       ('{"a": ' || i || '}')::jsonb AS js, md5(i::text)::uuid AS u
FROM generate_series(-3, 300) AS g(i) ORDER BY i
"""


@pytest.fixture
def st(pg_dsn: str, pg_schema: str) -> PostgresStore:
    s = PostgresStore(pg_dsn, pg_schema)
    yield s
    s.close()


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _assert_equal_values(new: pl.DataFrame, ref: pl.DataFrame) -> None:
    assert new.columns == ref.columns and new.height == ref.height
    for name in ref.columns:
        got, want = new[name].to_list(), ref[name].to_list()
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if not _same(g, w)]
        assert not bad, (name, bad[:3])


def test_every_type_equals_fetchall(st: PostgresStore) -> None:
    new = st.query(ALL_TYPES)
    ref = st._query(ALL_TYPES, None, copy=False)
    _assert_equal_values(new, ref)
    # columnar types, not Python objects
    want = {"i2": pl.Int16, "i4": pl.Int32, "i8": pl.Int64, "b": pl.Boolean, "f4": pl.Float32, "f8": pl.Float64,
            "txt": pl.String, "d": pl.Date, "ts": pl.Datetime("us"), "tstz": pl.Datetime("us", "Etc/UTC")}
    for name, dt in want.items():
        assert new.schema[name] == dt, name
    assert new.schema["num3"] == pl.Decimal(38, 3) and new.schema["num_small"] == pl.Decimal(38, 9)
    assert new["num_mixed"].to_list()[:3] == [Decimal("-0.375"), Decimal("-0.25"), Decimal("-0.125")]


def test_numeric_and_float_edge_values(st: PostgresStore) -> None:
    q = ("SELECT v::numeric AS n FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, k) ORDER BY k")
    cases = [["0", "-0.5", "1e-12", "-123456789012.123456", "600000.1", None, "10000", "-1", "0.0001"],
             ["99999999999999999999", "1"],  # beyond int64 unscaled: Python Decimal path
             ["NaN", "1.5"],  # NaN: Python Decimal path
             ["1e-30", "2"]]  # scale beyond 18
    for vals in cases:
        new = st.query(q, (vals,))
        want = [None if v is None else Decimal(v) for v in vals]
        got = new["n"].to_list()
        assert [str(x) for x in got] == [str(x) for x in want] if "NaN" in vals else got == want
        if "NaN" not in vals:  # (polars cannot build a decimal column holding NaN from Python objects)
            _assert_equal_values(new, st._query(q, (vals,), copy=False))
    f = st.query("SELECT unnest(ARRAY['NaN', 'Infinity', '-Infinity', '-0', '5e-324', '1.7976931348623157e308']"
                 "::float8[]) AS f")
    got = f["f"].to_numpy()
    want = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308])
    assert got.tobytes() == want.tobytes()


def test_infinite_dates_and_times_behave_like_fetchall(st: PostgresStore) -> None:
    new = st.query("SELECT DATE 'infinity' > DATE '2024-01-01' AS later, DATE '2024-02-29' AS d")
    assert new.rows() == [(True, datetime.date(2024, 2, 29))]
    for q in ("SELECT DATE 'infinity' AS d", "SELECT TIMESTAMPTZ 'infinity' AS t",
              "SELECT TIMESTAMP '-infinity' AS t, 1 AS x"):
        with pytest.raises(StoreError, match="too large|too small"):  # no Python date holds them
            st._query(q, None, copy=False)
        with pytest.raises(StoreError, match="too large|too small"):
            st.query(q)


def test_empty_results_keep_their_types(st: PostgresStore) -> None:
    df = st.query("SELECT 1::int4 AS a, 'x'::text AS b, 1.5::numeric AS c, now() AS t WHERE false")
    assert df.height == 0 and df.schema == {"a": pl.Int32, "b": pl.String, "c": pl.Decimal(38, 0),
                                            "t": pl.Datetime("us", "Etc/UTC")}


def test_statement_forms_and_parameters(st: PostgresStore) -> None:
    assert st.query("SELECT 1 AS x;  ")["x"].to_list() == [1]
    assert st.query("-- a comment\n/* and another */ (SELECT 2 AS x) -- trailing")["x"].to_list() == [2]
    assert st.query("SELECT 3 AS x; -- after the semicolon")["x"].to_list() == [3]
    assert st.query("WITH a AS (SELECT 4 AS x) SELECT * FROM a")["x"].to_list() == [4]
    assert st.query("VALUES (5, 'five')").rows() == [(5, "five")]
    assert st.query("TABLE schema_migrations").height >= 2
    assert st.query("SHOW search_path").height == 1  # not COPY-able: the plain path
    evil = "x'); DROP TABLE trades; --"
    df = st.query("SELECT %s AS s, %(n)s::int8 AS n, 'a%%' AS p".replace("%s", "%(s)s"), {"s": evil, "n": 2**62})
    assert df.rows() == [(evil, 2**62, "a%")]
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 0  # still there
    dup = st.query("SELECT 1 AS a, 2 AS a, 3 AS count, 4 AS count")
    assert dup.columns == ["a", "a_1", "count", "count_1"]
    assert copyable(" ( select 1)") and copyable("Values (1)") and copyable("table t")
    assert not copyable("tables") and not copyable("SHOW x") and not copyable("/* open comment")


def test_errors(st: PostgresStore) -> None:
    with pytest.raises(StoreError, match="division by zero"):  # an error after rows were sent
        st.query("SELECT 1 / (i - 5000) AS x FROM generate_series(1, 10000) AS g(i)")
    with pytest.raises(StoreError, match="syntax error"):
        st.query("SELECT FROM WHERE")
    with pytest.raises(StoreError, match="read-only"):
        st.query("WITH d AS (DELETE FROM trades RETURNING 1) SELECT * FROM d")
    with pytest.raises(StoreError, match="returns no rows"):
        st.query("SET work_mem = '8MB'")
    with pytest.raises(StoreError):
        st.query("SELECT 1; SELECT 2")
    assert st.query("SELECT 6 AS x")["x"].to_list() == [6]  # the connection is fine afterwards


def test_unexpected_framing_is_detected(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY (SELECT i::int8 AS a, 'r' || i AS b FROM generate_series(1, 3) i) "
                      "TO STDOUT (FORMAT BINARY)") as cp:
            chunks = [bytes(c) for c in cp]
        tx = Transformer(conn)
        df = decode_messages(chunks, ["a", "b"], [20, 25], tx, "UTC", True)
        assert df.rows() == [(1, "r1"), (2, "r2"), (3, "r3")]
        merged = [chunks[0], chunks[1] + chunks[2], *chunks[3:]]  # two rows in one message
        with pytest.raises(Unframed):
            decode_messages(merged, ["a", "b"], [20, 25], tx, "UTC", True)
        with pytest.raises(Unframed):
            decode_messages(chunks, ["a"], [20], tx, "UTC", True)  # fewer columns than the rows carry


def test_session_time_zone(st: PostgresStore) -> None:
    q = "SELECT TIMESTAMPTZ '2024-08-08 12:00:00+00' + i * INTERVAL '1 hour' AS t FROM generate_series(0, 3) i"
    st.conn().execute("SET TIME ZONE 'America/New_York'")
    new, ref = st.query(q), st._query(q, None, copy=False)
    assert new.schema["t"] == pl.Datetime("us", "America/New_York")
    _assert_equal_values(new, ref)
    st.conn().execute("SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE")  # no zone name: psycopg's datetimes
    _assert_equal_values(st.query(q), st._query(q, None, copy=False))


def test_a_result_of_many_messages(st: PostgresStore) -> None:
    """More rows than one block of messages (65,536), with NULLs and text."""
    q = ("SELECT i, i::float8 / 3 AS f, CASE WHEN i % 1000 = 0 THEN NULL ELSE 'r' || i END AS t, "
         "(i * 0.01)::numeric(12, 2) AS n FROM generate_series(1, 150000) AS g(i)")
    new = st.query(q)
    assert new.height == 150_000 and new["t"].null_count() == 150
    _assert_equal_values(new, st._query(q, None, copy=False))
