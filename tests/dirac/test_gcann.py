"""The GCANN controller driving the Dirac-GAN simulators (gcann/dirac.py)."""
import math

import pytest
import torch

from dynamics.simulate import simulate
from dynamics.study import make_game
from gcann.controller import GCANNConfig, GCANNController
from gcann.dirac import (
    COLUMNS,
    DIRAC_CONFIG,
    dirac_config,
    effective_distance,
    gcann_table,
    lr_scaling_spectra,
    map_spectral_radii,
    paper_config,
    simulate_gcann,
)
from dynamics.spectrum import spectral_radius


def _inert(lr=0.1, baseline_steps=0, **kw) -> GCANNConfig:
    """A controller that can never act on non-negative losses: no gap, slope, pause or skip
    threshold is ever reached.  (Thresholds must be >= 0, so for signed losses — saturating
    GAN, WGAN — a zero pause threshold still fires; there the warm-up is made endless.)"""
    return GCANNConfig(lr_d=lr, lr_g=lr, max_loss_diff=1e300, slope_threshold=1e300,
                       target_slope_range=(-1e300, 1e300), discriminator_pause_threshold=0.0,
                       generator_pause_threshold=0.0, discriminator_skip_threshold=0.0,
                       generator_skip_threshold=0.0, baseline_steps=baseline_steps, gc_lr_window=10,
                       cooldown_period=0, on_nonfinite="diverged", **kw)


