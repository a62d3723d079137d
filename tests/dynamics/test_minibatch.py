"""dynamics.minibatch: the minibatch objective against hand-written formulas.

D is linear, ``D(x) = x·ψ + c``, so ``∇ₓD = ψ`` for every sample and the penalties have closed forms:
R1 = R2 = γ/2·‖ψ‖², WGAN-GP = γ/2·(‖ψ‖ − c)². The losses are written out from their definitions
(the standard GAN's softplus forms, LSGAN's squares), not taken from ``dynamics.objectives``.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dynamics.minibatch import MinibatchObjective, contiguous_runs
from dynamics.objectives import ObjectiveError

F64 = torch.float64


def _mean(v, rows):
    return v.mean()


def _per_row(v, rows):
    return v.mean(1)


def _linear(psi, c=0.3):
    return lambda x: x @ psi + c


def _batch(seed, B=16, d=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, d, generator=g, dtype=F64), torch.randn(B, d, generator=g, dtype=F64) + 1.0,
            torch.randn(d, generator=g, dtype=F64))


@given(seed=st.integers(0, 10_000), gamma=st.floats(0.01, 10.0), l2=st.floats(0.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_d_loss_gan_r1_l2_closed_form(seed, gamma, l2):
    xr, xf, psi = _batch(seed)
    D = _linear(psi)
    obj = MinibatchObjective("nsgan", {}, ("r1",), {"gamma": gamma}, l2=l2)
    out = obj.d_loss(D, xr, xf, _mean, params=[psi])
    dr, df = xr @ psi + 0.3, xf @ psi + 0.3
    plain = (F.softplus(-dr) + F.softplus(df)).mean()      # −log σ(D(x_r)) − log(1 − σ(D(x_f)))
    total = plain + gamma / 2 * psi.pow(2).sum() + l2 / 2 * psi.pow(2).sum()
    torch.testing.assert_close(out.plain, plain)
    torch.testing.assert_close(out.total, total)
    torch.testing.assert_close(obj.g_loss(D, xf, _mean), F.softplus(-df).mean())   # the non-saturating G loss


def test_lazy_schedule_weights_and_skips():
    xr, xf, psi = _batch(1)
    obj = MinibatchObjective("gan", {}, ("r1",), {"gamma": 2.0}, reg_every=4)
    D = _linear(psi)
    plain = obj.d_loss(D, xr, xf, _mean).plain
    for step, weight in ((0, 4.0), (1, 0.0), (3, 0.0), (4, 4.0), (8, 4.0)):
        got = obj.d_loss(D, xr, xf, _mean, d_step=step).total
        torch.testing.assert_close(got, plain + weight * psi.pow(2).sum())   # γ/2·‖ψ‖² with γ = 2


def test_wgan_gp_needs_rand_and_matches_closed_form():
    xr, xf, psi = _batch(2)
    obj = MinibatchObjective("wgan", {}, ("gp",), {"gamma": 10.0, "c": 1.0})
    D = _linear(psi)
    with pytest.raises(ObjectiveError, match="random draws"):
        obj.d_loss(D, xr, xf, _mean)
    out = obj.d_loss(D, xr, xf, _mean, rand=lambda shape: torch.rand(shape))
    plain = (-(xr @ psi) + (xf @ psi)).mean()
    torch.testing.assert_close(out.total, plain + 5.0 * (psi.norm() - 1.0) ** 2)


def test_knobs_r1_gamma_adds_r1_and_clc_adds_its_term():
    xr, xf, psi = _batch(3)
    D = _linear(psi)
    obj = MinibatchObjective("gan", {})
    plain = obj.d_loss(D, xr, xf, _mean).plain
    got = obj.d_loss(D, xr, xf, _mean, knobs={"r1_gamma": 0.5}).total
    torch.testing.assert_close(got, plain + 0.25 * psi.pow(2).sum())
    br, bf = xr.flip(0), xf.flip(0)                      # "past" batches from a buffer
    seen = []

    def clc_fn(a, b):
        seen.append((a, b))
        return obj.clc(D(br), D(bf), _mean), None
    with pytest.raises(ObjectiveError, match="clc_fn"):
        obj.d_loss(D, xr, xf, _mean, knobs={"clc_weight": 0.1})
    got = obj.d_loss(D, xr, xf, _mean, knobs={"clc_weight": 0.1}, clc_fn=clc_fn).total
    torch.testing.assert_close(got, plain + 0.1 * ((br @ psi + 0.3) ** 2 + (bf @ psi + 0.3) ** 2).mean())
    assert len(seen) == 1 and seen[0][0] is xr          # the buffers see this step's batch


def test_noise_acts_on_every_input_of_d():
    xr, xf, psi = _batch(4)
    D = _linear(psi)
    obj = MinibatchObjective("lsgan", {"a": 0.0, "b": 1.0, "c": 1.0})
    shift = lambda x: x + 0.5
    out = obj.d_loss(D, xr, xf, _mean, noise=shift)
    dr, df = (xr + 0.5) @ psi + 0.3, (xf + 0.5) @ psi + 0.3
    torch.testing.assert_close(out.plain, (0.5 * (dr - 1) ** 2 + 0.5 * df ** 2).mean())
    torch.testing.assert_close(out.out_real, dr)
    torch.testing.assert_close(obj.g_loss(D, xf, _mean, shift), (0.5 * (df - 1) ** 2).mean())


@given(seed=st.integers(0, 10_000), losses=st.lists(st.sampled_from(["gan", "nsgan", "lsgan"]), min_size=1, max_size=6))
@settings(max_examples=25, deadline=None)
def test_rows_side_by_side_equal_each_row_alone(seed, losses):
    """Stacked rows with their own losses, penalty rows and per-row γ give each row its single-row objective."""
    R, B, d = len(losses), 8, 2
    g = torch.Generator().manual_seed(seed)
    xr, xf = torch.randn(R, B, d, generator=g, dtype=F64), torch.randn(R, B, d, generator=g, dtype=F64)
    psi = torch.randn(R, d, 1, generator=g, dtype=F64)
    gamma = torch.rand(R, generator=g, dtype=F64)
    hp = {"a": 0.0, "b": 1.0, "c": 1.0}
    stacked = MinibatchObjective(losses, hp, ("r1",), {"gamma": gamma})
    D = lambda x: torch.bmm(x, psi).squeeze(-1)
    pen_rows = [slice(a, b) for a, b, on in contiguous_runs([k % 2 == 0 for k in range(R)]) if on]

    def r1_rows(name, rows, a, b, xi, hp_rows):
        m = rows.stop - rows.start
        Dr = lambda x: torch.bmm(x.view(m, B, d), psi[rows]).reshape(-1)
        return stacked.penalty(name, Dr, a[rows].reshape(-1, d), None, None,
                               {"gamma": hp_rows["gamma"].repeat_interleave(B)}).view(m, B)
    out = stacked.d_loss(D, xr, xf, _per_row, penalty_fn=r1_rows, penalty_rows=pen_rows)
    for k, loss in enumerate(losses):
        alone = MinibatchObjective(loss, hp, ("r1",) if k % 2 == 0 else (), {"gamma": float(gamma[k])})
        one = alone.d_loss(lambda x: x @ psi[k, :, 0], xr[k], xf[k], _mean)
        torch.testing.assert_close(out.total[k], one.total)
        torch.testing.assert_close(out.plain[k], one.plain)


def test_bad_descriptions_are_refused():
    with pytest.raises(ObjectiveError, match="unknown loss"):
        MinibatchObjective("gann", {})
    with pytest.raises(ObjectiveError, match="unknown penalty"):
        MinibatchObjective("gan", {}, ("r3",))
    with pytest.raises(ObjectiveError, match="alpha_d"):
        MinibatchObjective("alpha_ns", {"alpha_g": 1.0})
    with pytest.raises(ObjectiveError, match="reg_every"):
        MinibatchObjective("gan", {}, reg_every=0)
    assert math.isclose(float(MinibatchObjective("gan", {}).l2_term([torch.ones(3, dtype=F64)])), 0.0)
