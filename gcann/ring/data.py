"""Welfert et al.'s toy data for the ring study, in two forms.

``exact`` (:class:`SeedStreams`): each seed owns two ``torch.Generator``s, ``data``
(its networks' initial weights, its own training set of 50,000 points, the
shuffles of every epoch) and ``noise`` (fresh latent codes ``z ~ N(0, I₂)`` for
every batch). Batches of 128 are shuffled each epoch; the last incomplete batch is
dropped (50,000 = 390 × 128 + 80), so every seed has the same batch shape.

``source`` (:class:`SourceStreams`): the authors' code (``experiments/2D.py`` in
SankarLab/AlphaGan-Papers-Results). Under seed 1, once for every seed, it draws the
training points, the test points, a pool of 50,000 training codes and a pool of
25,000 evaluation codes (:func:`source_pools`, their very draws). Each seed then
draws its initial weights from its own generator (the global one, seeded with the
seed, in that code) and, every epoch, the shuffles of two ``DataLoader``s, one over
the codes and one over the points, zipped: the k-th batch of codes goes with the
k-th batch of points, and the last batch of 80 is kept (391 steps per epoch). The
draws of each epoch's shuffles are torch's ``DataLoader``'s (two base seeds, then
one seed per ``RandomSampler`` and a ``randperm`` from a generator seeded with it),
so a seed sees the same orders as that code (checked against ``DataLoader`` in the
tests). A short batch is padded to 128 with zeros and comes with its count of valid
points, by which the losses are averaged.

Either way a seed only advances its own streams, and only when it draws, so seed
``k`` sees the same numbers in a batch of 200 seeds as when it runs alone.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from gcann.errors import GcannError
from gcann.metrics.toy import TOY_EVAL_SAMPLES, ToyModes, grid_modes, ring_modes


class RingError(GcannError, ValueError):
    """A ring-study request or saved state that cannot be used (one line for the user)."""


__all__ = ["DATASETS", "FORMS", "N_TRAIN", "BATCH_SIZE", "RingError", "SOURCE_DATA_SEED", "SeedStreams", "SourcePools",
           "SourceStreams", "batches_per_epoch", "dataset_modes", "data_generator", "noise_generator", "eval_generator",
           "source_pools"]

N_TRAIN = 50_000      # training points per seed, as the source
BATCH_SIZE = 128      # as the source
NOISE_CHUNK = 64      # latent batches drawn at once per seed (a fixed size: the stream does not depend on S)
FORMS = ("source", "exact")   # the authors' code's data, codes, batches and losses; or the project's exact form
SOURCE_DATA_SEED = 1  # the authors' code draws data and code pools under seed 1, the same for every seed

DATASETS = {"ring": ring_modes, "grid": grid_modes}  # 8 Gaussians on the unit circle; the 5×5 grid


def batches_per_epoch(form: str, n_train: int, batch_size: int) -> int:
    """Training steps per epoch of ``n_train`` points: the source form keeps the last short batch, the exact
    form drops it."""
    return math.ceil(n_train / batch_size) if form == "source" else n_train // batch_size


def dataset_modes(name: str) -> ToyModes:
    if name not in DATASETS:
        raise RingError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()


def data_generator(seed: int) -> torch.Generator:
    """Seed ``seed``'s generator of initial weights, training set and shuffles."""
    return torch.Generator().manual_seed(int(seed))


def noise_generator(seed: int) -> torch.Generator:
    """Seed ``seed``'s generator of latent codes."""
    return torch.Generator().manual_seed(int(seed) + (1 << 32))


def knob_generator(seed: int) -> torch.Generator:
    """Seed ``seed``'s generator of what a controller's knobs draw: instance noise and the CLC buffers' slots."""
    return torch.Generator().manual_seed(int(seed) + (4 << 32))


def eval_generator(seed: int, final: bool = False) -> torch.Generator:
    """Seed ``seed``'s generator of evaluation latent codes, apart from training: the coverage
    curve's fixed codes, or (``final``) the final evaluation's."""
    return torch.Generator().manual_seed(int(seed) + ((3 if final else 2) << 32))


class _SavedStreams:
    """Saving and restoring streams: the tensors named in ``_STATE`` and the generators in the lists ``_GENS``."""

    _STATE: tuple[str, ...] = ()
    _GENS: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """Everything the streams need to go on as if never stopped (tensors and generator states)."""
        out = {k: getattr(self, k).clone() for k in self._STATE}
        out.update({name: [g.get_state() for g in getattr(self, name)] for name in self._GENS})
        return out

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            if state[k].shape != getattr(self, k).shape:
                raise RingError(f"stream state {k!r} has shape {tuple(state[k].shape)}, this run "
                                 f"{tuple(getattr(self, k).shape)}")
            setattr(self, k, state[k].clone())
        for name in self._GENS:
            for g, st in zip(getattr(self, name), state[name]):
                g.set_state(st)


