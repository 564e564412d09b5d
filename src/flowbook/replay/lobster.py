"""Reader for LOBSTER NASDAQ message and orderbook files.

LOBSTER (https://lobsterdata.com) publishes, per symbol and day, a *message* file (one exchange event
per row) and an *orderbook* file (row ``k`` = the book's top ``N`` levels after message ``k``).  Both
are header-less CSV; file names look like ``AAPL_2012-06-21_34200000_57600000_message_10.csv``.

Conventions of this reader
--------------------------
* Times are seconds after midnight with up to 9 decimals; they are parsed as decimal strings into
  integer nanoseconds (no float).  The date in the file name is taken as **UTC midnight**; the true
  exchange time zone (America/New_York) is ignored, so ``ts_exchange`` is "New York wall clock
  expressed as if it were UTC".
* Prices are USD x 10000 integers; they are converted to ticks of 0.01 USD (exactly, else
  ``ValueError``).  Quantities are shares (lot size 1).
* Message types map to events of :data:`~flowbook.events.dtype.EVENT_DTYPE`:

  ====  =====================================================================================
  1     ``ORDER_ADD``
  2     ``ORDER_REDUCE`` (qty = size removed)
  3     ``ORDER_DELETE`` (qty = size removed)
  4     ``ORDER_EXEC`` (qty = executed size) followed by ``TRADE`` (aggressor side = -direction)
  5     ``TRADE`` with ``Flag.HIDDEN`` (aggressor side = -direction; the book is unchanged)
  6     ``TRADE`` (cross / auction trade; side ``Side.NONE``)
  7     trading halt / quote / resume indicator: no event, counted in ``n_halts``
  ====  =====================================================================================

  ``id`` is the LOBSTER order id for every event (LOBSTER has no trade ids); the last event of every
  message row carries ``Flag.END_OF_MESSAGE``.  LOBSTER notes that NASDAQ masks the side of hidden
  orders, so the side of a type-5 trade is only as good as the file's direction.
* The message file only holds events "in the requested price range" (its top ``N`` levels): a level
  outside the window changes silently.  Replay it with ``L3Book(window=N)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowbook.events.dtype import Flag, Kind, Side, empty_events
from flowbook.events.instrument import Instrument

__all__ = ["LobsterBook", "LobsterData", "read_lobster", "parse_time_ns", "parse_file_name"]

_PRICE_DIV = 100  # USD x 10000 -> ticks of 0.01 USD
_NS_PER_DAY = 86_400 * 10**9
_NAME_RE = re.compile(
    r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(?:message|orderbook)_\d+\.csv$"
)
_TIME_RE = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")
_EMPTY_ASK = 9_999_999_999  # LOBSTER's placeholder for a missing ask level (size 0)
_EMPTY_BID = -9_999_999_999  # LOBSTER's placeholder for a missing bid level (size 0)


@dataclass(frozen=True, slots=True, eq=False)
class LobsterBook:
    """Aggregated price levels of both sides, best first, prices in ticks of 0.01 USD."""

    bid_prices: np.ndarray
    bid_qtys: np.ndarray
    ask_prices: np.ndarray
    ask_qtys: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class LobsterData:
    """The content of one LOBSTER message file (and its orderbook file, if given).

    Attributes
    ----------
    events:
        EVENT_DTYPE array in file order.
    instrument:
        ``Instrument(venue="lobster", symbol=<ticker>, tick_size="0.01", lot_size="1")``.
    initial_book:
        The book *before* message 0, derived from orderbook row 0 by undoing message 0 (``None``
        without an orderbook file).  Every level in it is exact; it may hold one level fewer or
        more than the file's depth.
    orderbook:
        ``(n_rows, 4 * depth)`` int64 array exactly as in the file (USD x 10000 prices, LOBSTER's
        placeholders for empty levels kept), or ``None``.
    msg_rows:
        int64 array, one entry per event: the 0-based message row the event came from.
    row_end:
        int64 array, one entry per message row: the event index one past the row's last event, so
        the book after message row ``k`` is the result of applying ``events[:row_end[k]]``.
    n_halts:
        number of type-7 rows skipped.
    date_ns:
        ns since the epoch of the file date's UTC midnight (added to every time).
    """

    events: np.ndarray
    instrument: Instrument
    initial_book: LobsterBook | None
    orderbook: np.ndarray | None
    msg_rows: np.ndarray
    row_end: np.ndarray
    n_halts: int
    date_ns: int


def parse_time_ns(text: str) -> int:
    """Exact integer nanoseconds of a decimal seconds string such as ``"34200.004241176"``.

    Raises
    ------
    ValueError
        if the text is not ``digits[.digits]`` with at most 9 decimals.
    """
    m = _TIME_RE.match(text.strip())
    if m is None:
        raise ValueError(f"bad time {text!r} (expected seconds with at most 9 decimals)")
    whole, frac = m.group(1), m.group(2) or ""
    return int(whole) * 10**9 + int(frac.ljust(9, "0"))


def parse_file_name(path: str | Path) -> tuple[str, int]:
    """Ticker and date base (ns since the epoch, UTC midnight) of a LOBSTER file name."""
    name = Path(path).name
    m = _NAME_RE.match(name)
    if m is None:
        raise ValueError(f"{name}: not a LOBSTER file name (TICKER_YYYY-MM-DD_start_end_message_N.csv)")
    date_ns = int(np.datetime64(m.group("date"), "ns").astype(np.int64))
    return m.group("ticker"), date_ns


def _to_ticks(raw: int, where: str) -> int:
    q, r = divmod(raw, _PRICE_DIV)
    if r:
        raise ValueError(f"{where}: price {raw} (USD x 10000) is not a multiple of 0.01 USD")
    return q


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="ascii")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline (the last line may also lack one)
    return [ln.rstrip("\r") for ln in lines]


# message type -> events: (kind, side as a multiple of the direction, flags)
_EVENTS: dict[int, tuple[tuple[int, int, int], ...]] = {
    1: ((Kind.ORDER_ADD, 1, 0),),
    2: ((Kind.ORDER_REDUCE, 1, 0),),
    3: ((Kind.ORDER_DELETE, 1, 0),),
    4: ((Kind.ORDER_EXEC, 1, 0), (Kind.TRADE, -1, 0)),
    5: ((Kind.TRADE, -1, Flag.HIDDEN),),
    6: ((Kind.TRADE, 0, 0),),  # cross trade: no aggressor
    7: (),  # halt / quote / resume indicator
}


def _read_messages(path: Path, symbol: int, date_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    name = path.name
    cols: dict[str, list[int]] = {
        f: [] for f in ("kind", "side", "flags", "ts_exchange", "price", "qty", "id")
    }
    msg_rows: list[int] = []
    row_end: list[int] = []
    n_halts = 0
    for r, line in enumerate(_read_lines(path)):
        where = f"{name}:{r + 1}"
        parts = line.split(",")
        if len(parts) != 6:
            raise ValueError(f"{where}: expected 6 fields, got {len(parts)}: {line!r}")
        try:
            t_ns = parse_time_ns(parts[0])
            typ, oid, size, price, direction = (int(p) for p in parts[1:])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        out = _EVENTS.get(typ)
        if out is None:
            raise ValueError(f"{where}: unknown message type {typ}")
        if not out:
            n_halts += 1  # type 7: its price is a -1/0/1 code, not a price
        elif direction not in (1, -1):
            raise ValueError(f"{where}: direction must be 1 or -1, got {direction}")
        elif size <= 0:
            raise ValueError(f"{where}: size must be positive, got {size}")
        else:
            ticks = _to_ticks(price, where)
            for j, (kind, mult, flags) in enumerate(out):
                last = j == len(out) - 1
                cols["kind"].append(kind)
                cols["side"].append(mult * direction)
                cols["flags"].append(flags | (Flag.END_OF_MESSAGE if last else 0))
                cols["ts_exchange"].append(date_ns + t_ns)
                cols["price"].append(ticks)
                cols["qty"].append(size)
                cols["id"].append(oid)
                msg_rows.append(r)
        row_end.append(len(msg_rows))
    ev = empty_events(len(msg_rows))
    for field, values in cols.items():
        ev[field] = values
    ev["ts_local"] = ev["ts_exchange"]
    ev["symbol"] = symbol
    return ev, np.array(msg_rows, dtype=np.int64), np.array(row_end, dtype=np.int64), n_halts


def _read_orderbook(path: Path) -> np.ndarray:
    name = path.name
    lines = _read_lines(path)
    width = lines[0].count(",") + 1 if lines else 0
    if width % 4:
        raise ValueError(f"{name}:1: expected a multiple of 4 fields, got {width}")
    for lineno, line in enumerate(lines, start=1):
        if line.count(",") + 1 != width:
            raise ValueError(f"{name}:{lineno}: expected {width} fields, got {line.count(',') + 1}")
    try:
        flat = np.array(",".join(lines).split(",") if lines else [], dtype=np.str_).astype(np.int64)
    except ValueError:
        for lineno, line in enumerate(lines, start=1):
            try:
                [int(p) for p in line.split(",")]
            except ValueError as exc:
                raise ValueError(f"{name}:{lineno}: {exc}") from None
        raise
    return flat.reshape(len(lines), width)


def _row_levels(row: np.ndarray, where: str) -> tuple[dict[int, int], dict[int, int]]:
    """Bid and ask levels (ticks -> qty) of one orderbook row, placeholders dropped."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for lvl in range(len(row) // 4):
        ap, aq, bp, bq = (int(v) for v in row[4 * lvl : 4 * lvl + 4])
        if aq > 0 and ap != _EMPTY_ASK:
            asks[_to_ticks(ap, where)] = aq
        if bq > 0 and bp != _EMPTY_BID:
            bids[_to_ticks(bp, where)] = bq
    return bids, asks


