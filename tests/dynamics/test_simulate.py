"""Simulators: batched equals row-by-row, optimisers equal torch.optim, ODE equals expm."""
import numpy as np
import pytest
import scipy.linalg
import torch

import dynamics as dy
from dynamics.study import make_game


def _grid_case():
    z0 = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.2], [2.0, 0.1]], dtype=torch.float64)
    gam = torch.tensor([0.1, 0.5, 1.0, 3.0], dtype=torch.float64)
    lr_d = torch.tensor([0.05, 0.1, 0.2, 0.05], dtype=torch.float64)
    lr_g = torch.tensor([0.1, 0.05, 0.2, 0.3], dtype=torch.float64)
    return z0, gam, lr_d, lr_g


@pytest.mark.parametrize("scheme,opt", [("simgd", "sgd"), ("altgd", "sgd"), ("simgd", "adam"),
                                        ("altgd", "rmsprop"), ("ode", None)])
def test_batched_equals_row_by_row(scheme, opt):
    z0, gam, lr_d, lr_g = _grid_case()
    game = make_game("r1")
    kw = dict(scheme=scheme, steps=60, ema_beta=0.9)
    if scheme == "ode":
        kw.update(t1=5.0, ode_method="rk4")
    else:
        kw.update(optimizer=dy.OptimiserSpec(opt, momentum=0.5) if opt == "sgd" else opt, n_d=2)
    full = dy.simulate(game, z0, hp={"gamma": gam}, lr_d=lr_d, lr_g=lr_g, **kw)
    for i in range(len(z0)):
        one = dy.simulate(game, z0[i:i + 1], hp={"gamma": float(gam[i])}, lr_d=float(lr_d[i]), lr_g=float(lr_g[i]), **kw)
        torch.testing.assert_close(full.z[:, i], one.z[:, 0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(full.z_ema[:, i], one.z_ema[:, 0], rtol=1e-12, atol=1e-14)


def test_adaptive_ode_batched_equals_row_by_row():
    # each row has its own step size, so a batch gives exactly the rows' numbers
    z0, gam, _, _ = _grid_case()
    game = make_game("r1")
    full = dy.simulate(game, z0, hp={"gamma": gam}, scheme="ode", ode_method="dopri5", steps=20, t1=10.0)
    for i in range(len(z0)):
        one = dy.simulate(game, z0[i:i + 1], hp={"gamma": float(gam[i])}, scheme="ode", ode_method="dopri5",
                          steps=20, t1=10.0)
        torch.testing.assert_close(full.z[:, i], one.z[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_ode_matches_matrix_exponential(method):
    # WGAN-GP with c = 0 on the Dirac-GAN is linear: ż = A z, A = [[0, 1], [−1, −γ]]
    gamma = 0.7
    A = np.array([[0.0, 1.0], [-1.0, -gamma]])
    z0 = np.array([1.3, -0.4])
    game = make_game("wgan_gp", {"gamma": gamma, "c": 0.0})
    tr = dy.simulate(game, torch.tensor(z0), scheme="ode", ode_method=method, steps=10, t1=8.0, substeps=50,
                     rtol=1e-10, atol=1e-12)
    for k, t in enumerate(tr.t.tolist()):
        np.testing.assert_allclose(tr.z[k, 0].numpy(), scipy.linalg.expm(A * t) @ z0, atol=1e-8)


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.7)),
    ("adam", lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999), eps=1e-8)),
    ("rmsprop", lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.99, eps=1e-8)),
])
def test_optimisers_match_torch_optim(name, make):
    game = make_game("nsgan")
    z0 = torch.tensor([[0.8, -0.6]], dtype=torch.float64)
    spec = dy.OptimiserSpec(name, momentum=0.7, betas=(0.5, 0.999))
    tr = dy.simulate(game, z0, scheme="simgd", optimizer=spec, lr_d=0.03, lr_g=0.05, steps=40)
    theta = torch.nn.Parameter(z0[:, :1].clone())
    psi = torch.nn.Parameter(z0[:, 1:].clone())
    og, od = make([theta], 0.05), make([psi], 0.03)
    for k in range(40):
        v = game.field(torch.cat([theta.detach(), psi.detach()], 1))
        theta.grad, psi.grad = -v[:, :1].clone(), -v[:, 1:].clone()
        og.step()
        od.step()
        torch.testing.assert_close(tr.z[k + 1, 0], torch.cat([theta.detach(), psi.detach()], 1)[0], rtol=1e-12, atol=1e-14)


