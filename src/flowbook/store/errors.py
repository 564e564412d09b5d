"""The one exception type of the store: a user-facing error with a one-line message."""

from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(RuntimeError):
    """A store could not be opened, written or queried (bad URI, unreachable database, bad SQL).

    The message is one line meant for the user; the original exception is chained as ``__cause__``.
    """
