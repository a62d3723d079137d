"""The objectives are written once for any discriminator: checked on an image-shaped batch
against torch's own losses and a hand-rolled autograd penalty."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

import dynamics as dy
from tests.support.alpha_gan_source import SourceAlphaLoss
from dynamics.objectives import ObjectiveError


@pytest.fixture
def batch():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.Flatten(),
                            torch.nn.Linear(4 * 8 * 8, 1), torch.nn.Flatten(0)).double()
    return D, torch.randn(5, 3, 8, 8, dtype=torch.float64), torch.randn(5, 3, 8, 8, dtype=torch.float64)


def test_gan_losses_equal_binary_cross_entropy(batch):
    D, xr, xf = batch
    ld, lg = dy.logit_losses("nsgan", (), D, xr, xf, {})
    ones, zeros = torch.ones(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    bce = lambda t, y: F.binary_cross_entropy_with_logits(t, y, reduction="none")  # noqa: E731
    torch.testing.assert_close(ld, bce(D(xr), ones) + bce(D(xf), zeros))
    torch.testing.assert_close(lg, bce(D(xf), ones))
    _, lg_sat = dy.logit_losses("gan", (), D, xr, xf, {})
    torch.testing.assert_close(lg_sat, -bce(D(xf), zeros))


def test_alpha_one_is_the_log_loss_and_lsgan_is_squares(batch):
    D, xr, xf = batch
    a = dy.logit_losses("alpha_ns", (), D, xr, xf, {"alpha_d": 1.0, "alpha_g": 1.0})
    b = dy.logit_losses("nsgan", (), D, xr, xf, {})
    torch.testing.assert_close(a, b)
    ld, lg = dy.logit_losses("lsgan", (), D, xr, xf, {"a": -1.0, "b": 1.0, "c": 0.0})
    torch.testing.assert_close(ld, 0.5 * (D(xr) - 1) ** 2 + 0.5 * (D(xf) + 1) ** 2)
    torch.testing.assert_close(lg, 0.5 * D(xf) ** 2)


def test_r1_and_gp_penalties_match_a_hand_rolled_gradient(batch):
    D, xr, xf = batch
    gamma = 3.0
    ld, _ = dy.logit_losses("nsgan", ("r1",), D, xr, xf, {"gamma": gamma})
    base, _ = dy.logit_losses("nsgan", (), D, xr, xf, {})
    want = []
    for i in range(5):  # one sample at a time
        x = xr[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(x).sum(), x)
        want.append(0.5 * gamma * g.pow(2).sum())
    torch.testing.assert_close(ld - base, torch.stack(want))
    eps = torch.rand(5, 1, 1, 1, dtype=torch.float64)
    xi = eps * xr + (1 - eps) * xf
    ld_gp, _ = dy.logit_losses("wgan", ("gp",), D, xr, xf, {"gamma": 2.0, "c": 1.0}, x_interp=xi)
    want = []
    for i in range(5):
        x = xi[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(x).sum(), x)
        want.append((g.norm() - 1.0) ** 2)
    torch.testing.assert_close(ld_gp - (D(xf) - D(xr)), torch.stack(want))
    with pytest.raises(ObjectiveError, match="x_interp"):
        dy.logit_losses("wgan", ("gp",), D, xr, xf, {"gamma": 2.0, "c": 1.0})


def test_penalties_are_differentiable_in_the_discriminator_weights(batch):
    D, xr, xf = batch
    ld, _ = dy.logit_losses("gan", ("r1", "roth"), D, xr, xf, {"gamma": 1.0})
    grads = torch.autograd.grad(ld.mean(), list(D.parameters()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_hinge_loss_is_the_closed_form(batch):
    # Lim & Ye (2017), Miyato et al. (2018): D minimises relu(1 − D(x_r)) + relu(1 + D(x_f)), G −D(x_f)
    D, xr, xf = batch
    ld, lg = dy.logit_losses("hinge", (), D, xr, xf, {})
    one = lambda x: D(x).detach().item()  # noqa: E731  (one sample at a time)
    want_d = [max(0.0, 1.0 - one(xr[i:i + 1])) + max(0.0, 1.0 + one(xf[i:i + 1])) for i in range(5)]
    torch.testing.assert_close(ld, torch.tensor(want_d, dtype=torch.float64))
    torch.testing.assert_close(lg, torch.tensor([-one(xf[i:i + 1]) for i in range(5)], dtype=torch.float64))
    # both hinges active and inactive: logits ±3 and ±0.5 by hand
    r, f = torch.tensor([3.0, 0.5, -2.0]), torch.tensor([-3.0, -0.5, 2.0])
    ctx = None
    torch.testing.assert_close(dy.GAN_LOSSES["hinge"].d(r, f, ctx), torch.tensor([0.0, 0.5 + 0.5, 3.0 + 3.0]))
    torch.testing.assert_close(dy.GAN_LOSSES["hinge"].g(f, ctx), torch.tensor([3.0, 0.5, -2.0]))


def test_hinge_base_under_r1_has_the_closed_form_dirac_field():
    # D_ψ(x) = ψx, real at 0: loss_d = 1 + relu(1 + ψθ) + γ/2 ψ², loss_g = −ψθ
    # v = (ψ, −θ·[ψθ > −1] − γψ)
    from dynamics.study import make_game

    game = make_game("r1", {"gamma": 0.7}, base="hinge")
    z = torch.tensor([[0.5, 1.0], [2.0, -1.5], [-1.0, 3.0]], dtype=torch.float64)
    th, ps = z[:, 0], z[:, 1]
    want = torch.stack([ps, -th * (ps * th > -1).double() - 0.7 * ps], dim=1)
    torch.testing.assert_close(game.field(z), want)


ALL_HP = {"a": -1.0, "b": 1.0, "c": 0.5, "alpha_d": 1.5, "alpha_g": 0.7, "lam": 2.0, "gamma": 3.0}


@pytest.mark.parametrize("penalty", [(), *[(p,) for p in dy.PENALTIES]])
@pytest.mark.parametrize("loss", sorted(dy.GAN_LOSSES))
def test_a_b_by_1_discriminator_gives_the_per_sample_losses_of_a_flat_one(batch, loss, penalty):
    # most discriminators end in Linear(·, 1): shape (B, 1).  Before the fix, R1 on nsgan gave
    # loss_d of shape (B, B) whose .mean() was right by luck and whose per-sample values were not.
    D, xr, xf = batch
    D_col = torch.nn.Sequential(*list(D)[:-1])  # the same network without the final Flatten(0)
    assert D_col(xr).shape == (5, 1)
    hp = {k: ALL_HP[k] for k in {*dy.GAN_LOSSES[loss].params, *(k for p in penalty for k in dy.PENALTIES[p].params)}}
    eps = torch.rand(5, 1, 1, 1, dtype=torch.float64)
    xi = eps * xr + (1 - eps) * xf
    flat = dy.logit_losses(loss, penalty, D, xr, xf, hp, x_interp=xi)
    col = dy.logit_losses(loss, penalty, D_col, xr, xf, hp, x_interp=xi)
    for a, b in zip(flat, col):
        assert a.shape == b.shape == (5,)
        torch.testing.assert_close(b, a)
    # the flat values one sample at a time (a batch of one cannot mix rows)
    for i in range(5):
        one = dy.logit_losses(loss, penalty, D, xr[i:i + 1], xf[i:i + 1], hp, x_interp=xi[i:i + 1])
        torch.testing.assert_close(col[0][i:i + 1], one[0])
        torch.testing.assert_close(col[1][i:i + 1], one[1])


@pytest.mark.parametrize("shape", [(5, 2), (5, 1, 1), (), (1, 5), (4,)])
def test_a_discriminator_of_any_other_shape_is_refused_naming_the_shape(batch, shape):
    _, xr, xf = batch
    D = lambda x: x.sum() * torch.ones(shape, dtype=x.dtype)  # noqa: E731
    for penalty in ((), ("r1",), ("roth",)):
        with pytest.raises(ObjectiveError, match=r"one logit per sample.*got " + re.escape(str(shape))):
            dy.logit_losses("nsgan", penalty, D, xr, xf, {"gamma": 1.0})


def test_unknown_names_and_missing_hyper_parameters_are_objective_errors(batch):
    D, xr, xf = batch
    with pytest.raises(ObjectiveError, match="unknown penalty 'r3'"):
        dy.logit_losses("nsgan", ("r3",), D, xr, xf, {"gamma": 1.0})
    with pytest.raises(ObjectiveError, match="unknown loss 'bce'"):
        dy.logit_losses("bce", (), D, xr, xf, {})
    with pytest.raises(ObjectiveError, match=r"needs hyper-parameter\(s\) \['gamma'\]"):
        dy.logit_losses("nsgan", ("r1",), D, xr, xf, {})
    with pytest.raises(ObjectiveError, match=r"\['a', 'b', 'c'\]"):
        dy.logit_losses("lsgan", (), D, xr, xf, {})
    # a custom objective reading a hyper-parameter it was not given
    mine = dy.custom_objective(lambda th, ps, hp: (th * ps).sum(-1) + hp["k"] * (ps**2).sum(-1),
                               lambda th, ps, hp: -(th * ps).sum(-1))
    with pytest.raises(ObjectiveError, match="reads hyper-parameter 'k'"):
        dy.DiracGAN(mine).field(torch.ones(1, 2, dtype=torch.float64))
    scalar = dy.custom_objective(lambda th, ps, hp: (th * ps).sum(), lambda th, ps, hp: -(th * ps).sum(-1))
    with pytest.raises(ObjectiveError, match=r"loss_d must have shape \(3,\)"):
        dy.DiracGAN(scalar).field(torch.ones(3, 2, dtype=torch.float64))


# --------------------------------------------------------------------------- #
# The (α_D, α_G)-losses' clamp: against a transcription of the authors' code
# --------------------------------------------------------------------------- #
def _source_losses(alpha_d, alpha_g, r, f, saturating):
    """The source's D loss (reals labelled 1, fakes 0) and G loss (``flip``: non-saturating)."""
    crit_d, crit_g = SourceAlphaLoss(alpha_d), SourceAlphaLoss(alpha_g)
    ld = crit_d(r, torch.ones_like(r)) + crit_d(f, torch.zeros_like(f))
    lg = -crit_g(f, torch.zeros_like(f)) if saturating else crit_g(f, torch.ones_like(f))
    return ld, lg


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["alpha_sat", "alpha_ns"])
@pytest.mark.parametrize("alpha_d,alpha_g", [(1.0, 1.0), (0.3, 1.0), (0.2, 1.0), (0.5, 1.2), (3.0, 0.6)])
@pytest.mark.parametrize("per_row", [False, True])
def test_the_clamped_alpha_loss_is_the_sources_in_value_and_gradient(dtype, loss, alpha_d, alpha_g, per_row):
    t = torch.linspace(-120, 120, 4801, dtype=dtype)          # steps of 0.05 through both clamps
    n = t.numel()
    # one α (Python numbers: the source's own operations) or one α per row (float64 tensors, as the ring passes)
    alphas = {"alpha_d": torch.full((n,), alpha_d, dtype=torch.float64), "alpha_g":
              torch.full((n,), alpha_g, dtype=torch.float64)} if per_row else {"alpha_d": alpha_d, "alpha_g": alpha_g}
    # per row, A and 1/A are rounded to t's precision before the power (the source keeps them in double)
    tol = dict(rtol=2e-6, atol=0) if per_row and dtype == torch.float32 else dict(rtol=1e-12, atol=0)
    spec = dy.objectives.GAN_LOSSES[loss]
    r, f = t.clone().requires_grad_(True), t.flip(0).clone().requires_grad_(True)
    r2, f2 = t.clone().requires_grad_(True), t.flip(0).clone().requires_grad_(True)
    ctx = dy.objectives.Context(r, f, {**alphas, "clamp": 1e-7})
    ld, lg = spec.d(r, f, ctx), spec.g(f, ctx)
    sd, sg = _source_losses(alpha_d, alpha_g, r2, f2, loss == "alpha_sat")
    torch.testing.assert_close(ld, sd, **tol)
    torch.testing.assert_close(lg, sg, **tol)
    # D's gradient in its real and its fake logit, G's in the fake logit: each against the source's
    for mine, src in ((ld, sd), (lg, sg)):
        for x, x2 in ((r, r2), (f, f2)):
            if mine is lg and x is r:
                continue
            (gm,), (gs,) = torch.autograd.grad(mine.sum(), x, retain_graph=True), \
                torch.autograd.grad(src.sum(), x2, retain_graph=True)
            torch.testing.assert_close(gm, gs, **tol)
            assert torch.isfinite(gm).all()


