"""The normalized event model: one flat dtype, its kinds and flags, instruments."""

from .dtype import EVENT_DTYPE, NO_ID, Flag, Kind, Side, empty_events
from .instrument import DecimalGrid, Instrument, PriceNotOnGrid, infer_step
from .model import Event, from_array, to_array

__all__ = [
    "EVENT_DTYPE",
    "NO_ID",
    "DecimalGrid",
    "Event",
    "Flag",
    "Instrument",
    "Kind",
    "PriceNotOnGrid",
    "Side",
    "empty_events",
    "from_array",
    "infer_step",
    "to_array",
]