def _undo_first(book_rows: np.ndarray, ev: np.ndarray, row_end: np.ndarray, name: str) -> LobsterBook:
    """The book before message 0: orderbook row 0 with message 0's effect undone."""
    bids, asks = _row_levels(book_rows[0], f"{name}:1")
    depth = book_rows.shape[1] // 4
    for e in ev[: row_end[0]]:
        k, s, p, q = int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"])
        levels = bids if s == Side.BID else asks
        if k == Kind.ORDER_ADD:
            left = levels.get(p, 0) - q
            if left < 0:
                raise ValueError(f"{name}:1: message 0 adds {q} at {p} but row 0 holds {levels.get(p, 0)}")
            if left:
                levels[p] = left
            else:
                levels.pop(p, None)
        elif k in (Kind.ORDER_REDUCE, Kind.ORDER_DELETE, Kind.ORDER_EXEC):
            # A price beyond the worst level of a full side was outside the window: unknown there.
            full = len(levels) >= depth
            if not (full and (p < min(levels) if s == Side.BID else p > max(levels))):
                levels[p] = levels.get(p, 0) + q
    bp = sorted(bids, reverse=True)
    ap = sorted(asks)
    return LobsterBook(
        bid_prices=np.array(bp, dtype=np.int64),
        bid_qtys=np.array([bids[p] for p in bp], dtype=np.int64),
        ask_prices=np.array(ap, dtype=np.int64),
        ask_qtys=np.array([asks[p] for p in ap], dtype=np.int64),
    )


