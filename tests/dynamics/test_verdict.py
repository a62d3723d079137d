"""The verdict classifier tells exponential convergence, slow approach, stalling, orbits and divergence
apart, with the fitted rate; checked on curves whose behaviour is known in closed form and on runs
whose behaviour follows from the linearisation."""
import math

import pytest
import torch

import dynamics as dy
from dynamics.study import make_game
from dynamics.verdict import classify_with_rates, describe, summarise

T = torch.linspace(0, 200, 801, dtype=torch.float64)


def _circle(radius: torch.Tensor, omega: float = 1.0) -> torch.Tensor:
    """States (T, 1, 2) at distance ``radius`` (T,) turning at ``omega``."""
    return torch.stack([radius * torch.cos(omega * T), radius * torch.sin(omega * T)], -1)[:, None, :]


@pytest.mark.parametrize("c", [0.02, 0.1, 0.5])
def test_exponential_spiral_is_converging_with_its_rate(c):
    z = _circle(torch.exp(-c * T))
    labels, rates = classify_with_rates(z.norm(dim=-1), z=z, t=T)
    assert labels == ["converging"]
    if c * 200 < 60:  # reached 1e-300 clamp otherwise; the rate is the decay constant
        assert rates[0] == pytest.approx(-c, rel=1e-2)


@pytest.mark.parametrize("p", [0.25, 0.5, 1.0])
def test_power_law_approach_is_slowly_converging(p):
    z = _circle((1 + T) ** -p)
    labels, rates = classify_with_rates(z.norm(dim=-1), z=z, t=T)
    assert labels == ["slowly converging"]
    assert rates[0] < 0


def test_orbits_stalls_levelling_off_and_growth():
    orbit = _circle(torch.ones_like(T))
    stalled = torch.tensor([[2.0, -1.0]], dtype=torch.float64).expand(len(T), 1, 2)
    levels_off = _circle(0.05 + torch.exp(-0.05 * T))  # the ema.png case: approaches, then a floor at 0.05
    grow = _circle(torch.exp(0.01 * T))
    for z, want in ((orbit, "oscillating"), (stalled, "stalled"), (levels_off, "slowly converging"),
                    (grow, "diverging")):
        assert classify_with_rates(z.norm(dim=-1), z=z, t=T)[0] == [want]
    # without the states a fixed point cannot be told from an orbit
    assert dy.classify(stalled.norm(dim=-1)) == ["oscillating"]
    assert classify_with_rates(grow.norm(dim=-1), t=T)[1][0] == pytest.approx(0.01, rel=1e-2)


def test_too_few_records_and_the_na_fraction():
    with pytest.raises(ValueError, match="at least 8"):
        dy.classify(torch.ones(5, 1))
    assert summarise(["n/a", "n/a"])["n/a"] == 1.0 and summarise(["converging"])["converging"] == 1.0
    assert describe("converging", -0.0523, "t") == "converging (rate −0.052/t)"


def test_gan_simgd_diverges_at_lr_0_1_and_stalls_far_out_at_lr_5():
    # simGD on a centre: ρ = √(1 + h²/4) > 1 (1.0012 at h = 0.1, 2.69 at h = 5).  At h = 0.1 the spiral
    # grows steadily.  At h = 5 the first step throws the state to ‖z‖ = 5.36, where σ(θψ) ≈ 1e-8 and the
    # field is ~1e-8: the iterates stop there.  The old classifier called that "oscillating" (the window
    # peaks did not move) while the picture shows no oscillation at all.
    game = make_game("gan")
    z0 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    for lr, want in ((0.1, "diverging"), (5.0, "stalled")):
        tr = dy.simulate(game, z0, lr=lr, steps=400)
        labels, rates = classify_with_rates(tr.distance(), z=tr.z, t=tr.t)
        assert labels == [want], lr
        assert rates[0] > 0  # both move away from the equilibrium
    tr = dy.simulate(game, z0, lr=5.0, steps=400)
    assert float(tr.distance()[1, 0]) > 5 and float((tr.z[-1] - tr.z[1]).norm()) < 0.05


def test_linearisation_decides_converging_and_nsgan_is_slow():
    # R1 (γ = 1): a double eigenvalue −1/2, so ‖z‖ ∝ t·e^{−t/2}: converging, rate near −0.5 per unit time
    ring = dy.circle_points(4, 0.5)
    tr = dy.simulate(make_game("r1"), ring, scheme="ode", steps=120, t1=60, substeps=2)
    labels, rates = classify_with_rates(tr.distance(), z=tr.z, t=tr.t)
    assert set(labels) == {"converging"} and all(-0.55 < r < -0.45 for r in rates)
    # the non-saturating GAN: eigenvalues ±i/2, a sublinear approach from the nonlinear terms
    tr = dy.simulate(make_game("nsgan"), ring, scheme="ode", steps=200, t1=200, substeps=2)
    labels = dy.classify(tr.distance(), z=tr.z, t=tr.t)
    assert set(labels) == {"slowly converging"}
    assert not math.isclose(float(tr.distance()[-1].max()), 0.0)


def test_all_methods_panels_do_not_call_a_centre_converging():
    # The nsgan panel once read "ODE: converging" beside "spectrum: not locally convergent": over
    # t ∈ [0, 30] its first half-turn decays at a steady rate.  At the figure's horizon (t = 60) the
    # deceleration shows.  A method whose linearisation is a centre (no eigenvalue with Re < 0) cannot
    # converge exponentially, so no panel may say plain "converging" where the spectrum says False,
    # and every locally convergent method must say "converging" for both schemes.
    from gcann.dirac import figures as plots

    fig = plots.all_methods(methods=["nsgan", "alpha", "gan", "r1", "conopt"], grid=4)
    for ax in fig.axes:
        title = ax.get_title()
        if not title:
            continue
        verdicts = [ln.split(": ", 1)[1] for ln in title.splitlines() if ln.startswith(("ODE:", "simGD:"))]
        assert len(verdicts) == 2, title
        if title.endswith("spectrum: not locally convergent"):
            assert not any(v.startswith("converging") for v in verdicts), title
        else:
            assert title.endswith("spectrum: locally convergent"), title
            assert all(v.startswith("converging") for v in verdicts), title
