"""Saved states: the one way a run's parts are written to a file and read back.

The trainer's checkpoints (:mod:`gcann.train.checkpoint`) and the ring study's state files
(:mod:`gcann.ring.train`) both go through :func:`save_state` and :func:`load_state`; each keeps only
what is truly its own, the payload. A file is a ``torch.save`` of a dict: a header ``kind`` (what wrote
it) and ``format`` (its version), then the payload. It is written atomically
(:func:`gcann.fileio.atomic_write`: a kill during the write leaves the previous file intact), and read
back only if its kind is this code's, its format this code's or an older one the caller converts
(``older``: the trainer reads its checkpoints of format 1), and, when the payload holds an ``identity``
(what a resumed run must share with the one that saved it), every key of it matches. Anything else raises
:class:`CheckpointError` with one line that says what to do.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from gcann.errors import GcannError
from gcann.fileio import atomic_write

__all__ = ["CheckpointError", "load_state", "save_state"]

#: the kind of a file that has none: the trainer's checkpoints of format 1 were written before the header had one
_UNNAMED_KIND = "checkpoint"


class CheckpointError(GcannError, ValueError):
    """A saved state (a trainer checkpoint, a ring state, a run folder) that cannot be used here (one line)."""


def save_state(path: str | Path, kind: str, version: int, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` with the header ``kind`` and ``format`` ``version`` atomically to ``path``."""
    if "kind" in payload or "format" in payload:
        raise ValueError("a state's payload may not hold the header's keys 'kind' and 'format'")
    state = {**payload, "kind": kind, "format": version}
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | Path, kind: str, version: int, *, what: str, fix: str,
               identity: Mapping[str, Any] | None = None,
               map_location: str | torch.device = "cpu",
               older: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Read a file written by :func:`save_state` with this ``kind`` and ``version``.

    ``what`` names the file in messages ("checkpoint", "ring state"), ``fix`` says what to do about a file
    that cannot be used ("delete it to start afresh"); ``identity``: the values the saved ``identity``
    must hold, key by key; ``older``: the earlier formats still read, each with the function that turns
    its state into this version's (the state returned says ``format`` = ``version``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means an unusable file
        first = str(e).splitlines()[0][:120] if str(e).strip() else ""
        raise CheckpointError(f"cannot read the {what} {path}: {type(e).__name__}: {first}; {fix}") from None
    if not isinstance(state, dict) or state.get("kind", _UNNAMED_KIND) != kind:
        raise CheckpointError(f"{path} is not a {what} of this version; {fix}")
    if state.get("format") != version:
        upgrade = (older or {}).get(state.get("format"))
        if upgrade is None:
            raise CheckpointError(f"{path} is not a {what} of this version; {fix}")
        try:
            state = {**upgrade(state), "format": version}
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            why = f"it has no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise CheckpointError(f"cannot read the {what} {path} of format {state.get('format')}: {why}; {fix}") \
                from None
    if identity is not None:
        saved = state.get("identity") or {}
        for key, value in identity.items():
            if saved.get(key) != value:
                raise CheckpointError(f"{path} was saved by a run with another {key!r} ({_brief(saved.get(key))} "
                                      f"here {_brief(value)}); resume with the same arguments, or {fix}")
    return state


def _brief(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
