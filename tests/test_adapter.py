"""The adapter writes decided learning rates into torch optimizers and plans the steps;
the DCGAN models have the standard shapes and initialisation."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from gcann.adapter import GCANNAdapter, StepPlan, plan, set_lr
from gcann.controller import Decision, GCANNConfig, GCANNController
from gcann.models import DCGANDiscriminator, DCGANGenerator


def lrs(opt: torch.optim.Optimizer) -> list[float]:
    return [g["lr"] for g in opt.param_groups]


def make(config: GCANNConfig) -> tuple[GCANNAdapter, nn.Module, nn.Module]:
    torch.manual_seed(0)
    d, g = nn.Linear(4, 1), nn.Linear(2, 4)
    opt_d = torch.optim.Adam(d.parameters(), lr=0.5)
    opt_g = torch.optim.SGD([{"params": [g.weight]}, {"params": [g.bias]}], lr=0.5)
    return GCANNAdapter(GCANNController(config), opt_d, opt_g), d, g


CONFIG = GCANNConfig(lr_d=1e-3, lr_g=2e-3, baseline_steps=2, gc_lr_window=1000, cooldown_period=0)


def test_construction_syncs_the_optimizers() -> None:
    adapter, _, _ = make(CONFIG)
    assert lrs(adapter.opt_d) == [1e-3] and lrs(adapter.opt_g) == [2e-3, 2e-3]


def test_observe_applies_adjusted_learning_rates_to_every_group() -> None:
    adapter, _, _ = make(CONFIG)
    for _ in range(2):
        adapter.observe(torch.tensor(1.0), torch.tensor(1.0))
    dec = adapter.observe(torch.tensor(0.5, requires_grad=True), 5.5)
    assert dec.events[0].reason == "d_overpowering"
    assert lrs(adapter.opt_d) == [dec.lr_d] and dec.lr_d == pytest.approx(1e-3 * 0.2)
    assert lrs(adapter.opt_g) == [dec.lr_g] * 2 and dec.lr_g == pytest.approx(2e-3 * 1.6)


def test_plan_counts_regular_and_extra_steps() -> None:
    dec = Decision(step=0, train_d=False, train_g=True, extra_d_steps=0, extra_g_steps=4,
                   lr_d=1.0, lr_g=1.0, use_diversity=True)
    assert plan(dec) == StepPlan(d_steps=0, g_steps=5, use_diversity=True)
    assert plan(Decision(1, True, True, 3, 0, 1.0, 1.0, False)) == StepPlan(4, 1, False)


def test_training_loop_steps_as_planned() -> None:
    """A tiny GAN loop: optimizer steps taken match the plan, lrs follow the decisions."""
    adapter, d, g = make(GCANNConfig(lr_d=1e-2, lr_g=1e-2, baseline_steps=5, gc_lr_window=5,
                                     cooldown_period=3, max_loss_diff=0.5, p=2))
    taken = {"d": 0, "g": 0}
    adapter.opt_d.register_step_post_hook(lambda *_: taken.__setitem__("d", taken["d"] + 1))
    adapter.opt_g.register_step_post_hook(lambda *_: taken.__setitem__("g", taken["g"] + 1))
    bce = nn.BCEWithLogitsLoss()
    planned = {"d": 0, "g": 0}
    events = 0
    for i in range(40):
        real, z = torch.randn(8, 4) + 2, torch.randn(8, 2)
        fake = g(z)
        loss_d = bce(d(real), torch.ones(8, 1)) + bce(d(fake.detach()), torch.zeros(8, 1))
        loss_g = bce(d(fake), torch.ones(8, 1)) * (3.0 if i > 20 else 1.0)  # force an imbalance later
        dec = adapter.observe(loss_d, loss_g)
        events += sum(e.event in ("reactive", "proactive") for e in dec.events)
        steps = plan(dec)
        planned["d"] += steps.d_steps
        planned["g"] += steps.g_steps
        loss_g = adapter.generator_loss(loss_g, fake, dec)
        for _ in range(steps.d_steps):
            adapter.opt_d.zero_grad()
            (bce(d(real), torch.ones(8, 1)) + bce(d(g(z).detach()), torch.zeros(8, 1))).backward()
            adapter.opt_d.step()
        for _ in range(steps.g_steps):
            adapter.opt_g.zero_grad()
            adapter.generator_loss(bce(d(g(z)), torch.ones(8, 1)), g(z), dec).backward()
            adapter.opt_g.step()
        assert lrs(adapter.opt_d) == [dec.lr_d] and lrs(adapter.opt_g) == [dec.lr_g] * 2
    assert taken == planned
    assert events > 0


def test_generator_loss_adds_diversity_only_when_decided() -> None:
    adapter, _, _ = make(CONFIG)
    fake = torch.zeros(4, 3)
    on = Decision(0, True, True, 0, 0, 1.0, 1.0, use_diversity=True)
    off = Decision(1, True, True, 0, 0, 1.0, 1.0, use_diversity=False)
    base = torch.tensor(1.0)
    assert adapter.generator_loss(base, fake, off) is base
    assert adapter.generator_loss(base, fake, on).item() == pytest.approx(1.0 + 3.0, abs=1e-4)
    paper, _, _ = make(replace(CONFIG, diversity_scaling="paper"))
    expected = 1.0 + 0.001 + 1.0 / (1 - math.exp(-3.0))  # identical samples: u = 1 (to 1e-6), weight 1
    assert paper.generator_loss(base, fake, on).item() == pytest.approx(expected, abs=1e-4)


def test_resume_syncs_restored_learning_rates() -> None:
    adapter, _, _ = make(CONFIG)
    for loss_d, loss_g in ((1.0, 1.0), (1.0, 1.0), (0.5, 5.5)):
        adapter.observe(loss_d, loss_g)
    state = json.loads(json.dumps(adapter.controller.state_dict()))
    fresh, _, _ = make(CONFIG)
    fresh.controller.load_state_dict(state)
    fresh.sync()
    assert lrs(fresh.opt_d) == lrs(adapter.opt_d) and lrs(fresh.opt_g) == lrs(adapter.opt_g)


def test_set_lr() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    set_lr(opt, 0.25)
    assert lrs(opt) == [0.25]


@pytest.mark.parametrize("nc", [1, 3])
def test_dcgan_shapes_and_init(nc: int) -> None:
    torch.manual_seed(0)
    gen, disc = DCGANGenerator(nz=16, ngf=8, nc=nc), DCGANDiscriminator(ndf=8, nc=nc)
    z = gen.sample_latent(5)
    x = gen(z)
    assert z.shape == (5, 16) and x.shape == (5, nc, 64, 64)
    assert x.abs().max() <= 1
    assert disc(x).shape == (5,)
    assert gen(z.reshape(5, 16, 1, 1)).shape == x.shape
    conv = disc.net[2].weight
    assert abs(conv.std().item() - 0.02) < 0.005 and abs(conv.mean().item()) < 0.005


def test_dcgan_default_sizes() -> None:
    gen, disc = DCGANGenerator(), DCGANDiscriminator()
    n_gen = sum(p.numel() for p in gen.parameters())
    n_disc = sum(p.numel() for p in disc.parameters())
    assert (n_gen, n_disc) == (3576704, 2765568)  # the DCGAN 64x64 reference sizes


def test_set_lr_changes_a_tensor_rate_in_place():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([w], lr=torch.tensor(1e-3), capturable=False, foreach=False)
    held = opt.param_groups[0]["lr"]
    set_lr(opt, 5e-4)
    assert opt.param_groups[0]["lr"] is held and float(held) == pytest.approx(5e-4)
    opt2 = torch.optim.Adam([w], lr=1e-3)
    set_lr(opt2, 2e-3)
    assert opt2.param_groups[0]["lr"] == 2e-3
