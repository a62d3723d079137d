"""The project's one error base.

Every error that reports a mistake in what the user asked for (a configuration, a file, a
setting, a checkpoint, a data folder) derives from :class:`GcannError`.  The command line
turns any ``GcannError`` into one line on stderr and an exit status (2 unless the class says
otherwise, e.g. 3 for a diverged run) in one place, :func:`gcann.cli.main`; anything else is
a bug and keeps its traceback.

Classes that were ``ValueError``\\ s before keep that base too, so ``except ValueError``
in user code still catches them.
"""
from __future__ import annotations

__all__ = ["GcannError", "one_line"]


class GcannError(Exception):
    """A user-facing error: the message is one line that says what to do; ``exit_code`` is the CLI's status."""

    exit_code: int = 2


def one_line(e: BaseException) -> str:
    """The first line of ``e``'s message; for an error re-raised from a DataLoader worker, the original one."""
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        return last.split(": ", 1)[1] if ": " in last else last
    text = text.strip()
    return text.splitlines()[0] if text else type(e).__name__