def read_lobster(
    message_path: str | Path,
    orderbook_path: str | Path | None = None,
    symbol: int = 0,
    *,
    ticker: str | None = None,
    date: str | None = None,
) -> LobsterData:
    """Read a LOBSTER message file (and optionally its orderbook file) into flat events.

    Parameters
    ----------
    message_path:
        ``<TICKER>_<YYYY-MM-DD>_<start>_<end>_message_<N>.csv``.
    orderbook_path:
        the matching ``..._orderbook_<N>.csv``; needed for ``initial_book`` and ``orderbook``.
    symbol:
        value written to the events' ``symbol`` field (index into the run's instrument table).
    ticker, date:
        override the ticker and the ``YYYY-MM-DD`` date parsed from the file name (needed only for
        files that were renamed).

    Returns
    -------
    LobsterData

    Raises
    ------
    ValueError
        ``"<file>:<line>: <message>"`` for a malformed row, an unknown type, a price that is not a
        whole number of cents, or an orderbook file whose row count differs from the message file.
    """
    mpath = Path(message_path)
    if ticker is None or date is None:
        name_ticker, date_ns = parse_file_name(mpath)
        ticker = ticker if ticker is not None else name_ticker
    if date is not None:
        date_ns = int(np.datetime64(date, "ns").astype(np.int64))
    if date_ns % _NS_PER_DAY:
        raise ValueError(f"date {date!r} is not a whole day")
    ev, msg_rows, row_end, n_halts = _read_messages(mpath, symbol, date_ns)
    book_rows: np.ndarray | None = None
    initial: LobsterBook | None = None
    if orderbook_path is not None:
        opath = Path(orderbook_path)
        book_rows = _read_orderbook(opath)
        if len(book_rows) != len(row_end):
            raise ValueError(
                f"{opath.name}: {len(book_rows)} rows but {mpath.name} has {len(row_end)} messages"
            )
        if len(book_rows):
            initial = _undo_first(book_rows, ev, row_end, opath.name)
    return LobsterData(
        events=ev,
        instrument=Instrument(venue="lobster", symbol=ticker, tick_size="0.01", lot_size="1"),
        initial_book=initial,
        orderbook=book_rows,
        msg_rows=msg_rows,
        row_end=row_end,
        n_halts=n_halts,
        date_ns=date_ns,
    )
