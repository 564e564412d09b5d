"""Replay: recording readers, event archives, and the replay pipeline."""

from .run import ReplaySummary, replay

__all__ = ["ReplaySummary", "replay"]
