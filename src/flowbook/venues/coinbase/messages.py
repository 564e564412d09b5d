"""Coinbase market-data messages as typed structs named after Coinbase's own fields.

Two APIs share this package:

- **Advanced Trade** (``wss://advanced-trade-ws.coinbase.com``): every message is an envelope
  ``{channel, client_id, timestamp, sequence_num, events[]}``; the ``channel`` picks the struct
  (reference §B.2.2).
- **Exchange** (the legacy ``ws-feed`` of the shared captures): flat messages tagged by ``type``
  (``snapshot``, ``l2update``, ``match``, ``ticker``, ...; reference §B.2.1).  Their structs carry an
  ``Exchange`` prefix.

Prices and sizes stay decimal strings; the feed converts them to integer ticks and lots exactly.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "ExchangeError",
    "ExchangeHeartbeat",
    "ExchangeL2Update",
    "ExchangeLastMatch",
    "ExchangeMatch",
    "ExchangeMessage",
    "ExchangeSnapshot",
    "ExchangeSubscriptions",
    "ExchangeTicker",
    "Heartbeats",
    "L2Data",
    "L2Event",
    "L2Level",
    "MarketTrade",
    "MarketTrades",
    "MarketTradesEvent",
    "AdvancedMessage",
    "Subscriptions",
    "Ticker",
    "TickerBatch",
    "TickerEntry",
    "TickerEvent",
]


# -- Advanced Trade
class L2Level(msgspec.Struct, frozen=True):
    """One level of an ``l2_data`` event; ``side`` is ``bid`` or ``offer``, ``new_quantity`` the absolute
    size (``"0"`` removes the level)::

        {"side":"bid","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.73",
         "new_quantity":"0.06317902"}
    """

    side: str
    price_level: str
    new_quantity: str
    event_time: str = ""


class L2Event(msgspec.Struct, frozen=True):
    """``{"type":"snapshot"|"update","product_id":"BTC-USD","updates":[...]}``."""

    type: str
    product_id: str
    updates: list[L2Level] = []


class L2Data(msgspec.Struct, frozen=True, kw_only=True, tag_field="channel", tag="l2_data"):
    """The ``level2`` subscription's messages::

        {"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",
         "sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[
           {"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73",
            "new_quantity":"0.06317902"},
           {"side":"offer","event_time":"1970-01-01T00:00:00Z","price_level":"21921.74",
            "new_quantity":"0.00010000"}]}]}
    """

    sequence_num: int
    timestamp: str = ""
    client_id: str = ""
    events: list[L2Event] = []


class MarketTrade(msgspec.Struct, frozen=True):
    """One trade of ``market_trades``; ``side`` is upper case (``BUY``/``SELL``)::

        {"trade_id":"573835924","product_id":"BTC-USD","price":"21921.74","size":"0.00071",
         "side":"BUY","time":"2023-02-09T20:19:35.12345Z"}
    """

    trade_id: str
    product_id: str
    price: str
    size: str
    side: str
    time: str = ""


class MarketTradesEvent(msgspec.Struct, frozen=True):
    """``{"type":"snapshot"|"update","trades":[...]}``."""

    type: str
    trades: list[MarketTrade] = []


class MarketTrades(msgspec.Struct, frozen=True, kw_only=True, tag_field="channel", tag="market_trades"):
    """The ``market_trades`` channel (trades of the last 250 ms, batched)::

        {"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z",
         "sequence_num":4,"events":[{"type":"update","trades":[{"trade_id":"573835924",
         "product_id":"BTC-USD","price":"21921.74","size":"0.00071","side":"BUY",
         "time":"2023-02-09T20:19:35.12345Z"}]}]}
    """

    sequence_num: int
    timestamp: str = ""
    client_id: str = ""
    events: list[MarketTradesEvent] = []


class TickerEntry(msgspec.Struct, frozen=True):
    """One product of a ``ticker`` event::

        {"type":"ticker","product_id":"BTC-USD","price":"21932.98","volume_24_h":"16038.28770938",
         "low_24_h":"21835.29","high_24_h":"23011.18","low_52_w":"15460","high_52_w":"48240",
         "price_percent_chg_24_h":"-4.15775596190603","best_bid":"21931.98","best_bid_quantity":"0.01",
         "best_ask":"21932.98","best_ask_quantity":"0.2"}
    """

    product_id: str
    price: str = ""
    type: str = ""
    volume_24_h: str = ""
    low_24_h: str = ""
    high_24_h: str = ""
    low_52_w: str = ""
    high_52_w: str = ""
    price_percent_chg_24_h: str = ""
    best_bid: str = ""
    best_bid_quantity: str = ""
    best_ask: str = ""
    best_ask_quantity: str = ""


class TickerEvent(msgspec.Struct, frozen=True):
    type: str
    tickers: list[TickerEntry] = []


class Ticker(msgspec.Struct, frozen=True, kw_only=True, tag_field="channel", tag="ticker"):
    """``{"channel":"ticker","client_id":"","timestamp":"...","sequence_num":0,"events":[{"type":"snapshot",
    "tickers":[{...}]}]}``."""

    sequence_num: int
    timestamp: str = ""
    client_id: str = ""
    events: list[TickerEvent] = []


class Heartbeats(msgspec.Struct, frozen=True, kw_only=True, tag_field="channel", tag="heartbeats"):
    """Once a second; keeps the other channels open::

        {"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z",
         "sequence_num":0,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
         "heartbeat_counter":3049}]}
    """

    sequence_num: int
    timestamp: str = ""
    client_id: str = ""
    events: msgspec.Raw = msgspec.Raw(b"[]")


class Subscriptions(msgspec.Struct, frozen=True, kw_only=True, tag_field="channel", tag="subscriptions"):
    """The subscription acknowledgement::

        {"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",
         "sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"],"heartbeats":["heartbeats"]}}]}
    """

    sequence_num: int
    timestamp: str = ""
    client_id: str = ""
    events: msgspec.Raw = msgspec.Raw(b"[]")


class TickerBatch(Ticker, frozen=True, kw_only=True, tag="ticker_batch"):
    """``ticker_batch``: the ``ticker`` schema, sent every 5 s."""


AdvancedMessage = L2Data | MarketTrades | Ticker | TickerBatch | Heartbeats | Subscriptions


# -- Exchange (legacy ws-feed)
class ExchangeSnapshot(msgspec.Struct, frozen=True, tag_field="type", tag="snapshot"):
    """``level2``: the whole book (``time`` only in later versions of the feed)::

        {"type":"snapshot","product_id":"BAND-GBP","asks":[["14.8024","12.77"]],"bids":[["14.7550","10.00"]]}
    """

    product_id: str
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    time: str = ""


class ExchangeL2Update(msgspec.Struct, frozen=True, tag_field="type", tag="l2update"):
    """``level2``: absolute sizes, ``"0"`` removes; sides ``buy``/``sell``; no sequence number::

        {"type":"l2update","product_id":"SKL-GBP","changes":[["sell","0.5767","0.0"]],
         "time":"2021-04-17T16:44:07.859760Z"}
    """

    product_id: str
    changes: list[tuple[str, str, str]]
    time: str = ""


class ExchangeMatch(msgspec.Struct, frozen=True, tag_field="type", tag="match"):
    """``matches``: one trade; ``side`` is the **maker's** side (``sell`` = an up-tick, the taker bought)::

        {"type":"match","trade_id":1568268,"maker_order_id":"cac01d6d-...","taker_order_id":"3dec64e4-...",
         "side":"sell","size":"450","price":"0.791","product_id":"SKL-USD","sequence":201390075,
         "time":"2021-04-17T16:43:37.121358Z"}
    """

    trade_id: int
    side: str
    size: str
    price: str
    product_id: str
    sequence: int
    time: str = ""
    maker_order_id: str = ""
    taker_order_id: str = ""


class ExchangeLastMatch(ExchangeMatch, frozen=True, tag="last_match"):
    """The product's latest trade before the subscription (same fields as ``match``)."""


