"""One training loop for every GAN of the package, with its parts injected.

:class:`Trainer` holds a run: the networks, their optimisers, the objective
(:mod:`gcann.train.objective`), the generator EMA, the controller
(any of :data:`gcann.control.CONTROLLERS`, held by a one-row
:class:`gcann.control.ControlRows`), the data stream (:mod:`gcann.train.stream`) and
the metrics hook (:mod:`gcann.metrics`). Any of them can be passed in instead
of built from the config. One step:

1. the losses measured ``lag`` steps ago are read (checked for NaN/Inf) and
   given to the controller with the statistics it needs (mean D logits, E[sign
   D(x_real)]), and its plan governs this step (counts, rates, diversity, knobs:
   :mod:`gcann.train.objective`);
2. D takes ``plan.d_steps`` updates (the first on this step's batch, each
   further one on a fresh batch and fresh fakes), G takes ``plan.g_steps``
   updates (the first on this step's fakes, each further one on fresh noise;
   the diversity term is added when the plan says so); a network with 0
   updates only has its loss evaluated, so the controller always sees both;
3. the EMA follows G; the measured losses are queued for the controller.

The run folder (rank 0 only) holds ``config.json``, ``metrics.jsonl``,
``events.jsonl``, ``checkpoints/``, ``samples/``, ``loss_curves.png``,
``status.json`` and TensorBoard event files under ``tb/``.
"""
from __future__ import annotations

import copy
import json
import math
import random
import shlex
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from dynamics.optim import ema_step_
from gcann.control import Controller, ControlRows, Plan, make_controller, update_rounds
from gcann.control.buffers import SampleBuffers
from gcann.controller import ControllerError, GCANNConfig
from gcann.diversity import diversity_term
from gcann.errors import GcannError, one_line
from gcann.fileio import atomic_write_text

from .checkpoint import checkpoint_path, find_checkpoints, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig, available_cores
from .distributed import Dist, all_mean, average_gradients, gather_batch, init_distributed, sync_batchnorm
from .graphs import StepGraphs
from .objective import GANObjective
from .optimiser import NetworkAdam
from .stream import BatchStream

__all__ = ["RunError", "RunResult", "Trainer", "TrainingDiverged", "TrainingInterrupted", "build_controller",
           "resolve_device"]


class RunError(GcannError, ValueError):
    """The run cannot start or continue as asked (one line)."""


class TrainingDiverged(GcannError, RuntimeError):
    """A loss became NaN or infinite (or nonsense, with ``on_nonsense="stop"``); the message names the step and
    the last good checkpoint. Exit status 3."""

    exit_code = 3


class TrainingInterrupted(GcannError):
    """Training stopped on Ctrl-C (SIGINT, exit status 130) or SIGTERM (143) after saving a checkpoint of the
    last completed step; the message says how to continue."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


@dataclass(frozen=True)
class RunResult:
    run_dir: Path | None
    step: int                  # steps completed
    checkpoint: Path | None    # the last checkpoint written
    flags: tuple = ()          # what the run was flagged for (e.g. nonsense losses), as in status.json


class _StopSignals:
    """While training: the first SIGINT/SIGTERM only asks the loop to stop after the current step (which it then
    saves); a second one interrupts at once. Installed from the main thread of a single-process run only."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "_StopSignals":
        if self.enabled:
            for s in self.SIGNALS:
                try:
                    self._old[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class _Pending:
    """The losses of one step, on their way to the host."""

    step: int
    plan: Plan
    values: Tensor | list[float]   # [loss_d, loss_g, diversity or nan, d_real, d_fake, real_sign]
    event: Any = None              # CUDA event after the non-blocking copy
    logged: bool = False           # its metrics row (if any) is written

    def read(self) -> list[float]:
        if isinstance(self.values, list):
            return self.values
        if self.event is not None:
            self.event.synchronize()
        self.values = [float(v) for v in self.values.tolist()]
        self.event = None
        return self.values

    def stats(self) -> dict[str, float]:
        """The controller's statistics of this step (NaN where a run written before them has none)."""
        v = self.read() + [math.nan] * 3
        return {"d_real": v[3], "d_fake": v[4], "real_sign": v[5]}


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__})")
    return dev


def build_controller(cfg: TrainConfig, steps_per_epoch: int, loss_hp: dict | None = None) -> Controller:
    """The run's controller: ``cfg.controller`` with ``cfg.controller_set`` (for gcann and its ablations
    also ``gcann_preset`` and the ``gcann`` overrides), at the run's rates, filled from the run (its steps per
    epoch, batch, loss and the loss's hyper-parameters)."""
    settings = dict(cfg.controller_set)
    if cfg.controller.startswith("gcann"):
        settings = {"preset": cfg.gcann_preset, **cfg.gcann, **settings}
    try:
        return make_controller(cfg.controller, cfg.lr_d, cfg.lr_g, settings, steps_per_epoch=steps_per_epoch,
                               batch_size=cfg.batch_size, loss=cfg.loss, loss_hp=loss_hp)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"controller config: {e}") from None