def _z0(B=6, dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 2 * dim, generator=g, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("method,params,dim,scheme,baseline", [
    ("nsgan", {}, 1, "simgd", 0), ("nsgan", {}, 2, "simgd", 0), ("nsgan", {}, 1, "altgd", 0), ("r1", {"gamma": 1.0}, 1, "altgd", 10**9),
    ("lsgan", {}, 1, "simgd", 0), ("gan", {}, 1, "simgd", 10**9), ("wgan", {"clip": 0.5}, 1, "simgd", 10**9),
])
def test_inert_controller_reproduces_plain_simulator(method, params, dim, scheme, baseline):
    game = make_game(method, params, dim)
    z0 = _z0(5, dim)
    ref = simulate(game, z0, scheme=scheme, steps=150, lr_d=0.1, lr_g=0.1, ema_beta=0.9)
    tr, logs = simulate_gcann(game, z0, config=_inert(baseline_steps=baseline), steps=150, scheme=scheme,
                              ema_beta=0.9)
    assert torch.equal(tr.t, ref.t)
    assert torch.equal(tr.z, ref.z)
    assert torch.equal(tr.z_ema, ref.z_ema)
    assert logs.event_counts() == {}
    assert bool(logs.train_d.all()) and bool(logs.train_g.all())


def test_observed_losses_equal_game_losses():
    game = make_game("nsgan", {}, 1)
    tr, logs = simulate_gcann(game, _z0(7), config=dirac_config(0.1), steps=300)
    for k in (0, 1, 57, 150, 299):
        ld, lg = game.losses(tr.z[k])
        assert torch.allclose(logs.loss_d[k], ld.double(), rtol=0, atol=1e-15)
        assert torch.allclose(logs.loss_g[k], lg.double(), rtol=0, atol=1e-15)


def _eventful(lr=0.1):
    # triggers reactive adjustments (gap > 0.5 at the GAN equilibrium is 2.08), pauses and skips of G
    return dirac_config(lr, max_loss_diff=0.5, baseline_steps=10, gc_lr_window=5, cooldown_period=5)


def test_decisions_applied_masks_lrs_and_extra_steps():
    game = make_game("gan", {}, 1)
    z0 = _z0(4)
    cfg = _eventful()
    tr, logs = simulate_gcann(game, z0, config=cfg, steps=120)
    assert logs.event_counts().get("reactive", 0) > 0
    assert bool((~logs.train_g).any())
    # replay the controllers from the recorded losses: the same decisions
    for b in range(4):
        ctrl = GCANNController(cfg)
        for k in range(120):
            d = ctrl.observe(float(logs.loss_d[k, b]), float(logs.loss_g[k, b]))
            assert d.lr_d == logs.lr_d[k, b].item() and d.lr_g == logs.lr_g[k, b].item()
            assert d.train_d == bool(logs.train_d[k, b]) and d.train_g == bool(logs.train_g[k, b])
            assert d.extra_d_steps == int(logs.extra_d[k, b]) and d.extra_g_steps == int(logs.extra_g[k, b])
    n = game.dim
    for k in range(120):
        z, z1 = tr.z[k], tr.z[k + 1]
        # a player that does not train and gets no extra step keeps its parameters exactly
        keep_g = ~logs.train_g[k] & (logs.extra_g[k] == 0)
        keep_d = ~logs.train_d[k] & (logs.extra_d[k] == 0)
        assert torch.equal(z1[keep_g, :n], z[keep_g, :n])
        assert torch.equal(z1[keep_d, n:], z[keep_d, n:])
        # a plain step (no extras): each moving player moved with exactly the decided learning rate
        plain = (logs.extra_d[k] == 0) & (logs.extra_g[k] == 0)
        v = game.field(z)
        exp_theta = torch.where(logs.train_g[k][:, None], z[:, :n] + logs.lr_g[k][:, None] * v[:, :n], z[:, :n])
        exp_psi = torch.where(logs.train_d[k][:, None], z[:, n:] + logs.lr_d[k][:, None] * v[:, n:], z[:, n:])
        assert torch.allclose(z1[plain], torch.cat([exp_theta, exp_psi], 1)[plain], rtol=0, atol=1e-14)
    # the learning rates really changed somewhere
    assert bool((logs.lr_d != 0.1).any())


def test_extra_steps_are_extra_updates():
    game = make_game("gan", {}, 1)
    cfg = _eventful()
    tr, logs = simulate_gcann(game, _z0(4), config=cfg, steps=120)
    ks, bs = (logs.extra_d > 0).nonzero(as_tuple=True)
    assert len(ks) > 0
    k, b = int(ks[0]), int(bs[0])
    z = tr.z[k, b : b + 1].clone()
    v = game.field(z)
    if logs.train_g[k, b]:
        z[:, :1] += logs.lr_g[k, b] * v[:, :1]
    if logs.train_d[k, b]:
        z[:, 1:] += logs.lr_d[k, b] * v[:, 1:]
    for _ in range(int(logs.extra_d[k, b])):
        z[:, 1:] += logs.lr_d[k, b] * game.field(z)[:, 1:]
    assert torch.allclose(z, tr.z[k + 1, b : b + 1], rtol=0, atol=1e-14)


def test_nonfinite_rows_count_as_diverging_without_nan():
    game = make_game("r1", {"gamma": 1.0}, 1)
    z0 = torch.tensor([[0.5, 0.5], [0.3, -0.2]], dtype=torch.float64)
    # lr_d = 50 makes the ψ-update of R1 explode (|1 − 50·γ| > 1) and overflow to inf
    cfg = _inert(lr=50.0, baseline_steps=10**9)
    tr, logs = simulate_gcann(game, z0, config=cfg, steps=400)
    assert bool(torch.isfinite(tr.z).all())
    assert bool(logs.diverged.all())
    d = effective_distance(tr)
    assert bool(torch.isinf(d[-1]).all())
    assert all(e[-1]["event"] == "diverged" for e in logs.events)


def test_lr_scaling_spectra_closed_form():
    scales = [(1, 1), (0.4, 1.8), (1.8, 0.4), (0.01, 100), (100, 0.01), (3.0, 7.0), (1.8**5, 0.4**5)]
    for method, dim in (("gan", 1), ("nsgan", 2), ("wgan", 1)):
        res = lr_scaling_spectra(method, scales, lr=0.1, dim=dim)
        assert res["centre"]
        c = res["c"]
        for r in res["rows"]:
            w = abs(c) * math.sqrt(r["a"] * r["b"])
            assert r["eig_error"] < 1e-8
            assert abs(r["max_real_part"]) < 1e-8
            assert max(abs(abs(im) - w) for _, im in r["eigenvalues"]) < 1e-8
            assert abs(r["rho_simgd"] - math.sqrt(1 + r["a"] * r["b"] * c * c * 0.01)) < 1e-8
            assert r["rho_simgd"] > 1
            assert abs(r["rho_altgd"] - 1) < 1e-8  # ab·c²h² < 4 for these scales


def test_map_spectral_radii_matches_dynamics():
    for method, params in (("gan", {}), ("r1", {"gamma": 1.0}), ("conopt", {"gamma": 1.0})):
        g = make_game(method, params, 1)
        sim, alt = map_spectral_radii(g, 0.07, 0.13)
        assert abs(sim - spectral_radius(g, 0.07, 0.13).item()) < 1e-10
        assert abs(alt - spectral_radius(g, 0.07, 0.13, scheme="altgd").item()) < 1e-10


def test_configs():
    assert DIRAC_CONFIG.gc_lr_window == 20 and DIRAC_CONFIG.baseline_steps == 100
    p = paper_config(0.1)
    assert p.gc_lr_window == 100 and p.cooldown_period == 100 and p.baseline_steps == 1583 and p.max_loss_diff == 3.0
    assert p.lr_d == p.lr_g == 0.1 and p.on_nonfinite == "diverged"


def test_gcann_table_tiny():
    md, doc = gcann_table(n_init=8, steps=200, methods=["gan", "r1 (γ=1)"])
    assert len(doc["rows"]) == 2
    for r in doc["rows"]:
        for col in COLUMNS:
            s = r[col]
            keys = ("converged", "slowly_converging", "stalled", "oscillating", "diverging")
            for key in (*keys, "reached_eps"):
                assert 0.0 <= s[key] <= 1.0
            assert sum(s[k] for k in keys) == pytest.approx(1.0)
        assert "paper" in r and "dirac" in r
    assert "+GCANN+EMA" in md and "| gan |" in md
