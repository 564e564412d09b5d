"""Signals: the point-in-time panel of raw values and the LONG / SHORT / HOLD synthesizer (docs/signals.md)."""

from ..features.panel import panel
from .components import COMPONENTS, Component
from .config import DEFAULT_COMPONENTS, ComponentConfig, SignalConfig
from .synth import Decision, Signal, Vote, base_unit, counts, panel_row, signals, synthesize, synthesize_panel

__all__ = ["COMPONENTS", "Component", "DEFAULT_COMPONENTS", "ComponentConfig", "SignalConfig", "panel", "Decision",
           "Signal", "Vote", "base_unit", "counts", "panel_row", "signals", "synthesize", "synthesize_panel"]
