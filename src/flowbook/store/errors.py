"""The store's exceptions: a user-facing error with a one-line message, and its "try again later" kind."""

from __future__ import annotations

__all__ = ["StoreError", "StoreUnavailable"]


class StoreError(RuntimeError):
    """A store could not be opened, written or queried (bad URI, unreachable database, bad SQL).

    The message is one line meant for the user; the original exception is chained as ``__cause__``.
    """


class StoreUnavailable(StoreError):
    """The database could not be reached or dropped the connection (worth retrying later)."""