def test_the_clamp_changes_what_the_exact_loss_says_at_extreme_logits():
    hp = {"alpha_d": 1.0, "alpha_g": 1.0}
    f = torch.tensor([17.0], requires_grad=True)               # a fake D calls real at logit 17
    exact = dy.objectives.GAN_LOSSES["alpha_sat"].d(torch.zeros(1), f, dy.objectives.Context(f, f, hp))
    clamped = dy.objectives.GAN_LOSSES["alpha_sat"].d(torch.zeros(1), f,
                                                      dy.objectives.Context(f, f, {**hp, "clamp": 1e-7}))
    # exact: log 2 + softplus(17) ≈ 17.69; the source's, in float32: σ(17) rounds to 1, log(0) clamps at −100
    assert abs(float(exact.detach()) - (math.log(2) + 17.0)) < 1e-3
    assert float(clamped.detach()) == pytest.approx(math.log(2) + 100.0, rel=1e-6)
    # α ≠ 1: past the clamp of σ a sample gives G no gradient; the exact loss still does
    g = torch.tensor([-30.0], requires_grad=True)
    for clamp, has_grad in ((0.0, True), (1e-7, False)):
        lg = dy.objectives.GAN_LOSSES["alpha_ns"].g(g, dy.objectives.Context(g, g, {"alpha_d": 0.3, "alpha_g": 0.3,
                                                                                   "clamp": clamp}))
        (grad,) = torch.autograd.grad(lg.sum(), g)
        assert (float(grad) != 0.0) == has_grad


def test_logit_losses_honours_the_clamp_and_refuses_a_bad_one(batch):
    D, xr, xf = batch
    D = torch.nn.Sequential(D, torch.nn.Identity())
    scale = lambda x: 1000.0 * D(x)   # noqa: E731 -- logits far past the clamp
    hp = {"alpha_d": 0.3, "alpha_g": 1.0}
    ld, lg = dy.logit_losses("alpha_ns", (), scale, xr, xf, {**hp, "clamp": 1e-7})
    sd, sg = _source_losses(0.3, 1.0, scale(xr), scale(xf), saturating=False)
    torch.testing.assert_close(ld, sd)
    torch.testing.assert_close(lg, sg)
    ld0, _ = dy.logit_losses("alpha_ns", (), scale, xr, xf, hp)
    assert not torch.allclose(ld0, ld)                           # the default stays exact
    for bad in (-1e-3, 0.5, torch.tensor([1e-7, 1e-6])):
        with pytest.raises(ObjectiveError, match="clamp"):
            dy.logit_losses("alpha_ns", (), scale, xr, xf, {**hp, "clamp": bad})
