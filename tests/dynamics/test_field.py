"""The autograd vector field equals hand-derived closed forms (tests/closed_forms.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dynamics as dy
from dynamics.study import make_game

from tests.support.closed_forms import field as closed_field

coord = st.floats(-3, 3, allow_nan=False).filter(lambda x: abs(x) > 1e-3)
pos = st.floats(0.05, 4.0)

PARAMS = {
    "gan": {}, "nsgan": {}, "wgan": {},
    "wgan_gp": {"gamma": pos, "c": st.floats(0, 2)},
    "dragan": {"gamma": pos, "c": st.floats(0, 2)},
    "r1": {"gamma": pos}, "r2": {"gamma": pos}, "roth": {"gamma": pos},
    "lsgan": {"a": st.floats(-1, 1), "b": st.floats(-1, 1), "c": st.floats(-1, 1)},
    "alpha": {"alpha_d": st.floats(0.3, 5), "alpha_g": st.floats(0.3, 5)},
    "alpha_sat": {"alpha_d": st.floats(0.3, 5), "alpha_g": st.floats(0.3, 5)},
    "conopt": {"gamma": pos},
    "instance_noise": {"sigma": st.floats(0.0, 2.0)},
}


def _check(method, p, theta, psi, dim, l2=None, rtol=1e-9):
    params = dict(p)
    if l2 is not None:
        params["l2"] = l2
    game = make_game(method, params, dim)
    z = torch.tensor([list(theta) + list(psi)], dtype=torch.float64)
    got = game.field(z)[0].numpy()
    want = closed_field(method, theta, psi, {**game.objective.resolve(), **({"gamma": p["gamma"]} if "gamma" in p else {})})
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-10)


@pytest.mark.parametrize("method", sorted(PARAMS))
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_field_matches_closed_form_1d(method, data):
    p = {k: data.draw(s, label=k) for k, s in PARAMS[method].items()}
    theta, psi = data.draw(coord), data.draw(coord)
    l2 = data.draw(st.one_of(st.none(), st.floats(0, 1)), label="l2")
    rtol = 1e-7 if method == "instance_noise" else 1e-9  # Gauss–Hermite vs adaptive quadrature
    _check(method, p, [theta], [psi], 1, l2, rtol)


@pytest.mark.parametrize("method", ["nsgan", "wgan_norm", "wgan_gp", "gan_qp", "r1", "roth", "lsgan"])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_field_matches_closed_form_2d(method, data):
    p = {k: data.draw(s, label=k) for k, s in PARAMS.get(method, {}).items()}
    if method == "gan_qp":
        p = {"lam": data.draw(pos)}
    theta = [data.draw(coord), data.draw(coord)]
    psi = [data.draw(coord), data.draw(coord)]
    _check(method, p, theta, psi, 2)


def test_custom_objective_gets_field_for_free():
    # the user's own pair: a bilinear game with a quadratic D-penalty, field (ψ, −θ − 0.3ψ)
    obj = dy.custom_objective(lambda th, ps, hp: (th * ps).sum(-1) + 0.5 * hp["k"] * (ps**2).sum(-1),
                              lambda th, ps, hp: -(th * ps).sum(-1), k=0.3)
    game = dy.DiracGAN(obj, dim=1)
    z = torch.tensor([[0.7, -1.1]], dtype=torch.float64)
    np.testing.assert_allclose(game.field(z)[0].numpy(), [-1.1, -0.7 - 0.3 * -1.1], rtol=1e-12)
    s = dy.spectrum(game)
    assert s.locally_convergent == [True]
    ev = sorted(s.eigenvalues[0].tolist(), key=lambda e: e.imag)
    want = sorted([-0.15 + 1j * (1 - 0.15**2) ** 0.5, -0.15 - 1j * (1 - 0.15**2) ** 0.5], key=lambda e: e.imag)
    np.testing.assert_allclose(ev, want, atol=1e-10)


def test_wgan_clipping_projects_discriminator():
    game = make_game("wgan", {"clip": 0.5})
    z = dy.simulate(game, torch.tensor([[2.0, 0.4]], dtype=torch.float64), steps=50, lr=0.1).z
    assert float(z[..., 1].abs().max()) <= 0.5 + 1e-12
