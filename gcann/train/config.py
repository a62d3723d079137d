"""The configuration of one training run, and its validation.

Every value of a run lives in one flat :class:`TrainConfig`; presets
(:mod:`gcann.train.presets`) are named instances, the CLI overrides any field,
and the resolved config is written to the run folder as ``config.json``, from
which ``gcann train --resume`` and ``gcann sample`` rebuild the run.

Each field carries its one-line meaning as ``metadata["help"]``; ``gcann train
--help`` shows exactly that text for the field's option.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gcann.control import CONTROLLERS
from gcann.errors import GcannError

__all__ = ["ConfigError", "TrainConfig", "PENALTY_NAMES", "REG_NAMES", "auto_workers", "available_cores"]

#: discriminator penalties of ``dynamics.objectives.PENALTIES`` the trainer applies
PENALTY_NAMES = ("r1", "r2", "gp", "dragan")
#: everything ``reg`` may list: the penalties, L2 on D, instance noise, and "gp0" (WGAN-GP with c = 0)
REG_NAMES = (*PENALTY_NAMES, "gp0", "l2", "noise")


class ConfigError(GcannError, ValueError):
    """A training configuration value is out of range or unknown (one line)."""


def _f(default: Any, help: str) -> Any:
    """A config field with a default and its one-line help (shown by ``gcann train --help``)."""
    return field(default=default, metadata={"help": help})


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a Slurm allocation; else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_workers(cores: int | None = None) -> int:
    """Data-loader workers for ``cores`` cores (default: this process's share of the available ones).

    0 (decode in the training process) on 2 cores or fewer, where a worker only competes with the training
    step for the same cores; else ``min(4, cores - 2)``, leaving two cores to the training process. Under
    ``torchrun`` the node's cores are shared by its ``LOCAL_WORLD_SIZE`` processes.
    """
    if cores is None:
        cores = available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return 0 if cores <= 2 else min(4, cores - 2)


#: keys ``to_dict`` adds to record what the run resolved on this machine; ``from_dict`` ignores them
DERIVED_KEYS = ("num_workers_chosen", "num_workers_how")


@dataclass
class TrainConfig:
    """One training run. Each field's ``metadata["help"]`` gives its meaning; defaults make a plain DCGAN on MNIST-5k."""

    # --- data
    dataset: str = _f("mnist5k", 'gcann.data dataset name (celeba, images, fashion-mnist, mnist5k, bicar3d, biped, ...)')
    data_root: str | None = _f(None, "local root of the data: CelebA, 3DBiCar, an image or mesh folder (None: the "
                                     "dataset's shipped copy or default location)")
    resolution: int = _f(28, 'image side or voxel grid side')
    channels: int = _f(1, 'image channels (1 for voxels)')
    num_workers: int | None = _f(None, "DataLoader workers for file-backed datasets (0: decode in the training "
                                       "process; default: from the cores available, 0 on 2 cores or fewer, else "
                                       "min(4, cores - 2); config.json records the count chosen)")
    # --- networks
    arch: str = _f("dcgan", '"dcgan" (images) or "voxel" (3D-GAN)')
    nz: int = _f(100, 'latent dimension')
    width_g: int = _f(64, 'generator base width (DCGAN ngf)')
    width_d: int = _f(64, 'discriminator base width (DCGAN ndf)')
    norm_g: str = _f("batch", 'generator normalisation: batch | none')
    norm_d: str = _f("batch", 'discriminator normalisation: batch | layer | none')
    # --- objective (dynamics.objectives, shared with the Dirac-GAN testbed)
    loss: str = _f("nsgan", 'gan | nsgan | wgan | lsgan | alpha_sat | alpha_ns | hinge')
    alpha_d: float = _f(1.0, "(α_D, α_G)-losses: the discriminator's α")
    alpha_g: float = _f(1.0, "(α_D, α_G)-losses: the generator's α")
    alpha_clamp: float = _f(0.0, "(α_D, α_G)-losses: 0 exact; 1e-7 the authors' code (σ clamped, BCE log >= -100)")
    lsgan_a: float = _f(0.0, 'LSGAN: target of fakes for D')
    lsgan_b: float = _f(1.0, 'LSGAN: target of reals for D')
    lsgan_c: float = _f(1.0, 'LSGAN: target of fakes for G')
    reg: tuple[str, ...] = _f((), 'regularisers: r1, r2, gp, gp0, dragan, l2, noise (any combination)')
    gamma: float = _f(10.0, 'penalty weight γ (γ/2·E‖∇D‖² for R1/R2, γ/2·E(‖∇D‖−c)² for gp/dragan)')
    gp_center: float = _f(1.0, 'gradient-norm target c of gp/dragan (gp0 forces 0)')
    reg_every: int = _f(1, 'lazy R1/R2: apply every k D steps with weight k·γ (1: every step)')
    l2: float = _f(1e-4, 'L2 on D (reg "l2"): l2/2·‖ψ‖² added to D\'s loss')
    noise_sigma: float = _f(0.1, 'instance noise (reg "noise"): initial σ, added to D\'s inputs')
    noise_anneal_steps: int = _f(0, 'σ decays linearly to 0 over this many steps (0: constant σ)')
    # --- optimisation
    lr_d: float = _f(2e-4, 'discriminator learning rate (Adam)')
    lr_g: float = _f(2e-4, 'generator learning rate (Adam)')
    beta1: float = _f(0.5, 'Adam β₁ (DCGAN)')
    beta2: float = _f(0.999, 'Adam β₂')
    batch_size: int = _f(128, 'global batch (split over processes under torchrun)')
    epochs: int = _f(100, 'training length in epochs of steps (steps_per_epoch = len(data) // batch)')
    max_steps: int | None = _f(None, "training length in steps, counted from the run's start (overrides epochs)")
    # --- generator EMA
    ema: float = _f(0.0, "EMA decay β of G's weights (0: off); samples and metrics use the EMA")
    ema_start: int = _f(0, 'steps before the EMA starts (it copies G until then)')
    ema_bn: str = _f("recompute", 'EMA batch-norm statistics: recompute (from EMA weights) | copy (from G)')
    # --- controller
    controller: str = _f("none", "the controller that drives the run: any of `gcann controllers` (none, gcann, "
                                 "gcann-reactive, gcann-proactive, gcann-skip, gcann-div, ttur, gap, clc, ada)")
    controller_set: dict = field(default_factory=dict, metadata={
        "help": 'the controller\'s settings (e.g. {"ratio": 4} for ttur; `gcann controllers` lists them)'})
    gcann_preset: str = _f("paper-celeba", "gcann.presets name: the paper's controller values (gcann and its ablations)")
    gcann: dict = field(default_factory=dict, metadata={"help": 'GCANNConfig overrides (e.g. {"p": 3}) for gcann and its '
                                                               'ablations; lr_d/lr_g come from above'})
    controller_lag: int = _f(0, 'steps between the losses observed and the step they govern (0: auto, see docs)')
    diversity_metric: str = _f("l2", 'diversity loss distance: l2 (pixel/voxel) | cosine')
    # --- run
    seed: int = _f(0, 'the seed of every random stream of the run')
    device: str = _f("auto", 'auto | cpu | cuda | cuda:N')
    precision: str = _f("auto", 'auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16')
    channels_last: bool = _f(True, 'channels-last memory format on CUDA')
    compile: bool = _f(False, 'torch.compile the networks')
    compile_mode: str = _f("default", 'torch.compile mode (with compile): default, reduce-overhead, max-autotune')
    cuda_graph: str = _f("off", 'off | on (CUDA: each 1-D-1-G step replayed as a CUDA graph) | eager')
    log_every: int = _f(10, 'metrics.jsonl / TensorBoard row every this many steps')
    sample_every: int = _f(500, 'sample grid / voxel render and loss curves every this many steps')
    ckpt_every: int = _f(1000, 'checkpoint every this many steps (and at the end)')
    keep_checkpoints: int = _f(3, 'checkpoints kept (older ones deleted)')
    eval_every: int = _f(0, 'metrics every this many steps (0: only at the end if metrics are set)')
    metrics: tuple[str, ...] = _f((), 'gcann.metrics names computed at evaluations')
    eval_samples: int = _f(2048, 'generated samples per evaluation')
    num_samples: int = _f(64, 'samples in each grid / render')
    progress_seconds: float = _f(30.0, "without a terminal (piped, nohup, Slurm): a progress line on stderr "
                                       "every this many seconds (step, rate, ETA, losses); 0: every step")
    # --- nonsense losses (finite but meaningless; NaN/Inf always stop the run)
    nonsense_bound: float = _f(1e4, "a logged loss with |loss| above this bound is nonsense")
    nonsense_steps: int = _f(5, "nonsense losses at this many consecutive logged steps flag (or stop) the run")
    on_nonsense: str = _f("flag", "flag (status.json flags and a line on stderr; the run goes on) | stop "
                                  "(stopped like a diverged run, exit status 3)")
    preset: str | None = _f(None, 'the preset this config came from (informational)')

    # ------------------------------------------------------------------ helpers
    def to_dict(self) -> dict[str, Any]:
        """The fields, plus what this machine resolves: ``num_workers_chosen`` and ``num_workers_how``
        ("user" when ``num_workers`` is set, else "auto")."""
        d = asdict(self)
        d["reg"] = list(self.reg)
        d["metrics"] = list(self.metrics)
        d["num_workers_chosen"], d["num_workers_how"] = self.workers()
        return d

    def build_data(self, data_root: str | None = None):
        """The run's data set as training reads it (images at the run's channels), from ``data_root`` or the
        config's: the one definition that training, ``gcann eval`` and the verdict's data check share."""
        from gcann.data import build_dataset

        options = {"channels": self.channels} if self.kind == "image" else {}
        return build_dataset(self.dataset, data_root or self.data_root, resolution=self.resolution, **options)

    def workers(self) -> tuple[int, str]:
        """The data-loader workers of this run here, and how they were chosen: ``"user"`` or ``"auto"``."""
        if self.num_workers is not None:
            return self.num_workers, "user"
        return auto_workers(), "auto"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = {k: v for k, v in d.items() if k not in DERIVED_KEYS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**d).validated()

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes).validated()

    @property
    def kind(self) -> str:
        """``"image"`` or ``"voxel"``."""
        return "voxel" if self.arch == "voxel" else "image"

    @property
    def penalties(self) -> tuple[str, ...]:
        """The gradient penalties among ``reg`` (``gp0`` is ``gp`` with c = 0)."""
        return tuple("gp" if r == "gp0" else r for r in self.reg if r in (*PENALTY_NAMES, "gp0"))

    def validated(self) -> "TrainConfig":
        """Normalise list fields to tuples and check every value; returns ``self``."""
        self.reg = _names(self.reg, "reg")
        self.metrics = _names(self.metrics, "metrics")
        from dynamics.objectives import GAN_LOSSES

        _choice("loss", self.loss, tuple(GAN_LOSSES))
        if self.loss == "gan_qp":
            raise ConfigError("loss 'gan_qp' needs pairs of samples and is only in the Dirac testbed; "
                              "choose gan, nsgan, wgan, lsgan, alpha_sat, alpha_ns or hinge")
        bad = [r for r in self.reg if r not in REG_NAMES]
        if bad:
            raise ConfigError(f"unknown regulariser(s) {', '.join(bad)}; choose from {', '.join(REG_NAMES)}")
        if "gp" in self.reg and "gp0" in self.reg:
            raise ConfigError("reg lists both gp and gp0; choose one gradient-norm target")
        _choice("arch", self.arch, ("dcgan", "voxel"))
        _choice("norm_g", self.norm_g, ("batch", "none"))
        _choice("norm_d", self.norm_d, ("batch", "layer", "none"))
        _choice("ema_bn", self.ema_bn, ("recompute", "copy"))
        _choice("controller", self.controller, tuple(CONTROLLERS))
        _choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("compile_mode", self.compile_mode, COMPILE_MODES)
        if self.compile_mode != "default" and not self.compile:
            raise ConfigError(f"compile_mode={self.compile_mode!r} applies to compiled networks; "
                              "add compile=True (--compile)")
        _choice("cuda_graph", self.cuda_graph, GRAPH_MODES)
        if self.cuda_graph != "off":
            if self.compile:
                raise ConfigError("cuda_graph captures the eager networks' step; it does not combine with compile "
                                  "(compile_mode=reduce-overhead is torch.compile's own CUDA graphs)")
            drawn = [r for r in self.reg if r in ("gp", "gp0")] + (["noise"] if "noise" in self.reg and
                                                                     self.noise_sigma > 0 else [])
            if drawn:
                raise ConfigError(f"cuda_graph: the regulariser(s) {', '.join(drawn)} draw random numbers inside "
                                  "the step, which a captured graph would replay unchanged; use cuda_graph=off")
        _choice("diversity_metric", self.diversity_metric, ("l2", "cosine"))
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        for name in ("resolution", "channels", "nz", "width_g", "width_d", "batch_size", "epochs", "reg_every",
                     "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "eval_samples", "num_samples"):
            _int_at_least(name, getattr(self, name), 1)
        if self.num_workers is not None:
            _int_at_least("num_workers", self.num_workers, 0)
        _int_at_least("nonsense_steps", self.nonsense_steps, 1)
        _real("nonsense_bound", self.nonsense_bound, lo=0.0, strict=True)
        _real("progress_seconds", self.progress_seconds, lo=0.0)
        _choice("on_nonsense", self.on_nonsense, ("flag", "stop"))
        for name in ("noise_anneal_steps", "ema_start", "eval_every", "controller_lag", "seed"):
            _int_at_least(name, getattr(self, name), 0)
        if self.max_steps is not None:
            _int_at_least("max_steps", self.max_steps, 1)
        for name in ("lr_d", "lr_g", "alpha_d", "alpha_g"):
            _real(name, getattr(self, name), lo=0.0, strict=True)
        for name in ("gamma", "gp_center", "l2", "noise_sigma", "alpha_clamp"):
            _real(name, getattr(self, name), lo=0.0)
        if self.alpha_clamp >= 0.5:
            raise ConfigError(f"alpha_clamp must be in [0, 0.5) (0: exact; the authors' code: 1e-7), "
                              f"got {self.alpha_clamp!r}")
        for name in ("lsgan_a", "lsgan_b", "lsgan_c"):
            _real(name, getattr(self, name))
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            _real(name, v, lo=0.0)
            if v >= 1:
                raise ConfigError(f"{name} must be in [0, 1), got {v!r}")
        v = self.ema
        _real("ema", v, lo=0.0)
        if v >= 1:
            raise ConfigError(f"ema must be in [0, 1) (0 turns it off), got {v!r}")
        if self.num_samples < 2:
            raise ConfigError(f"num_samples must be >= 2, got {self.num_samples}")
        if not isinstance(self.gcann, dict):
            raise ConfigError(f"gcann must be a dict of GCANNConfig overrides, got {self.gcann!r}")
        if not isinstance(self.controller_set, dict):
            raise ConfigError(f"controller_set must be a dict of the controller's settings, got {self.controller_set!r}")
        if self.kind == "voxel" and self.channels != 1:
            raise ConfigError(f"voxel grids have one channel; got channels={self.channels}")
        from gcann.models import ARCHITECTURES

        sizes = ARCHITECTURES[self.arch][1]
        if self.resolution not in sizes:
            raise ConfigError(f"the {self.arch} networks are built for resolution {', '.join(map(str, sizes))}; "
                              f"got resolution={self.resolution}")
        if self.metrics:   # now, not at the first evaluation hours into the run
            from gcann.metrics import check_metrics

            try:
                check_metrics(self.metrics, self.kind, self.eval_samples)
            except GcannError as e:
                raise ConfigError(f"metrics: {str(e).replace('num_samples=', 'eval_samples=')}") from None
        return self


def _names(v: Any, name: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",")]
    if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
        raise ConfigError(f"{name} must be a comma-separated list of names, got {v!r}")
    if any(s == "" for s in v):
        raise ConfigError(f"{name} has an empty item: {','.join(v)!r}")
    if len(set(v)) != len(v):
        raise ConfigError(f"{name} lists a name twice: {','.join(v)!r}")
    return tuple(s for s in v if s != "none")


#: ``cuda_graph``: off, on (captured on CUDA, gcann.train.graphs), eager (the same step uncaptured, any device)
GRAPH_MODES = ("off", "on", "eager")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _choice(name: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {v!r}")


def _int_at_least(name: str, v: Any, low: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")


def _real(name: str, v: Any, lo: float | None = None, strict: bool = False) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {lo:g}, got {v!r}")
