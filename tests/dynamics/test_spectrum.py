"""Eigenvalues and discrete spectral radii against closed forms; verdicts against the sources."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dynamics as dy
from dynamics.study import SEED001_GENERAL, SEED003, SimSettings, make_game, table

from tests.support.closed_forms import continuous_eigenvalues


def _eigs(method, params):
    s = dy.spectrum(make_game(method, params))
    assert s.differentiable.tolist() == [True]
    return s.eigenvalues[0].numpy()


def _same_set(a, b, atol):
    a, b = sorted(a, key=lambda z: (z.real, z.imag)), sorted(b, key=lambda z: (z.real, z.imag))
    np.testing.assert_allclose(np.array(a), np.array(b), atol=atol)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(gamma=st.floats(0.0, 5.0))
def test_r1_eigenvalues_closed_form(gamma):
    # Mescheder et al. (2018): λ = −γ/2 ± sqrt(γ²/4 − f'(0)²); a double root at γ = 1 is
    # ill-conditioned (error ~ sqrt(machine eps)), hence the looser tolerance near it
    atol = 1e-6 if abs(gamma - 1) < 1e-3 else 1e-9
    for m in ("r1", "r2"):
        _same_set(_eigs(m, {"gamma": gamma}), continuous_eigenvalues(m, {"gamma": gamma}), atol)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(sigma=st.floats(0.0, 3.0).filter(lambda s: abs(s**2 - 2) > 1e-2))
def test_instance_noise_eigenvalues_closed_form(sigma):
    _same_set(_eigs("instance_noise", {"sigma": sigma}), continuous_eigenvalues("instance_noise", {"sigma": sigma}), 1e-7)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(gamma=st.floats(0.0, 5.0))
def test_conopt_eigenvalues_closed_form(gamma):
    _same_set(_eigs("conopt", {"gamma": gamma}), continuous_eigenvalues("conopt", {"gamma": gamma}), 1e-9)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(gamma=st.floats(0.05, 5.0).filter(lambda g: abs(g - 2) > 1e-2))
def test_wgan_gp_c0_and_roth_closed_form(gamma):
    _same_set(_eigs("wgan_gp", {"gamma": gamma, "c": 0.0}), continuous_eigenvalues("wgan_gp", {"gamma": gamma}), 1e-8)
    _same_set(_eigs("roth", {"gamma": gamma}), continuous_eigenvalues("roth", {"gamma": gamma}), 1e-8)


def test_unregularised_centres_and_lsgan():
    for m in ("gan", "nsgan", "wgan"):
        _same_set(_eigs(m, {}), continuous_eigenvalues(m, {}), 1e-12)
    _same_set(_eigs("lsgan", {"a": -1.0, "c": 1.0}), continuous_eigenvalues("lsgan", {"a": -1.0, "c": 1.0}), 1e-12)


def test_batched_spectrum_over_a_grid_equals_rows():
    gam = torch.linspace(0, 3, 7, dtype=torch.float64)
    game = make_game("r1")
    s = dy.spectrum(game, {"gamma": gam})
    for i, g in enumerate(gam.tolist()):
        one = dy.spectrum(make_game("r1", {"gamma": g}))
        _same_set(s.eigenvalues[i].numpy(), one.eigenvalues[0].numpy(), 1e-12)


def test_non_differentiable_fields_are_flagged():
    for m, p in [("wgan_norm", {}), ("wgan_gp", {"c": 1.0}), ("dragan", {"c": 1.0})]:
        s = dy.spectrum(make_game(m, p))
        assert s.locally_convergent == [None], m
        assert not bool(s.differentiable[0])
    for m, p in [("wgan_gp", {"c": 0.0}), ("gan_qp", {}), ("instance_noise", {})]:
        assert bool(dy.spectrum(make_game(m, p)).differentiable[0]), m


# ---- discrete time ---------------------------------------------------------
@settings(max_examples=20, deadline=None, derandomize=True)
@given(gamma=st.floats(0.1, 4.0), h=st.floats(0.01, 3.0))
def test_simgd_spectral_radius_closed_form(gamma, h):
    # simGD map I + hJ: eigenvalues 1 + hλ
    lam = continuous_eigenvalues("r1", {"gamma": gamma})
    want = max(abs(1 + h * l) for l in lam)
    got = float(dy.spectral_radius(make_game("r1", {"gamma": gamma}), h, h)[0])
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_altgd_on_a_centre_has_unit_spectral_radius():
    # alternating GD on J = [[0, a], [−a, 0]]: det = 1 and real trace 2 − h²a² → |μ| = 1 for h·a < 2
    for h in (0.1, 0.5, 1.0, 3.0):
        assert float(dy.spectral_radius(make_game("gan"), h, h, scheme="altgd")[0]) == pytest.approx(1.0, abs=1e-9)
    # ... and > 1 past h·a = 2 (a = 1/2 for the GAN loss)
    assert float(dy.spectral_radius(make_game("gan"), 5.0, 5.0, scheme="altgd")[0]) > 1.0


@pytest.mark.parametrize("gamma", [0.3, 1.0, 2.0])
def test_max_stable_lr_closed_form(gamma):
    # |1 + hλ| < 1  <=>  h < −2 Re λ / |λ|²
    lam = continuous_eigenvalues("r1", {"gamma": gamma})
    want = min(-2 * l.real / abs(l) ** 2 for l in lam)
    got = float(dy.max_stable_lr(make_game("r1", {"gamma": gamma}))[0])
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("method,params,scheme,lrs", [
    ("r1", {"gamma": 1.0}, "simgd", [0.5, 3.0, 4.5, 6.0]),
    ("r1", {"gamma": 0.2}, "altgd", [0.5, 2.0, 4.5]),
    ("gan", {}, "simgd", [1.0]),
    ("conopt", {"gamma": 1.0}, "simgd", [1.0, 5.0]),
])
def test_spectral_radius_predicts_simulation(method, params, scheme, lrs):
    game = make_game(method, params)
    for h in lrs:
        rho = float(dy.spectral_radius(game, h, h, scheme=scheme)[0])
        assert abs(rho - 1) > 0.01, "pick learning rates away from the boundary"
        tr = dy.simulate(game, dy.circle_points(8, 1e-3), scheme=scheme, lr=h, steps=600)
        d = tr.distance()
        final = torch.nan_to_num(d[-1], nan=float("inf"))
        if rho < 1:
            assert bool((final < 1e-3 * d[0]).all()), (h, rho)
        else:
            assert bool((final > 10 * d[0]).all()), (h, rho)


# ---- the sources' tables, computed -----------------------------------------
FAST = SimSettings(n_init=6, steps=200, substeps=2)


@pytest.mark.parametrize("row", SEED001_GENERAL, ids=lambda r: r.method)
def test_seed001_general_case_reproduced(row):
    v = table([row], FAST)[0]
    assert v.computed == row.paper, v.as_dict()


@pytest.mark.parametrize("row", SEED003, ids=lambda r: f"{r.method}-{r.params}")
def test_seed003_verdicts_reproduced(row):
    v = table([row], FAST)[0]
    assert v.computed == row.paper, v.as_dict()
    # where the field is smooth, simulation agrees with the spectrum
    if v.spectral is True:
        assert v.simulated == "converging"
