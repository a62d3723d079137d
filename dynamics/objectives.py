"""GAN objectives, written once.

An objective is a pair of losses that both players *minimise*:

* the discriminator minimises ``loss_d`` over its parameters ψ,
* the generator minimises ``loss_g`` over its parameters θ.

Everything here works on discriminator *logits* (``D(x)``, the logit of "x is
real") and on samples with a leading batch dimension, so the same definitions
serve the Dirac-GAN simulator (one row per game) and an image trainer (one row
per sample, reduced by the caller).  Gradient penalties take ``∇ₓD`` from
autograd, never from a closed form.

Conventions
-----------
* ``D`` returns one logit per row; ``σ(D(x))`` is the probability that x is real.
* Penalty weights follow Mescheder et al. (2018): ``γ/2 · E‖∇ₓD‖²`` for R1/R2,
  ``γ/2 · E(‖∇ₓD‖ − c)²`` for WGAN-GP and DRAGAN.  (Su's ``λ(‖φ‖ − c)²`` is
  ``γ = 2λ``.)
* Hyper-parameters arrive in a dict ``hp`` of floats or tensors; a tensor of
  shape ``(B,)`` gives one value per row (a grid over hyper-parameters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from gcann.errors import GcannError

Tensor = torch.Tensor
HP = Mapping[str, "float | Tensor"]


class ObjectiveError(GcannError, ValueError):
    """A user mistake in choosing or parameterising an objective; the CLI prints it as one line."""


# --------------------------------------------------------------------------- #
# Elementwise GAN losses on logits
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class GANLoss:
    """A GAN loss on logits: ``d(real, fake, ctx) -> loss_D``, ``g(fake, ctx) -> loss_G``.

    Both are elementwise (one value per row); ``ctx`` carries the samples and the
    hyper-parameters for losses that need them (GAN-QP uses ‖x_f − x_r‖).
    ``separable``: ``d`` is a sum of a term in the real logit and a term in the
    fake logit (expectations over independent noise then factorise).
    """

    name: str
    d: Callable[[Tensor, Tensor, "Context"], Tensor]
    g: Callable[[Tensor, "Context"], Tensor]
    params: tuple[str, ...] = ()
    separable: bool = True


@dataclass
class Context:
    x_real: Tensor
    x_fake: Tensor
    hp: HP


def _hp(ctx_or_hp, name: str):
    hp = ctx_or_hp.hp if isinstance(ctx_or_hp, Context) else ctx_or_hp
    return hp[name]


def _alpha_loss_real(t: Tensor, alpha) -> Tensor:
    """α-loss ℓ_α(1, σ(t)) = α/(α−1)·(1 − σ(t)^{(α−1)/α}); α→1 gives −log σ(t)."""
    # a number becomes a tensor by a fill on t's device, not a host-to-device copy (a CUDA graph captures a fill)
    alpha = alpha.to(dtype=t.dtype, device=t.device) if isinstance(alpha, Tensor) else t.new_full((), float(alpha))
    log_p = F.logsigmoid(t)
    k = (alpha - 1.0) / alpha
    # α/(α−1)·(1 − exp(k log p)) = −log p · (−expm1(k log p))/(k log p); the ratio → 1 as k → 0
    near_one = (alpha - 1.0).abs() < 1e-6
    safe_k = torch.where(near_one, torch.ones_like(k), k)
    general = -torch.expm1(safe_k * log_p) / safe_k
    return torch.where(near_one, -log_p, general)


def _alpha_loss_fake(t: Tensor, alpha) -> Tensor:
    """α-loss ℓ_α(0, σ(t)) = ℓ_α(1, σ(−t))."""
    return _alpha_loss_real(-t, alpha)


def _alpha_loss_clamped(t: Tensor, alpha, label: int, eps: float) -> Tensor:
    """α-loss ℓ_α(label, σ(t)) computed as the (α_D, α_G)-GAN authors' code computes it (``gan.py``'s
    ``AlphaLoss`` in SankarLab/AlphaGan-Papers-Results): ``p = σ(t)`` first, in the working precision;
    for α ≠ 1, ``p`` clamped to ``[eps, 1 − eps]`` and ``A(1 − p^{1/A})`` (label 1) or
    ``A(1 − (1 − p)^{1/A})`` (label 0), ``A = α/(α−1)``; for α = 1, PyTorch's binary cross-entropy on
    ``p``, whose log is clamped at −100. Values and gradients are those of that code: past |t| ≈ 16
    (float32) a clamped sample gives no gradient, and in float32 ``σ(17)`` rounds to 1, so a fake at
    logit 17 costs 100 at α = 1."""
    p = torch.sigmoid(t)
    if not isinstance(alpha, Tensor):   # one α: the code's very operations, with Python floats A and 1/A
        alpha = float(alpha)
        if abs(alpha - 1.0) < 1e-6:
            return F.binary_cross_entropy(p, torch.full_like(p, float(label)), reduction="none")
        big_a = alpha / (alpha - 1.0)
        q = torch.clamp(p, eps, 1.0 - eps)
        return big_a * (1.0 - q ** (1.0 / big_a)) if label == 1 else big_a + (-big_a) * (1.0 - q) ** (1.0 / big_a)
    # one α per row: A and 1/A in double precision from α, then rounded to t's precision
    alpha = alpha.to(dtype=torch.float64, device=t.device)
    near_one = (alpha - 1.0).abs() < 1e-6
    big_a = torch.where(near_one, torch.ones_like(alpha), alpha / (alpha - 1.0))   # A; any value at α = 1
    inv_a, big_a = (1.0 / big_a).to(t.dtype), big_a.to(t.dtype)
    q = torch.clamp(p, eps, 1.0 - eps)
    # label 1: A·(1 − q^{1/A}); label 0: A + (−A)·(1 − q)^{1/A} (the code's real and fake terms, summed)
    general = big_a * (1.0 - q ** inv_a) if label == 1 else big_a + (-big_a) * (1.0 - q) ** inv_a
    bce = F.binary_cross_entropy(p, torch.full_like(p, float(label)), reduction="none")
    return torch.where(near_one, bce, general)


def _clamp_of(ctx: "Context") -> float:
    """The α-losses' optional ``clamp`` hyper-parameter: 0 (exact, the default) or the clamp of σ."""
    c = ctx.hp.get("clamp", 0.0)
    c = float(c) if not isinstance(c, Tensor) or c.numel() == 1 else c
    if not isinstance(c, float) or not (0.0 <= c < 0.5):
        raise ObjectiveError(f"clamp must be one number in [0, 0.5), got {c!r}")
    return c