class Trainer:
    """A training run; :meth:`fit` trains it to ``total_steps``."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        dataset: Any = None,                       # a gcann.data dataset (default: built from cfg)
        control: Controller | None = None,         # the controller (default: cfg.controller, cfg.controller_set)
        metrics_hook: Callable[["Trainer"], dict] | None = None,  # evaluation (default: cfg.metrics)
        quiet: bool = False,                       # no progress bar
        _resume: dict | None = None,
    ) -> None:
        self.cfg = cfg = cfg.validated()
        self.device = resolve_device(cfg.device)
        self.dist: Dist = init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.active and cfg.device in ("auto", "cuda"):
            self.device = torch.device("cuda", self.dist.rank % torch.cuda.device_count())
        if cfg.batch_size % self.dist.world:
            raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the {self.dist.world} processes")
        self.local_batch = cfg.batch_size // self.dist.world
        cuda = self.device.type == "cuda"
        self.autocast_dtype = torch.bfloat16 if (cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)) \
            else None
        if self.autocast_dtype is not None and not cuda:
            raise ConfigError("precision bf16 is for CUDA runs; use fp32 (or auto) on the CPU")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = self.run_dir is not None and self.dist.is_main
        self.quiet = quiet

        # data
        if dataset is None:
            dataset = cfg.build_data()
        self.dataset = dataset
        expected = (cfg.channels, cfg.resolution, cfg.resolution) if cfg.kind == "image" else (1,) + (cfg.resolution,) * 3
        shape = tuple(getattr(dataset, "sample_shape", tuple(dataset[0].shape)))
        if shape != expected:
            raise ConfigError(f"dataset {cfg.dataset!r} gives samples of shape {shape}, the {cfg.arch} networks "
                              f"expect {expected}: set resolution/channels to match")
        self.num_workers, how = cfg.workers()
        if getattr(dataset, "data", None) is not None:
            self.workers_note = "data in memory (no loader workers)"
        else:
            self.workers_note = (f"{self.num_workers} data-loader workers "
                                 + ("(set by num_workers)" if how == "user" else
                                    f"(auto: {available_cores()} cores available; set --num-workers to choose)"))
        try:
            self.stream = BatchStream(dataset, cfg.batch_size, seed=cfg.seed, device=self.device,
                                      rank=self.dist.rank, world=self.dist.world, num_workers=self.num_workers)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.steps_per_epoch = self.stream.steps_per_epoch
        self.total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * self.steps_per_epoch

        # networks and optimisers
        from gcann.models import build_models

        torch.manual_seed(cfg.seed)
        G, D = build_models(cfg.arch, resolution=cfg.resolution, channels=cfg.channels, nz=cfg.nz,
                            width_g=cfg.width_g, width_d=cfg.width_d, norm_g=cfg.norm_g, norm_d=cfg.norm_d)
        self.G_ema = copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema > 0 else None
        if self.dist.active:
            G, D = sync_batchnorm(G, self.device.type), sync_batchnorm(D, self.device.type)
        # channels-last on CUDA in eager mode; compiled networks keep the default format, since inductor picks
        # the convolutions' layout itself (and, in torch 2.11, mis-strides the weight gradient of a transposed
        # convolution on a 1x1 input whose weight is channels-last)
        fmt = (torch.channels_last if cfg.kind == "image" else torch.channels_last_3d) \
            if cuda and cfg.channels_last and not cfg.compile else torch.contiguous_format
        self.memory_format = fmt
        self.G = G.to(self.device, memory_format=fmt)
        self.D = D.to(self.device, memory_format=fmt)
        if self.G_ema is not None:
            self.G_ema.to(self.device, memory_format=fmt)
        self.G_fwd = torch.compile(self.G, mode=cfg.compile_mode) if cfg.compile else self.G
        self.D_fwd = torch.compile(self.D, mode=cfg.compile_mode) if cfg.compile else self.D
        # the project's one Adam (dynamics.optim.RowOptimiser) with each network as one row
        self.opt_d = NetworkAdam(self.D, cfg.lr_d, (cfg.beta1, cfg.beta2))
        self.opt_g = NetworkAdam(self.G, cfg.lr_g, (cfg.beta1, cfg.beta2))
        # CUDA graphs (gcann.train.graphs): static buffers for the captured step, whose optimiser steps read
        # their rates and counts from device tensors
        self.graphs: StepGraphs | None = None
        if cfg.cuda_graph != "off":
            if cfg.cuda_graph == "on" and not cuda:
                raise ConfigError("cuda_graph=on captures CUDA graphs and needs a CUDA device; "
                                  "cuda_graph=eager runs the same step uncaptured on any device")
            if self.dist.active:
                raise ConfigError("cuda_graph runs in one process; data parallelism's all-reduces are not captured")
            self.graphs = StepGraphs(cfg.cuda_graph == "on", self.device, (self.local_batch, *expected), fmt,
                                     (self.local_batch, cfg.nz))

        # objective, noise, controller
        self.objective = GANObjective(cfg)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        controller = control if control is not None else build_controller(cfg, self.steps_per_epoch,
                                                                          self.objective.loss_hp)
        self.controller = controller
        # the trainer delays the observations itself (below), so its rows apply a plan as soon as it is decided
        self.control = ControlRows([controller], lag=0)
        self.gcann_config: GCANNConfig | None = controller.settings if isinstance(controller.settings,
                                                                                  GCANNConfig) else None
        self.buffers = None
        if "clc_weight" in controller.knob_names:
            cap = controller.settings.buffer_batches * self.local_batch
            self.buffers = SampleBuffers([cap], self.local_batch, expected, [torch.Generator().manual_seed(cfg.seed + 3)],
                                         self.device)
        self.wants_stats = bool(controller.needs)
        self.lag = cfg.controller_lag or (2 if cuda else 1)
        self.metrics_hook = metrics_hook

        # fixed latent codes for sample grids (their own generator: sampling never moves the training streams)
        self.sample_z = torch.randn(cfg.num_samples, cfg.nz, generator=torch.Generator().manual_seed(cfg.seed + 2))

        self.step = 0
        self.d_updates = 0
        self.pending: deque[_Pending] = deque()
        self.last_ckpt: Path | None = None
        self.last_ckpt_step: int | None = None
        self.last_losses: list[float] | None = None
        self.flags: list[dict] = []            # nonsense-loss flags (status.json "flags")
        self._nonsense_run, self._nonsense_first = 0, None
        self.restarted = False
        self._status_open = False
        self._tb = None
        if _resume is not None:
            self._load_state(_resume)

    # ================================================================== public
    @classmethod
    def resume(cls, run_dir: str | Path, *, max_steps: int | None = None, quiet: bool = False,
               **parts: Any) -> "Trainer":
        """Continue the run in ``run_dir`` from its latest checkpoint (``max_steps`` counts from the run's start).

        A run folder without a checkpoint (stopped before its first one) starts again from step 0 with its
        ``config.json``; ``restarted`` is then True."""
        run_dir = Path(run_dir)
        if not find_checkpoints(run_dir) and (run_dir / "config.json").is_file():
            # stopped before its first checkpoint: start again from step 0 with the run's own config
            try:
                saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise RunError(f"{run_dir / 'config.json'} cannot be read ({e}); start a new run with "
                               f"`gcann train --preset NAME --out NEW_FOLDER`") from None
            cfg = TrainConfig.from_dict(saved)
            if max_steps is not None:
                cfg = cfg.replace(max_steps=max_steps)
            trainer = cls(cfg, run_dir, quiet=quiet, **parts)
            trainer._resumed_from, trainer._first_pending = 0, 0   # the earlier rows go: this run writes them again
            trainer.restarted = True
            if trainer.writes:
                atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
            return trainer
        state = load_checkpoint(run_dir)
        cfg = TrainConfig.from_dict(state["config"])
        if max_steps is not None:
            if max_steps < int(state["step"]):
                raise RunError(f"the run's last checkpoint is at step {int(state['step'])}: --max-steps "
                               f"{max_steps} would end it before where it stands; give at least {int(state['step'])}")
            cfg = cfg.replace(max_steps=max_steps)
        trainer = cls(cfg, run_dir, quiet=quiet, _resume=state, **parts)
        if trainer.writes:
            atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
        return trainer

    def fit(self) -> RunResult:
        """Train until ``total_steps``; returns where the run stopped.

        Ctrl-C (SIGINT) or SIGTERM stops the run after the current step: a checkpoint of that step is written,
        ``status.json`` says ``interrupted`` with the command that continues the run, and
        :class:`TrainingInterrupted` is raised (exit status 130 or 143 from the command line). A second signal
        stops at once, keeping the last checkpoint. Under ``torchrun`` the signals keep their usual effect.
        """
        if self.writes:
            self._open_run_dir()
        bar = self._progress()
        t0, s0 = time.perf_counter(), self.step
        self._t0, self._s0 = t0, s0
        self._next_progress = t0 + self.cfg.progress_seconds
        self._consistent = True
        stop = _StopSignals(enabled=not self.dist.active)
        try:
            with stop:
                while self.step < self.total_steps:
                    if stop.signum is not None:
                        raise KeyboardInterrupt
                    self._consistent = False
                    self._observe_due()
                    self._train_step()
                    self.step += 1
                    self._consistent = True
                    if bar is not None:
                        bar.update(1)
                        if self.last_losses is not None:
                            p = self.control.plan_of(0)
                            bar.set_postfix_str(f"D {self.last_losses[0]:.3f} G {self.last_losses[1]:.3f} "
                                                f"lr {p.lr_d:.1e}/{p.lr_g:.1e}", refresh=False)
                    self._periodic(final=self.step == self.total_steps)
                    self._tick()
                self._drain()
        except TrainingDiverged as e:
            self._write_status("diverged", str(e))
            raise
        except KeyboardInterrupt:
            raise self._interrupted(stop.signum or signal.SIGINT) from None
        except Exception as e:
            if isinstance(e, RuntimeError) and stop.signum is not None:
                raise self._interrupted(stop.signum) from None   # e.g. a loader worker that the signal ended
            # a damaged data file, a metric's error, a bug: status.json must not say running
            self._write_status("failed", f"{type(e).__name__}: {one_line(e)}")
            raise
        finally:
            self.stream.close()   # loader workers ignore SIGTERM: left running, they would hang the exit
            if bar is not None:
                bar.close()
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        self._write_status("finished", f"{self.step} steps in {time.perf_counter() - t0:.1f} s "
                                       f"({(self.step - s0) / max(time.perf_counter() - t0, 1e-9):.2f} steps/s)")
        return RunResult(self.run_dir, self.step, self.last_ckpt, tuple(self.flags))

    def resume_command(self, absolute: bool = False) -> str:
        """The command that continues this run (``gcann train --resume RUN_DIR``)."""
        where = self.run_dir.resolve() if absolute else self.run_dir
        return f"gcann train --resume {shlex.quote(str(where))}"

    def _interrupted(self, signum: int) -> TrainingInterrupted:
        """Save the last completed step (when the state is whole: between steps, one process) and say so."""
        name = signal.Signals(signum).name
        k = self.step
        if self.run_dir is None or not self.writes:
            return TrainingInterrupted(f"interrupted ({name}) at step {k} of {self.total_steps}; "
                                       "no run folder, nothing saved", signum)
        saved = False
        if self._consistent and not self.dist.active and self.last_ckpt_step != k:
            try:
                with _StopSignals(enabled=True):   # a further signal must not cut the checkpoint short
                    self.save(status=False)
                saved = True
            except TrainingDiverged as e:
                self._write_status("diverged", str(e))
                raise
        if self.last_ckpt is not None:
            what = (f"saved {self.last_ckpt}" if saved or self.last_ckpt_step == k
                    else f"the last checkpoint is {self.last_ckpt} (step {self.last_ckpt_step})")
            cont = "continue with"
        else:
            what = "no checkpoint was written"
            cont = "start it again from step 0 with"
        self._write_status("interrupted", f"interrupted ({name}) at step {k} of {self.total_steps}; {what}; "
                                          f"{cont} `{self.resume_command(absolute=True)}`",
                           resume_command=self.resume_command(absolute=True))
        return TrainingInterrupted(f"interrupted ({name}) at step {k} of {self.total_steps}: {what}; "
                                   f"{cont} `{self.resume_command()}`", signum)

    def _tick(self) -> None:
        """Every ``progress_seconds``: status.json's step, and without a terminal a progress line on stderr."""
        now = time.perf_counter()
        if now < self._next_progress:
            return
        self._next_progress = now + self.cfg.progress_seconds
        self._write_status("running", f"step {self.step} of {self.total_steps}")
        if self.quiet or not self.dist.is_main or sys.stderr.isatty():
            return
        done, el = self.step - self._s0, now - self._t0
        rate = done / el if el > 0 else math.inf
        eta = (self.total_steps - self.step) / rate if rate > 0 else math.inf
        losses = (f", loss_d {self.last_losses[0]:.4g} loss_g {self.last_losses[1]:.4g}"
                  if self.last_losses is not None else "")
        print(f"gcann train: step {self.step}/{self.total_steps} ({100 * self.step / self.total_steps:.0f}%), "
              f"{rate:.2f} steps/s, ETA {_duration(eta)}{losses}", file=sys.stderr, flush=True)

    def sample(self, z: Tensor | None = None, *, ema: bool = True, n: int | None = None,
               seed: int = 0) -> Tensor:
        """Generated samples in the data's range (no gradient; training streams untouched)."""
        net = self._sampler(ema)
        if z is None:
            z = torch.randn(n or self.cfg.num_samples, self.cfg.nz, generator=torch.Generator().manual_seed(seed))
        was = net.training
        net.eval()
        with torch.no_grad(), self._autocast():
            out = net(z.to(self.device)).float()
        net.train(was)
        return out

    # ================================================================== one step
    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        # no cast cache under CUDA graphs: cached casts would outlive the step they were captured in
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=self.graphs is None)

    def _draw(self, fn, shape: tuple[int, ...]) -> Tensor:
        """This process's rows of a draw over the global batch (``shape[0]`` is the local batch)."""
        b, w = shape[0], self.dist.world
        x = fn((b * w, *shape[1:]), generator=self.noise_gen, device=self.device)
        return x if w == 1 else x[self.dist.rank * b:(self.dist.rank + 1) * b]

    def _randn(self, shape) -> Tensor:
        return self._draw(torch.randn, tuple(shape))

    def _rand(self, shape) -> Tensor:
        return self._draw(torch.rand, tuple(shape))

    def _fake(self) -> Tensor:
        return self.G_fwd(self._randn((self.local_batch, self.cfg.nz)))

    def _real(self) -> Tensor:
        return self.stream.next().contiguous(memory_format=self.memory_format)

    def _train_step(self) -> None:
        t = self.step
        plan = self.control.plan_of(0)
        self.opt_d.lr, self.opt_g.lr = plan.lr_d, plan.lr_g
        key = self._graph_key(plan)
        if key is None:
            values = self._updates(plan, t, self._real(), self._randn((self.local_batch, self.cfg.nz)))
        else:
            # the step as a CUDA graph: the same draws as above, into the graph's buffers; the EMA after it
            graphs, d0 = self.graphs, self.d_updates
            graphs.load(self.stream.next(), self._randn((self.local_batch, self.cfg.nz)))
            for opt in (self.opt_d, self.opt_g):
                opt.prepare_device_step()
            values = graphs.run(key, lambda: self._updates(plan, t, graphs.real, graphs.z, d0=d0, ema=False,
                                                           on_device=True))
            for opt in (self.opt_d, self.opt_g):
                opt.count_device_steps()
            self.d_updates = d0 + 1
            self._ema_update()
        entry = _Pending(t, plan, values)
        if self.device.type == "cuda":
            host = torch.empty(len(values), pin_memory=True)
            host.copy_(values, non_blocking=True)
            entry.values, entry.event = host, torch.cuda.Event()
            entry.event.record()
        self.pending.append(entry)

    def _graph_key(self, plan: Plan):
        """The key of this step's CUDA graph (``gcann.train.graphs``), or None for a step that runs eagerly."""
        if self.graphs is None or plan.d_steps != 1 or plan.g_steps != 1 or plan.knobs:
            return None
        lazy = bool(self.objective.lazy) and self.cfg.reg_every > 1 and self.d_updates % self.cfg.reg_every == 0
        return plan.use_diversity, lazy

    def _updates(self, plan: Plan, t: int, real: Tensor, z: Tensor, *, d0: int | None = None,
                 ema: bool = True, on_device: bool = False) -> Tensor:
        """The updates of one step on the batch ``real`` and the codes ``z``, in the catch-up order of every
        engine (:func:`gcann.control.update_rounds`, D's before G's); returns ``[loss_d, loss_g,
        diversity or nan, d_real, d_fake, real_sign]`` of its first updates (on the device; the last three
        NaN unless the controller needs them). Also what a CUDA graph captures: with
        ``d0`` given it counts D's updates from there and leaves ``self.d_updates`` alone, with
        ``ema=False`` it leaves the EMA to the caller, and with ``on_device`` the optimisers read their
        rates and counts from the device (:meth:`NetworkAdam.step_on_device`)."""
        cfg = self.cfg
        knobs = dict(plan.knobs)
        stats: dict | None = {} if self.wants_stats else None
        d_count = self.d_updates if d0 is None else d0
        with self._autocast():
            fake = self.G_fwd(z)

        # ---- discriminator
        loss_d = None
        for k, _ in update_rounds(torch.tensor([plan.d_steps])):
            if k == 0:
                xr, xf = real, fake.detach()
            else:
                xr = self._real()
                with torch.no_grad(), self._autocast():
                    xf = self._fake()
            self.opt_d.zero_grad()
            with self._autocast():
                total, gan = self.objective.d_loss(self.D_fwd, xr, xf, t, d_count, self._rand, self._randn,
                                                    D_grad=self.D, knobs=knobs, buffers=self.buffers,
                                                    stats=stats if k == 0 else None)
            total.backward()
            average_gradients(list(self.D.parameters()), self.dist.world)
            self.opt_d.step_on_device() if on_device else self.opt_d.step()
            d_count += 1
            if k == 0:
                loss_d = gan.detach()
        if d0 is None:
            self.d_updates = d_count
        if loss_d is None:
            with torch.no_grad(), self._autocast():
                loss_d = self.objective.d_gan_loss(self.D_fwd, real, fake.detach(), t, self._randn, knobs, stats)

        # ---- generator
        loss_g = None
        div = torch.full((), math.nan, device=self.device)
        self.D.requires_grad_(False)
        try:
            for k, _ in update_rounds(torch.tensor([plan.g_steps])):
                if k > 0:
                    with self._autocast():
                        fake = self._fake()
                self.opt_g.zero_grad()
                with self._autocast():
                    gan_g = self.objective.g_loss(self.D_fwd, fake, t, self._randn, knobs)
                total_g = gan_g
                if plan.use_diversity:
                    # over the global batch, as one process would compute it
                    term = diversity_term(gather_batch(fake.float(), self.dist.world),
                                          self.gcann_config or GCANNConfig(), metric=cfg.diversity_metric)
                    total_g = total_g + term
                    if k == 0:
                        div = term.detach()
                total_g.backward()
                average_gradients(list(self.G.parameters()), self.dist.world)
                self.opt_g.step_on_device() if on_device else self.opt_g.step()
                if ema:
                    self._ema_update()
                if k == 0:
                    loss_g = gan_g.detach()
            if loss_g is None:
                with torch.no_grad(), self._autocast():
                    loss_g = self.objective.g_loss(self.D_fwd, fake.detach(), t, self._randn, knobs)
        finally:
            self.D.requires_grad_(True)
        nan = torch.full((), math.nan, device=self.device)
        extra = [stats[n].float() for n in ("d_real", "d_fake", "real_sign")] if stats else [nan, nan, nan]
        return all_mean(torch.stack([loss_d.float(), loss_g.float(), div.float(), *extra]), self.dist.world)

    def _ema_update(self) -> None:
        if self.G_ema is None:
            return
        beta = self.cfg.ema if self.step >= self.cfg.ema_start else 0.0
        with torch.no_grad():
            ema_step_(list(self.G_ema.parameters()), list(self.G.parameters()), beta)
            for eb, b in zip(self.G_ema.buffers(), self.G.buffers()):
                eb.copy_(b)

    # ================================================================== controller, logs, NaN
    def _observe_due(self) -> None:
        """Read the losses of steps ``<= step - lag`` and give them to the controller."""
        while self.pending and self.pending[0].step <= self.step - self.lag:
            self._consume(self.pending.popleft(), observe=True)

    def _drain(self) -> None:
        """At the end: read (not observe) what is still queued, for logs and the NaN check."""
        for entry in self.pending:
            self._check_finite(entry)
            self._log(entry)

    def _check_finite(self, entry: _Pending) -> list[float]:
        vals = entry.read()
        ld, lg = vals[0], vals[1]
        if not (math.isfinite(ld) and math.isfinite(lg)):
            where = (f"the last good checkpoint is {self.last_ckpt}" if self.last_ckpt is not None
                     else "no checkpoint was written before it")
            raise TrainingDiverged(f"non-finite loss at step {entry.step} (loss_d={ld}, loss_g={lg}): "
                                   f"training stopped; {where}")
        return vals

    def _consume(self, entry: _Pending, observe: bool) -> None:
        ld, lg = self._check_finite(entry)[:2]
        self.last_losses = [ld, lg]
        if observe:
            stats = entry.stats()
            bad = [n for n in self.controller.needs if not math.isfinite(stats[n])]
            if bad:
                raise ControllerError(f"the {self.controller.name} controller needs {', '.join(bad)}, which step "
                                      f"{entry.step} did not record (a checkpoint written before they were kept)")
            events = self.control.observe(entry.step, [ld], [lg], stats={n: [v] for n, v in stats.items()},
                                          epoch=entry.step // self.steps_per_epoch, lag=self.lag)
            if events and self.writes:
                with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as f:
                    for e in events:
                        f.write(json.dumps(e) + "\n")
        if not entry.logged:
            self._log(entry)

    def _log(self, entry: _Pending) -> None:
        s = entry.step
        entry.logged = True
        if s % self.cfg.log_every != 0 and s != self.total_steps - 1:
            return
        ld, lg, div = entry.read()[:3]
        if self.writes:
            self._write_row(entry, ld, lg, div)
        self._check_nonsense(s, ld, lg)

    def _check_nonsense(self, s: int, ld: float, lg: float) -> None:
        """The nonsense rule: |loss_d| or |loss_g| above ``nonsense_bound`` at ``nonsense_steps`` consecutive
        logged steps flags the run (``on_nonsense="flag"``) or stops it as diverged (``"stop"``)."""
        cfg = self.cfg
        if abs(ld) > cfg.nonsense_bound or abs(lg) > cfg.nonsense_bound:
            if self._nonsense_run == 0:
                self._nonsense_first = s
            self._nonsense_run += 1
        else:
            self._nonsense_run, self._nonsense_first = 0, None
        if self._nonsense_run != cfg.nonsense_steps:
            return
        msg = (f"nonsense losses: |loss| > {cfg.nonsense_bound:g} at {cfg.nonsense_steps} consecutive logged steps "
               f"(steps {self._nonsense_first}..{s}; at step {s} loss_d={ld:.4g}, loss_g={lg:.4g}): the networks "
               f"are not learning; lower lr_d/lr_g")
        if cfg.on_nonsense == "stop":
            where = (f"the last checkpoint is {self.last_ckpt}" if self.last_ckpt is not None
                     else "no checkpoint was written before it")
            raise TrainingDiverged(f"{msg}; training stopped (on_nonsense=stop); {where}")
        self.flags.append({"flag": "nonsense", "step": s, "first_step": self._nonsense_first, "message": msg})
        if self.dist.is_main:
            print(f"gcann: warning: {msg} (flagged in status.json; --on-nonsense stop stops such runs)",
                  file=sys.stderr, flush=True)
        self._write_status("running", f"step {self.step} of {self.total_steps}")

    def _write_row(self, entry: _Pending, ld: float, lg: float, div: float) -> None:
        s = entry.step
        p = entry.plan
        row = {"step": s, "epoch": s / self.steps_per_epoch, "loss_d": ld, "loss_g": lg, "lr_d": p.lr_d,
               "lr_g": p.lr_g, "d_steps": p.d_steps, "g_steps": p.g_steps, "sigma": self.objective.sigma(s, p.knobs),
               "time": time.time(), **{name: float(v) for name, v in p.knobs.items()}}
        if math.isfinite(div):
            row["diversity"] = div
        for name in self.controller.needs:       # what the controller read besides the losses
            row[name] = entry.stats()[name]
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        tb = self._writer()
        if tb is not None:
            for k in ("loss_d", "loss_g", "lr_d", "lr_g", "diversity", "sigma"):
                if k in row:
                    tb.add_scalar(f"train/{k}", row[k], s)

    # ================================================================== periodic work
    def _periodic(self, final: bool) -> None:
        cfg, k = self.cfg, self.step
        if k % cfg.ckpt_every == 0 or final:
            self.save()
        if self.writes and (k % cfg.sample_every == 0 or final):
            self._write_samples()
        if (cfg.metrics or self.metrics_hook is not None) and self.dist.is_main and (
                (cfg.eval_every and k % cfg.eval_every == 0) or final):
            self._evaluate()

    def _write_samples(self) -> None:
        from .plots import save_image_grid, save_loss_curves, save_voxel_renders

        x = self.sample(self.sample_z)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        if self.cfg.kind == "image":
            save_image_grid(x, path)
        else:
            save_voxel_renders(x, path)
        save_loss_curves(self.run_dir)

    def _evaluate(self) -> None:
        if self.metrics_hook is not None:
            result = self.metrics_hook(self)
        else:
            from gcann.metrics import EvalContext, compute_metrics

            gen = torch.Generator().manual_seed(self.cfg.seed + 3)

            def sample(n: int) -> Tensor:
                return self.sample(torch.randn(n, self.cfg.nz, generator=gen))

            data = getattr(self.dataset, "data", None)
            ctx = EvalContext(sample=sample, kind=self.cfg.kind, reals=data,
                              dataset_key=getattr(self.dataset, "key", None), device=self.device,
                              num_samples=self.cfg.eval_samples, options={"dataset": self.dataset})
            result = compute_metrics(list(self.cfg.metrics), ctx)
        if self.writes:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": self.step, "eval": result}) + "\n")
            tb = self._writer()
            if tb is not None:
                for key, v in result.items():
                    if isinstance(v, (int, float)):
                        tb.add_scalar(f"eval/{key}", v, self.step)

    # ================================================================== checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (reads the queued losses: a host synchronisation)."""
        pending = []
        for entry in self.pending:
            vals = self._check_finite(entry)
            plan = entry.plan.to_dict()
            plan.pop("events")
            pending.append({"step": entry.step, "plan": plan, "values": vals, "logged": entry.logged})
        return {
            "config": self.cfg.to_dict(),
            "step": self.step,
            "d_updates": self.d_updates,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "control": self.control.state_dict(),
            "buffers": None if self.buffers is None else self.buffers.state_dict(),
            "stream": self.stream.state_dict(),
            "pending": pending,
            "monitor": {"nonsense_run": self._nonsense_run, "nonsense_first": self._nonsense_first,
                        "flags": [dict(f) for f in self.flags]},
            "rng": {
                "noise": self.noise_gen.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "torch_version": torch.__version__,
        }

    def save(self, status: bool = True) -> Path | None:
        """Write a checkpoint of the current step (rank 0; the others only verify the losses); ``status``:
        status.json then names it."""
        state = self.state_dict()
        if not self.writes:
            return None
        self.last_ckpt = save_checkpoint(checkpoint_path(self.run_dir, self.step), state,
                                         keep=self.cfg.keep_checkpoints)
        self.last_ckpt_step = self.step
        if status and self._status_open:
            self._write_status("running", f"step {self.step} of {self.total_steps}")
        return self.last_ckpt

    def _load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.d_updates = int(state["d_updates"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            if state["G_ema"] is None:
                raise RunError("the checkpoint has no EMA generator but the config asks for one")
            self.G_ema.load_state_dict(state["G_ema"])
        for opt, key in ((self.opt_d, "opt_d"), (self.opt_g, "opt_g")):
            try:
                opt.load_state_dict(state[key])
            except ValueError as e:
                raise RunError(f"cannot restore {key} from {state['path']}: {e}") from None
        try:
            self.control.load_state_dict(state["control"])
        except (KeyError, ValueError, AttributeError) as e:
            raise RunError(f"cannot restore the controller from {state['path']}: {e} (a checkpoint written before "
                           f"controllers were plug-ins cannot be resumed; start the run afresh)") from None
        if self.buffers is not None:
            self.buffers.load_state_dict(state["buffers"])
        try:
            self.stream.load_state_dict(state["stream"])
        except ValueError as e:
            raise RunError(str(e)) from None
        self.pending = deque()
        for p in state["pending"]:
            plan = dict(p["plan"])
            plan.setdefault("knobs", {})
            self.pending.append(_Pending(p["step"], Plan(**plan), list(p["values"]), logged=p["logged"]))
        rng = state["rng"]
        self.noise_gen.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.last_ckpt = Path(state["path"])
        self.last_ckpt_step = self.step
        monitor = state.get("monitor") or {}       # absent from checkpoints written before the nonsense rule
        self._nonsense_run = int(monitor.get("nonsense_run", 0))
        self._nonsense_first = monitor.get("nonsense_first")
        self.flags = [dict(f) for f in monitor.get("flags", [])]
        self._resumed_from = self.step
        self._first_pending = self.pending[0].step if self.pending else self.step

    # ================================================================== run folder
    def _open_run_dir(self) -> None:
        rd = self.run_dir
        if getattr(self, "_resumed_from", None) is None:
            if rd.exists() and any(rd.iterdir()):
                if (rd / "config.json").is_file():
                    raise RunError(f"run folder {rd} exists and is not empty: continue it with "
                                   f"`gcann train --resume {shlex.quote(str(rd))}` or choose another --out")
                raise RunError(f"run folder {rd} exists and is not empty (and is not a gcann run folder): "
                               "choose another --out")
            rd.mkdir(parents=True, exist_ok=True)
            atomic_write_text(rd / "config.json", json.dumps(self.cfg.to_dict(), indent=2) + "\n")
            for name in ("metrics.jsonl", "events.jsonl"):
                (rd / name).touch()
        else:
            # rows written after the checkpoint by the interrupted process are dropped: the resumed run writes them again
            _truncate_jsonl(rd / "metrics.jsonl", lambda r: r["step"] < self._first_pending
                            or ("eval" in r and r["step"] <= self._resumed_from))
            _truncate_jsonl(rd / "events.jsonl", lambda r: r.get("observed_step", -1) < self._first_pending)
        for sub in ("checkpoints", "samples"):
            (rd / sub).mkdir(exist_ok=True)
        self._status_open = True
        self._write_status("running", f"step {self.step} of {self.total_steps}")

    def _writer(self):
        if not self.writes:
            return None
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run (or one started again from step 0) hides the events past its step
            resumed = getattr(self, "_resumed_from", None) is not None
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step if resumed else None)
        return self._tb

    def _write_status(self, state: str, message: str, **extra: Any) -> None:
        """``status.json``: state (running, finished, diverged, interrupted, failed), the step reached, the last
        checkpoint and its step, the flags raised, when it was written; ``extra`` adds keys."""
        if self.writes and self.run_dir.exists():
            doc = {"state": state, "step": self.step, "total_steps": self.total_steps, "message": message,
                   "last_checkpoint": None if self.last_ckpt is None else str(self.last_ckpt),
                   "checkpoint_step": self.last_ckpt_step, "flags": [dict(f) for f in self.flags],
                   "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
            atomic_write_text(self.run_dir / "status.json", json.dumps(doc, indent=2) + "\n")

    def _progress(self):
        if self.quiet or not self.dist.is_main or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _sampler(self, ema: bool) -> nn.Module:
        if ema and self.G_ema is not None:
            if self.cfg.ema_bn == "recompute":
                recompute_bn_stats(self.G_ema, self.cfg.nz, self.local_batch, self.device, seed=self.cfg.seed + 4)
            return self.G_ema
        return self.G

    def checkpoints(self) -> list[Path]:
        return find_checkpoints(self.run_dir) if self.run_dir is not None else []


def recompute_bn_stats(G: nn.Module, nz: int, batch: int, device: torch.device, *, seed: int,
                       batches: int = 16) -> None:
    """Set G's batch-norm running statistics to their average over ``batches`` fresh batches of G's own output.

    The EMA generator's weights are averages, so the statistics that G
    accumulated (with its own, moving weights) do not belong to them; running
    the EMA weights on fresh noise and averaging the batch statistics
    (``momentum=None``: a cumulative mean) gives the statistics of the network
    actually sampled. Deterministic (its own seeded generator).
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    gen = torch.Generator().manual_seed(seed)
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    G.train()
    with torch.no_grad():
        for _ in range(batches):
            G(torch.randn(batch, nz, generator=gen).to(device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    G.eval()


def _truncate_jsonl(path: Path, keep: Callable[[dict], bool]) -> None:
    """Keep the records of ``path`` that ``keep`` accepts. A last line that is not JSON is dropped: the run was
    killed while writing it (its step is redone); a bad line before the last is refused in one line."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = []
    for i, line in enumerate(rows):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(rows) - 1:
                break
            raise RunError(f"{path}, line {i + 1}, is not valid JSON: the run folder was edited or damaged; "
                           f"mend or remove that line to continue the run") from None
        if keep(rec):
            kept.append(line)
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(line + "\n" for line in kept))
