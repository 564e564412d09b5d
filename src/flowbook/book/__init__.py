"""Order books: the compiled L2 book, its plain-Python reference twin, the L3 book."""

from .l2 import L2Book, default_window, window_for
from .reference import ReferenceBook

__all__ = ["L2Book", "ReferenceBook", "default_window", "window_for"]
