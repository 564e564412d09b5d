"""The seed's OrderBookImbalance contract over the engine."""

from __future__ import annotations

import math

import pytest

from flowbook.features.imbalance import METRIC_NAMES, OrderBookImbalance


def test_defaults_match_the_seed_contract() -> None:
    ob = OrderBookImbalance()
    assert ob.config.depth_levels == 20 and ob.config.delta_window == 100
    assert ob.config.large_order_pct == 0.01 and ob.history_size == 50


def test_metrics_of_a_small_book() -> None:
    ob = OrderBookImbalance()
    ob.update_orderbook("BTCUSDT", bids=[(100.0, 1.0), (99.5, 3.0)], asks=[(100.5, 2.0)])
    m = ob.get_metrics("BTCUSDT")
    assert set(m) == set(METRIC_NAMES)
    assert m["orderflow_imbalance"] == pytest.approx((4 - 2) / 6)
    assert m["bid_ask_spread_pct"] == pytest.approx(0.5 / 100.25 * 100)
    assert m["order_book_depth_ratio"] == 2.0  # 4/2 = 2.0, at the cap
    assert m["bid_notional"] == pytest.approx(100.0 + 298.5)
    assert m["ask_notional"] == pytest.approx(201.0)
    assert m["total_depth"] == pytest.approx(6.0)


def test_depth_ratio_is_capped_at_two() -> None:
    ob = OrderBookImbalance()
    ob.update_orderbook("X", bids=[(10, 9)], asks=[(11, 1)])
    assert ob.get_metrics("X")["order_book_depth_ratio"] == 2.0
    ob.update_orderbook("X", bids=[(10, 1)], asks=[(11, 4)])
    assert ob.get_metrics("X")["order_book_depth_ratio"] == 0.25


def test_delta_volume_sums_the_last_k_trades() -> None:
    ob = OrderBookImbalance(delta_volume_window=3)
    for side in (1, 1, -1, 1, -1):
        ob.update_trade("X", 100.0, 1.0, side)
    ob.update_trade("X", 100.5, 0.25, "sell")  # finer decimals rebuild the grid, trades kept
    ob.update_orderbook("X", bids=[(100, 1)], asks=[(101, 1)])
    assert ob.get_metrics("X")["delta_volume"] == pytest.approx(1 - 1 - 0.25)


def test_large_order_presence_is_a_share_of_visible_volume() -> None:
    ob = OrderBookImbalance(large_order_threshold_pct=0.5)
    ob.update_orderbook("X", bids=[(100, 6), (99, 1)], asks=[(101, 1)])
    assert ob.get_metrics("X")["large_order_presence"] == pytest.approx(6 / 8)


@pytest.mark.parametrize(("bids", "asks"), [([], []), ([(1.5, 2)], []), ([], [(1.5, 2)]), ([(1, 0)], [(2, 0)])])
def test_empty_and_one_sided_books_give_defined_values(bids, asks) -> None:
    ob = OrderBookImbalance()
    ob.update_orderbook("X", bids, asks)
    m = ob.get_metrics("X")
    assert all(isinstance(v, float) and not math.isnan(v) for v in m.values())
    assert -1.0 <= m["orderflow_imbalance"] <= 1.0


def test_history_is_bounded() -> None:
    ob = OrderBookImbalance(history_size=3)
    for i in range(5):
        ob.update_orderbook("X", [(100, i + 1)], [(101, 1)])
    h = ob.get_history("X")
    assert len(h) == 3 and h[-1]["total_depth"] == 6.0
    assert ob.get_metrics("unknown")["order_book_depth_ratio"] == 1.0


def test_bad_trade_side_is_rejected() -> None:
    with pytest.raises(ValueError, match="side must be"):
        OrderBookImbalance().update_trade("X", 1.0, 1.0, 0)
