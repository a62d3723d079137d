"""Every figure by name: the testbed's (:data:`PLOTS`, written by :func:`make_all`) and the GCANN
controller's (:data:`GCANN_PLOTS`, written by :func:`make_gcann_figures`); :data:`FIGURES` holds both
(``gcann dirac plot --kind NAME``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from gcann.dirac.configs import DEFAULT_LR

from .common import FORMATS, FigureError, make_game, save
from .controller import loss_events_figure, trajectories_figure
from .fields import all_methods, animate, ema_comparison, theta_plane, vector_fields
from .r1_locus import r1_locus

#: the testbed's figures by name (the README's)
PLOTS: dict[str, Callable[..., Figure]] = {
    "vector_field": vector_fields,
    "theta_plane": theta_plane,
    "ema": ema_comparison,
    "r1_locus": r1_locus,
    "all_methods": all_methods,
}

#: small settings for a quick smoke run of :func:`make_all` (tests)
QUICK: dict[str, dict] = {
    "vector_field": dict(steps=40, grid=8),
    "theta_plane": dict(steps=40, t1=4.0, substeps=1),
    "ema": dict(steps=40, substeps=1),
    "r1_locus": dict(gammas=np.linspace(0, 2, 11)),
    "all_methods": dict(methods=["gan", "r1", "wgan_norm"], steps=16, grid=8, substeps=1),
}
GIF_METHODS = ("gan", "r1")



def make_all(out_dir: str | Path = "figures", gif: bool = False, names: Sequence[str] | None = None,
             dpi: int = 110, quick: bool = False, kwargs: Mapping[str, Mapping] | None = None,
             gif_methods: Sequence[str] = GIF_METHODS, fmt: str = "png", progress=None) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for every figure in :data:`PLOTS` (or ``names``) and,
    with ``gif=True``, ``<out_dir>/dirac_<method>.gif`` for ``gif_methods``.

    ``quick`` uses tiny step counts (:data:`QUICK`); ``kwargs`` maps a name to extra
    arguments of its function; ``progress(name)`` is called after each file.  Returns
    the paths written.
    """
    if fmt not in FORMATS:
        raise FigureError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    names = list(PLOTS) if names is None else list(names)
    for n in names:
        if n not in PLOTS:
            raise FigureError(f"unknown figure {n!r}; choose from {', '.join(PLOTS)}")
    kwargs = dict(kwargs or {})
    for n in kwargs:
        if n not in PLOTS:
            raise FigureError(f"unknown figure {n!r} in kwargs; choose from {', '.join(PLOTS)}")
    if gif:
        for m in gif_methods:
            make_game(m, dim=1)  # fail early on a bad name
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n in names:
        kw = {**(QUICK.get(n, {}) if quick else {}), **dict(kwargs.get(n, {}))}
        fig = PLOTS[n](**kw)
        written.append(save(fig, out / f"{n}.{fmt}", dpi, fmt))
        if progress:
            progress(n)
    if gif:
        for m in gif_methods:
            kw = dict(steps=16, frames=4, grid=6, dpi=30) if quick else {}
            written.append(animate(m, out / f"dirac_{m}.gif", **kw))
            if progress:
                progress(f"dirac_{m}.gif")
    return written


#: the GCANN controller's figures by name
GCANN_PLOTS: dict[str, Callable[..., Figure]] = {"gcann_trajectories": trajectories_figure,
                                                 "gcann_loss_events": loss_events_figure}

#: every figure ``gcann dirac plot --kind NAME`` draws: the testbed's and the GCANN controller's
FIGURES: dict[str, Callable[..., Figure]] = {**PLOTS, **GCANN_PLOTS}


def make_gcann_figures(out_dir: str | Path = "figures", *, lr: float = DEFAULT_LR, steps: int = 2000, dpi: int = 110,
                       fmt: str = "png", progress=None) -> list[Path]:
    """Write ``gcann_trajectories.<fmt>`` and ``gcann_loss_events.<fmt>`` into ``out_dir``."""
    out = Path(out_dir)
    paths = []
    for name, make in GCANN_PLOTS.items():
        fig = make(lr=lr, steps=steps)
        paths.append(save(fig, out / f"{name}.{fmt}", dpi, fmt))
        if progress:
            progress(name)
    return paths


def draw(kind: str, method: str | None = None, lr: float | None = None) -> Figure:
    """The figure ``kind`` of :data:`FIGURES` (``gcann dirac plot --kind``): ``method`` and ``lr`` choose what
    ``vector_field`` and ``ema`` draw, ``lr`` the learning rate of the ``gcann_*`` figures."""
    if kind not in FIGURES:
        raise FigureError(f"unknown --kind {kind!r}; choose from {', '.join(FIGURES)}")
    if lr is not None and not lr > 0:
        raise FigureError(f"--lr must be > 0, got {lr}")
    kw = {}
    if method is not None or lr is not None:
        if kind.startswith("gcann_"):
            if method is not None:
                raise FigureError(f"--method does not apply to --kind {kind!r}")
            kw = {"lr": lr}
        elif kind not in ("vector_field", "ema"):
            raise FigureError(f"--method/--lr apply to --kind vector_field, ema or gcann_*, not {kind!r}")
        elif kind == "vector_field":
            kw = {"methods": (method or "gan",), **({"lr": lr} if lr is not None else {})}
        else:
            kw = {**({"method": method} if method is not None else {}), **({"lr": lr} if lr is not None else {})}
    return FIGURES[kind](**kw)
