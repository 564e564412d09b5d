"""The venue registry: every venue package is registered, capabilities are data, targets parse."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import flowbook.venues
from flowbook.venues import registry
from flowbook.venues.registry import UnknownVenue, parse_target


def test_every_venue_module_is_registered() -> None:
    packages = {f"flowbook.venues.{m.name}" for m in pkgutil.iter_modules(flowbook.venues.__path__) if m.ispkg}
    assert packages, "flowbook.venues holds venue packages"
    registered = {v.module for v in registry.venues()}
    assert packages <= registered, f"not registered: {packages - registered}"
    for v in registry.venues():
        importlib.import_module(v.module)
        if v.live is not None:  # the declared live adapter exists and is a class
            module, _, name = v.live.partition(":")
            assert isinstance(getattr(importlib.import_module(module), name), type)


def test_capabilities_are_declared_as_data() -> None:
    spot, usdm = registry.get("binance"), registry.get("binance-usdm")
    assert registry.get("binance-spot") is spot and registry.get("BINANCE-USDM") is usdm
    assert spot.capabilities.snapshot_weight(1000) == 50 and spot.capabilities.snapshot_weight(5000) == 250
    assert usdm.capabilities.snapshot_weight(1000) == 20 and usdm.capabilities.snapshot_weight(50) == 2
    assert usdm.capabilities.route_of("depth") == "public" and usdm.capabilities.route_of("markPrice") == "market"
    assert spot.capabilities.route_of("depth") == ""
    assert "forceOrder" in usdm.capabilities.streams and "forceOrder" not in spot.capabilities.streams
    assert spot.capabilities.default_depth_speed in spot.capabilities.depth_speeds
    with pytest.raises(ValueError, match="already registered"):
        registry.register(spot)


def test_targets_parse() -> None:
    v, syms = parse_target("binance-usdm:btcusdt, ETHUSDT,btcusdt")
    assert v.name == "binance-usdm" and syms == ["BTCUSDT", "ETHUSDT"]
    for bad, msg in [("binance", "expected VENUE"), ("nope:BTCUSDT", "unknown venue"), ("binance:", "expected"),
                     ("binance:BTC/USDT", "not a symbol")]:
        with pytest.raises(UnknownVenue, match=msg):
            parse_target(bad)
    assert parse_target("binance-coinm:BTCUSD_PERP", live=False)[1] == ["BTCUSD_PERP"]
    assert parse_target("binance-coinm:BTCUSD_PERP")[0].live is not None  # COIN-M is live too


def test_symbols_are_checked_against_the_venue_spelling() -> None:
    assert parse_target("kraken:btc/usd,ETH/USD", live=False)[1] == ["BTC/USD", "ETH/USD"]
    assert parse_target("okx:BTC-USDT-SWAP,btc-usdt", live=False)[1] == ["BTC-USDT-SWAP", "BTC-USDT"]
    assert parse_target("coinbase:BTC-USD", live=False)[1] == ["BTC-USD"]
    assert parse_target("bybit-linear:BTCUSDT", live=False)[1] == ["BTCUSDT"]
    for bad, hint in (("kraken:BTCUSD", "BTC/USD"), ("okx:BTCUSDT", "BTC-USDT"), ("coinbase:BTC/USD", "BTC-USD"),
                      ("bybit:BTC-USDT", "BTCUSDT")):
        with pytest.raises(UnknownVenue, match=f"not a symbol.*like {hint}"):
            parse_target(bad, live=False)