def _alpha_real(t: Tensor, ctx: "Context", name: str) -> Tensor:
    """ℓ_α(1, σ(t)) with α = ``hp[name]``: exact, or the source's clamped form when ``hp["clamp"] > 0``."""
    eps = _clamp_of(ctx)
    return _alpha_loss_real(t, _hp(ctx, name)) if eps == 0 else _alpha_loss_clamped(t, _hp(ctx, name), 1, eps)


def _alpha_fake(t: Tensor, ctx: "Context", name: str) -> Tensor:
    """ℓ_α(0, σ(t)) with α = ``hp[name]``: exact, or the source's clamped form when ``hp["clamp"] > 0``."""
    eps = _clamp_of(ctx)
    return _alpha_loss_fake(t, _hp(ctx, name)) if eps == 0 else _alpha_loss_clamped(t, _hp(ctx, name), 0, eps)


GAN_LOSSES: dict[str, GANLoss] = {
    # Goodfellow et al. (2014), zero-sum ("saturating") form: G maximises D's loss on fakes.
    "gan": GANLoss(
        "gan",
        d=lambda r, f, ctx: F.softplus(-r) + F.softplus(f),
        g=lambda f, ctx: -F.softplus(f),
    ),
    # Non-saturating generator: G minimises −log σ(D(G(z))).
    "nsgan": GANLoss(
        "nsgan",
        d=lambda r, f, ctx: F.softplus(-r) + F.softplus(f),
        g=lambda f, ctx: F.softplus(-f),
    ),
    # Wasserstein critic loss (the Lipschitz constraint is added separately).
    "wgan": GANLoss("wgan", d=lambda r, f, ctx: f - r, g=lambda f, ctx: -f),
    # Least squares GAN with coding (a, b, c): D pushes fakes to a, reals to b; G pushes fakes to c.
    "lsgan": GANLoss(
        "lsgan",
        d=lambda r, f, ctx: 0.5 * (r - _hp(ctx, "b")) ** 2 + 0.5 * (f - _hp(ctx, "a")) ** 2,
        g=lambda f, ctx: 0.5 * (f - _hp(ctx, "c")) ** 2,
        params=("a", "b", "c"),
    ),
    # (α_D, α_G)-GAN (Welfert et al.), saturating: G maximises ℓ_{α_G}(0, D(G(z))). Optional hp "clamp":
    # 0 (default) exact; > 0 the authors' code's clamped σ and BCE (see _alpha_loss_clamped).
    "alpha_sat": GANLoss(
        "alpha_sat",
        d=lambda r, f, ctx: _alpha_real(r, ctx, "alpha_d") + _alpha_fake(f, ctx, "alpha_d"),
        g=lambda f, ctx: -_alpha_fake(f, ctx, "alpha_g"),
        params=("alpha_d", "alpha_g"),
    ),
    # (α_D, α_G)-GAN, non-saturating: G minimises ℓ_{α_G}(1, D(G(z))). Optional hp "clamp" as above.
    "alpha_ns": GANLoss(
        "alpha_ns",
        d=lambda r, f, ctx: _alpha_real(r, ctx, "alpha_d") + _alpha_fake(f, ctx, "alpha_d"),
        g=lambda f, ctx: _alpha_real(f, ctx, "alpha_g"),
        params=("alpha_d", "alpha_g"),
    ),
    # Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 − D(x_r)) + relu(1 + D(x_f)),
    # G minimises −D(x_f).
    "hinge": GANLoss("hinge", d=lambda r, f, ctx: F.relu(1.0 - r) + F.relu(1.0 + f), g=lambda f, ctx: -f),
    # GAN-QP (Su 2018): quadratic difference penalty in place of a Lipschitz constraint.
    "gan_qp": GANLoss(
        "gan_qp",
        d=lambda r, f, ctx: _gan_qp_d(r, f, ctx),
        g=lambda f, ctx: -f,
        params=("lam",),
        separable=False,
    ),
}


