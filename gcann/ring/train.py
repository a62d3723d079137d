"""Train many seeds (and settings) of Welfert et al.'s toy GAN as one batched model.

Row ``k`` of the batch is one seed under one :class:`RingSetting`; rows share
nothing but the matmul calls. Per step ``t`` (the image trainer's reading of a
controller, ``docs/training.md``, with ``lag = 1``):

1. each row's controller (any of :data:`gcann.control.CONTROLLERS`; ``none``
   unless the setting names one, ``ns(1,1)+gap``) gives this step's plan through
   :class:`gcann.control.ControlRows`: ``d_steps``, ``g_steps``, learning rates,
   diversity and knobs, decided from step ``t − 1``'s losses;
2. each row draws its real batch and latent codes; the fakes are made once;
3. round ``r = 0, 1, ...``: D updates of the rows with ``d_steps > r``; round 0 on
   the step's batch and fakes, later rounds (catch-up bursts) on fresh batches
   drawn by those rows only; a row masked out keeps its weights and its Adam
   state (:class:`dynamics.optim.RowOptimiser`);
4. the same for G (round 0 on the step's fakes, after D's update), then the EMA
   of the rows that have one, after each of their G updates;
5. the plain GAN losses of round 0 (before the update; computed for every row,
   also those that do not train) and the statistics the controllers need (mean D
   logit on reals and fakes, E[sign D(x_real)], from round 0) go to the
   controllers. A row whose loss is NaN or Inf is *diverged*: it stops training
   and counts as a failure. (On a GPU, with only ``none`` rows, the losses reach
   the host once per epoch, not every step, so a diverged row is stopped at the
   end of its epoch.)

The objective is :class:`dynamics.minibatch.MinibatchObjective` (the image trainer's too): its
``GAN_LOSSES`` and ``PENALTIES["r1"]``, reduced per row over each row's valid points; hyper-parameters
are per row. The knobs a controller sets act
on its row's objective: ``r1_gamma`` is the R1 weight (replacing the setting's),
``noise_sigma`` adds instance noise σ·ε to every input of D in both players'
losses (ε from the row's own generator), ``clc_weight`` adds λ·(E[D(x)²] over a
buffer of past reals + over past fakes) to D's loss (:class:`ClcBuffers`).

``form`` (:mod:`gcann.ring.data`): ``"source"`` trains as the authors' code does (shared data and
code pools, the short last batch kept, padded and averaged over its valid points, the α-losses'
σ clamped at 1e-7); ``"exact"`` is the project's exact form (a data set and fresh codes per seed,
full batches, exact losses).

With ``state_file`` and ``save_every`` the whole run is saved at the ends of
epochs, and ``resume`` goes on from the saved state; on the CPU a resumed run
equals the uninterrupted one bit for bit.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from dynamics.minibatch import MinibatchObjective, contiguous_runs
from dynamics.objectives import GAN_LOSSES
from dynamics.optim import RowOptimiser, ema_step
from gcann.control import CONTROLLERS, ControlRows, make_controller, update_rounds
from gcann.control.base import logit_statistics
from gcann.control.buffers import SampleBuffers
from gcann.controller import GCANNConfig
from gcann.diversity import diversity_term
from gcann.fileio import atomic_write
from gcann.state import CheckpointError, load_state, save_state
from gcann.metrics.toy import TOY_EVAL_SAMPLES, toy_mode_metrics
from gcann.presets import preset

from .data import (BATCH_SIZE, FORMS, N_TRAIN, RingError, SeedStreams, SourceStreams, data_generator, dataset_modes,
                   eval_generator, knob_generator, noise_generator, source_pools)
from .models import DISCRIMINATOR, GENERATOR, init_mlp, mlp_forward, select

__all__ = ["LR", "BETAS", "R1_GAMMA", "EMA_BETA", "RingSetting", "RingRun", "StateError", "ring_gcann_config",
           "train_ring", "generate", "evaluate_run"]

LR = 1e-4               # Adam learning rate of both networks, as the source
BETAS = (0.9, 0.99)     # Adam betas, as the source
R1_GAMMA = 1.0          # R1 weight γ of the +r1 settings: dynamics.objectives' r1 default, not tuned
EMA_BETA = 0.999        # generator EMA decay of the +ema settings (evaluation uses the EMA generator)
SOURCE_CLAMP = 1e-7     # the source form's clamp of σ in the α-losses (the authors' AlphaLoss; BCE at α = 1)

_LOSS_LABEL = {"alpha_sat": "sat", "alpha_ns": "ns"}


@dataclass(frozen=True)
class RingSetting:
    """One training setting of the study: an objective and its variants."""

    loss: str = "alpha_sat"        # a GAN_LOSSES name: alpha_sat, alpha_ns, lsgan, gan, nsgan
    alpha_d: float = 1.0           # α_D of the (α_D, α_G) losses
    alpha_g: float = 1.0           # α_G of the (α_D, α_G) losses
    r1: float = 0.0                # R1 weight γ on D (0: none)
    ema: float = 0.0               # generator EMA decay β (0: none)
    controller: str = "none"       # one controller per seed (a gcann.control.CONTROLLERS name)

    def __post_init__(self):
        if self.loss not in GAN_LOSSES or self.loss in ("wgan", "gan_qp", "hinge"):
            raise RingError(f"ring setting: unsupported loss {self.loss!r}; use alpha_sat, alpha_ns, lsgan, gan or nsgan")
        for name in ("alpha_d", "alpha_g"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise RingError(f"ring setting: {name} must be a finite number > 0, got {v!r}")
        if not (math.isfinite(self.r1) and self.r1 >= 0):
            raise RingError(f"ring setting: the R1 weight must be >= 0, got {self.r1!r}")
        if not (0 <= self.ema < 1):
            raise RingError(f"ring setting: the EMA decay must be in [0, 1), got {self.ema!r}")
        if self.controller not in CONTROLLERS:
            raise RingError(f"ring setting: unknown controller {self.controller!r}; choose from {', '.join(CONTROLLERS)}")

    @property
    def name(self) -> str:
        """Readable name: ``sat(0.3,1)``, ``ns(1,1)+gcann``, ``lsgan+r1``, ``sat(1,1)+ema``, ``ns(1,1)+gap``."""
        if self.loss in _LOSS_LABEL:
            base = f"{_LOSS_LABEL[self.loss]}({self.alpha_d:g},{self.alpha_g:g})"
        else:
            base = self.loss
        ctl = "" if self.controller == "none" else "+" + self.controller
        return base + ctl + ("+r1" if self.r1 else "") + ("+ema" if self.ema else "")

    @property
    def hp(self) -> dict[str, float]:
        """The loss's hyper-parameters (LSGAN with the 0-1 coding a = 0, b = c = 1, as the source)."""
        return {"alpha_d": self.alpha_d, "alpha_g": self.alpha_g, "a": 0.0, "b": 1.0, "c": 1.0}