class SeedStreams(_SavedStreams):
    """Training points and latent codes of ``S`` seeds, each from its own generators.

    ``data_gens`` must already have drawn the seeds' initial weights (the training
    set is drawn next, from the same generator).
    """

    def __init__(self, modes: ToyModes, data_gens: Sequence[torch.Generator], noise_gens: Sequence[torch.Generator],
                 n_train: int = N_TRAIN, batch_size: int = BATCH_SIZE) -> None:
        if n_train < batch_size:
            raise RingError(f"n_train ({n_train}) must be at least the batch size ({batch_size})")
        self.data_gens, self.noise_gens = list(data_gens), list(noise_gens)
        self.n_seeds, self.batch_size = len(self.data_gens), batch_size
        self.batches_per_epoch = batches_per_epoch("exact", n_train, batch_size)
        self.data = torch.stack([modes.sample(n_train, g).float() for g in self.data_gens])      # (S, N, 2)
        self.order = torch.stack([torch.randperm(n_train, generator=g) for g in self.data_gens])  # (S, N)
        self.batch_pos = torch.zeros(self.n_seeds, dtype=torch.long)   # next batch within the epoch
        self.epochs = torch.zeros(self.n_seeds, dtype=torch.long)      # completed passes over the data
        self.noise = torch.stack([torch.randn(NOISE_CHUNK * batch_size, 2, generator=g) for g in self.noise_gens])
        self.noise_pos = torch.zeros(self.n_seeds, dtype=torch.long)
        self._arange = torch.arange(batch_size)
        self._seeds = torch.arange(self.n_seeds)

    def real(self, mask: Tensor | None = None) -> Tensor:
        """The next real batch ``(S, B, 2)`` of the seeds in ``mask`` (others: filler, streams untouched)."""
        idx = self.order.gather(1, self.batch_pos[:, None] * self.batch_size + self._arange)   # (S, B)
        x = self.data[self._seeds[:, None], idx]
        self._advance_real(self._all(mask))
        return x

    def latent(self, mask: Tensor | None = None) -> Tensor:
        """The next latent batch ``(S, B, 2)`` of the seeds in ``mask`` (others: filler, streams untouched)."""
        idx = self.noise_pos[:, None] * self.batch_size + self._arange
        z = self.noise[self._seeds[:, None], idx]
        mask = self._all(mask)
        self.noise_pos += mask.long()
        for k in torch.nonzero(self.noise_pos == NOISE_CHUNK).flatten().tolist():
            self.noise[k] = torch.randn(NOISE_CHUNK * self.batch_size, 2, generator=self.noise_gens[k])
            self.noise_pos[k] = 0
        return z

    def batch(self, mask: Tensor | None = None) -> tuple[Tensor, Tensor, None]:
        """``(real, latent, None)``: the next real batch and latent codes of the rows in ``mask``; every
        batch is full (``None``: no count of valid points)."""
        return self.real(mask), self.latent(mask), None

    def codes(self, mask: Tensor | None = None) -> tuple[Tensor, None]:
        """Latent codes alone (a generator's extra update): ``(latent, None)``."""
        return self.latent(mask), None

    def _advance_real(self, mask: Tensor) -> None:
        self.batch_pos += mask.long()
        for k in torch.nonzero(self.batch_pos == self.batches_per_epoch).flatten().tolist():
            self.order[k] = torch.randperm(self.data.shape[1], generator=self.data_gens[k])
            self.batch_pos[k] = 0
            self.epochs[k] += 1

    _STATE = ("data", "order", "batch_pos", "epochs", "noise", "noise_pos")
    _GENS = ("data_gens", "noise_gens")

    def _all(self, mask: Tensor | None) -> Tensor:
        return torch.ones(self.n_seeds, dtype=torch.bool) if mask is None else mask


# ---------------------------------------------------------------------- the source's form
@dataclass(frozen=True)
class SourcePools:
    """The authors' code's data, drawn once for every seed: points and codes, for training and evaluation."""

    train_data: Tensor     # (n_train, 2) float32
    test_data: Tensor      # (n_test, 2) float32
    train_codes: Tensor    # (n_train, 2) float32
    test_codes: Tensor     # (n_test, 2) float32: the final evaluation's codes (and, first ones, the curve's)


