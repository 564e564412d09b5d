"""Exchange simulators on 127.0.0.1, with faults: Binance's WebSocket and REST market-data protocol
(:class:`BinanceSimulator`), and the venues that push book snapshots over the WebSocket
(:class:`~.push.PushSimulator` with a venue renderer such as :class:`~.bybit.BybitRenderer`)."""

from .check import BOOK_COLUMNS, SimulatorThread, book_differences, row_differences, wait_caught_up
from .faults import FRAME_FAULTS, REST_FAULTS, FaultPlan, RestFault
from .server import BinanceSimulator
from .source import SimFrame, SimSource, load_source
from .truth import Truth

__all__ = [
    "BOOK_COLUMNS",
    "SimulatorThread",
    "book_differences",
    "row_differences",
    "wait_caught_up",
    "FRAME_FAULTS",
    "REST_FAULTS",
    "BinanceSimulator",
    "FaultPlan",
    "RestFault",
    "SimFrame",
    "SimSource",
    "Truth",
    "load_source",
]