def test_ema_in_loop_equals_post_hoc():
    game = make_game("gan")
    tr = dy.simulate(game, dy.circle_points(5, 1.0), steps=100, lr=0.1, ema_beta=0.95)
    torch.testing.assert_close(tr.z_ema, dy.ema(tr.z, 0.95))


def test_ema_of_a_circle_is_nearer_the_centre():
    # the unregularised GAN ODE moves on circles; the EMA of the iterates sits near the centre (Su 2019)
    tr = dy.simulate(make_game("gan"), dy.circle_points(8, 1.0), scheme="ode", steps=2000, t1=400.0, substeps=2, ema_beta=0.995)
    assert float(tr.distance()[-1].min()) > 0.99
    assert float(tr.distance(ema=True)[-1].max()) < 0.2


def test_classification_of_known_behaviours():
    t = torch.linspace(0, 100, 400, dtype=torch.float64)[:, None]
    decay = torch.exp(-0.1 * t)
    circle = torch.ones_like(t) * (1 + 0.1 * torch.sin(t))
    grow = torch.exp(0.05 * t)
    limit_cycle = 2 - torch.exp(-0.2 * t)
    nan = decay.clone()
    nan[300] = float("nan")
    d = torch.cat([decay, circle, grow, limit_cycle, nan], 1)
    assert dy.classify(d) == ["converging", "oscillating", "diverging", "oscillating", "diverging"]


@pytest.mark.parametrize("kw,msg", [
    (dict(lr=0.0), "lr_d must be > 0"),
    (dict(lr_g=-1.0), "lr_g must be > 0"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(scheme="euler"), "unknown scheme"),
    (dict(optimizer="lbfgs"), "unknown optimizer"),
    (dict(ema_beta=1.0), "ema_beta must be in [0, 1)"),
    (dict(hp={"gamma": -1.0}), "gamma must be >= 0"),
    (dict(hp={"sigma": 1.0}), "has no hyper-parameter"),
])
def test_bad_input_names_the_parameter(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace(")", r"\)")):
        dy.simulate(make_game("r1"), torch.tensor([[1.0, 1.0]], dtype=torch.float64), **kw)


def test_non_finite_initial_point_and_memory_are_refused():
    with pytest.raises(dy.SimulationError, match="finite"):
        dy.simulate(make_game("r1"), torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(dy.SimulationError, match="grid too large for memory"):
        dy.simulate(make_game("r1"), torch.zeros(1000, 2, dtype=torch.float64), steps=10_000, memory_limit=1 << 20)
    with pytest.raises(dy.ObjectiveError, match="sigma must be >= 0"):
        dy.get_objective("instance_noise", sigma=-0.1)
    with pytest.raises(dy.ObjectiveError, match="unknown method"):
        dy.get_objective("vanilla")


@pytest.mark.parametrize("scheme", ["simgd", "altgd"])
def test_compiled_chunks_equal_eager(scheme):
    z0, gam, lr_d, lr_g = _grid_case()
    game = make_game("r1")
    kw = dict(scheme=scheme, steps=13, hp={"gamma": gam}, lr_d=lr_d, lr_g=lr_g, ema_beta=0.8, record_every=2)
    eager = dy.simulate(game, z0, **kw)
    comp = dy.simulate(game, z0, compile=True, chunk=4, **kw)  # 3 compiled chunks of 4 steps, then 1 eager step
    assert comp.info["compiled"] and not eager.info["compiled"]
    torch.testing.assert_close(comp.t, eager.t)
    torch.testing.assert_close(comp.z, eager.z, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(comp.z_ema, eager.z_ema, rtol=1e-12, atol=1e-14)
    with pytest.raises(dy.SimulationError, match="plain SGD"):
        dy.simulate(game, z0, compile=True, optimizer="adam", steps=4)
