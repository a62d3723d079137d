"""Seed 002's toy data for the ring study, one stream of random numbers per seed.

Each seed owns two ``torch.Generator``s: ``data`` (its networks' initial weights,
its training set of 50,000 points, the shuffles of every epoch) and ``noise``
(the generator's latent codes ``z ~ N(0, I₂)``). :class:`SeedStreams` holds the
streams of all seeds of a batched run and hands out ``(S, B, 2)`` batches; a seed
only advances its own streams, and only when it draws, so seed ``k`` sees the
same numbers in a batch of 200 seeds as when it runs alone.

Batches are the source's: shuffled each epoch, 128 points each; the last
incomplete batch of an epoch is dropped (50,000 = 390 × 128 + 80), so every seed
has the same batch shape.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from gcann.metrics.toy import ToyModes, grid_modes, ring_modes

__all__ = ["DATASETS", "N_TRAIN", "BATCH_SIZE", "SeedStreams", "dataset_modes", "data_generator", "noise_generator",
           "eval_generator"]

N_TRAIN = 50_000      # training points per seed, as the source
BATCH_SIZE = 128      # as the source
NOISE_CHUNK = 64      # latent batches drawn at once per seed (a fixed size: the stream does not depend on S)

DATASETS = {"ring": ring_modes, "grid": grid_modes}  # 8 Gaussians on the unit circle; the 5×5 grid


def dataset_modes(name: str) -> ToyModes:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()


def data_generator(seed: int) -> torch.Generator:
    """Seed ``seed``'s generator of initial weights, training set and shuffles."""
    return torch.Generator().manual_seed(int(seed))


def noise_generator(seed: int) -> torch.Generator:
    """Seed ``seed``'s generator of latent codes."""
    return torch.Generator().manual_seed(int(seed) + (1 << 32))


def eval_generator(seed: int, final: bool = False) -> torch.Generator:
    """Seed ``seed``'s generator of evaluation latent codes, apart from training: the coverage
    curve's fixed codes, or (``final``) the final evaluation's."""
    return torch.Generator().manual_seed(int(seed) + ((3 if final else 2) << 32))


class SeedStreams:
    """Training points and latent codes of ``S`` seeds, each from its own generators.

    ``data_gens`` must already have drawn the seeds' initial weights (the training
    set is drawn next, from the same generator).
    """

    def __init__(self, modes: ToyModes, data_gens: Sequence[torch.Generator], noise_gens: Sequence[torch.Generator],
                 n_train: int = N_TRAIN, batch_size: int = BATCH_SIZE) -> None:
        if n_train < batch_size:
            raise ValueError(f"n_train ({n_train}) must be at least the batch size ({batch_size})")
        self.data_gens, self.noise_gens = list(data_gens), list(noise_gens)
        self.n_seeds, self.batch_size = len(self.data_gens), batch_size
        self.batches_per_epoch = n_train // batch_size
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

    def _advance_real(self, mask: Tensor) -> None:
        self.batch_pos += mask.long()
        for k in torch.nonzero(self.batch_pos == self.batches_per_epoch).flatten().tolist():
            self.order[k] = torch.randperm(self.data.shape[1], generator=self.data_gens[k])
            self.batch_pos[k] = 0
            self.epochs[k] += 1

    _STATE = ("data", "order", "batch_pos", "epochs", "noise", "noise_pos")

    def state_dict(self) -> dict:
        """Everything the streams need to go on as if never stopped (tensors and generator states)."""
        out = {k: getattr(self, k).clone() for k in self._STATE}
        out["data_gens"] = [g.get_state() for g in self.data_gens]
        out["noise_gens"] = [g.get_state() for g in self.noise_gens]
        return out

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            if state[k].shape != getattr(self, k).shape:
                raise ValueError(f"stream state {k!r} has shape {tuple(state[k].shape)}, this run "
                                 f"{tuple(getattr(self, k).shape)}")
            setattr(self, k, state[k].clone())
        for g, st in zip(self.data_gens + self.noise_gens, state["data_gens"] + state["noise_gens"]):
            g.set_state(st)

    def _all(self, mask: Tensor | None) -> Tensor:
        return torch.ones(self.n_seeds, dtype=torch.bool) if mask is None else mask