def _gan_qp_d(r: Tensor, f: Tensor, ctx: Context) -> Tensor:
    diff = f - r
    # one squared distance per logit, in the logits' own shape ((B,) or (B, 1)): never (B, B)
    sq = (ctx.x_fake - ctx.x_real).flatten(1).pow(2).sum(dim=1).reshape(diff.shape)
    # (D_f − D_r)² / (2λ‖x_f − x_r‖) → 0 as x_f → x_r for a Lipschitz D.  Where x_f = x_r
    # the term is 0; the inner `where` keeps autograd away from 0/0 there.
    zero = sq == 0
    dist = torch.where(zero, torch.ones_like(sq), sq).sqrt()
    quad = diff**2 / (2.0 * _hp(ctx, "lam") * dist)
    return diff + torch.where(zero, torch.zeros_like(quad), quad)


# --------------------------------------------------------------------------- #
# Discriminator regularisers (added to loss_d only)
# --------------------------------------------------------------------------- #
def logits_of(out: Tensor, x: Tensor) -> Tensor:
    """The discriminator's output on the batch ``x`` as one logit per sample, shape ``(B,)``.

    Discriminators return ``(B,)`` or ``(B, 1)``; anything else is refused (a ``(B, 1)``
    logit broadcast against a ``(B,)`` term would silently give ``(B, B)`` losses).
    """
    B = x.shape[0]
    if out.shape == (B, 1):
        return out.reshape(B)
    if out.shape != (B,):
        raise ObjectiveError(f"the discriminator must return one logit per sample, shape ({B},) or ({B}, 1); "
                             f"got {tuple(out.shape)} for a batch of {B}")
    return out


