"""Thresholds and weights of the signal synthesizer, with documented defaults, loadable from TOML.

Example file (every key optional; a component left out keeps its defaults)::

    entry = 0.3              # |score| needed for LONG / SHORT
    min_coverage = 0.5       # share of the enabled weight that must be computable
    book_stale_s = 5.0
    trade_stale_s = 60.0
    vpin_toxic = 0.7
    vpin_damping = 0.5

    [components.imbalance]
    weight = 1.0
    threshold = 0.30
    saturation = 0.60

    [components.momentum]
    enabled = false

Defaults and the meaning of each component: ``docs/signals.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType

__all__ = ["ComponentConfig", "SignalConfig", "DEFAULT_COMPONENTS"]


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """One component: its statistic ``x`` votes ``sign(x)·min(1, |x|/saturation)`` when ``|x| ≥ threshold``,
    else 0; ``weight`` is its share of the score."""

    weight: float = 1.0
    threshold: float = 0.0
    saturation: float = 1.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not (self.weight >= 0 and 0 <= self.threshold < self.saturation):
            raise ValueError(f"need weight >= 0 and 0 <= threshold < saturation, got {self}")


DEFAULT_COMPONENTS: Mapping[str, ComponentConfig] = MappingProxyType({
    "imbalance": ComponentConfig(weight=1.0, threshold=0.30, saturation=0.60),
    "ofi": ComponentConfig(weight=1.0, threshold=3.0, saturation=12.0),
    "microprice": ComponentConfig(weight=0.5, threshold=0.50, saturation=1.0),
    "cvd": ComponentConfig(weight=1.0, threshold=0.15, saturation=0.50),
    "momentum": ComponentConfig(weight=0.5, threshold=5.0, saturation=20.0),
    "vwap": ComponentConfig(weight=0.5, threshold=5.0, saturation=30.0),
    "value_area": ComponentConfig(weight=0.5, threshold=0.5, saturation=1.0),
})


@dataclass(frozen=True, slots=True)
class SignalConfig:
    """Decision rule and data-quality limits of the synthesizer (see ``docs/signals.md``)."""

    entry: float = 0.30
    min_coverage: float = 0.50
    book_stale_s: float = 5.0
    trade_stale_s: float = 60.0
    vpin_toxic: float = 0.70
    vpin_damping: float = 0.50
    components: Mapping[str, ComponentConfig] = field(default_factory=lambda: DEFAULT_COMPONENTS)

    def __post_init__(self) -> None:
        if not 0 < self.entry <= 1:
            raise ValueError(f"entry must be in (0, 1], got {self.entry}")
        if not (0 <= self.min_coverage <= 1 and 0 <= self.vpin_damping <= 1 and 0 < self.vpin_toxic <= 1):
            raise ValueError("min_coverage and vpin_damping must be in [0, 1], vpin_toxic in (0, 1]")
        if self.book_stale_s <= 0 or self.trade_stale_s <= 0:
            raise ValueError("book_stale_s and trade_stale_s must be positive")
        unknown = sorted(set(self.components) - set(DEFAULT_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown signal component(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_COMPONENTS)}")
        object.__setattr__(self, "components", MappingProxyType(dict(self.components)))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SignalConfig:
        """Defaults overridden by ``data`` (the TOML layout above); unknown keys are errors."""
        top = {f.name for f in fields(cls)} - {"components"}
        bad = sorted(set(data) - top - {"components"})
        if bad:
            raise ValueError(f"unknown signal setting(s) {', '.join(bad)}; known: {', '.join(sorted(top))}, components")
        comps = dict(DEFAULT_COMPONENTS)
        raw = data.get("components", {})
        if not isinstance(raw, Mapping):
            raise ValueError("[components] must be a table of component tables")
        keys = {f.name for f in fields(ComponentConfig)}
        for name, over in raw.items():
            if name not in comps:
                raise ValueError(f"unknown signal component {name!r}; known: {', '.join(DEFAULT_COMPONENTS)}")
            if not isinstance(over, Mapping) or set(over) - keys:
                raise ValueError(f"[components.{name}]: settings are {', '.join(sorted(keys))}")
            comps[name] = replace(comps[name], **over)
        values = {k: v for k, v in data.items() if k != "components"}
        for k, v in values.items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise ValueError(f"signal setting {k} must be a number, got {v!r}")
        return cls(**values, components=comps)  # type: ignore[arg-type]

    @classmethod
    def from_toml(cls, path: Path | str) -> SignalConfig:
        """Read a TOML file; errors name the file."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            return cls.from_dict(data)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def enabled(self) -> dict[str, ComponentConfig]:
        return {k: c for k, c in self.components.items() if c.enabled and c.weight > 0}
