"""Training data: real loaders for local roots and embedded sets that ship inside packages.

Nothing is downloaded. Each loader reports a missing root, an empty folder or
unreadable files with :class:`DataError` (one line naming what is wrong and
what to put where).
"""
from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """The data asked for is missing or unusable; the message says what to put where, in one line."""