def input_grad(D: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(D(x), ∇ₓD(x))`` with a graph, so penalties can be differentiated again.

    ``D(x)`` comes back with shape ``(B,)`` (see :func:`logits_of`).
    """
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    out = logits_of(D(x), x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return out, g


def _sqnorm(g: Tensor) -> Tensor:
    return g.flatten(1).pow(2).sum(dim=1)


def _norm(g: Tensor) -> Tensor:
    return _sqnorm(g).sqrt()


@dataclass(frozen=True)
class Penalty:
    """A discriminator regulariser ``fn(D, x_real, x_fake, x_interp, hp) -> per-row penalty``."""

    name: str
    fn: Callable[..., Tensor]
    params: tuple[str, ...]


def _r1(D, xr, xf, xi, hp):
    return 0.5 * hp["gamma"] * _sqnorm(input_grad(D, xr)[1])


def _r2(D, xr, xf, xi, hp):
    return 0.5 * hp["gamma"] * _sqnorm(input_grad(D, xf)[1])


def _one_centred(x_key: str):
    def fn(D, xr, xf, xi, hp):
        x = {"real": xr, "interp": xi}[x_key]
        return 0.5 * hp["gamma"] * (_norm(input_grad(D, x)[1]) - hp["c"]) ** 2

    return fn


def _roth(D, xr, xf, xi, hp):
    dr, gr = input_grad(D, xr)
    df, gf = input_grad(D, xf)
    return 0.5 * hp["gamma"] * ((1 - torch.sigmoid(dr)) ** 2 * _sqnorm(gr) + torch.sigmoid(df) ** 2 * _sqnorm(gf))


PENALTIES: dict[str, Penalty] = {
    "r1": Penalty("r1", _r1, ("gamma",)),  # Mescheder et al. (2018), on real data
    "r2": Penalty("r2", _r2, ("gamma",)),  # Mescheder et al. (2018), on fake data
    "gp": Penalty("gp", _one_centred("interp"), ("gamma", "c")),  # Gulrajani et al. (2017), target c
    "dragan": Penalty("dragan", _one_centred("real"), ("gamma", "c")),  # Kodali et al. (2017), near real data
    "roth": Penalty("roth", _roth, ("gamma",)),  # Roth et al. (2017), weighted real + fake
}


def logit_losses(loss: str, penalties: tuple[str, ...], D: Callable[[Tensor], Tensor], x_real: Tensor,
                 x_fake: Tensor, hp: HP, x_interp: Tensor | None = None,
                 base: Callable | None = None) -> tuple[Tensor, Tensor]:
    """Per-sample ``(loss_d, loss_g)`` of a GAN loss plus discriminator penalties.

    The one composition used everywhere: the Dirac-GAN (one row per game) and an image
    trainer (one row per sample; reduce with ``.mean()``).  ``D`` maps a batch of
    samples to logits; ``x_interp`` are the points of the WGAN-GP penalty (random
    interpolates for images; the caller chooses).  ``base`` optionally replaces the
    plain evaluation of the loss on ``(D(x_real), D(x_fake))`` (exact instance-noise
    expectations do this) and returns ``(loss_d, loss_g)`` itself.
    """
    if loss not in GAN_LOSSES:
        raise ObjectiveError(f"unknown loss {loss!r}; choose from {sorted(GAN_LOSSES)}")
    spec = GAN_LOSSES[loss]
    for p in penalties:
        if p not in PENALTIES:
            raise ObjectiveError(f"unknown penalty {p!r}; choose from {sorted(PENALTIES)}")
    needed = list(dict.fromkeys([*spec.params, *(k for p in penalties for k in PENALTIES[p].params)]))
    missing = [k for k in needed if k not in hp]
    if missing:
        raise ObjectiveError(f"loss {loss!r} with penalties {list(penalties)} needs hyper-parameter(s) {missing} in hp")
    if x_interp is None and "gp" in penalties:
        raise ObjectiveError("the WGAN-GP penalty needs x_interp (points between real and fake samples)")
    if base is not None:
        ld, lg = base(spec)
    else:
        ctx = Context(x_real, x_fake, hp)
        d_fake = logits_of(D(x_fake), x_fake)
        ld, lg = spec.d(logits_of(D(x_real), x_real), d_fake, ctx), spec.g(d_fake, ctx)
    for p in penalties:
        ld = ld + PENALTIES[p].fn(D, x_real, x_fake, x_interp, hp)
    return ld, lg


# --------------------------------------------------------------------------- #
# The objective: a loss, regularisers and modifiers, composed
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Objective:
    """A GAN objective: a base loss plus composable modifiers.

    loss        name of a :data:`GAN_LOSSES` entry
    penalties   names of :data:`PENALTIES` entries, added to the discriminator loss
    critic      ``"linear"`` (D(x)=ψ·x) or ``"normalised"`` (D(x)=ψ·x/‖ψ‖, a 1-Lipschitz critic)
    clip        clip the discriminator parameters to [-clip, clip] after each update (WGAN)
    l2          weight decay on the discriminator parameters: ``l2/2·‖ψ‖²`` added to loss_d
    noise       instance noise: N(0, σ²I) added to real and fake samples, exact expectation
    conopt      consensus optimisation: both players add ``γ_c/2·‖v‖²``
    defaults    hyper-parameter defaults (overridden by the ``hp`` passed at evaluation)
    custom      optional user pair ``(loss_d_fn, loss_g_fn)`` of functions ``(theta, psi, hp) -> (B,)``
                replacing the logit-level construction
    """

    loss: str = "gan"
    penalties: tuple[str, ...] = ()
    critic: str = "linear"
    clip: bool = False
    l2: bool = False
    noise: bool = False
    conopt: bool = False
    defaults: Mapping[str, float] = field(default_factory=dict)
    custom: tuple[Callable, Callable] | None = None
    name: str = ""

    def __post_init__(self):
        if self.custom is None and self.loss not in GAN_LOSSES:
            raise ObjectiveError(f"unknown loss {self.loss!r}; choose from {sorted(GAN_LOSSES)}")
        for p in self.penalties:
            if p not in PENALTIES:
                raise ObjectiveError(f"unknown penalty {p!r}; choose from {sorted(PENALTIES)}")
        if self.critic not in ("linear", "normalised"):
            raise ObjectiveError(f"unknown critic {self.critic!r}; choose 'linear' or 'normalised'")
        missing = [k for k in self.param_names if k not in self.defaults]
        if missing:
            raise ObjectiveError(f"objective {self.name or self.loss!r} needs defaults for {missing}")
        check_hp(self.defaults, self._nonneg)

    @property
    def _nonneg(self) -> tuple[str, ...]:
        # a gradient-norm target c must be >= 0; LSGAN's target c may be any real
        return ("c",) if {"gp", "dragan"} & set(self.penalties) else ()

    @property
    def param_names(self) -> tuple[str, ...]:
        names: list[str] = []
        if self.custom is None:
            names += GAN_LOSSES[self.loss].params
        else:
            names += list(self.defaults)
        for p in self.penalties:
            names += PENALTIES[p].params
        if self.clip:
            names.append("clip")
        if self.l2:
            names.append("l2")
        if self.noise:
            names.append("sigma")
        if self.conopt:
            names.append("conopt_gamma")
        return tuple(dict.fromkeys(names))

    @property
    def smooth(self) -> bool:
        """False where the construction is known not to be differentiable at the equilibrium."""
        return self.critic == "linear"

    def with_(self, **changes) -> "Objective":
        """A copy with fields changed; ``defaults`` are merged, not replaced."""
        if "defaults" in changes:
            changes["defaults"] = {**self.defaults, **changes["defaults"]}
        return replace(self, **changes)

    def resolve(self, hp: HP | None = None) -> dict:
        """Defaults overlaid with ``hp``; unknown names are an error."""
        hp = dict(hp or {})
        unknown = sorted(set(hp) - set(self.param_names))
        if unknown:
            raise ObjectiveError(
                f"objective {self.name or self.loss!r} has no hyper-parameter(s) {unknown}; "
                f"it takes {list(self.param_names)}"
            )
        check_hp(hp, self._nonneg)
        return {**self.defaults, **hp}


# Valid ranges: a one-line error naming the parameter, never a silent wrong answer.
_NONNEG = ("gamma", "sigma", "l2", "conopt_gamma")
_POSITIVE = ("lam", "alpha_d", "alpha_g", "clip")


def check_hp(hp: Mapping[str, object], nonneg: tuple[str, ...] = ()) -> None:
    for k, v in hp.items():
        t = torch.as_tensor(v, dtype=torch.float64)
        if not bool(torch.isfinite(t).all()):
            raise ObjectiveError(f"{k} must be finite, got {v!r}")
        if (k in _NONNEG or k in nonneg) and bool((t < 0).any()):
            raise ObjectiveError(f"{k} must be >= 0, got {_show(t)}")
        if k in _POSITIVE and bool((t <= 0).any()):
            raise ObjectiveError(f"{k} must be > 0, got {_show(t)}")


def _show(t: Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"min {t.min().item():g}"


# --------------------------------------------------------------------------- #
# The built-in methods (names used by the CLI and the tables)
# --------------------------------------------------------------------------- #
def _m(**kw) -> Objective:
    return Objective(**kw)


METHODS: dict[str, Callable[[], Objective]] = {
    "gan": lambda: _m(name="gan", loss="gan"),
    "nsgan": lambda: _m(name="nsgan", loss="nsgan"),
    "wgan": lambda: _m(name="wgan", loss="wgan", clip=True, defaults={"clip": 1.0}),
    "wgan_norm": lambda: _m(name="wgan_norm", loss="wgan", critic="normalised"),
    "wgan_gp": lambda: _m(name="wgan_gp", loss="wgan", penalties=("gp",), defaults={"gamma": 1.0, "c": 1.0}),
    "dragan": lambda: _m(name="dragan", loss="gan", penalties=("dragan",), defaults={"gamma": 1.0, "c": 1.0}),
    "r1": lambda: _m(name="r1", loss="gan", penalties=("r1",), defaults={"gamma": 1.0}),
    "r2": lambda: _m(name="r2", loss="gan", penalties=("r2",), defaults={"gamma": 1.0}),
    "roth": lambda: _m(name="roth", loss="gan", penalties=("roth",), defaults={"gamma": 1.0}),
    "gan_qp": lambda: _m(name="gan_qp", loss="gan_qp", defaults={"lam": 1.0}),
    "lsgan": lambda: _m(name="lsgan", loss="lsgan", defaults={"a": 0.0, "b": 1.0, "c": 1.0}),
    "alpha": lambda: _m(name="alpha", loss="alpha_ns", defaults={"alpha_d": 1.0, "alpha_g": 1.0}),
    "alpha_sat": lambda: _m(name="alpha_sat", loss="alpha_sat", defaults={"alpha_d": 1.0, "alpha_g": 1.0}),
    "instance_noise": lambda: _m(name="instance_noise", loss="gan", noise=True, defaults={"sigma": 1.0}),
    "conopt": lambda: _m(name="conopt", loss="gan", conopt=True, defaults={"conopt_gamma": 1.0}),
}

# Methods whose analysis needs θ ∈ ℝ² at least (Su Jianlin 2019, the Dirac-GAN note): their default dimension.
DEFAULT_DIM = {"wgan_norm": 2, "gan_qp": 2}


def get_objective(method: str, *, l2: float | None = None, base: str | None = None, **defaults) -> Objective:
    """The built-in objective ``method`` with hyper-parameter defaults overridden.

    ``l2`` adds weight decay on the discriminator to any method; ``base`` swaps the
    GAN loss under a regulariser (e.g. ``base="nsgan"`` for R1 on the non-saturating loss).
    """
    if method not in METHODS:
        raise ObjectiveError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    obj = METHODS[method]()
    if base is not None:
        if base not in GAN_LOSSES:
            raise ObjectiveError(f"unknown base loss {base!r}; choose from {sorted(GAN_LOSSES)}")
        obj = obj.with_(loss=base, defaults={k: v for k, v in _BASE_DEFAULTS.items() if k in GAN_LOSSES[base].params})
    if l2 is not None:
        obj = obj.with_(l2=True, defaults={"l2": l2})
    unknown = sorted(set(defaults) - set(obj.param_names))
    if unknown:
        raise ObjectiveError(f"method {method!r} has no parameter(s) {unknown}; it takes {list(obj.param_names)}")
    return obj.with_(defaults=defaults) if defaults else obj


_BASE_DEFAULTS = {"a": 0.0, "b": 1.0, "c": 1.0, "alpha_d": 1.0, "alpha_g": 1.0, "lam": 1.0}


def custom_objective(loss_d: Callable, loss_g: Callable, name: str = "custom", **defaults) -> Objective:
    """Wrap a user pair of losses ``f(theta, psi, hp) -> (B,)``, both minimised.

    The vector field, Jacobian, spectra and simulators all work on it unchanged.
    """
    obj = Objective(custom=(loss_d, loss_g), name=name)
    return replace(obj, defaults=dict(defaults))


def normal_trapezoid(n: int = 401, width: float = 10.0, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """Nodes z and weights w with Σ w f(z) ≈ E[f(Z)], Z ~ N(0, 1): the trapezoid rule on
    [−width, width].  For integrands analytic in a strip of half-width a (a sigmoid of
    s·z has a = π/s) the error decays like exp(−2πa/h), h = 2·width/(n − 1): ~1e-15 for
    s ≤ 20 at the defaults, where Gauss–Hermite with 64 nodes is off by 1e-4 at s = 6.

    Computed in Python floats (nodes ``width·(2i − n + 1)/(n − 1)``, exactly symmetric;
    weights normalised by ``math.fsum``), so they do not depend on torch's ``linspace``
    or reduction kernels."""
    if n < 2:
        raise ValueError(f"normal_trapezoid needs n >= 2 nodes, got {n}")
    z = [width * (2 * i - (n - 1)) / (n - 1) for i in range(n)]
    w = [math.exp(-0.5 * x * x) for x in z]
    total = math.fsum(w)
    return torch.tensor(z, dtype=dtype), torch.tensor([x / total for x in w], dtype=dtype)


def fixed_order_sum(x: Tensor) -> Tensor:
    """Σ over the last dimension in one fixed pairwise order, by elementwise additions only.

    ``torch.sum`` adds in an order set by its kernel (vector width, blocking), which may
    change with the torch version or the CPU; an elementwise IEEE addition does not.  The
    columns are zero-padded to a power of two and the two halves added until one is
    left: column j of the first level is ``x[j] + x[j + m/2]``, and so on.  Its gradient
    (slices and additions) is a broadcast with no reduction either.
    """
    n = x.shape[-1]
    m = 1 << max(0, (n - 1).bit_length())
    if m != n:
        x = F.pad(x, (0, m - n))
    while x.shape[-1] > 1:
        h = x.shape[-1] // 2
        x = x[..., :h] + x[..., h:]
    return x[..., 0]


class _Spread(torch.autograd.Function):
    """``v`` (B,) → (B, q), each row repeated; its gradient sums a row with :func:`fixed_order_sum`
    (a broadcast's own gradient would use ``torch.sum``).  Differentiable twice."""

    @staticmethod
    def forward(ctx, v: Tensor, q: int) -> Tensor:
        return v.unsqueeze(-1).repeat(1, q)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return fixed_order_sum(grad), None


def spread(v: Tensor, q: int) -> Tensor:
    """(B,) → (B, q), rows repeated, with a fixed-order gradient (see :func:`fixed_order_sum`)."""
    return _Spread.apply(v, q)


def gauss_hermite(n: int = 48, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """Nodes z and weights w with Σ w f(z) ≈ E[f(Z)], Z ~ N(0, 1)."""
    import numpy as np

    x, w = np.polynomial.hermite.hermgauss(n)
    return torch.tensor(x * math.sqrt(2.0), dtype=dtype), torch.tensor(w / math.sqrt(math.pi), dtype=dtype)
