"""Order-flow detectors: sweeps, absorption, block and momentum trades, icebergs, HFT bursts, walls pulled,
liquidation cascades (docs/detectors.md)."""

from .model import Detection, DetectorConfig, DetectorKind, Scale, resolve
from .run import counts, detect, detect_rows, to_detections

__all__ = ["Detection", "DetectorConfig", "DetectorKind", "Scale", "resolve", "counts", "detect",
           "detect_rows", "to_detections"]
