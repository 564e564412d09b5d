"""Test and benchmark helpers: a seeded synthetic market (normalized events and raw recordings)."""

from .synthetic import SyntheticMarket, SyntheticParams, synthetic_events, synthetic_market, write_recording

__all__ = ["SyntheticMarket", "SyntheticParams", "synthetic_events", "synthetic_market", "write_recording"]
