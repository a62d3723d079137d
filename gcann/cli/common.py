"""What every command group of the CLI shares: the one-line user error, argument parsing,
output locations checked before any work, devices, progress bars and time estimates."""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from gcann.errors import GcannError

from gcann.fileio import atomic_write

__all__ = ["FloatAbove", "IntAtLeast", "UserError", "atomic_write", "check_device", "check_output", "estimate_note",
           "parse_floats", "progress_bar"]


class UserError(GcannError, click.ClickException):
    """A mistake in the user's request found by a command's own checks: a :class:`GcannError` that click also
    knows how to print (one line, exit status 2)."""

    exit_code = 2


class _RangeError(click.BadParameter):
    """A value out of range, printed as the message alone (``--dpi must be >= 1, got 0``)."""

    def format_message(self) -> str:
        return self.message


class IntAtLeast(click.ParamType):
    """An integer ``>= low``; anything else is ``--NAME must be >= LOW, got V`` (exit status 2)."""

    name = "integer"

    def __init__(self, low: int):
        self.low = low

    def convert(self, value, param, ctx):
        v = click.INT.convert(value, param, ctx)
        if v < self.low:
            raise _RangeError(f"{_flag(param)} must be >= {self.low}, got {v}", ctx=ctx, param=param)
        return v

    def get_metavar(self, param, ctx=None) -> str:
        return f"INTEGER>={self.low}"


class FloatAbove(click.ParamType):
    """A number ``> low`` (NaN refused); anything else is ``--NAME must be > LOW, got V`` (exit status 2)."""

    name = "float"

    def __init__(self, low: float):
        self.low = low

    def convert(self, value, param, ctx):
        v = click.FLOAT.convert(value, param, ctx)
        if not v > self.low:
            raise _RangeError(f"{_flag(param)} must be > {self.low:g}, got {v}", ctx=ctx, param=param)
        return v

    def get_metavar(self, param, ctx=None) -> str:
        return f"FLOAT>{self.low:g}"


def _flag(param) -> str:
    opts = getattr(param, "opts", None) or [f"--{param.name}"]
    return max(opts, key=len)


def parse_floats(name: str, text: str | None) -> list[float] | None:
    """A comma-separated list of finite numbers (``None`` passes through); an empty item is an error."""
    if text is None:
        return None
    flag = f"--{name.replace('_', '-')}"
    items = text.split(",")
    if text.strip() == "":
        raise UserError(f"{flag} is empty")
    if any(x.strip() == "" for x in items):
        raise UserError(f"{flag} has an empty item in {text!r}; write numbers separated by single commas")
    try:
        vals = [float(x) for x in items]
    except ValueError:
        raise UserError(f"{flag} must be a number or a comma-separated list, got {text!r}")
    for v in vals:
        if not math.isfinite(v):
            raise UserError(f"{flag} must be finite, got {v}")
    return vals


def check_output(path: Path, option: str, folder: bool = False) -> Path:
    """Refuse, before any work, an output location that cannot be written.

    ``folder``: ``path`` is a folder the command fills (created if missing); otherwise a
    file.  The nearest existing ancestor must be a folder in which an entry can be created
    (probed by creating and removing one: permissions, read-only or immutable folders,
    ``/proc``); an existing file target must not be a folder, and an existing folder target
    not a file.  Nothing is left behind.
    """
    path = Path(path)
    where = f"{option} {str(path)!r}"
    if folder:
        if path.exists() and not path.is_dir():
            raise UserError(f"{where} is a file; give a folder")
        probe_dir = path
    else:
        if path.is_dir():
            raise UserError(f"{where} is a folder; give a file name")
        if path.exists() and not path.is_file():
            raise UserError(f"{where} is not a regular file")
        probe_dir = path.parent
    anc = probe_dir
    while not anc.exists():
        if anc.is_symlink():
            raise UserError(f"{where}: {str(anc)!r} is a broken link")
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(f"{where}: {str(anc)!r} is a file, not a folder")
    try:
        if anc == probe_dir:
            fd, tmp = tempfile.mkstemp(dir=anc, prefix=".gcann-write-check.")
            os.close(fd)
            os.unlink(tmp)
        else:
            os.rmdir(tempfile.mkdtemp(dir=anc, prefix=".gcann-write-check."))
    except OSError as e:
        raise UserError(f"{where} cannot be written: no file can be created in {str(anc)!r} ({e.strerror or e})") from None
    if not folder and path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{where} cannot be written: the file is read-only")
    return path


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` that exists here; anything else is one line."""
    import torch

    text = device.strip()
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cpu":
        return text
    if dev.type != "cuda":
        raise UserError(f"--device {device!r} is not supported; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"--device {device!r} requested but CUDA is not available")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return text


def _bar_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(total: int, desc: str, quiet: bool = False, unit: str = "it"):
    """A tqdm bar on stderr with an ETA (none when ``quiet`` or stderr is not a terminal).

    Yields ``update(n_done=None, label=None)``: the absolute count done (or +1) and a label."""
    if not _bar_enabled(quiet):
        yield lambda n_done=None, label=None: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(n_done: int | None = None, label: str | None = None) -> None:
        if n_done is None:
            bar.update(1)
        elif n_done - bar.n >= max(1, total // 1000) or n_done == total:
            bar.update(n_done - bar.n)
        if label is not None:
            bar.set_postfix_str(label, refresh=False)

    try:
        yield update
    finally:
        bar.close()


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 730 * 86400:
        return f"{s / 86400:.0f} days"
    return f"{s / (365.25 * 86400):.0f} years"


def estimate_note(seconds: float, what: str, quiet: bool = False, threshold: float = 20.0) -> None:
    """Say up front, on stderr, how long ``what`` will take when that is more than ``threshold`` seconds."""
    if quiet or not seconds > threshold:
        return
    click.echo(f"gcann: {what}: about {human_seconds(seconds)} (estimate); Ctrl-C stops it", err=True)


def parse_set(items: tuple[str, ...], flag: str = "--set") -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict (values read as JSON where they parse, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def parse_mapping(flag: str, items: str | tuple[str, ...] | None) -> dict[str, Any]:
    """A repeatable settings option (``--controller-set``, ``--gcann``): each item a JSON object or KEY=VALUE
    (the value read as JSON where it parses, else a string), merged left to right."""
    out: dict[str, Any] = {}
    for item in (items,) if isinstance(items, str) else (items or ()):
        if item.lstrip().startswith("{"):
            try:
                value = json.loads(item)
            except json.JSONDecodeError as e:
                raise UserError(f"{flag} takes a JSON object or KEY=VALUE, got {item!r} ({e.msg})") from None
            if not isinstance(value, dict):
                raise UserError(f"{flag} takes a JSON object or KEY=VALUE, got {item!r}")
            out.update(value)
        elif "=" not in item.lstrip("="):
            raise UserError(f"{flag} takes a JSON object or KEY=VALUE, got {item!r}")
        else:
            out.update(parse_set((item,), flag))
    return out


def check_writable(folder: Path, option: str = "--out") -> None:
    """Fail before computing when the run folder cannot be made or written (:func:`check_output`'s probe: it
    creates nothing, so a command refused later leaves no folder behind)."""
    try:
        check_output(folder, option, folder=True)
    except UserError as e:
        raise UserError(f"cannot write the run folder: {e}") from None