class ExchangeTicker(msgspec.Struct, frozen=True, tag_field="type", tag="ticker"):
    """``ticker``::

        {"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775","open_24h":"14.6647",
         "volume_24h":"94381.28000000","low_24h":"14.3691","high_24h":"16.55","volume_30d":"2295579.57000000",
         "best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z",
         "trade_id":881613,"last_size":"0.04"}
    """

    product_id: str
    sequence: int = 0
    price: str = ""
    open_24h: str = ""
    volume_24h: str = ""
    low_24h: str = ""
    high_24h: str = ""
    volume_30d: str = ""
    best_bid: str = ""
    best_ask: str = ""
    side: str = ""
    time: str = ""
    trade_id: int = 0
    last_size: str = ""


class ExchangeHeartbeat(msgspec.Struct, frozen=True, tag_field="type", tag="heartbeat"):
    """``{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",
    "time":"2014-11-07T08:19:28.464459Z"}``."""

    product_id: str = ""
    sequence: int = 0
    last_trade_id: int = 0
    time: str = ""


class ExchangeSubscriptions(msgspec.Struct, frozen=True, tag_field="type", tag="subscriptions"):
    """``{"type":"subscriptions","channels":[{"name":"level2","product_ids":["BAND-GBP"]}]}``."""

    channels: msgspec.Raw = msgspec.Raw(b"[]")


class ExchangeError(msgspec.Struct, frozen=True, tag_field="type", tag="error"):
    """``{"type":"error","message":"Failed to subscribe","reason":"..."}`` (Advanced Trade sends the same
    shape)."""

    message: str = ""
    reason: str = ""


ExchangeMessage = (ExchangeSnapshot | ExchangeL2Update | ExchangeMatch | ExchangeLastMatch | ExchangeTicker
                   | ExchangeHeartbeat | ExchangeSubscriptions | ExchangeError)
