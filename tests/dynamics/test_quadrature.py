"""Instance noise's quadrature in a fixed order, so that its last bits do not follow torch's kernels.

``fixed_order_sum`` and ``spread``'s gradient are checked bit for bit against a pure-Python
pairwise loop over floats (IEEE additions in the documented order, no torch), and against
``math.fsum`` for accuracy; the trapezoid nodes and weights against their definition and the
normal moments; the instance-noise field built on them against ``scipy.integrate.quad``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from dynamics.objectives import fixed_order_sum, normal_trapezoid, spread
from dynamics.study import make_game

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def pairwise_python(xs: list[float]) -> float:
    """Zero-pad to a power of two, then add column j and column j + m/2 until one is left."""
    m = 1
    while m < len(xs):
        m *= 2
    cols = list(xs) + [0.0] * (m - len(xs))
    while len(cols) > 1:
        h = len(cols) // 2
        cols = [cols[j] + cols[j + h] for j in range(h)]
    return cols[0]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=st.lists(st.lists(finite, min_size=1, max_size=40), min_size=1, max_size=4).filter(
    lambda r: len({len(x) for x in r}) == 1))
def test_fixed_order_sum_is_the_pairwise_order_bit_for_bit(rows):
    x = torch.tensor(rows, dtype=torch.float64)
    got = fixed_order_sum(x).tolist()
    assert got == [pairwise_python(r) for r in rows]
    for g, r in zip(got, rows):
        assert abs(g - math.fsum(r)) <= 64 * 2.0**-53 * math.fsum(abs(v) for v in r) + 1e-300


def test_fixed_order_sum_differs_from_left_to_right_where_order_matters():
    # the ulp of 1e16 is 2: left to right every +1 rounds away (1e16); pairwise, 1e16 + 1 rounds to 1e16,
    # the other six ones pair up into 2 + 2 + 2, and 1e16 + 2 + 4 = 1e16 + 6 is exact
    xs = [1e16] + [1.0] * 7
    seq = 0.0
    for v in xs:
        seq += v
    assert pairwise_python(xs) == fixed_order_sum(torch.tensor([xs], dtype=torch.float64)).item()
    assert fixed_order_sum(torch.tensor([xs], dtype=torch.float64)).item() == 1e16 + 6 != seq == 1e16


def test_spread_gradient_is_the_fixed_order_sum_and_twice_differentiable():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    up = torch.randn(3, 401, dtype=torch.float64, generator=g)
    out = spread(v, 401)
    assert torch.equal(out, v.detach()[:, None].expand(3, 401))
    (grad,) = torch.autograd.grad((out * up).sum(), v)
    assert grad.tolist() == [pairwise_python(r) for r in up.tolist()]
    w = torch.randn(7, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: fixed_order_sum(spread(a, 7) ** 3 * w), (v,))
    assert torch.autograd.gradgradcheck(lambda a: fixed_order_sum(spread(a, 7) ** 3 * w), (v,))


@pytest.mark.parametrize("n", [2, 5, 401])
def test_normal_trapezoid_nodes_weights_and_moments(n):
    z, w = normal_trapezoid(n, width=10.0)
    zs = z.tolist()
    assert zs[0] == -10.0 and zs[-1] == 10.0
    assert all(a == -b for a, b in zip(zs, reversed(zs)))  # exactly symmetric
    assert np.allclose(np.diff(zs), 20.0 / (n - 1), rtol=1e-13, atol=0)
    want = np.exp(-0.5 * np.array(zs) ** 2)
    np.testing.assert_allclose(w.numpy(), want / want.sum(), rtol=1e-14)
    if n == 401:
        assert abs(math.fsum(w.tolist()) - 1.0) < 1e-15
        assert abs(math.fsum(wi * zi**2 for wi, zi in zip(w.tolist(), zs)) - 1.0) < 1e-13
        assert abs(math.fsum(wi * zi**4 for wi, zi in zip(w.tolist(), zs)) - 3.0) < 1e-12
    with pytest.raises(ValueError):
        normal_trapezoid(1)


def _quad_field(theta: float, psi: float, sigma: float) -> tuple[float, float]:
    """The instance-noise GAN field by adaptive quadrature: D(x + σε) = ψx + σ|ψ|Z."""
    s = sigma * abs(psi)
    phi = lambda t: math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
    sig = lambda u: 0.5 * (1 + math.tanh(0.5 * u))  # noqa: E731
    e = lambda f: integrate.quad(lambda t: f(t) * phi(t), -12, 12, epsabs=1e-14, epsrel=1e-13, limit=200)[0]  # noqa: E731
    # L_D = E softplus(−sZ) + E softplus(ψθ + sZ'); L_G = −E softplus(ψθ + sZ')
    # ∂/∂ψ: E[−σ·sgn(ψ)Z·σ(−sZ)] + E[(θ + σ·sgn(ψ)Z')·σ(ψθ + sZ')]; ∂L_G/∂θ = −ψ·E σ(ψθ + sZ')
    sg = math.copysign(1.0, psi)
    dpsi = e(lambda t: -sigma * sg * t * sig(-s * t)) + e(lambda t: (theta + sigma * sg * t) * sig(psi * theta + s * t))
    dtheta = -psi * e(lambda t: sig(psi * theta + s * t))
    return -dtheta, -dpsi


@pytest.mark.parametrize("theta,psi,sigma", [(0.3, -0.7, 1.0), (-0.07209800259413585, 0.07200443053638068, 1.0),
                                             (1.5, 2.0, 0.5)])
def test_instance_noise_field_against_adaptive_quadrature(theta, psi, sigma):
    game = make_game("instance_noise", {"sigma": sigma}, 1)
    v = game.field(torch.tensor([[theta, psi]], dtype=torch.float64))[0].tolist()
    np.testing.assert_allclose(v, _quad_field(theta, psi, sigma), rtol=1e-10, atol=1e-13)


def test_instance_noise_field_of_a_row_does_not_depend_on_its_batch():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(37, 2, dtype=torch.float64, generator=g) * 2 - 1
    game = make_game("instance_noise", {"sigma": 1.0}, 1)
    whole = game.field(z)
    for b in (0, 5, 36):
        assert torch.equal(game.field(z[b:b + 1])[0], whole[b])
