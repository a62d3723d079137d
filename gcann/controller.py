"""The GCANN training controller: observe the two losses, return a decision.

A plain, stateful, standard-library-only object in the shape of a step-size
controller: each training step the loop calls :meth:`GCANNController.observe`
with that step's discriminator and generator losses and receives a
:class:`Decision` (which network trains, how many extra steps the lagging
network gets, the learning rates to use, whether the diversity loss applies).
It never touches optimizers or tensors; :mod:`gcann.adapter` binds it to torch.

Every mechanism of the GCANN paper (Estal) is implemented under the paper's
names. Where the paper contradicts itself the default reading and the switch
that selects the alternative are documented in ``docs/gcann.md``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Any, Literal

from gcann.errors import GcannError

__all__ = [
    "ControllerError",
    "Decision",
    "Event",
    "GCANNConfig",
    "GCANNController",
    "NonFiniteLossError",
]

SignConvention = Literal["consistent", "literal"]
ProactiveTrigger = Literal["algorithm", "text"]
SlopeRangeMode = Literal["clamp", "trigger"]
SkipRule = Literal["overpowered", "literal"]
OnNonFinite = Literal["raise", "diverged"]
SlopeThreshScaleMode = Literal["adaptive", "constant"]
CooldownUnit = Literal["steps", "windows"]
DiversityScaling = Literal["tanh", "paper"]

#: The switches of GCANN's four mechanisms (all on in the paper; the ablations turn some off). A state
#: saved before they existed was saved with all four on.
MECHANISMS = ("reactive_rule", "proactive_rule", "pause_and_skip", "diversity_loss")

#: A run of windows counts as a *stable region* only if it spans at least this
#: many consecutive windows (the paper's ``stable_region_end_idx >
#: stable_region_start_idx``, i.e. "an extended duration").
MIN_STABLE_WINDOWS = 2

#: An ``slope_thresh_scale`` event is logged each time the adaptive scale has
#: moved by this factor (up or down) since the last such event, so that its
#: per-window drift does not flood the log.
SCALE_LOG_FACTOR = 2.0

D_OVERPOWERING = "d_overpowering"
G_OVERPOWERING = "g_overpowering"

_STATE_VERSION = 2


class ControllerError(GcannError, ValueError):
    """A controller setting or saved state that cannot be used (one line for the user)."""


class NonFiniteLossError(ControllerError):
    """A loss passed to :meth:`GCANNController.observe` was NaN or infinite."""


@dataclass(frozen=True)
class GCANNConfig:
    """Hyper-parameters of the GCANN controller (paper names kept).

    Defaults are the paper's CelebA values where the paper gives them; the
    remaining defaults are ours and are justified in ``docs/gcann.md``.
    Learning-rate bounds left as ``None`` resolve to ``lr * 1e-2`` and
    ``lr * 1e2``. All slopes are per training step, as in the paper's
    ``loss_diff_slope = (loss_diff - prev_loss_diff) / gc_lr_window``.
    """

    lr_d: float = 2e-4                       # initial D learning rate, paper lr_D (CelebA value not given: DCGAN's 2e-4)
    lr_g: float = 2e-4                       # initial G learning rate, paper lr_G (CelebA value not given: DCGAN's 2e-4)
    alpha: float = 0.8                       # D dampening in (0, 1): lr_D *= 1 -/+ alpha, paper α (3DBiCar value)
    beta: float = 0.6                        # G dampening in (0, 1): lr_G *= 1 -/+ beta, paper β (3DBiCar value)
    max_loss_diff: float = 3.0               # loss gap that triggers an adjustment, paper max_loss_diff
    gc_lr_window: int = 100                  # steps per proactive window (moving means, slope), paper gc_lr_window
    cooldown_period: int = 100               # steps (or windows) after an adjustment during which none is made, paper name
    cooldown_unit: CooldownUnit = "steps"    # "steps": the text's iterations; "windows": the pseudo-code's window counter
    baseline_steps: int = 1583               # warm-up steps: observe only (paper baseline_epochs=1; 1 CelebA epoch at batch 128)
    discriminator_pause_threshold: float = 0.025  # D is not trained while L_D <= this, paper discriminator_pause_threshold
    generator_pause_threshold: float = 0.01  # G is not trained while L_G <= this, paper generator_pause_threshold
    discriminator_skip_threshold: float = 0.05  # L_D at which D starts skipping iterations, paper discriminator_skip_threshold
    generator_skip_threshold: float = 0.05   # L_G at which G starts skipping iterations, paper generator_skip_threshold
    p: int = 5                               # base number of skipped / catch-up steps, paper p (no value given)
    skip_iter_scale: float = 1.0             # initial skip ratio: D catch-up = p*scale, G catch-up = p/scale, paper skip_iter_scale
    skip_iter_scale_rate: float = 0.25       # skip_iter_scale *= or /= (1 + rate) per adjustment (paper gives no rate)
    max_skip_iterations: int = 25            # cap on any skip run / catch-up burst, paper max_skip_iterations
    target_slope_range: tuple[float, float] = (-0.1, 0.1)  # desired range of loss_diff_slope, paper target_slope_range
    target_slope_aggressiveness: float = 0.5  # in [0, 1): threshold = (1 - this) * max_stable_slope * scale, paper name
    slope_thresh_scale: float = 1.0          # > 0: multiplier in the slope-threshold update (initial value if adaptive), paper name
    slope_thresh_scale_mode: SlopeThreshScaleMode = "adaptive"  # "adaptive": tuned by the feedback rule below; "constant"
    slope_thresh_scale_target: float = 0.1   # in (0, 1): target fraction of windows whose slope exceeds slope_threshold
    slope_thresh_scale_rate: float = 0.1     # > 0: log(scale) += rate * (exceeded - target) per window
    slope_thresh_scale_range: tuple[float, float] = (0.25, 4.0)  # 0 < low <= high: clip range of the adaptive scale
    slope_threshold: float = 0.01            # initial slope threshold (per step), paper slope_threshold (no value given)
    max_stable_slope: float = 0.0            # initial max slope seen in stable regions (>= 0), paper max_stable_slope
    lr_d_min: float | None = None            # lower bound on lr_D (None: lr_d * 1e-2); the paper has none
    lr_d_max: float | None = None            # upper bound on lr_D (None: lr_d * 1e2); the paper has none
    lr_g_min: float | None = None            # lower bound on lr_G (None: lr_g * 1e-2); the paper has none
    lr_g_max: float | None = None            # upper bound on lr_G (None: lr_g * 1e2); the paper has none
    diversity_weight: float = 1.0            # weight λ of the diversity loss in G's objective, paper diversity_weight
    diversity_check_interval: int = 5        # diversity loss applied every this many steps, paper diversity_check_interval
    topend_diversity_loss: float = 3.0       # upper bound of the scaled diversity loss, paper topend_diversity_loss
    bottomend_diversity_loss: float = 0.001  # lower bound of the scaled diversity loss, paper bottomend_diversity_loss
    diversity_scaling: DiversityScaling = "tanh"  # "tanh": bounded tanh map; "paper": the paper's formula, clamped
    sign_convention: SignConvention = "consistent"   # "consistent": lower loss = overpowering; "literal": text's reactive sign
    reactive_every_step: bool = True         # also apply the text's per-step reactive rule (not only the window rule)
    proactive_trigger: ProactiveTrigger = "algorithm"  # "algorithm": gap or slope; "text": adds the bare d_mean > g_mean clause
    slope_range_mode: SlopeRangeMode = "clamp"  # "clamp": threshold kept in target_slope_range; "trigger": slope outside fires
    skip_rule: SkipRule = "overpowered"      # "overpowered": skip when loss <= skip threshold; "literal": when loss >= it
    on_nonfinite: OnNonFinite = "raise"      # NaN/Inf loss: "raise" NonFiniteLossError, or enter a "diverged" state
    reactive_rule: bool = True               # the reactive rule (gap > max_loss_diff) may adjust rates (ablations: off)
    proactive_rule: bool = True              # the proactive window rule may adjust rates (ablations: off)
    pause_and_skip: bool = True              # the pause and skip thresholds may idle a network (ablations: off)
    diversity_loss: bool = True              # G's loss carries the diversity term every diversity_check_interval steps

    def __post_init__(self) -> None:
        for name, factor, base in (
            ("lr_d_min", 1e-2, self.lr_d),
            ("lr_d_max", 1e2, self.lr_d),
            ("lr_g_min", 1e-2, self.lr_g),
            ("lr_g_max", 1e2, self.lr_g),
        ):
            if getattr(self, name) is None and _is_real(base):
                object.__setattr__(self, name, float(base) * factor)
        for name in ("target_slope_range", "slope_thresh_scale_range"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    @classmethod
    def from_epochs(
        cls, baseline_epochs: int, steps_per_epoch: int, **kwargs: Any
    ) -> GCANNConfig:
        """Build a config whose warm-up is given in epochs, as in the paper."""
        _require(_is_int(baseline_epochs) and baseline_epochs >= 0, "baseline_epochs", baseline_epochs, "an int >= 0")
        _require(_is_int(steps_per_epoch) and steps_per_epoch >= 1, "steps_per_epoch", steps_per_epoch, "an int >= 1")
        return cls(baseline_steps=baseline_epochs * steps_per_epoch, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dictionary of every field."""
        d = asdict(self)
        d["target_slope_range"] = list(self.target_slope_range)
        d["slope_thresh_scale_range"] = list(self.slope_thresh_scale_range)
        return d

    def _validate(self) -> None:
        positive = ("lr_d", "lr_g", "max_loss_diff", "slope_thresh_scale", "skip_iter_scale", "skip_iter_scale_rate",
                    "slope_thresh_scale_rate")
        for name in positive:
            v = getattr(self, name)
            _require(_is_real(v) and v > 0, name, v, "a finite number > 0")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            _require(_is_real(v) and 0 < v < 1, name, v, "in the open interval (0, 1)")
        non_negative = (
            "discriminator_pause_threshold", "generator_pause_threshold",
            "discriminator_skip_threshold", "generator_skip_threshold",
            "max_stable_slope", "diversity_weight", "bottomend_diversity_loss",
        )
        for name in non_negative:
            v = getattr(self, name)
            _require(_is_real(v) and v >= 0, name, v, "a finite number >= 0")
        _require(_is_real(self.slope_threshold), "slope_threshold", self.slope_threshold, "a finite number")
        v = self.target_slope_aggressiveness
        _require(_is_real(v) and 0 <= v < 1, "target_slope_aggressiveness", v, "in [0, 1)")
        for name, low in (("gc_lr_window", 1), ("cooldown_period", 0), ("baseline_steps", 0), ("p", 0),
                          ("max_skip_iterations", 1), ("diversity_check_interval", 1)):
            v = getattr(self, name)
            _require(_is_int(v) and v >= low, name, v, f"an int >= {low}")
        scale, m = self.skip_iter_scale, self.max_skip_iterations
        _require(1 / m <= scale <= m, "skip_iter_scale", scale,
                 f"in [1/max_skip_iterations, max_skip_iterations] = [{1 / m}, {m}]")
        r = self.target_slope_range
        _require(
            isinstance(r, tuple) and len(r) == 2 and all(_is_real(x) for x in r) and r[0] <= r[1],
            "target_slope_range", r, "a pair (low, high) of finite numbers with low <= high",
        )
        v = self.slope_thresh_scale_target
        _require(_is_real(v) and 0 < v < 1, "slope_thresh_scale_target", v, "in the open interval (0, 1)")
        r = self.slope_thresh_scale_range
        _require(
            isinstance(r, tuple) and len(r) == 2 and all(_is_real(x) for x in r) and 0 < r[0] <= r[1],
            "slope_thresh_scale_range", r, "a pair (low, high) of finite numbers with 0 < low <= high",
        )
        if self.slope_thresh_scale_mode == "adaptive":
            _require(r[0] <= self.slope_thresh_scale <= r[1], "slope_thresh_scale", self.slope_thresh_scale,
                     f"in slope_thresh_scale_range = {r} when slope_thresh_scale_mode is 'adaptive'")
        top = self.topend_diversity_loss
        _require(_is_real(top) and top > self.bottomend_diversity_loss,
                 "topend_diversity_loss", top, "a finite number > bottomend_diversity_loss")
        for net in ("d", "g"):
            lr, lo, hi = (getattr(self, f"lr_{net}{suffix}") for suffix in ("", "_min", "_max"))
            _require(_is_real(lo) and 0 < lo <= lr, f"lr_{net}_min", lo, f"a finite number in (0, lr_{net}={lr}]")
            _require(_is_real(hi) and hi >= lr, f"lr_{net}_max", hi, f"a finite number >= lr_{net}={lr}")
        for name, allowed in (
            ("sign_convention", ("consistent", "literal")),
            ("proactive_trigger", ("algorithm", "text")),
            ("slope_range_mode", ("clamp", "trigger")),
            ("skip_rule", ("overpowered", "literal")),
            ("on_nonfinite", ("raise", "diverged")),
            ("slope_thresh_scale_mode", ("adaptive", "constant")),
            ("cooldown_unit", ("steps", "windows")),
            ("diversity_scaling", ("tanh", "paper")),
        ):
            v = getattr(self, name)
            _require(v in allowed, name, v, f"one of {allowed}")
        for name in ("reactive_every_step", *MECHANISMS):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name), "a bool")


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _require(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ControllerError(f"GCANNConfig.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class Event:
    """Something the controller did, for logs (``write_events_jsonl``).

    ``event`` is one of ``"reactive"``, ``"proactive"`` (learning-rate
    adjustments), ``"skip_d"``, ``"skip_g"`` (a skip run starts), ``"pause_d"``,
    ``"pause_g"`` (a pause starts), ``"tie_break"`` (both networks would have
    been idle), ``"slope_threshold"`` (a stable region ended and changed the
    threshold), ``"slope_thresh_scale"`` (the adaptive scale has moved by a
    factor :data:`SCALE_LOG_FACTOR` since its last event) and ``"diverged"``.
    ``reason`` says why, e.g. ``"d_overpowering"``.
    """

    step: int
    event: str
    reason: str
    lr_d_old: float
    lr_d_new: float
    lr_g_old: float
    lr_g_new: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dictionary."""
        detail = {k: list(v) if isinstance(v, list) else v for k, v in self.detail.items()}
        return {
            "step": self.step, "event": self.event, "reason": self.reason,
            "lr_d_old": self.lr_d_old, "lr_d_new": self.lr_d_new,
            "lr_g_old": self.lr_g_old, "lr_g_new": self.lr_g_new, "detail": detail,
        }


@dataclass(frozen=True)
class Decision:
    """What the training loop does at one step."""

    step: int             # index of the step this decision is for (0-based)
    train_d: bool         # train D this step (never both False unless diverged)
    train_g: bool         # train G this step
    extra_d_steps: int    # extra D training steps this step (D lagging: catch-up after an adjustment)
    extra_g_steps: int    # extra G training steps this step
    lr_d: float           # learning rate of D for this step
    lr_g: float           # learning rate of G for this step
    use_diversity: bool   # add the diversity loss to G's objective this step
    events: tuple[Event, ...] = ()  # events raised at this step
    diverged: bool = False  # a non-finite loss was seen (on_nonfinite="diverged"); stop training


class GCANNController:
    """Guided-convergence controller: ``observe(loss_d, loss_g) -> Decision``.

    Per step, after the ``baseline_steps`` warm-up (during which it only
    observes and learns the slope threshold):

    1. *Reactive* rule: if ``|L_D - L_G| > max_loss_diff`` the overpowering
       network's learning rate is multiplied by ``1 - α`` (D) or ``1 - β`` (G)
       and the lagging one's by ``1 + β`` (G) or ``1 + α`` (D); the lagging
       network gets a catch-up burst of extra steps.
    2. Every ``gc_lr_window`` steps, the *proactive* rule compares the window
       means of both losses and the slope of their gap with the adaptive
       ``slope_threshold``.
    3. No adjustment is made within ``cooldown_period`` steps (or windows,
       ``cooldown_unit="windows"``) of the last one.
    4. Pause and skip thresholds keep the overpowered network from training;
       the two networks are never both idle.
    5. Once a stable region has set the threshold, the multiplier
       ``slope_thresh_scale`` is tuned at every window so that a fraction
       ``slope_thresh_scale_target`` of window slopes exceed the threshold
       (``slope_thresh_scale_mode="adaptive"``; ``"constant"`` keeps it fixed).

    Learning rates are clipped into ``[lr_*_min, lr_*_max]``.
    """

    def __init__(self, config: GCANNConfig | None = None, keep_events: bool = True) -> None:
        """``keep_events=False``: events leave only through each :class:`Decision` (the caller logs them);
        :attr:`events`, :meth:`write_events_jsonl` and the saved state then hold none."""
        self.config = config if config is not None else GCANNConfig()
        self.keep_events = keep_events
        c = self.config
        self._step = 0
        self._lr_d = float(c.lr_d)
        self._lr_g = float(c.lr_g)
        self._window_d: list[float] = []
        self._window_g: list[float] = []
        self._prev_loss_diff: float | None = None
        self._slope_threshold = self._clamp_threshold(float(c.slope_threshold))
        self._max_stable_slope = float(c.max_stable_slope)
        self._stable_len = 0
        self._stable_max = -math.inf
        self._threshold_learned = False
        self._slope_thresh_scale = float(c.slope_thresh_scale)
        self._scale_logged = self._slope_thresh_scale
        self._scale_windows = 0
        self._scale_exceeded = 0
        self._last_adjust_step: int | None = None
        self._windows_since_adjust = 0
        self._skip_iter_scale = float(c.skip_iter_scale)
        self._skip_d = 0
        self._skip_g = 0
        self._paused_d = False
        self._paused_g = False
        self._diverged = False
        self._events: list[Event] = []

    # ------------------------------------------------------------------ read-only views
    @property
    def lr_d(self) -> float:
        """Current learning rate of D."""
        return self._lr_d

    @property
    def lr_g(self) -> float:
        """Current learning rate of G."""
        return self._lr_g

    @property
    def step(self) -> int:
        """Number of steps observed so far."""
        return self._step

    @property
    def slope_threshold(self) -> float:
        """Current adaptive slope threshold (per step)."""
        return self._slope_threshold

    @property
    def max_stable_slope(self) -> float:
        """Largest ``loss_diff_slope`` seen in a finished stable region."""
        return self._max_stable_slope

    @property
    def slope_thresh_scale(self) -> float:
        """Current multiplier of the slope threshold (constant unless ``slope_thresh_scale_mode="adaptive"``)."""
        return self._slope_thresh_scale

    @property
    def skip_iter_scale(self) -> float:
        """Current skip ratio: D catch-up = ``p * scale``, G catch-up = ``p / scale``."""
        return self._skip_iter_scale

    @property
    def diverged(self) -> bool:
        """Whether a non-finite loss was observed (``on_nonfinite="diverged"``)."""
        return self._diverged

    @property
    def events(self) -> list[Event]:
        """All events so far (a copy)."""
        return list(self._events)

    # ------------------------------------------------------------------ main entry point
    def observe(self, loss_d: float, loss_g: float) -> Decision:
        """Record this step's losses and decide what the step does.

        Call once per training step. Raises :class:`NonFiniteLossError` on a
        NaN or infinite loss unless ``on_nonfinite="diverged"``.
        """
        c = self.config
        t = self._step
        ld, lg = float(loss_d), float(loss_g)
        if self._diverged or not (math.isfinite(ld) and math.isfinite(lg)):
            return self._nonfinite(t, ld, lg)
        self._step = t + 1
        events: list[Event] = []
        lr_d0, lr_g0 = self._lr_d, self._lr_g
        extra_d = extra_g = 0

        windows_before = self._windows_since_adjust
        window = self._update_window(t, ld, lg, events)
        active = t >= c.baseline_steps
        if active and self._cooled(t, windows_before):
            adjustment = self._reactive(ld, lg) if c.reactive_rule else None
            if adjustment is None and window is not None and c.proactive_rule:
                adjustment = self._proactive(*window)
            if adjustment is not None:
                kind, reason, detail = adjustment
                extra_d, extra_g = self._adjust(reason)
                self._last_adjust_step = t
                self._windows_since_adjust = 0
                detail = {**detail, "extra_d_steps": extra_d, "extra_g_steps": extra_g,
                          "skip_iter_scale": self._skip_iter_scale}
                events.append(self._event(t, kind, reason, lr_d0, lr_g0, detail))
        if window is not None and window[3] is not None:
            self._tune_slope_thresh_scale(t, window[3], events)

        train_d, train_g = True, True
        if active and c.pause_and_skip:
            train_d, train_g = self._pause_and_skip(t, ld, lg, events)
        extra_d = extra_d if train_d else 0
        extra_g = extra_g if train_g else 0

        decision = Decision(
            step=t,
            train_d=train_d,
            train_g=train_g,
            extra_d_steps=extra_d,
            extra_g_steps=extra_g,
            lr_d=self._lr_d,
            lr_g=self._lr_g,
            use_diversity=c.diversity_loss and t % c.diversity_check_interval == 0,
            events=tuple(events),
        )
        if self.keep_events:
            self._events.extend(events)
        return decision

    # ------------------------------------------------------------------ mechanisms
    def _update_window(
        self, t: int, ld: float, lg: float, events: list[Event]
    ) -> tuple[float, float, float, float | None] | None:
        """Append to the window; at its end return (d_mean, g_mean, loss_diff, slope)."""
        c = self.config
        self._window_d.append(ld)
        self._window_g.append(lg)
        if len(self._window_d) < c.gc_lr_window:
            return None
        d_mean = sum(self._window_d) / c.gc_lr_window
        g_mean = sum(self._window_g) / c.gc_lr_window
        self._window_d.clear()
        self._window_g.clear()
        self._windows_since_adjust += 1
        loss_diff = abs(d_mean - g_mean)
        slope = None
        if self._prev_loss_diff is not None:
            slope = (loss_diff - self._prev_loss_diff) / c.gc_lr_window
            self._learn_slope_threshold(t, slope, events)
        self._prev_loss_diff = loss_diff
        return d_mean, g_mean, loss_diff, slope

    def _learn_slope_threshold(self, t: int, slope: float, events: list[Event]) -> None:
        """Track stable regions (slope below threshold) and update the threshold."""
        if slope < self._slope_threshold:
            self._stable_len += 1
            self._stable_max = max(self._stable_max, slope)
            return
        if self._stable_len >= MIN_STABLE_WINDOWS:
            self._max_stable_slope = max(self._max_stable_slope, self._stable_max)
            if self._max_stable_slope > 0:
                old = self._slope_threshold
                self._threshold_learned = True
                self._slope_threshold = self._learned_threshold()
                if self._slope_threshold != old:
                    events.append(self._event(t, "slope_threshold", "stable_region_ended", self._lr_d, self._lr_g, {
                        "old": old, "new": self._slope_threshold, "max_stable_slope": self._max_stable_slope}))
        self._stable_len = 0
        self._stable_max = -math.inf

    def _learned_threshold(self) -> float:
        """``(1 - target_slope_aggressiveness) * max_stable_slope * slope_thresh_scale``, clamped."""
        c = self.config
        value = (1 - c.target_slope_aggressiveness) * self._max_stable_slope * self._slope_thresh_scale
        return self._clamp_threshold(value)

    def _tune_slope_thresh_scale(self, t: int, slope: float, events: list[Event]) -> None:
        """Feedback rule: ``log(scale) += rate * (exceeded - target)``, clipped into the range.

        ``exceeded`` is whether this window's slope is above the threshold the
        proactive rule used. The rule acts only once a stable region has set the
        threshold (before that the scale multiplies nothing). In equilibrium a
        fraction ``slope_thresh_scale_target`` of windows exceed the threshold.
        """
        c = self.config
        if c.slope_thresh_scale_mode != "adaptive" or not self._threshold_learned:
            return
        exceeded = slope > self._slope_threshold
        low, high = c.slope_thresh_scale_range
        step = c.slope_thresh_scale_rate * ((1.0 if exceeded else 0.0) - c.slope_thresh_scale_target)
        log_scale = math.log(self._slope_thresh_scale) + step  # in logs: no overflow for any finite rate
        if log_scale >= math.log(high):
            self._slope_thresh_scale = high
        elif log_scale <= math.log(low):
            self._slope_thresh_scale = low
        else:
            self._slope_thresh_scale = _clip(math.exp(log_scale), low, high)
        self._slope_threshold = self._learned_threshold()
        self._scale_windows += 1
        self._scale_exceeded += exceeded
        moved = self._slope_thresh_scale / self._scale_logged
        if moved >= SCALE_LOG_FACTOR or moved <= 1 / SCALE_LOG_FACTOR:
            events.append(self._event(t, "slope_thresh_scale", "raised" if moved > 1 else "lowered",
                                      self._lr_d, self._lr_g, {
                                          "old": self._scale_logged, "new": self._slope_thresh_scale,
                                          "slope_threshold": self._slope_threshold,
                                          "windows": self._scale_windows, "exceeded": self._scale_exceeded}))
            self._scale_logged = self._slope_thresh_scale
            self._scale_windows = self._scale_exceeded = 0

    def _cooled(self, t: int, windows_before: int) -> bool:
        """Whether the cooldown after the last adjustment is over at step ``t``.

        ``"steps"``: steps ``s+1 … s+cooldown_period`` after an adjustment at
        ``s`` are blocked. ``"windows"``: every step up to and including the end
        of the ``cooldown_period``-th window completed after ``s`` is blocked
        (``windows_before`` counts the windows completed at steps ``s+1 … t-1``).
        """
        c = self.config
        if self._last_adjust_step is None:
            return True
        if c.cooldown_unit == "steps":
            return t - self._last_adjust_step > c.cooldown_period
        return windows_before >= c.cooldown_period

    def _clamp_threshold(self, value: float) -> float:
        if self.config.slope_range_mode == "clamp":
            low, high = self.config.target_slope_range
            return min(max(value, low), high)
        return value

    def _reactive(self, ld: float, lg: float) -> tuple[str, str, dict[str, Any]] | None:
        """The text's per-step rule on the instantaneous loss gap."""
        c = self.config
        if not c.reactive_every_step or abs(ld - lg) <= c.max_loss_diff:
            return None
        d_lower = ld < lg
        d_over = d_lower if c.sign_convention == "consistent" else not d_lower
        reason = D_OVERPOWERING if d_over else G_OVERPOWERING
        return "reactive", reason, {"loss_d": ld, "loss_g": lg, "loss_diff": abs(ld - lg)}

    def _proactive(
        self, d_mean: float, g_mean: float, loss_diff: float, slope: float | None
    ) -> tuple[str, str, dict[str, Any]] | None:
        """The window rule on moving means, their gap and its slope."""
        c = self.config
        clauses = []
        if slope is not None and slope > self._slope_threshold:
            clauses.append("slope_above_threshold")
        if c.slope_range_mode == "trigger" and slope is not None and not (
            c.target_slope_range[0] <= slope <= c.target_slope_range[1]
        ):
            clauses.append("slope_outside_target_range")
        if c.proactive_trigger == "algorithm":
            if loss_diff > c.max_loss_diff:
                clauses.append("gap_above_max_loss_diff")
        else:
            if d_mean < g_mean and loss_diff > c.max_loss_diff:
                clauses.append("d_lower_gap_above_max_loss_diff")
            if d_mean > g_mean:
                clauses.append("d_mean_above_g_mean")
        if not clauses:
            return None
        reason = D_OVERPOWERING if d_mean < g_mean else G_OVERPOWERING
        return "proactive", reason, {
            "d_loss_mean": d_mean, "g_loss_mean": g_mean, "loss_diff": loss_diff,
            "loss_diff_slope": slope, "slope_threshold": self._slope_threshold, "clauses": clauses,
        }

    def _adjust(self, reason: str) -> tuple[int, int]:
        """Apply the dampened learning-rate change; return the catch-up burst (extra D, extra G)."""
        c = self.config
        rate = 1 + c.skip_iter_scale_rate
        low, high = 1 / c.max_skip_iterations, float(c.max_skip_iterations)
        if reason == D_OVERPOWERING:
            self._lr_d = _clip(self._lr_d * (1 - c.alpha), c.lr_d_min, c.lr_d_max)
            self._lr_g = _clip(self._lr_g * (1 + c.beta), c.lr_g_min, c.lr_g_max)
            self._skip_iter_scale = _clip(self._skip_iter_scale / rate, low, high)
            return 0, self._catch_up("g")
        self._lr_g = _clip(self._lr_g * (1 - c.beta), c.lr_g_min, c.lr_g_max)
        self._lr_d = _clip(self._lr_d * (1 + c.alpha), c.lr_d_min, c.lr_d_max)
        self._skip_iter_scale = _clip(self._skip_iter_scale * rate, low, high)
        return self._catch_up("d"), 0

    def _catch_up(self, lagging: Literal["d", "g"]) -> int:
        """Steps the lagging network trains while the other skips (``skip_iterations``).

        ``p * skip_iter_scale`` for D, ``p / skip_iter_scale`` for G, rounded and
        capped by ``max_skip_iterations``.
        """
        c = self.config
        scaled = c.p * self._skip_iter_scale if lagging == "d" else c.p / self._skip_iter_scale
        return min(c.max_skip_iterations, round(scaled))

    def _pause_and_skip(self, t: int, ld: float, lg: float, events: list[Event]) -> tuple[bool, bool]:
        """Pause/skip thresholds; returns (train_d, train_g), never both False."""
        c = self.config
        pause_d = ld <= c.discriminator_pause_threshold
        pause_g = lg <= c.generator_pause_threshold
        if c.skip_rule == "overpowered":
            skip_d, skip_g = ld <= c.discriminator_skip_threshold, lg <= c.generator_skip_threshold
        else:
            skip_d, skip_g = ld >= c.discriminator_skip_threshold, lg >= c.generator_skip_threshold
        lr = (self._lr_d, self._lr_g)
        if pause_d and not self._paused_d:
            events.append(self._event(t, "pause_d", "d_loss_below_pause_threshold", *lr, {"loss_d": ld}))
        if pause_g and not self._paused_g:
            events.append(self._event(t, "pause_g", "g_loss_below_pause_threshold", *lr, {"loss_g": lg}))
        self._paused_d, self._paused_g = pause_d, pause_g
        if skip_d and self._skip_d == 0:
            self._skip_d = self._catch_up("g")
            if self._skip_d:
                events.append(self._event(t, "skip_d", "d_loss_skip_threshold", *lr,
                                          {"loss_d": ld, "skip_iterations": self._skip_d}))
        if skip_g and self._skip_g == 0:
            self._skip_g = self._catch_up("d")
            if self._skip_g:
                events.append(self._event(t, "skip_g", "g_loss_skip_threshold", *lr,
                                          {"loss_g": lg, "skip_iterations": self._skip_g}))
        train_d = not pause_d and self._skip_d == 0
        train_g = not pause_g and self._skip_g == 0
        self._skip_d = max(0, self._skip_d - 1)
        self._skip_g = max(0, self._skip_g - 1)
        if not (train_d or train_g):
            # Never both idle: the network with the higher loss (the weaker one) trains; G on ties.
            train_d, train_g = ld > lg, ld <= lg
            events.append(self._event(t, "tie_break", "train_d" if train_d else "train_g", *lr,
                                      {"loss_d": ld, "loss_g": lg}))
        return train_d, train_g

    def _event(
        self, t: int, kind: str, reason: str, lr_d0: float, lr_g0: float, detail: dict[str, Any]
    ) -> Event:
        return Event(t, kind, reason, lr_d0, self._lr_d, lr_g0, self._lr_g, detail)

    def _nonfinite(self, t: int, ld: float, lg: float) -> Decision:
        """Raise, or (``on_nonfinite="diverged"``) enter and stay in the diverged state."""
        events: tuple[Event, ...] = ()
        if not self._diverged:
            bad = ", ".join(f"{n}={v!r}" for n, v in (("loss_d", ld), ("loss_g", lg)) if not math.isfinite(v))
            if self.config.on_nonfinite == "raise":
                raise NonFiniteLossError(f"GCANN controller: non-finite loss at step {t}: {bad}")
            self._diverged = True
            events = (self._event(t, "diverged", "nonfinite_loss", self._lr_d, self._lr_g, {"losses": bad}),)
            if self.keep_events:
                self._events.extend(events)
        self._step = t + 1
        return Decision(t, False, False, 0, 0, self._lr_d, self._lr_g, False, events, diverged=True)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON-serialisable types."""
        return {
            "version": _STATE_VERSION,
            "config": self.config.to_dict(),
            "step": self._step,
            "lr_d": self._lr_d,
            "lr_g": self._lr_g,
            "window_d": list(self._window_d),
            "window_g": list(self._window_g),
            "prev_loss_diff": self._prev_loss_diff,
            "slope_threshold": self._slope_threshold,
            "max_stable_slope": self._max_stable_slope,
            "stable_len": self._stable_len,
            "stable_max": self._stable_max if self._stable_len else None,
            "threshold_learned": self._threshold_learned,
            "slope_thresh_scale": self._slope_thresh_scale,
            "scale_logged": self._scale_logged,
            "scale_windows": self._scale_windows,
            "scale_exceeded": self._scale_exceeded,
            "last_adjust_step": self._last_adjust_step,
            "windows_since_adjust": self._windows_since_adjust,
            "skip_iter_scale": self._skip_iter_scale,
            "skip_d": self._skip_d,
            "skip_g": self._skip_g,
            "paused_d": self._paused_d,
            "paused_g": self._paused_g,
            "diverged": self._diverged,
            "events": [e.to_dict() for e in self._events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` output (possibly after a JSON round trip).

        Raises :class:`ControllerError` if the state was saved under a different
        :class:`GCANNConfig`, naming the fields that differ.
        """
        if state.get("version") != _STATE_VERSION:
            raise ControllerError(f"unsupported GCANN controller state version {state.get('version')!r} "
                             f"(this controller reads version {_STATE_VERSION})")
        if not isinstance(state.get("config"), dict):
            raise ControllerError("GCANN controller state has no config to check against")
        self._check_config(state["config"])
        self._step = int(state["step"])
        self._lr_d = float(state["lr_d"])
        self._lr_g = float(state["lr_g"])
        self._window_d = [float(x) for x in state["window_d"]]
        self._window_g = [float(x) for x in state["window_g"]]
        prev = state["prev_loss_diff"]
        self._prev_loss_diff = None if prev is None else float(prev)
        self._slope_threshold = float(state["slope_threshold"])
        self._max_stable_slope = float(state["max_stable_slope"])
        self._stable_len = int(state["stable_len"])
        self._stable_max = -math.inf if state["stable_max"] is None else float(state["stable_max"])
        self._threshold_learned = bool(state["threshold_learned"])
        self._slope_thresh_scale = float(state["slope_thresh_scale"])
        self._scale_logged = float(state["scale_logged"])
        self._scale_windows = int(state["scale_windows"])
        self._scale_exceeded = int(state["scale_exceeded"])
        last = state["last_adjust_step"]
        self._last_adjust_step = None if last is None else int(last)
        self._windows_since_adjust = int(state["windows_since_adjust"])
        self._skip_iter_scale = float(state["skip_iter_scale"])
        self._skip_d = int(state["skip_d"])
        self._skip_g = int(state["skip_g"])
        self._paused_d = bool(state["paused_d"])
        self._paused_g = bool(state["paused_g"])
        self._diverged = bool(state["diverged"])
        self._events = [Event(**e) for e in state["events"]]

    def _check_config(self, saved: dict[str, Any]) -> None:
        """Refuse a state saved under another config (compared as JSON values)."""
        current = json.loads(json.dumps(self.config.to_dict()))
        saved = {**{name: True for name in MECHANISMS}, **json.loads(json.dumps(saved))}

        def shown(d: dict[str, Any], name: str) -> str:
            return repr(d[name]) if name in d else "absent"

        diffs = [
            f"{n} (saved {shown(saved, n)}, current {shown(current, n)})"
            for n in sorted(set(current) | set(saved))
            if (n in saved) != (n in current) or saved.get(n) != current.get(n)
        ]
        if diffs:
            raise ControllerError("GCANN controller state was saved under a different config: " + "; ".join(diffs))

    def write_events_jsonl(self, path: str | PathLike[str]) -> None:
        """Write every event as one JSON object per line (atomically: a temporary file renamed over ``path``)."""
        folder = os.path.dirname(os.fspath(path)) or "."
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".events.tmp.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for e in self._events:
                    f.write(json.dumps(e.to_dict()) + "\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
