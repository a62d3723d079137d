"""What every command group of the CLI shares: the one-line user error and argument parsing."""
from __future__ import annotations

import math

import click

from gcann.fileio import atomic_write

__all__ = ["UserError", "atomic_write", "parse_floats"]


class UserError(click.ClickException):
    """A mistake in the user's request: printed as one line, exit status 2."""

    exit_code = 2


def parse_floats(name: str, text: str | None) -> list[float] | None:
    """A comma-separated list of finite numbers (``None`` passes through)."""
    if text is None:
        return None
    try:
        vals = [float(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise UserError(f"--{name.replace('_', '-')} must be a number or a comma-separated list, got {text!r}")
    if not vals:
        raise UserError(f"--{name.replace('_', '-')} is empty")
    for v in vals:
        if not math.isfinite(v):
            raise UserError(f"--{name.replace('_', '-')} must be finite, got {v}")
    return vals
