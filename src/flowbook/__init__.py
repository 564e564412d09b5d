"""flowbook: order-book and order-flow analytics for crypto markets."""

__version__ = "0.1.0"

__all__ = ["__version__"]
