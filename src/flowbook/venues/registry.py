"""The venues flowbook knows, each with its declared capabilities (data, not code).

A venue is one market of one exchange (``binance`` spot, ``binance-usdm``, ...).  Its entry names the
package holding its parser, sequencer and feed (``module``), the live adapter class when there is one
(``live``), the default endpoints and what the exchange documents as limits.  ``tests/test_live_registry.py``
checks that every venue package under :mod:`flowbook.venues` is registered here.

Nothing in this module imports a network library, so ``flowbook --help`` and argument parsing stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Capabilities",
    "UnknownVenue",
    "Venue",
    "get",
    "parse_target",
    "register",
    "venues",
]


class UnknownVenue(ValueError):
    """A venue name (or ``VENUE:SYMBOLS`` target) that is not registered or not usable."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue offers and the limits its documentation states.

    ``snapshot_weights`` lists ``(max limit, weight)`` pairs of the REST depth snapshot, ascending.
    ``ws_routes`` maps a URL route (``"public"``) to the stream kinds it carries; empty when the venue
    serves every stream on one path.  ``trades_weight`` is the REST weight of ``GET trades`` (recent
    trades, polling mode), ``open_interest_weight`` that of ``GET openInterest`` (0: not offered).
    """

    streams: tuple[str, ...]
    depth_speeds: tuple[str, ...]
    default_depth_speed: str
    snapshot_limits: tuple[int, ...]
    default_snapshot_limit: int
    snapshot_weights: tuple[tuple[int, int], ...]
    rest_weight_per_minute: int
    max_streams_per_connection: int
    server_ping_seconds: float
    sync_rule: str
    checksum: bool = False
    ws_routes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    replay_formats: tuple[str, ...] = ("binance-raw",)
    trades_weight: int = 5
    open_interest_weight: int = 0

    def snapshot_weight(self, limit: int) -> int:
        """REST weight of one depth snapshot of ``limit`` levels."""
        for top, weight in self.snapshot_weights:
            if limit <= top:
                return weight
        return self.snapshot_weights[-1][1] if self.snapshot_weights else 0

    def route_of(self, kind: str) -> str:
        """URL route carrying a stream kind (``""`` when the venue does not route by path)."""
        for route, kinds in self.ws_routes:
            if kind in kinds:
                return route
        return ""


@dataclass(frozen=True, slots=True)
class Venue:
    """One market of one exchange."""

    name: str
    exchange: str
    market: str  # the parser's market name ("spot", "usdm", "coinm")
    module: str  # package holding the parser, sequencer and feed
    live: str | None  # "module:Class" of the live adapter; None while only replay is supported
    ws_url: str
    rest_url: str
    rest_prefix: str
    capabilities: Capabilities
    description: str = ""
    symbol_pattern: str = r"[A-Z0-9_]{2,32}"  # how the venue writes a symbol (checked on targets)


_REGISTRY: dict[str, Venue] = {}
_ALIASES: dict[str, str] = {}


def register(venue: Venue, aliases: tuple[str, ...] = ()) -> Venue:
    """Add a venue (and alternative names for it).  Registering a name twice is an error."""
    for name in (venue.name, *aliases):
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"venue {name!r} is already registered")
    _REGISTRY[venue.name] = venue
    for a in aliases:
        _ALIASES[a] = venue.name
    return venue


def venues() -> list[Venue]:
    """Every registered venue, in registration order."""
    return list(_REGISTRY.values())


def get(name: str, live: bool = False) -> Venue:
    """The venue called ``name``; with ``live=True`` it must have a live adapter."""
    key = _ALIASES.get(name.lower(), name.lower())
    v = _REGISTRY.get(key)
    if v is None:
        raise UnknownVenue(f"unknown venue {name!r}; known: {', '.join(_REGISTRY)}")
    if live and v.live is None:
        usable = ", ".join(x.name for x in _REGISTRY.values() if x.live)
        raise UnknownVenue(f"venue {v.name!r} has no live adapter yet; live venues: {usable}")
    return v




_EXAMPLES = {"okx": "BTC-USDT or BTC-USDT-SWAP", "kraken": "BTC/USD", "coinbase": "BTC-USD"}


def parse_target(text: str, live: bool = True) -> tuple[Venue, list[str]]:
    """``"binance-usdm:BTCUSDT,ETHUSDT"`` -> the venue and its symbols (upper case, no duplicates)."""
    name, sep, rest = text.partition(":")
    if not sep or not rest.strip():
        raise UnknownVenue(f"expected VENUE:SYMBOL[,SYMBOL...], got {text!r} (e.g. binance-usdm:BTCUSDT)")
    venue = get(name.strip(), live=live)
    out: list[str] = []
    for raw in rest.split(","):
        sym = raw.strip().upper()
        if not sym:
            continue
        if not re.fullmatch(venue.symbol_pattern, sym):
            raise UnknownVenue(f"not a symbol: {raw.strip()!r} ({venue.name} writes symbols like "
                               f"{_EXAMPLES.get(venue.exchange, 'BTCUSDT')})")
        if sym not in out:
            out.append(sym)
    if not out:
        raise UnknownVenue(f"no symbol given in {text!r}")
    return venue, out


# -- Binance.  Limits: developers.binance.com (spot "WebSocket Streams" and "General API Information";
# USD-M "Websocket Market Streams", "Order Book"), summarised in reference §B.1 and docs/venues.md.
_SPOT_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_FUT_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))

register(
    Venue(
        name="binance",
        exchange="binance",
        market="spot",
        module="flowbook.venues.binance",
        live="flowbook.venues.binance.live:BinanceLive",
        ws_url="wss://stream.binance.com:9443",
        rest_url="https://api.binance.com",
        rest_prefix="/api/v3",
        capabilities=Capabilities(
            streams=("depth", "trade", "aggTrade", "bookTicker", "ticker"),
            depth_speeds=("100ms", "1000ms"),
            default_depth_speed="100ms",
            snapshot_limits=(5, 10, 20, 50, 100, 500, 1000, 5000),
            default_snapshot_limit=1000,
            snapshot_weights=_SPOT_WEIGHTS,
            rest_weight_per_minute=6000,
            max_streams_per_connection=1024,
            server_ping_seconds=20.0,
            sync_rule="binance-spot",
            trades_weight=25,
        ),
        description="Binance spot: diff depth, trades, book ticker, 24 h ticker",
    ),
    aliases=("binance-spot",),
)
register(
    Venue(
        name="binance-usdm",
        exchange="binance",
        market="usdm",
        module="flowbook.venues.binance",
        live="flowbook.venues.binance.live:BinanceLive",
        ws_url="wss://fstream.binance.com",
        rest_url="https://fapi.binance.com",
        rest_prefix="/fapi/v1",
        capabilities=Capabilities(
            streams=("depth", "trade", "aggTrade", "bookTicker", "forceOrder", "markPrice", "ticker"),
            depth_speeds=("0ms", "100ms", "250ms", "500ms"),
            default_depth_speed="100ms",
            snapshot_limits=(5, 10, 20, 50, 100, 500, 1000),
            default_snapshot_limit=1000,
            snapshot_weights=_FUT_WEIGHTS,
            rest_weight_per_minute=2400,
            # the USD-M page now says 1024; older pages and most clients say 200: the smaller is safe
            max_streams_per_connection=200,
            server_ping_seconds=180.0,
            sync_rule="binance-futures",
            # fstream routes by path: /public carries depth and book tickers, /market the rest; a stream
            # on the wrong path is accepted and silently never delivered
            ws_routes=(("public", ("depth", "bookTicker")),
                       ("market", ("trade", "aggTrade", "forceOrder", "markPrice", "ticker"))),
            open_interest_weight=1,
        ),
        description="Binance USD-M futures: diff depth, trades, book ticker, liquidations, mark price, 24 h "
                    "ticker, open interest",
    ),
)
register(
    Venue(
        name="binance-coinm",
        exchange="binance",
        market="coinm",
        module="flowbook.venues.binance",
        live="flowbook.venues.binance.live:BinanceLive",
        ws_url="wss://dstream.binance.com",
        rest_url="https://dapi.binance.com",
        rest_prefix="/dapi/v1",
        capabilities=Capabilities(
            streams=("depth", "trade", "aggTrade", "bookTicker", "forceOrder", "markPrice", "ticker"),
            # 0ms is undocumented but served (the shared COIN-M captures use it), as on USD-M
            depth_speeds=("0ms", "100ms", "250ms", "500ms"),
            default_depth_speed="100ms",
            snapshot_limits=(5, 10, 20, 50, 100, 500, 1000),
            default_snapshot_limit=1000,
            snapshot_weights=_FUT_WEIGHTS,
            rest_weight_per_minute=2400,
            max_streams_per_connection=200,
            server_ping_seconds=180.0,
            sync_rule="binance-futures",
            open_interest_weight=1,
        ),
        description="Binance COIN-M futures (inverse): diff depth, trades, book ticker, liquidations, mark price, "
                    "24 h ticker, open interest",
    ),
)


# -- Venues that push the book snapshot over the WebSocket (no REST snapshot): the book depth is chosen
# at subscription (``snapshot_limits``), a resync is a resubscription of that symbol's book topic, and
# ``snapshot_weights`` is empty.  Limits: reference §B.2-B.4 and each venue's docs page (docs/venues-*.md).
register(
    Venue(
        name="bybit",
        exchange="bybit",
        market="spot",
        module="flowbook.venues.bybit",
        live="flowbook.venues.bybit.live:BybitLive",
        ws_url="wss://stream.bybit.com/v5/public/spot",
        rest_url="https://api.bybit.com",
        rest_prefix="/v5/market",
        capabilities=Capabilities(
            streams=("orderbook", "publicTrade", "tickers"),
            depth_speeds=("10ms", "20ms", "200ms"),  # depth 1, 50, 200/1000
            default_depth_speed="20ms",
            snapshot_limits=(1, 50, 200, 1000),
            default_snapshot_limit=50,
            snapshot_weights=(),
            rest_weight_per_minute=0,
            max_streams_per_connection=10,  # args per subscribe request on spot
            server_ping_seconds=20.0,  # the client pings; the server drops a silent connection
            sync_rule="bybit-v5",
            replay_formats=("bybit",),
        ),
        description="Bybit v5 spot: order book snapshot/delta with u, public trades, tickers",
    ),
    aliases=("bybit-spot",),
)
register(
    Venue(
        name="bybit-linear",
        exchange="bybit",
        market="linear",
        module="flowbook.venues.bybit",
        live="flowbook.venues.bybit.live:BybitLive",
        ws_url="wss://stream.bybit.com/v5/public/linear",
        rest_url="https://api.bybit.com",
        rest_prefix="/v5/market",
        capabilities=Capabilities(
            streams=("orderbook", "publicTrade", "tickers", "allLiquidation"),
            depth_speeds=("10ms", "20ms", "100ms", "200ms"),  # depth 1, 50, 200, 1000
            default_depth_speed="20ms",
            snapshot_limits=(1, 50, 200, 1000),
            default_snapshot_limit=50,
            snapshot_weights=(),
            rest_weight_per_minute=0,
            max_streams_per_connection=2000,
            server_ping_seconds=20.0,
            sync_rule="bybit-v5",
            replay_formats=("bybit",),
        ),
        description="Bybit v5 USDT perpetuals: order book snapshot/delta with u, public trades, liquidations, "
                    "tickers (funding, open interest, mark price)",
    ),
)
register(
    Venue(
        name="okx",
        exchange="okx",
        market="all",
        module="flowbook.venues.okx",
        live="flowbook.venues.okx.live:OkxLive",
        ws_url="wss://ws.okx.com:8443/ws/v5/public",
        rest_url="https://www.okx.com",
        rest_prefix="/api/v5",
        capabilities=Capabilities(
            streams=("books", "books5", "bbo-tbt", "trades", "tickers", "funding-rate", "open-interest",
                     "mark-price", "liquidation-orders"),
            depth_speeds=("100ms",),
            default_depth_speed="100ms",
            snapshot_limits=(5, 400),  # books5, books (bbo-tbt carries best bid/offer only, not a book)
            default_snapshot_limit=400,
            snapshot_weights=(),
            rest_weight_per_minute=0,
            max_streams_per_connection=30,  # deep book channels per connection
            server_ping_seconds=30.0,  # the server closes a connection silent for 30 s: the client pings
            sync_rule="okx-seqid",
            checksum=True,
            replay_formats=("okx",),  # its loader also reads cryptofeed's captures
        ),
        symbol_pattern=r"[A-Z0-9]+(?:-[A-Z0-9]+){1,3}",  # instId: BTC-USDT, BTC-USDT-SWAP, BTC-USD-220527
        description="OKX v5: books with seqId/prevSeqId and CRC32 checksum, trades, funding, open interest, "
                    "liquidations",
    ),
)
register(
    Venue(
        name="kraken",
        exchange="kraken",
        market="spot",
        module="flowbook.venues.kraken",
        live="flowbook.venues.kraken.live:KrakenLive",
        ws_url="wss://ws.kraken.com/v2",
        rest_url="https://api.kraken.com",
        rest_prefix="/0/public",
        capabilities=Capabilities(
            streams=("book", "trade", "ticker", "instrument"),
            depth_speeds=("realtime",),
            default_depth_speed="realtime",
            snapshot_limits=(10, 25, 100, 500, 1000),
            default_snapshot_limit=100,
            snapshot_weights=(),
            rest_weight_per_minute=0,
            max_streams_per_connection=1000,
            server_ping_seconds=60.0,
            sync_rule="kraken-checksum",
            checksum=True,
            replay_formats=("kraken",),  # its loader also reads cryptofeed's captures
        ),
        symbol_pattern=r"[A-Z0-9]+/[A-Z0-9]+",  # BTC/USD
        description="Kraken spot (WebSocket v2): book with CRC32 checksum, trades, ticker",
    ),
)
register(
    Venue(
        name="coinbase",
        exchange="coinbase",
        market="spot",
        module="flowbook.venues.coinbase",
        live="flowbook.venues.coinbase.live:CoinbaseLive",
        ws_url="wss://advanced-trade-ws.coinbase.com",
        rest_url="https://api.coinbase.com",
        rest_prefix="/api/v3/brokerage/market",
        capabilities=Capabilities(
            streams=("level2", "market_trades", "ticker", "heartbeats"),
            depth_speeds=("realtime",),
            default_depth_speed="realtime",
            snapshot_limits=(0,),  # level2 is the full book
            default_snapshot_limit=0,
            snapshot_weights=(),
            rest_weight_per_minute=0,
            max_streams_per_connection=1000,
            server_ping_seconds=60.0,  # channels close after 60-90 s without updates: subscribe heartbeats
            sync_rule="coinbase-sequence",
            replay_formats=("coinbase",),  # its loader also reads cryptofeed's captures
        ),
        symbol_pattern=r"[A-Z0-9]+-[A-Z0-9]+",  # product id: BTC-USD
        description="Coinbase Advanced Trade: level2 with per-connection sequence numbers, market trades",
    ),
)
