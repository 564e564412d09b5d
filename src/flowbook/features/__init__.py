"""Order-flow features: compiled kernels, the engine that drives them, reference twins."""

from .engine import FEATURE_COLUMNS, EngineStats, FeatureConfig, FeatureEngine

__all__ = ["FEATURE_COLUMNS", "EngineStats", "FeatureConfig", "FeatureEngine"]