def ring_gcann_config(steps_per_epoch: int, lr: float = LR) -> GCANNConfig:
    """The controller of the +gcann settings: the ``paper-celeba`` preset (warm-up 1 epoch) at the ring's lr
    (what ``make_controller("gcann", lr, lr, steps_per_epoch=...)`` builds)."""
    return preset("paper-celeba", steps_per_epoch=steps_per_epoch, lr_d=lr, lr_g=lr)


@dataclass
class RingRun:
    """What :func:`train_ring` returns; arrays have one row per batch row (seed × setting)."""

    settings: list[RingSetting]
    seeds: list[int]
    g_params: list[Tensor]
    d_params: list[Tensor]
    ema_params: list[Tensor]
    diverged: Tensor                     # (S,) bool
    steps: int                           # main steps taken
    curve_epochs: list[int] = field(default_factory=list)
    curve: list[dict[str, Tensor]] = field(default_factory=list)   # toy metrics (S,) after each listed epoch
    knobs: dict[str, list[Tensor]] = field(default_factory=dict)  # per knob in use, per epoch: its value at the end (S,)
    loss_d: list[Tensor] = field(default_factory=list)   # per epoch: mean controller-read D loss (S,)
    loss_g: list[Tensor] = field(default_factory=list)
    lr_d: list[Tensor] = field(default_factory=list)     # per epoch: lr at the epoch's end (S,)
    lr_g: list[Tensor] = field(default_factory=list)
    d_updates: Tensor | None = None      # (S,) total D updates
    g_updates: Tensor | None = None
    events: list[dict] = field(default_factory=list)     # gcann.control.event_record: the Event's fields, row, controller
    time_total: float = 0.0              # seconds in the training loop
    time_control: float = 0.0            # of which in the controls (observe + plan)
    form: str = "source"                 # "source" (the authors' code) or "exact" (see gcann.ring.data)
    eval_codes: Tensor | None = None     # the source form's evaluation codes (N, 2), shared by every row

    def eval_params(self) -> list[Tensor]:
        """Generator weights used for evaluation: the EMA's for rows with an EMA, G's otherwise."""
        has = torch.tensor([s.ema > 0 for s in self.settings], device=self.g_params[0].device)
        return [torch.where(has.view((-1,) + (1,) * (g.dim() - 1)), e, g) for g, e in zip(self.g_params, self.ema_params)]


def generate(g_params: list[Tensor], z: Tensor, chunk: int = 8) -> Tensor:
    """Generator samples ``(S, N, 2)`` of latent codes ``z (S, N, 2)``, a few seeds at a time, on the CPU
    (the weights may live on another device)."""
    dev = g_params[0].device
    with torch.no_grad():
        return torch.cat([mlp_forward(GENERATOR, select(g_params, i, i + chunk), z[i:i + chunk].to(dev)).cpu()
                          for i in range(0, z.shape[0], chunk)])


def train_ring(
    settings: Sequence[RingSetting],
    seeds: Sequence[int],
    *,
    epochs: int = 400,                    # passes over the training set (steps: epochs × 391, exact form × 390)
    form: str = "source",                 # "source": the authors' code (shared data, pooled codes, short last
                                          # batch, clamped α-losses); "exact": the project's (gcann.ring.data)
    eval_samples: int = TOY_EVAL_SAMPLES,  # source form: the evaluation codes drawn with the data (25,000)
    dataset: str = "ring",                # "ring" (8 Gaussians) or "grid" (5×5)
    n_train: int = N_TRAIN,               # training points per seed
    batch_size: int = BATCH_SIZE,         # batch size
    lr: float = LR,                       # Adam learning rate (both networks; GCANN rows start there)
    betas: tuple[float, float] = BETAS,   # Adam betas
    controller_settings: dict | None = None,  # controller name -> its settings (a mapping, or a GCANNConfig for
                                          # gcann; default: each controller's defaults for this run)
    curve_every: int = 1,                 # evaluate coverage every this many epochs (0: never)
    curve_samples: int = 2_500,           # samples per seed for the coverage curve (fixed codes per seed)
    max_steps: int | None = None,         # stop after this many main steps (tests)
    progress: Callable[[int, int], None] | None = None,  # called with (epoch, epochs) after each epoch
    trace: list | None = None,            # if a list: one dict per step (plans and the losses read), for checks
    device: str | torch.device = "cpu",   # where the networks train; streams, controllers and metrics stay on the CPU
    cuda_graph: bool | str = True,        # CUDA, only `none` rows: replay each step as one captured CUDA graph
                                          # ("eager": the same device-side step, not captured, on any device)
    tf32: bool = False,                   # CUDA: TF32 tensor cores for the matmuls (products with a 10-bit mantissa)
    fused_adam: bool = False,             # the device-side step: Adam as one fused kernel over every seed (all
                                          # share a rate and a count there); off: multi-tensor kernels on a GPU
    state_file: str | Path | None = None,  # where the run's state is saved (every save_every epochs, and at the end)
    save_every: int = 0,                  # epochs between saves of the state (0: none)
    resume: bool = False,                 # go on from state_file if it exists (the same rows and configuration)
) -> RingRun:
    """Train every ``(settings[k], seeds[k])`` row together; see the module docstring."""
    if save_every < 0 or (save_every and state_file is None) or (resume and state_file is None):
        raise RingError("saving or resuming a ring run needs a state_file, and save_every must be >= 0")
    if form not in FORMS:
        raise RingError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    kw = dict(epochs=epochs, form=form, eval_samples=eval_samples, dataset=dataset, n_train=n_train,
              batch_size=batch_size, lr=lr, betas=betas, controller_settings=controller_settings,
              curve_every=curve_every, curve_samples=curve_samples, max_steps=max_steps, progress=progress,
              trace=trace, device=device, cuda_graph=cuda_graph, fused_adam=fused_adam,
              state_file=None if state_file is None else Path(state_file), save_every=save_every, resume=resume)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    try:
        return _RingTrainer(settings, seeds, **kw).run()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


