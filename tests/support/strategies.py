"""The GCANN controller's hypothesis strategies, shared by tests/test_controller.py and
tests/test_controller_stateful.py: configs, and loss sequences (short lists and long regime-switching runs)."""
from __future__ import annotations

import random

from hypothesis import strategies as st

from gcann.controller import GCANNConfig


@st.composite
def configs(draw: st.DrawFn) -> GCANNConfig:
    """Configs with small windows, cooldowns and warm-ups, so that events happen.

    Written once for tests/test_controller.py and tests/test_controller_stateful.py.  Every config the
    stateful test's former narrower ``configs`` drew is drawable here: its fixed learning rates (1e-3, 2e-3)
    and bounds (1e-4, 1e-2) and its narrower ranges lie inside these ranges, its three target slope
    ranges (the degenerate (0, 0) included) are drawn as they are, and the defaults it left alone
    (skip_iter_scale 1, slope_thresh_scale 1 in (0.25, 4), slope_threshold 0.01, ...) lie inside the ranges
    drawn for them."""
    lr_d = draw(st.floats(1e-5, 1e-2))
    lr_g = draw(st.floats(1e-5, 1e-2))
    max_skip = draw(st.integers(1, 30))
    low = draw(st.floats(-0.2, 0.1))
    scale_low = draw(st.floats(0.05, 1.0))
    scale_range = (scale_low, scale_low * draw(st.floats(1.0, 40.0)))
    scale = draw(st.floats(*scale_range))
    return GCANNConfig(
        lr_d=lr_d,
        lr_g=lr_g,
        alpha=draw(st.floats(0.05, 0.95)),
        beta=draw(st.floats(0.05, 0.95)),
        max_loss_diff=draw(st.floats(0.1, 5.0)),
        gc_lr_window=draw(st.integers(1, 20)),
        cooldown_period=draw(st.integers(0, 30)),
        cooldown_unit=draw(st.sampled_from(["steps", "windows"])),
        baseline_steps=draw(st.integers(0, 50)),
        discriminator_pause_threshold=draw(st.floats(0.0, 0.3)),
        generator_pause_threshold=draw(st.floats(0.0, 0.3)),
        discriminator_skip_threshold=draw(st.floats(0.0, 0.5)),
        generator_skip_threshold=draw(st.floats(0.0, 0.5)),
        p=draw(st.integers(0, 10)),
        max_skip_iterations=max_skip,
        skip_iter_scale=draw(st.floats(1 / max_skip, float(max_skip))),
        skip_iter_scale_rate=draw(st.floats(0.01, 1.0)),
        target_slope_range=draw(st.one_of(st.just((low, low + draw(st.floats(0.0, 0.3)))),
                                          st.sampled_from([(-0.1, 0.1), (0.001, 0.2), (0.0, 0.0)]))),
        target_slope_aggressiveness=draw(st.floats(0.0, 0.99)),
        slope_thresh_scale=scale,
        slope_thresh_scale_mode=draw(st.sampled_from(["adaptive", "constant"])),
        slope_thresh_scale_target=draw(st.floats(0.01, 0.99)),
        slope_thresh_scale_rate=draw(st.floats(0.001, 2.0)),
        slope_thresh_scale_range=scale_range,
        slope_threshold=draw(st.floats(-0.1, 0.2)),
        max_stable_slope=draw(st.floats(0.0, 0.1)),
        lr_d_min=lr_d * draw(st.floats(1e-3, 1.0)),
        lr_d_max=lr_d * draw(st.floats(1.0, 1e3)),
        lr_g_min=lr_g * draw(st.floats(1e-3, 1.0)),
        lr_g_max=lr_g * draw(st.floats(1.0, 1e3)),
        diversity_check_interval=draw(st.integers(1, 10)),
        sign_convention=draw(st.sampled_from(["consistent", "literal"])),
        reactive_every_step=draw(st.booleans()),
        proactive_trigger=draw(st.sampled_from(["algorithm", "text"])),
        slope_range_mode=draw(st.sampled_from(["clamp", "trigger"])),
        skip_rule=draw(st.sampled_from(["overpowered", "literal"])),
    )


def noisy_losses(seed: int, n: int) -> list[tuple[float, float]]:
    """A regime-switching loss sequence: balanced, D winning, G winning, collapse, noise bursts."""
    rng = random.Random(seed)
    regimes = [(0.7, 1.5, 0.3), (0.02, 4.0, 0.5), (5.0, 0.3, 0.8), (0.01, 0.005, 0.01),
               (1.0, 1.0, 2.0), (0.04, 0.7, 0.02)]
    out: list[tuple[float, float]] = []
    while len(out) < n:
        mu_d, mu_g, sigma = rng.choice(regimes)
        for _ in range(rng.randint(20, 300)):
            out.append((abs(rng.gauss(mu_d, sigma)), abs(rng.gauss(mu_g, sigma))))
    return out[:n]


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small_loss = st.one_of(st.floats(0.0, 0.1), st.floats(0.0, 10.0), finite)
loss_lists = st.lists(st.tuples(small_loss, small_loss), max_size=300)
long_sequences = st.builds(noisy_losses, st.integers(0, 2**32 - 1), st.integers(500, 1500))
sequences = st.one_of(loss_lists, long_sequences)