@functools.lru_cache(maxsize=4)
def source_pools(dataset: str = "ring", n_train: int = N_TRAIN, n_test: int = TOY_EVAL_SAMPLES) -> SourcePools:
    """The pools as ``experiments/2D.py`` draws them under seed 1: NumPy's ``choice`` of modes and one
    ``torch.randn(2)`` per point (training set, then test set), then ``torch.randn(n, 2)`` for the
    training codes and for the test codes. ``n_test`` changes the training codes too (they are drawn
    after the test points), as in that code. The pools are kept (the last few asked for) and must not be
    changed in place."""
    modes = dataset_modes(dataset)
    gen = torch.Generator().manual_seed(SOURCE_DATA_SEED)
    rng = np.random.RandomState(SOURCE_DATA_SEED)
    means = modes.means.float()                 # torch.Tensor([cos, sin]): float32
    std = modes.std.tolist()                    # NumPy float64 scalars there, Python floats here: the same op
    probs = modes.weights.tolist()

    def points(n: int) -> Tensor:
        idx = rng.choice(modes.k, n, p=probs)
        return torch.stack([means[i] + std[i] * torch.randn(2, generator=gen) for i in idx.tolist()])
    train, test = points(n_train), points(n_test)
    return SourcePools(train, test, torch.randn(n_train, 2, generator=gen), torch.randn(n_test, 2, generator=gen))


def _loader_orders(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
    """One epoch's orders of the two zipped shuffling ``DataLoader``s (codes first, then points), drawn from
    ``gen`` as torch's ``DataLoader`` draws them from the global generator: each iterator a base seed,
    then each ``RandomSampler`` a seed for the generator of its ``randperm``."""
    def draw() -> int:
        return int(torch.empty((), dtype=torch.int64).random_(generator=gen))
    draw(), draw()                            # the two iterators' base seeds (unused without workers)
    seed_codes, seed_points = draw(), draw()
    return (torch.randperm(n, generator=torch.Generator().manual_seed(seed_codes)),
            torch.randperm(n, generator=torch.Generator().manual_seed(seed_points)))


class SourceStreams(_SavedStreams):
    """Batches of ``S`` seeds as the authors' code makes them: shared pools, per-seed shuffles, the last
    short batch kept (padded with zeros; :meth:`batch` gives each row's count of valid points).

    ``data_gens`` must already have drawn the seeds' initial weights (G's, then D's)."""

    def __init__(self, pools: SourcePools, data_gens: Sequence[torch.Generator], batch_size: int = BATCH_SIZE) -> None:
        n = pools.train_data.shape[0]
        if n < 1:
            raise RingError("the training set is empty")
        self.data, self.pool = pools.train_data, pools.train_codes          # (N, 2), shared by every seed
        self.data_gens = list(data_gens)
        self.n_seeds, self.batch_size = len(self.data_gens), batch_size
        self.batches_per_epoch = batches_per_epoch("source", n, batch_size)
        orders = [_loader_orders(g, n) for g in self.data_gens]
        self.order_codes = torch.stack([o[0] for o in orders])               # (S, N)
        self.order_points = torch.stack([o[1] for o in orders])
        self.batch_pos = torch.zeros(self.n_seeds, dtype=torch.long)
        self.epochs = torch.zeros(self.n_seeds, dtype=torch.long)
        self._arange = torch.arange(batch_size)

    def batch(self, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(points, codes, n)`` ``(S, B, 2)``, ``(S, B, 2)``, ``(S,)``: the next zipped batch of the rows in
        ``mask`` (others: filler, streams untouched); entries past ``n`` are zeros."""
        n_all = self.data.shape[0]
        pos = self.batch_pos[:, None] * self.batch_size + self._arange          # (S, B)
        valid = pos < n_all
        pos = pos.clamp_max(n_all - 1)
        x = torch.where(valid[..., None], self.data[self.order_points.gather(1, pos)], 0.0)
        z = torch.where(valid[..., None], self.pool[self.order_codes.gather(1, pos)], 0.0)
        n = valid.sum(1)
        mask = torch.ones(self.n_seeds, dtype=torch.bool) if mask is None else mask
        self.batch_pos += mask.long()
        for k in torch.nonzero(self.batch_pos == self.batches_per_epoch).flatten().tolist():
            self.order_codes[k], self.order_points[k] = _loader_orders(self.data_gens[k], n_all)
            self.batch_pos[k] = 0
            self.epochs[k] += 1
        return x, z, n

    def codes(self, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Codes alone (a generator's extra update): the next zipped batch's codes and counts; its points
        are passed over, as a loop over the zipped loaders would."""
        _, z, n = self.batch(mask)
        return z, n

    _STATE = ("order_codes", "order_points", "batch_pos", "epochs")   # the pools are redrawn from seed 1
    _GENS = ("data_gens",)