class _RingTrainer:
    """One ring run, built from :func:`train_ring`'s arguments (checked and normalised there): the stacked
    weights of the ``S`` rows, their per-seed streams, objective and controllers; :meth:`run` trains them."""

    def __init__(self, settings: Sequence[RingSetting], seeds: Sequence[int], *, epochs: int, form: str,
                 eval_samples: int, dataset: str, n_train: int, batch_size: int, lr: float,
                 betas: tuple[float, float], controller_settings: dict | None, curve_every: int, curve_samples: int,
                 max_steps: int | None, progress: Callable[[int, int], None] | None, trace: list | None,
                 device: str | torch.device, cuda_graph: bool | str, fused_adam: bool, state_file: Path | None,
                 save_every: int, resume: bool) -> None:
        self.settings, self.seeds = list(settings), [int(s) for s in seeds]
        if len(self.settings) != len(self.seeds) or not self.seeds:
            raise RingError("train_ring needs one setting per seed and at least one seed")
        if epochs < 1:
            raise RingError(f"epochs must be >= 1, got {epochs}")
        self.epochs, self.form, self.eval_samples, self.dataset = epochs, form, eval_samples, dataset
        self.n_train, self.lr, self.betas, self.fused_adam = n_train, lr, betas, fused_adam
        self.curve_every, self.curve_samples, self.progress, self.trace = curve_every, curve_samples, progress, trace
        self.state_file, self.save_every, self.resume = state_file, save_every, resume
        self.S, self.B = len(self.seeds), batch_size
        self.dev = torch.device(device)
        self.cuda = self.dev.type == "cuda"
        self.source = form == "source"
        self._build_models()
        self._build_controls(controller_settings)
        self._build_objective()
        self._build_loop(max_steps, cuda_graph)
        self._build_saving()

    # ------------------------------------------------------------------ building
    def _build_models(self) -> None:
        """The data streams, G and D (drawn on the CPU from each seed's generator), the EMA and the optimisers."""
        self.modes = dataset_modes(self.dataset)
        data_gens = [data_generator(s) for s in self.seeds]
        noise_gens = [noise_generator(s) for s in self.seeds]
        self.G = [p.to(self.dev) for p in init_mlp(GENERATOR, data_gens)]
        self.D = [p.to(self.dev) for p in init_mlp(DISCRIMINATOR, data_gens)]
        if self.source:
            self.pools = source_pools(self.dataset, self.n_train, self.eval_samples)
            self.stream = SourceStreams(self.pools, data_gens, self.B)
        else:
            self.pools = None
            self.stream = SeedStreams(self.modes, data_gens, noise_gens, self.n_train, self.B)
        self.steps_per_epoch = self.stream.batches_per_epoch
        for p in self.G + self.D:
            p.requires_grad_(True)
        self.ema = [p.detach().clone() for p in self.G]
        self.opt_d, self.opt_g = (RowOptimiser(P, "adam", betas=self.betas, uniform_fused=self.fused_adam)
                                  for P in (self.D, self.G))

    def _build_controls(self, controller_settings: dict | None) -> None:
        """One controller per row, the rows each knob acts on, the knobs' generators and the CLC buffers."""
        chosen = dict(controller_settings or {})
        unknown = sorted(set(chosen) - set(CONTROLLERS))
        if unknown:
            raise RingError(f"settings given for unknown controller(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(CONTROLLERS)}")
        self.controllers = [make_controller(s.controller, self.lr, self.lr, chosen.get(s.controller),
                                            steps_per_epoch=self.steps_per_epoch, batch_size=self.B, loss=s.loss,
                                            loss_hp={**s.hp, "clamp": SOURCE_CLAMP if self.source else 0.0})
                            for s in self.settings]
        self.controls = ControlRows(self.controllers, lag=1,
                                    knob_defaults={"r1_gamma": [s.r1 for s in self.settings]})
        self.ctl_rows = self.controls.dynamic             # rows whose controller reads every step's losses
        self.knob_rows = {n: [k for k, c in enumerate(self.controllers) if n in c.knob_names]
                          for n in self.controls.knob_names}
        self.noise_rows = self.knob_rows.get("noise_sigma", [])
        self.clc_rows = self.knob_rows.get("clc_weight", [])
        self.knob_gens = {k: knob_generator(self.seeds[k]) for k in self.noise_rows + self.clc_rows}
        self.clc = SampleBuffers([self.controllers[k].settings.buffer_batches * self.B for k in self.clc_rows], self.B,
                                 (2,), [self.knob_gens[k] for k in self.clc_rows], self.dev) if self.clc_rows else None
        self.clc_idx = torch.tensor(self.clc_rows, dtype=torch.long, device=self.dev)
        self.diversity_cfg = next((c.settings for c in self.controllers if isinstance(c.settings, GCANNConfig)), None)

    def _build_objective(self) -> None:
        """The rows' objective (per-row hyper-parameters, R1 on the rows that may use it), the knobs' starting
        values and the EMA decays."""
        settings, dev = self.settings, self.dev
        # α in double precision (the source form computes A = α/(α−1) in double, as that code does with Python
        # floats; the exact α-loss rounds α to the logits' precision); the LSGAN targets in the logits' float32
        hp = {name: torch.tensor([s.hp[name] for s in settings], device=dev,
                                 dtype=torch.float64 if name.startswith("alpha") else torch.float32).view(self.S, 1)
              for name in settings[0].hp}
        hp["clamp"] = SOURCE_CLAMP if self.source else 0.0
        r1_knob = self.knob_rows.get("r1_gamma", ())
        self.r1_groups = [slice(a, b) for a, b, on in contiguous_runs([s.r1 > 0 or k in r1_knob
                                                                       for k, s in enumerate(settings)]) if on]
        self.r1_gamma = torch.tensor([s.r1 for s in settings], device=dev)
        self.objective = MinibatchObjective([s.loss for s in settings], hp, ("r1",) if self.r1_groups else (),
                                            {"gamma": self.r1_gamma})
        self.noise_sigma = self.clc_weight = None         # the knobs' values: each step's plans set them
        ema_beta = torch.tensor([s.ema for s in settings])
        self.ema_beta_dev = ema_beta.to(dev)
        self.has_ema = ema_beta > 0
        self.any_ema = bool(self.has_ema.any())
        self.has_ema_dev = self.has_ema.to(dev)

    def _build_loop(self, max_steps: int | None, cuda_graph: bool | str) -> None:
        """The run's record and counters, the coverage curve's codes and the kind of step the loop takes."""
        S, dev = self.S, self.dev
        self.diverged = torch.zeros(S, dtype=torch.bool)
        self.curve_z = self._curve_codes()
        self.arange_b = torch.arange(self.B, device=dev)
        self.result = RingRun(self.settings, self.seeds, self.G, self.D, self.ema, self.diverged, 0, form=self.form,
                              eval_codes=self.pools.test_codes if self.source else None)
        self.const_lr = torch.full((S,), float(self.lr), dtype=torch.float64)
        # the losses reach the CPU every step when a controller reads them (lag 1), on the CPU, or for a trace;
        # otherwise once per epoch, and a NaN/Inf row is then found diverged at the epoch's end (on CUDA only)
        self.read_every_step = bool(self.ctl_rows) or not self.cuda or self.trace is not None
        self.wanted_stats = bool(self.controls.needs)
        self.diverged_dev = torch.zeros(S, dtype=torch.bool, device=dev)
        all_steps = self.epochs * self.steps_per_epoch
        self.total_steps = all_steps if max_steps is None else min(max_steps, all_steps)
        self.sum_d = torch.zeros(S, dtype=torch.float64, device=dev)
        self.sum_g = torch.zeros(S, dtype=torch.float64, device=dev)
        self.d_updates, self.g_updates = torch.zeros(S, dtype=torch.long), torch.zeros(S, dtype=torch.long)
        plain_rows = all(s.controller == "none" for s in self.settings)
        self.graphed = _GraphedStep((cuda_graph == "eager" or (self.cuda and cuda_graph is True)) and plain_rows
                                    and self.trace is None, cuda_graph is True and self.cuda, S, self.B, dev,
                                    counted=self.source)
        # a step that leaves its losses on the device: its NaN/Inf rows are read at the epoch's end
        self.losses_on_device = self.graphed.on or not self.read_every_step

    def _curve_codes(self) -> Tensor | None:
        """The coverage curve's fixed codes ``(S, curve_samples, 2)`` (None: no curve)."""
        if not self.curve_every:
            return None
        if self.source:   # the first codes of the evaluation pool, the same for every row (that code evaluates on all)
            if self.curve_samples > self.eval_samples:
                raise RingError(f"the source form's curve takes its codes from the {self.eval_samples} evaluation "
                                f"codes; curve_samples ({self.curve_samples}) must not exceed them")
            return self.pools.test_codes[:self.curve_samples].expand(self.S, self.curve_samples, 2)
        return torch.stack([torch.randn(self.curve_samples, 2, generator=eval_generator(s)) for s in self.seeds])

    def _build_saving(self) -> None:
        """What a saved state must match to be resumed here (the number of epochs may grow), and what it holds."""
        self.identity = {"settings": [vars(s) for s in self.settings], "seeds": self.seeds, "form": self.form,
                         "eval_samples": self.eval_samples if self.source else None, "dataset": self.dataset,
                         "n_train": self.n_train, "batch_size": self.B, "lr": self.lr, "betas": list(self.betas),
                         "controllers": [{k: c.state_dict()[k] for k in ("controller", "settings")}
                                         for c in self.controllers],
                         "curve_every": self.curve_every, "curve_samples": self.curve_samples,
                         "fused_adam": self.fused_adam}
        self.parts = {"G": self.G, "D": self.D, "ema": self.ema, "adam_d": self.opt_d, "adam_g": self.opt_g,
                      "stream": self.stream, "controls": self.controls, "buffers": self.clc,
                      "knob_gens": [self.knob_gens[k] for k in sorted(self.knob_gens)],
                      "counts": [self.diverged, self.d_updates, self.g_updates]}

    # ------------------------------------------------------------------ the objective, per row
    def to_dev(self, x: Tensor) -> Tensor:
        """A CPU tensor on the training device without a host synchronisation (pinned, non-blocking)."""
        return x.pin_memory().to(self.dev, non_blocking=True) if self.cuda else x

    def reduce(self, v: Tensor, n: Tensor | None) -> Tensor:
        """Per-row mean of ``v (rows, B)`` over the batch; with counts ``n`` over each row's first ``n`` entries
        (the source form, always: a short batch is padded; a row with no entry gets 0)."""
        if n is None:
            return v.mean(1)
        return torch.where(self.arange_b < n[:, None], v, 0.0).sum(1) / n.clamp(min=1)

    def reducer(self, n: Tensor | None):
        """``dynamics.minibatch``'s reduction of the rows ``rows`` with the rows' counts ``n``."""
        return lambda v, rows: self.reduce(v, None if n is None else n[rows])

    @staticmethod
    def d_out(params: list[Tensor], x: Tensor) -> Tensor:
        """D's logits ``(rows, N)`` under the weights ``params``."""
        return mlp_forward(DISCRIMINATOR, params, x).squeeze(-1)

    def noisy(self, x: Tensor, draw: Tensor | None = None) -> Tensor:
        """Instance noise of the rows whose controller sets ``noise_sigma``: σ·ε, ε from the row's own
        generator, drawn for the rows in ``draw`` (all when None) only."""
        if not self.noise_rows:
            return x
        eps = torch.zeros_like(x)
        for k in self.noise_rows:
            if draw is None or draw[k]:
                eps[k] = torch.randn(x.shape[1:], generator=self.knob_gens[k]).to(self.dev)
        return x + self.noise_sigma.to(x.dtype).view(-1, 1, 1) * eps

    def r1_fn(self, name: str, rows: slice, xr: Tensor, xf: Tensor, xi, hp: dict) -> Tensor:
        """R1 on the rows ``rows`` only (its double backward through their weights alone), per sample (rows, B)."""
        m, B = rows.stop - rows.start, self.B
        sub = select(self.D, rows.start, rows.stop)
        return self.objective.penalty(name, lambda x: self.d_out(sub, x.view(m, B, 2)).reshape(-1),
                                      xr[rows].reshape(m * B, 2), None, None,
                                      {"gamma": hp["gamma"].repeat_interleave(B)}).view(m, B)

    def clc_term(self, update: Tensor, n: Tensor | None, x_real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """Closed-loop control's term of the rows that update: each updating row's buffers take its batch (its
        valid points), then give one; a row that does not update adds nothing."""
        B = self.B
        xr_buf = torch.zeros(len(self.clc_rows), B, 2, device=self.dev)
        xf_buf = torch.zeros_like(xr_buf)
        got = torch.zeros(len(self.clc_rows), dtype=torch.long)
        counts = None if n is None else n.tolist()
        for i, k in enumerate(self.clc_rows):
            if update[k]:
                m = B if counts is None else counts[k]
                a, b = self.clc.push_and_draw(i, x_real[k, :m].detach(), fake[k, :m].detach())
                xr_buf[i, :len(a)], xf_buf[i, :len(b)] = a, b
                got[i] = len(a)
        sub = [p.index_select(0, self.clc_idx) for p in self.D]
        counted = lambda v, rows: self.reduce(v, got.to(self.dev))
        return self.objective.clc(self.d_out(sub, xr_buf), self.d_out(sub, xf_buf), counted), self.clc_idx

    def d_loss(self, x_real: Tensor, fake: Tensor, n: Tensor | None, draw: Tensor | None = None,
               update: Tensor | None = None, stats: dict | None = None,
               plain_only: bool = False) -> tuple[Tensor, Tensor]:
        """(loss with R1 and the knobs' terms, plain GAN loss), each (S,); ``n``: the rows' counts of valid
        samples (source form); ``draw``: the rows that draw instance noise (all when None); ``update``:
        the rows that take this loss's gradient (their CLC buffers take the batch; None: no CLC term);
        ``stats``: filled with the controllers' statistics when given; ``plain_only``: a measurement of the
        plain loss alone (no R1, which needs gradients, and no CLC term)."""
        knobs = {"r1_gamma": self.r1_gamma} if self.r1_groups else {}
        if self.clc is not None and update is not None:
            knobs["clc_weight"] = self.clc_weight
        noise = (lambda x: self.noisy(x, draw)) if self.noise_rows else None
        D = lambda x: self.d_out(self.D, x)
        if plain_only:
            out = self.objective.d_plain(D, x_real, fake, self.reducer(n), noise)
        else:
            out = self.objective.d_loss(D, x_real, fake, self.reducer(n), knobs=knobs, noise=noise,
                                        penalty_fn=self.r1_fn, penalty_rows=self.r1_groups,
                                        clc_fn=partial(self.clc_term, update, n) if "clc_weight" in knobs else None)
        if stats is not None:
            with torch.no_grad():
                stats.update({k: v.tolist() for k, v in
                              logit_statistics(out.out_real, out.out_fake, lambda v: self.reduce(v, n)).items()})
        return out.total, out.plain

    def g_loss(self, fake: Tensor, n: Tensor | None, mask: Tensor | None = None) -> Tensor:
        """G's plain GAN loss (S,); instance noise drawn for the rows in ``mask`` (all when None)."""
        return self.objective.g_loss(lambda x: self.d_out(self.D, x), fake, self.reducer(n),
                                     (lambda x: self.noisy(x, mask)) if self.noise_rows else None)

    def g_objective(self, fake: Tensor, use_div: list[int], n: Tensor | None,
                    mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(G's loss with the diversity term of the rows ``use_div``, plain GAN loss), each (S,)."""
        plain = self.g_loss(fake, n, mask)
        total = plain
        if use_div:
            extra = torch.zeros(self.S, device=self.dev)
            counts = [self.B] * self.S if n is None else n.tolist()
            extra = extra.index_put((torch.tensor(use_div, device=self.dev),),
                                    torch.stack([diversity_term(fake[k, :counts[k]], self.diversity_cfg)
                                                 for k in use_div]))
            total = plain + extra
        return total, plain

    @torch.no_grad()
    def update_ema(self, rows: Tensor) -> None:
        """The generator EMA's step (dynamics.optim.ema_step) of the rows in the device mask ``rows``, in place."""
        for e, p in zip(self.ema, self.G):
            shape = (-1,) + (1,) * (p.dim() - 1)
            e.copy_(ema_step(e, p, self.ema_beta_dev.view(shape), rows.view(shape)))

    # ------------------------------------------------------------------ steps
    def plain_step(self, x: Tensor, z: Tensor, n: Tensor | None) -> None:
        """One D and one G update of every row, all on the device (what the CUDA graph captures)."""
        fake = mlp_forward(GENERATOR, self.G, z)
        total, plain = self.d_loss(x, fake.detach(), n)
        ld = plain.detach()
        self.opt_d.step_all_on_device(torch.autograd.grad(total.sum(), self.D), self.graphed.lr, self.graphed.steps_d)
        total, plain = self.g_objective(fake, [], n)
        lg = plain.detach()
        self.opt_g.step_all_on_device(torch.autograd.grad(total.sum(), self.G), self.graphed.lr, self.graphed.steps_g)
        if self.any_ema:
            self.update_ema(self.has_ema_dev)
        finite = torch.isfinite(ld) & torch.isfinite(lg)
        self.sum_d.add_(torch.where(finite, ld.double(), 0))
        self.sum_g.add_(torch.where(finite, lg.double(), 0))
        self.diverged_dev.logical_or_(~finite)

    def graphed_step(self) -> None:
        """:meth:`plain_step` on the next batch, captured or replayed (eagerly with ``cuda_graph="eager"``)."""
        self.graphed.run(self.plain_step, *self.stream.batch())
        self.opt_d.steps += 1
        self.opt_g.steps += 1
        self.d_updates += 1
        self.g_updates += 1

    def controlled_step(self, t: int) -> None:
        """Step ``t`` under the controllers' plans (steps 1-5 of the module docstring): D's rounds, G's rounds with
        the EMA, then the round-0 losses to the controllers (or, left on the device, to the epoch's end)."""
        live = ~self.diverged
        c0 = time.perf_counter()
        plans = self.controls.plans()
        self.result.time_control += time.perf_counter() - c0
        d_steps, g_steps = plans.d_steps * live, plans.g_steps * live
        use_div = (plans.use_diversity & live).nonzero().flatten().tolist() if self.ctl_rows else []
        self._take_knobs(plans)
        stats = {} if self.wanted_stats else None

        x_step, z_step, n_step = (None if v is None else self.to_dev(v) for v in self.stream.batch())
        fake_step = mlp_forward(GENERATOR, self.G, z_step)
        ld = self._d_rounds(d_steps, plans.lr_d, x_step, fake_step, n_step, stats)
        lg = self._g_rounds(g_steps, plans.lr_g, fake_step, n_step, use_div)

        finite = torch.isfinite(ld) & torch.isfinite(lg)
        self.sum_d += torch.where(finite, ld.double(), 0)
        self.sum_g += torch.where(finite, lg.double(), 0)
        if not self.read_every_step:
            self.diverged_dev |= ~finite
            return
        ld_list, lg_list = ld.tolist(), lg.tolist()   # the controllers read the losses now (lag 1)
        self.diverged |= ~finite.cpu()
        c0 = time.perf_counter()
        if self.ctl_rows:
            self.result.events.extend(self.controls.observe(t, ld_list, lg_list, live=~self.diverged, stats=stats,
                                                            epoch=t // self.steps_per_epoch))
        self.result.time_control += time.perf_counter() - c0
        if self.trace is not None:
            self.trace.append({"d_steps": d_steps.tolist(), "g_steps": g_steps.tolist(), "lr_d": plans.lr_d.tolist(),
                               "lr_g": plans.lr_g.tolist(), "use_diversity": use_div, "loss_d": ld_list,
                               "loss_g": lg_list, "knobs": {n: v.tolist() for n, v in plans.knobs.items()},
                               **(stats or {})})

    def _take_knobs(self, plans) -> None:
        """This step's knob values from the plans, on the device, for the rows' objective."""
        if "r1_gamma" in self.knob_rows and self.knob_rows["r1_gamma"]:
            self.r1_gamma = plans.knobs["r1_gamma"].to(self.dev, torch.float32)
        if self.noise_rows:
            self.noise_sigma = plans.knobs["noise_sigma"].to(self.dev)
        if self.clc_rows:
            self.clc_weight = plans.knobs["clc_weight"]

    def _d_rounds(self, d_steps: Tensor, lr_d: Tensor, x_step: Tensor, fake_step: Tensor, n_step: Tensor | None,
                  stats: dict | None) -> Tensor:
        """D's rounds of the rows with ``d_steps > r``: round 0 on the step's batch and fakes, later rounds on fresh
        batches of those rows only; D's plain loss of round 0 (measured alone when no row trains D)."""
        x_real, fake, n_round = x_step, fake_step, n_step
        for r, mask in update_rounds(d_steps):
            if r:
                with torch.no_grad():
                    x_real, z, n_round = (None if v is None else self.to_dev(v) for v in self.stream.batch(mask))
                    fake = mlp_forward(GENERATOR, self.G, z)
            total, plain = self.d_loss(x_real, fake.detach(), n_round, None if r == 0 else mask, mask,
                                       stats if r == 0 else None)
            if r == 0:
                ld = plain.detach()
            grads = torch.autograd.grad(total.sum(), self.D)
            self.opt_d.step(grads, lr_d, mask)
            self.d_updates += mask.long()
        if int(d_steps.max()) == 0:
            with torch.no_grad():
                ld = self.d_loss(x_step, fake_step, n_step, stats=stats, plain_only=True)[1]
        return ld

    def _g_rounds(self, g_steps: Tensor, lr_g: Tensor, fake_step: Tensor, n_step: Tensor | None,
                  use_div: list[int]) -> Tensor:
        """G's rounds of the rows with ``g_steps > r`` (round 0 on the step's fakes, after D's update), each
        followed by the EMA of its rows that have one; G's plain loss of round 0."""
        fake, n_round = fake_step, n_step
        for r, mask in list(update_rounds(g_steps)) or [(0, g_steps > 0)]:   # round 0 always: G's loss is read
            if r:
                z, n_round = (None if v is None else self.to_dev(v) for v in self.stream.codes(mask))
                fake = mlp_forward(GENERATOR, self.G, z)
            total, plain = self.g_objective(fake, use_div, n_round, None if r == 0 else mask)
            if r == 0:
                lg = plain.detach()
            if not bool(mask.any()):
                break
            grads = torch.autograd.grad(total.sum(), self.G)
            self.opt_g.step(grads, lr_g, mask)
            self.g_updates += mask.long()
            if self.any_ema:
                self.update_ema(self.to_dev(mask & self.has_ema))
        return lg

    # ------------------------------------------------------------------ the epoch loop
    def run(self) -> RingRun:
        """Train from the start or the saved state to ``total_steps``; the :class:`RingRun`."""
        start, elapsed = self._resume()
        if self.graphed.on:
            self.graphed.prepare(self.const_lr, self.opt_d, self.opt_g)
        self.t_start = time.perf_counter() - elapsed
        for t in range(start, self.total_steps):
            end_of_epoch = (t + 1) % self.steps_per_epoch == 0 or t + 1 == self.total_steps
            if self.graphed.on:
                self.graphed_step()
            else:
                self.controlled_step(t)
            if end_of_epoch and self.losses_on_device:
                self.diverged |= self.diverged_dev.cpu()
            self.result.steps = t + 1
            if end_of_epoch:
                self._end_epoch(t)
        self.result.time_total = time.perf_counter() - self.t_start
        self.result.d_updates, self.result.g_updates = self.d_updates, self.g_updates
        for p in self.G + self.D:
            p.requires_grad_(False)
        return self.result

    def _resume(self) -> tuple[int, float]:
        """``(steps done, seconds)`` of the saved state when resuming (restored into this run), else ``(0, 0.0)``."""
        if self.resume and self.state_file.exists():
            start, elapsed = _load_state(self.state_file, self.identity, self.parts, self.result, self.total_steps)
            self.result.steps = start
            self.diverged_dev.copy_(self.diverged.to(self.dev))
            return start, elapsed
        if self.state_file is not None and events_path(self.state_file).exists():
            events_path(self.state_file).unlink()             # a fresh run: the old state's events go with it
        return 0, 0.0

    def _end_epoch(self, t: int) -> None:
        """After an epoch's last step ``t``: its mean losses, the next step's rates and knobs, the coverage curve,
        the save when due and the progress call."""
        run, steps_per_epoch = self.result, self.steps_per_epoch
        epoch = (t + 1 + steps_per_epoch - 1) // steps_per_epoch
        n = (t % steps_per_epoch) + 1
        run.loss_d.append((self.sum_d / n).float().cpu())
        run.loss_g.append((self.sum_g / n).float().cpu())
        self.sum_d.zero_()
        self.sum_g.zero_()
        nxt = self.controls.plans()
        run.lr_d.append(nxt.lr_d.clone())
        run.lr_g.append(nxt.lr_g.clone())
        for name in self.controls.knob_names:
            run.knobs.setdefault(name, []).append(nxt.knobs[name].clone())
        if self.curve_every and (epoch % self.curve_every == 0 or t + 1 == self.total_steps):
            run.curve_epochs.append(epoch)
            x = generate(run.eval_params(), self.curve_z)
            run.curve.append(toy_mode_metrics(x, self.modes, nonfinite="flag"))
        # saved at the ends of whole epochs only (a run cut short by max_steps is not saved mid-epoch)
        if (self.state_file is not None and self.save_every and (t + 1) % steps_per_epoch == 0
                and (epoch % self.save_every == 0 or t + 1 == self.total_steps)):
            _save_state(self.state_file, self.identity, self.parts, run, t + 1, time.perf_counter() - self.t_start)
        if self.progress is not None:
            self.progress(epoch, self.epochs)


class _GraphedStep:
    """A plain step (every row one D and one G update, no host work) captured once as a CUDA graph and
    replayed: the batch and the latent codes are copied into fixed buffers first. The first two steps
    run eagerly on a side stream (the warm-up CUDA graphs need), the third is captured, then replayed."""

    WARMUP = 2

    def __init__(self, on: bool, capture: bool, S: int, B: int, dev: torch.device, counted: bool = False) -> None:
        self.on, self.capture, self.dev = on, capture, dev
        if on:
            self.x = torch.zeros(S, B, 2, device=dev)
            self.z = torch.zeros(S, B, 2, device=dev)
            # the source form's counts of valid samples per row (a short last batch is padded)
            self.n = torch.zeros(S, dtype=torch.long, device=dev) if counted else None
        self.graph, self.calls = None, 0

    def prepare(self, lr: Tensor, opt_d: RowOptimiser, opt_g: RowOptimiser) -> None:
        self.lr = lr.to(self.dev)
        self.steps_d, self.steps_g = opt_d.steps.to(self.dev, copy=True), opt_g.steps.to(self.dev, copy=True)

    def run(self, step: Callable[[Tensor, Tensor, Tensor | None], None], x: Tensor, z: Tensor,
            n: Tensor | None) -> None:
        pairs = [(self.x, x), (self.z, z)] + ([(self.n, n)] if self.n is not None else [])
        if not self.capture:
            for buf, v in pairs:
                buf.copy_(v)
            step(self.x, self.z, self.n)
            return
        for buf, v in pairs:
            buf.copy_(v.pin_memory(), non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        elif self.calls < self.WARMUP:
            side = torch.cuda.Stream(self.dev)
            side.wait_stream(torch.cuda.current_stream(self.dev))
            with torch.cuda.stream(side):
                step(self.x, self.z, self.n)
            torch.cuda.current_stream(self.dev).wait_stream(side)
        else:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                step(self.x, self.z, self.n)
            self.graph.replay()       # capturing records the step; replaying runs it
        self.calls += 1


#: the one error class of saved states (gcann.state), under the ring's name
StateError = CheckpointError

_STATE_KIND = "ring-state"
_STATE_VERSION = 6   # 2: the form and the source form's streams; 3: any controller, knobs; 4: events beside the state;
                     # 5: written by gcann.state (a kind and a format), the optimisers' own state_dict;
                     # 6: events with observed_step and the step they govern (gcann.control.event_record)
_RUN_FIELDS = ("curve_epochs", "curve", "loss_d", "loss_g", "lr_d", "lr_g", "knobs", "time_control")


def events_path(state_file: Path) -> Path:
    """Where a saved run's controller events go: beside its state, one JSON line each (the state holds
    only their count, so a long study's tens of thousands of events are written once, not at every save)."""
    return state_file.with_name(state_file.name + ".events.jsonl")
_TENSOR_PARTS = ("G", "D", "ema", "counts")   # lists of tensors, restored in place


def _save_state(path: Path, identity: dict, parts: dict, run: RingRun, steps: int, elapsed: float) -> None:
    """The whole state of a ring run after ``steps`` main steps, written by :func:`gcann.state.save_state`
    (CPU tensors)."""
    def cpu(ts):
        return [x.detach().cpu().clone() for x in ts]

    state = {"identity": identity, "steps": steps, "elapsed": elapsed,
             **{name: cpu(parts[name]) for name in _TENSOR_PARTS},
             "adam_d": parts["adam_d"].state_dict(), "adam_g": parts["adam_g"].state_dict(),
             "stream": parts["stream"].state_dict(), "controls": parts["controls"].state_dict(),
             "buffers": None if parts["buffers"] is None else parts["buffers"].state_dict(),
             "knob_gens": [g.get_state() for g in parts["knob_gens"]],
             "run": {k: getattr(run, k) for k in _RUN_FIELDS}, "events_saved": len(run.events)}
    ev = events_path(path)                           # the events first: the state never counts more than the file
    ev.parent.mkdir(parents=True, exist_ok=True)
    done = _count_lines(ev) if ev.exists() else 0
    with open(ev, "a", encoding="utf-8") as f:      # only the events since the last save; a line beyond the
        for e in run.events[done:]:                  # state's count (a crash between the two) is cut on resume
            f.write(json.dumps(e) + "\n")
    save_state(path, _STATE_KIND, _STATE_VERSION, state)


def _load_state(path: Path, identity: dict, parts: dict, run: RingRun, total_steps: int) -> tuple[int, float]:
    """Restore a state written by :func:`_save_state` into this run's objects; ``(steps done, seconds)``."""
    state = load_state(path, _STATE_KIND, _STATE_VERSION, what="ring state", fix="delete it to start afresh",
                       identity=identity)
    if state["steps"] > total_steps:
        raise StateError(f"{path} holds {state['steps']} steps, more than this run's {total_steps}; "
                         f"ask for at least as many epochs")
    with torch.no_grad():
        for name in _TENSOR_PARTS:
            for p, q in zip(parts[name], state[name]):
                p.copy_(q)
    for name in ("adam_d", "adam_g"):
        parts[name].load_state_dict(state[name])
    parts["stream"].load_state_dict(state["stream"])
    parts["controls"].load_state_dict(state["controls"])
    if parts["buffers"] is not None:
        parts["buffers"].load_state_dict(state["buffers"])
    for g, st in zip(parts["knob_gens"], state["knob_gens"]):
        g.set_state(st)
    for k in _RUN_FIELDS:
        setattr(run, k, state["run"][k])
    n_events, ev = int(state["events_saved"]), events_path(path)
    lines = ev.read_text(encoding="utf-8").splitlines() if ev.exists() else []
    if len(lines) < n_events:
        raise StateError(f"{ev} holds {len(lines)} controller events, the state {n_events}; it belongs to that "
                         f"state: delete both to start afresh")
    run.events = [json.loads(x) for x in lines[:n_events]]
    if len(lines) > n_events:                        # written after the state (a crash between the two)
        atomic_write(ev, lambda tmp: Path(tmp).write_text("".join(x + "\n" for x in lines[:n_events])))
    return state["steps"], state["elapsed"]


def evaluate_run(run: RingRun, dataset: str = "ring", num_samples: int = TOY_EVAL_SAMPLES) -> dict[str, Tensor]:
    """Welfert et al.'s final evaluation: toy metrics (S,) of ``num_samples`` samples per row: in the source form
    from the evaluation codes drawn with the data (the same for every row, as the authors' code), in the
    exact form fresh codes per seed."""
    if run.eval_codes is not None:
        if num_samples != run.eval_codes.shape[0]:
            raise RingError(f"this source-form run drew {run.eval_codes.shape[0]} evaluation codes with its data; "
                             f"evaluate it on those (num_samples={run.eval_codes.shape[0]}), or train with "
                             f"eval_samples={num_samples}")
        z = run.eval_codes.expand(len(run.seeds), num_samples, 2)
    else:
        z = torch.stack([torch.randn(num_samples, 2, generator=eval_generator(s, final=True)) for s in run.seeds])
    out = toy_mode_metrics(generate(run.eval_params(), z), dataset_modes(dataset), nonfinite="flag")
    out["success"] = out["success"] & ~run.diverged   # a diverged row counts as a failure
    out["failure"] = out["failure"] | run.diverged
    out["diverged"] = run.diverged.clone()
    return out


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)
