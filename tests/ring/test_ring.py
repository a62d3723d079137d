"""Seed 002's ring study, batched (gcann/ring): data, batched seeds, masked Adam, controller masks."""
from __future__ import annotations

import json

import math
from dataclasses import replace

import numpy as np

import pytest
import torch
from torch import nn

from tests.support.alpha_gan_source import SourceAlphaLoss
from gcann.controller import GCANNConfig, GCANNController
from gcann.metrics.toy import ring_modes
from gcann.ring import RingSetting, ring_gcann_config, train_ring
from gcann.ring.data import SeedStreams, SourceStreams, data_generator, noise_generator, source_pools
from dynamics.optim import RowOptimiser
from gcann.ring.models import DISCRIMINATOR, GENERATOR, init_mlp, mlp_forward
from gcann.ring.train import StateError

SMALL = dict(n_train=512, curve_every=0, form="exact")
SMALL_SOURCE = dict(n_train=300, curve_every=0, form="source", eval_samples=100)   # steps of 128, 128 and 44


def active_config(**kw) -> GCANNConfig:
    """A controller that acts at almost every step on BCE-sized losses (gap > 0.05): catch-up bursts,
    learning-rate changes and the diversity term all occur within a few steps."""
    base = dict(lr_d=1e-4, lr_g=1e-4, baseline_steps=0, gc_lr_window=2, cooldown_period=0, max_loss_diff=0.05,
                p=2, max_skip_iterations=3, diversity_check_interval=2)
    return GCANNConfig(**{**base, **kw})


# --------------------------------------------------------------------------- data
def test_training_set_and_noise_distributions():
    S = 2
    gens = [data_generator(s) for s in range(S)]
    st = SeedStreams(ring_modes(), gens, [noise_generator(s) for s in range(S)], n_train=20_000)
    x = st.data.double()                                                     # (S, N, 2)
    means = ring_modes().means                                               # (cos 2πi/8, sin 2πi/8)
    d2 = (x[..., None, :] - means).square().sum(-1)                          # (S, N, 8)
    nearest = d2.argmin(-1)
    resid = x - means[nearest]
    assert resid.std().item() == pytest.approx(0.01, rel=0.03)               # variance 1e-4 per coordinate
    assert resid.abs().max().item() < 0.01 * 6
    freq = torch.stack([(nearest == i).double().mean() for i in range(8)])
    assert (freq - 1 / 8).abs().max().item() < 0.01                          # equal weights
    assert not torch.equal(st.data[0], st.data[1])                           # one training set per seed
    z = torch.cat([st.latent() for _ in range(100)], dim=1).double()        # (S, 12800, 2)
    assert z.mean().abs().item() < 0.03 and z.std().item() == pytest.approx(1.0, rel=0.03)
    cov = torch.cov(z[0].T)
    assert cov[0, 1].abs().item() < 0.03


def test_an_epoch_visits_each_point_at_most_once_and_masked_seeds_do_not_draw():
    gens = [data_generator(s) for s in range(3)]
    st = SeedStreams(ring_modes(), gens, [noise_generator(s) for s in range(3)], n_train=640, batch_size=128)
    batches = [st.real() for _ in range(5)]                                  # one epoch: 5 batches
    seen = torch.cat(batches, dim=1)[0]
    assert torch.unique(seen, dim=0).shape[0] == 640                         # a permutation of the set
    mask = torch.tensor([True, False, True])
    before = st.batch_pos.clone(), st.noise_pos.clone()
    st.real(mask), st.latent(mask)
    assert st.batch_pos[1] == before[0][1] and st.noise_pos[1] == before[1][1]
    assert st.noise_pos[0] == before[1][0] + 1


# --------------------------------------------------------------------------- models
def _reference_mlp(sizes, act, params, k):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(params[2 * i][k].T)
            lin.bias.copy_(params[2 * i + 1][k, 0])
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def test_init_is_nn_linear_s_and_forward_matches_nn_sequential():
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    G, D = init_mlp(GENERATOR, gens), init_mlp(DISCRIMINATOR, gens)
    assert [tuple(p.shape) for p in D[:2]] == [(3, 2, 200), (3, 1, 200)]
    assert sum(p[0].numel() for p in G) == GENERATOR.n_params == 2 * 400 + 400 + 3 * (400 * 400 + 400) + 400 * 2 + 2
    w = G[2]                                                                  # second layer: fan_in 400
    assert w.abs().max().item() <= 1 / math.sqrt(400)
    assert w.std().item() == pytest.approx(1 / math.sqrt(400) / math.sqrt(3), rel=0.02)   # U(±1/√fan_in)
    x = torch.randn(3, 7, 2)
    for spec, params in ((GENERATOR, G), (DISCRIMINATOR, D)):
        ref = _reference_mlp(spec.sizes, spec.act, params, 1)
        torch.testing.assert_close(mlp_forward(spec, params, x)[1], ref(x[1]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_seed_fused", [True, False])  # the CPU's path, and the GPU's multi-tensor path
def test_masked_adam_equals_torch_adam_and_leaves_masked_seeds_untouched(per_seed_fused):
    torch.manual_seed(0)
    params = [torch.randn(3, 4, 5), torch.randn(3, 1, 5)]
    ref = [p[0].clone().requires_grad_(True) for p in params]
    torch_adam = torch.optim.Adam(ref, lr=1e-2, betas=(0.9, 0.99), foreach=False)
    opt = RowOptimiser(params, "adam", betas=(0.9, 0.99), fused=per_seed_fused)
    frozen = [p[1].clone() for p in params]
    lr = torch.tensor([1e-2, 1e-2, 3e-2])
    for t in range(6):
        grads = [torch.randn_like(p) for p in params]
        mask = torch.tensor([True, False, t % 2 == 0])
        opt.step(grads, lr, mask)
        for r, g in zip(ref, grads):
            r.grad = g[0].clone()
        torch_adam.step()
    for p, r in zip(params, ref):
        torch.testing.assert_close(p[0], r.detach(), rtol=1e-6, atol=1e-7)
    for p, f in zip(params, frozen):
        assert torch.equal(p[1], f)                                           # masked out: parameters kept
    assert torch.equal(opt.exp_avg[0][1], torch.zeros(4, 5)) and int(opt.steps[1]) == 0   # ... and Adam state
    assert opt.steps.tolist() == [6, 0, 3]


def test_the_gpu_multi_tensor_adam_paths_agree_with_each_other_and_torch_adam():
    """The GPU's paths, run here on the CPU: an all-seeds step through ``step`` (mask all True), through
    ``step_all_on_device`` (the CUDA graph's, counts on the device) and the masked form with one seed
    left out give the same bits for the seeds they update, and follow torch.optim.Adam."""
    torch.manual_seed(2)
    base = [torch.randn(3, 5, 4), torch.randn(3, 1, 4)]
    lr = torch.tensor([1e-2, 2e-2, 5e-3], dtype=torch.float64)
    runs = []
    for kind in ("step", "device", "masked"):
        params = [p.clone() for p in base]
        opt = RowOptimiser(params, "adam", betas=(0.9, 0.99), fused=False)
        steps = torch.zeros(3, dtype=torch.long)
        gen = torch.Generator().manual_seed(5)
        for _ in range(5):
            grads = [torch.randn(p.shape, generator=gen) for p in params]
            if kind == "step":
                opt.step(grads, lr, torch.ones(3, dtype=torch.bool))
            elif kind == "device":
                opt.step_all_on_device(grads, lr, steps)
            else:
                opt.step(grads, lr, torch.tensor([True, True, False]))
        runs.append(params)
    for i, (a, b, c) in enumerate(zip(*runs)):
        assert torch.equal(a, b) and torch.equal(a[:2], c[:2])
        assert torch.equal(c[2], base[i][2])                                   # the masked-out seed kept
    ref = [base[i][1].clone().requires_grad_(True) for i in range(2)]
    adam = torch.optim.Adam(ref, lr=2e-2, betas=(0.9, 0.99), foreach=False)
    gen = torch.Generator().manual_seed(5)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in base]
        for r, g in zip(ref, grads):
            r.grad = g[1].clone()
        adam.step()
    for p, r in zip(runs[0], ref):
        torch.testing.assert_close(p[1], r.detach(), rtol=1e-6, atol=1e-7)


def test_masked_adam_on_the_cpu_is_torch_adams_fused_kernel_bit_for_bit():
    """Each seed of a stacked tensor, updated at its own rate and count, equals a lone torch.optim.Adam
    (fused=True) on that seed's tensors exactly, also when other seeds are masked out."""
    torch.manual_seed(1)
    params = [torch.randn(4, 6, 7), torch.randn(4, 1, 7)]
    lr = torch.tensor([1e-3, 2e-3, 5e-4, 1e-3], dtype=torch.float64)
    refs = [[p[k].clone().requires_grad_(True) for p in params] for k in range(4)]
    adams = [torch.optim.Adam(r, lr=float(lr[k]), betas=(0.9, 0.99), fused=True) for k, r in enumerate(refs)]
    opt = RowOptimiser(params, "adam", betas=(0.9, 0.99))
    for t in range(7):
        grads = [torch.randn_like(p) for p in params]
        mask = torch.tensor([True, t % 3 != 1, False, t % 2 == 0])
        opt.step(grads, lr, mask)
        for k in mask.nonzero().flatten().tolist():
            for r, g in zip(refs[k], grads):
                r.grad = g[k].clone()
            adams[k].step()
    for k in range(4):
        assert all(torch.equal(p[k], r.detach()) for p, r in zip(params, refs[k])), k


# --------------------------------------------------------------------------- the source form
# Transcribed from the authors' experiments/2D.py (SankarLab/AlphaGan-Papers-Results): data and code pools
# under seed 1, then the run's seed, G and D with nn.Linear's initialisation, and two shuffling DataLoaders
# (codes, points) zipped, the last short batch kept.
def _source_pools_by_their_code(n_train, n_test):
    torch.manual_seed(1)
    np.random.seed(1)
    means = [torch.Tensor([np.cos(2 * np.pi * i / 8), np.sin(2 * np.pi * i / 8)]) for i in range(1, 9)]
    modes = list(zip(means, [np.sqrt(1e-4)] * 8))
    probs = [1 / len(modes)] * len(modes)

    def get_data(size):
        indices = np.random.choice(len(modes), size, p=probs)
        return [modes[i][0] + modes[i][1] * torch.randn(2) for i in indices]

    def make_noise(size):
        t = torch.randn(size, 2)
        return [t[i, :] for i in range(size)]
    train, test = get_data(n_train), get_data(n_test)
    return train, test, make_noise(n_train), make_noise(n_test)


def _source_models(seed):
    torch.manual_seed(seed)

    def mlp(width, act, out):
        layers = [nn.Linear(2, width), act()]
        for _ in range(3):
            layers += [nn.Linear(width, width), act()]
        return nn.Sequential(*layers, nn.Linear(width, out))
    return mlp(400, nn.ReLU, 2), mlp(200, lambda: nn.LeakyReLU(0.2), 1)


def test_the_source_pools_are_the_authors_draws_and_every_seed_shares_them():
    train, test, noise, test_noise = _source_pools_by_their_code(300, 100)
    pools = source_pools("ring", 300, 100)
    assert torch.equal(pools.train_data, torch.stack(train)) and torch.equal(pools.test_data, torch.stack(test))
    assert torch.equal(pools.train_codes, torch.stack(noise)) and torch.equal(pools.test_codes, torch.stack(test_noise))
    # the default size: 50,000 points in 391 batches, the last of 80
    st = SourceStreams(source_pools("ring", 50_000, 10), [data_generator(0), data_generator(1)])
    assert st.batches_per_epoch == 391 and st.data.shape == (50_000, 2)
    for _ in range(390):
        x, z, n = st.batch()
    assert n.tolist() == [128, 128]
    x, z, n = st.batch()
    assert n.tolist() == [80, 80] and st.epochs.tolist() == [1, 1]
    assert (x[:, 80:] == 0).all() and (z[:, 80:] == 0).all()
    # two seeds: the same points and codes, in other orders
    assert not torch.equal(x[0, :80], x[1, :80])
    assert torch.equal(torch.sort(st.data[st.order_points[0]], 0).values, torch.sort(st.data[st.order_points[1]], 0).values)


@pytest.mark.parametrize("seed", [0, 8])
def test_source_batches_are_the_authors_dataloaders_batches(seed):
    """Each row's zipped batches (codes, points) are those torch's DataLoaders give the authors' code after
    it seeded the run and built G and D: the same values in the same order, the short batch included,
    over two epochs; a row alone and the same seed in a batch of three get the same batches."""
    from torch.utils.data import DataLoader

    train, _, noise, _ = _source_pools_by_their_code(300, 100)
    _source_models(seed)
    noise_loader = DataLoader(noise, batch_size=128, shuffle=True)
    real_loader = DataLoader(train, batch_size=128, shuffle=True)
    theirs = [b for _ in range(2) for b in zip(noise_loader, real_loader)]
    assert [len(r) for _, r in theirs] == [128, 128, 44] * 2
    gens = [data_generator(s) for s in (5, seed, 6)]
    for g in gens:   # the streams start after the seed's initial weights, G's then D's
        init_mlp(GENERATOR, [g]), init_mlp(DISCRIMINATOR, [g])
    st = SourceStreams(source_pools("ring", 300, 100), gens)
    for z_theirs, x_theirs in theirs:
        x, z, n = st.batch()
        m = len(x_theirs)
        assert int(n[1]) == m and torch.equal(x[1, :m], x_theirs) and torch.equal(z[1, :m], z_theirs)


def test_source_form_training_follows_the_authors_loop():
    """Independent truth for the source form: the authors' training loop, transcribed (nn.Sequential,
    torch.optim.Adam, their AlphaLoss with its clamp, D then G on the same fakes), for two epochs of
    three steps each (the third a short batch of 44), saturating (α_D, α_G) = (0.3, 1)."""
    from torch.utils.data import DataLoader

    seed = 2
    run = train_ring([RingSetting("alpha_sat", 0.3, 1)], [seed], epochs=2, **SMALL_SOURCE)
    assert run.steps == 6
    train, _, noise, _ = _source_pools_by_their_code(300, 100)
    G, D = _source_models(seed)
    noise_loader = DataLoader(noise, batch_size=128, shuffle=True)
    real_loader = DataLoader(train, batch_size=128, shuffle=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.99))
    crit_d, crit_g = SourceAlphaLoss(0.3), SourceAlphaLoss(1.0)
    for _ in range(2):
        for z, x in zip(noise_loader, real_loader):
            fake = G(z)
            b = x.shape[0]
            opt_d.zero_grad()
            (crit_d(D(x), torch.ones(b, 1)).mean() + crit_d(D(fake.detach()), torch.zeros(b, 1)).mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            (-crit_g(D(fake), torch.zeros(b, 1)).mean()).backward()
            opt_g.step()
    for net, params in ((G, run.g_params), (D, run.d_params)):
        mine = _reference_mlp(*((GENERATOR.sizes, "relu") if net is G else (DISCRIMINATOR.sizes, "leaky")), params, 0)
        for a, b in zip(mine.parameters(), net.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-6)


# --------------------------------------------------------------------------- batched seeds
MIXED = [RingSetting("alpha_sat", 1, 1), RingSetting("alpha_ns", 0.5, 1.2, r1=1.0),
         RingSetting("lsgan", ema=0.99), RingSetting("nsgan", controller="gcann"), RingSetting("alpha_sat", 0.3, 1)]


@pytest.mark.parametrize("small", [SMALL, SMALL_SOURCE], ids=["exact", "source"])
def test_batched_seed_k_equals_seed_k_alone_bit_for_bit(small):
    """Row k of a batch equals seed k trained alone, in either form; in the source form the +gcann row's
    catch-up bursts move it off the others' batch positions, so rows meet the short batch at other steps."""
    seeds = [3, 1, 4, 1, 5]
    cfg = active_config()
    run = train_ring(MIXED, seeds, epochs=2, max_steps=8, controller_settings={"gcann": cfg}, **small)
    assert run.events                                                        # the controller did act
    for k in (0, 1, 2, 3):
        alone = train_ring([MIXED[k]], [seeds[k]], epochs=2, max_steps=8, controller_settings={"gcann": cfg}, **small)
        for a, b in zip(run.g_params + run.d_params + run.ema_params, alone.g_params + alone.d_params + alone.ema_params):
            assert torch.equal(a[k], b[0])


def test_the_device_side_step_a_cuda_graph_captures_equals_the_masked_eager_step():
    """The step a CUDA graph replays (Adam's counts and factors on the device, no host work) run here
    without capture gives the eager path's numbers bit for bit, R1 and EMA rows included."""
    settings = [RingSetting("alpha_ns", 1.0, 1.0), RingSetting("alpha_sat", 0.3, 1.0),
                RingSetting("lsgan", r1=1.0, ema=0.999), RingSetting("alpha_ns", 0.5, 1.2, ema=0.999)]
    for form in ("exact", "source"):   # the source form with its short last batch (4.5 batches per epoch)
        _device_step_equals_the_masked_step(settings, form, n_train=128 * 4 + 64 * (form == "source"))


def _device_step_equals_the_masked_step(settings, form, n_train):
    kw = dict(epochs=2, n_train=n_train, curve_every=1, curve_samples=64, form=form, eval_samples=100)
    eager = train_ring(settings, [0, 1, 2, 3], **kw)
    device_step = train_ring(settings, [0, 1, 2, 3], cuda_graph="eager", **kw)
    for name in ("g_params", "d_params", "ema_params"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(eager, name), getattr(device_step, name))), name
    assert all(torch.equal(a, b) for a, b in zip(eager.loss_d + eager.loss_g, device_step.loss_d + device_step.loss_g))
    assert torch.equal(eager.d_updates, device_step.d_updates) and torch.equal(eager.g_updates, device_step.g_updates)
    # the same step with Adam as one fused kernel over every seed (the GPU's opt-in): the same bits on the CPU
    fused = train_ring(settings, [0, 1, 2, 3], cuda_graph="eager", fused_adam=True, **kw)
    for name in ("g_params", "d_params", "ema_params"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(eager, name), getattr(fused, name))), name


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_captured_cuda_step_with_either_adam_equals_the_eager_cuda_step():
    """On a GPU: the step replayed as a CUDA graph, with Adam as multi-tensor kernels or as one fused
    kernel over every seed, against the eager masked step on the same device. Different kernels round
    differently, so the weights agree to a tolerance (a wrong rate, count or mask would be off by far
    more: one Adam step moves a weight by up to lr = 1e-4)."""
    settings = [RingSetting("alpha_ns", 1.0, 1.0), RingSetting("lsgan", r1=1.0, ema=0.999)] * 2
    for form, n_train, steps in (("exact", 128 * 4, 8), ("source", 128 * 4 + 64, 10)):
        kw = dict(epochs=2, n_train=n_train, curve_every=0, device="cuda", form=form, eval_samples=100)
        _captured_equals_eager(settings, kw, steps)


def _captured_equals_eager(settings, kw, steps):
    eager = train_ring(settings, [0, 1, 2, 3], cuda_graph=False, **kw)
    for fused in (False, True):
        graph = train_ring(settings, [0, 1, 2, 3], cuda_graph=True, fused_adam=fused, **kw)
        assert graph.steps == eager.steps == steps
        for name in ("g_params", "d_params", "ema_params"):
            worst = max(float((a - b).abs().max()) for a, b in zip(getattr(eager, name), getattr(graph, name)))
            assert worst < 1e-5, (fused, name, worst)
        assert torch.equal(graph.d_updates, eager.d_updates) and torch.equal(graph.g_updates, eager.g_updates)


def test_batched_training_equals_an_nn_module_loop_with_torch_adam():
    """Independent truth: nn.Sequential networks, torch.optim.Adam and the non-saturating loss by hand."""
    seed, steps = 7, 4
    run = train_ring([RingSetting("alpha_ns", 1, 1)], [seed], epochs=1, max_steps=steps, **SMALL)
    gen = data_generator(seed)
    G0, D0 = init_mlp(GENERATOR, [gen]), init_mlp(DISCRIMINATOR, [gen])
    st = SeedStreams(ring_modes(), [gen], [noise_generator(seed)], n_train=512)
    G, D = _reference_mlp(GENERATOR.sizes, "relu", G0, 0), _reference_mlp(DISCRIMINATOR.sizes, "leaky", D0, 0)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.99))
    for _ in range(steps):
        x, z = st.real()[0], st.latent()[0]
        fake = G(z)
        loss_d = -torch.log(torch.sigmoid(D(x))).mean() - torch.log(1 - torch.sigmoid(D(fake.detach()))).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = -torch.log(torch.sigmoid(D(fake))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    ref = _reference_mlp(GENERATOR.sizes, "relu", run.g_params, 0)
    for a, b in zip(ref.parameters(), G.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-6)


# --------------------------------------------------------------------------- controller masks
def test_per_seed_masks_follow_each_controllers_decisions_one_step_later():
    cfg = active_config()
    settings = [RingSetting("nsgan", controller="gcann"), RingSetting("nsgan"), RingSetting("lsgan", controller="gcann")]
    trace: list[dict] = []
    run = train_ring(settings, [0, 1, 2], epochs=1, max_steps=8, controller_settings={"gcann": cfg}, trace=trace, **SMALL)
    for k in (0, 2):
        # replay: a lone controller fed row k's recorded losses must give the plans row k followed (lag 1)
        control = GCANNController(cfg)
        d_steps, g_steps, lr_d, lr_g, div = 1, 1, cfg.lr_d, cfg.lr_g, False     # step 0: before any decision
        for t, rec in enumerate(trace):
            assert (rec["d_steps"][k], rec["g_steps"][k]) == (d_steps, g_steps), (k, t)
            assert (rec["lr_d"][k], rec["lr_g"][k]) == (lr_d, lr_g)
            assert (k in rec["use_diversity"]) == div
            dec = control.observe(rec["loss_d"][k], rec["loss_g"][k])
            # a decision's counts: the regular update plus the extra ones, 0 for a network it idles
            d_steps = (1 + dec.extra_d_steps) if dec.train_d else 0
            g_steps = (1 + dec.extra_g_steps) if dec.train_g else 0
            lr_d, lr_g, div = dec.lr_d, dec.lr_g, dec.use_diversity
    assert any(rec["d_steps"][0] > 1 for rec in trace)                       # catch-up bursts happened
    assert any(rec["d_steps"][0] != rec["g_steps"][0] for rec in trace)
    assert all(rec["d_steps"][1] == rec["g_steps"][1] == 1 for rec in trace)  # the plain row: one step each
    for k in range(3):                                                        # masked updates: counts add up
        assert int(run.d_updates[k]) == sum(rec["d_steps"][k] for rec in trace)
        assert int(run.g_updates[k]) == sum(rec["g_steps"][k] for rec in trace)


def test_a_paused_network_keeps_its_weights_and_adam_state():
    # G's pause threshold above any G loss: G never trains after the first (plain) step, D always does
    cfg = active_config(generator_pause_threshold=1e3, max_loss_diff=1e3)
    run0 = train_ring([RingSetting("nsgan", controller="gcann")], [0], epochs=1, max_steps=1, controller_settings={"gcann": cfg}, **SMALL)
    run = train_ring([RingSetting("nsgan", controller="gcann")], [0], epochs=2, max_steps=5, controller_settings={"gcann": cfg}, **SMALL)
    assert run.g_updates.tolist() == [1] and run.d_updates.tolist()[0] >= 5
    for a, b in zip(run.g_params, run0.g_params):
        assert torch.equal(a, b)


def test_a_non_finite_loss_marks_the_row_diverged_and_leaves_the_others(monkeypatch):
    from gcann.ring import train as ring_train

    settings = [RingSetting("alpha_ns", 1, 1), RingSetting("alpha_ns", 1, 1)]
    ok = train_ring(settings[:1], [0], epochs=1, max_steps=3, **SMALL)
    orig = ring_train.init_mlp

    def poisoned(spec, gens, dtype=torch.float32):          # row 1's discriminator: a NaN bias on its logit
        params = orig(spec, gens, dtype)
        if spec is DISCRIMINATOR and len(gens) == 2:
            params[-1][1] = float("nan")
        return params

    monkeypatch.setattr(ring_train, "init_mlp", poisoned)
    run = train_ring(settings, [0, 1], epochs=1, max_steps=3, **SMALL)
    assert run.diverged.tolist() == [False, True]
    for a, b in zip(run.g_params, ok.g_params):
        assert torch.equal(a[0], b[0])


# --------------------------------------------------------------------------- saving and resuming a run
def _same_runs(a, b) -> None:
    for name in ("g_params", "d_params", "ema_params"):
        assert all(torch.equal(x, y) for x, y in zip(getattr(a, name), getattr(b, name))), name
    assert all(torch.equal(x, y) for x, y in zip(a.loss_d + a.loss_g + a.lr_d + a.lr_g,
                                                b.loss_d + b.loss_g + b.lr_d + b.lr_g))
    assert a.curve_epochs == b.curve_epochs and a.events == b.events and a.steps == b.steps
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a.curve, b.curve) for k in x)
    assert torch.equal(a.d_updates, b.d_updates) and torch.equal(a.g_updates, b.g_updates)
    assert torch.equal(a.diverged, b.diverged)


@pytest.mark.parametrize("path,form", [("masked", "exact"), ("device-step", "exact"), ("masked", "source"),
                                       ("device-step", "source")])
def test_a_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, path, form):
    """Stopped after 2 of 6 epochs and resumed from its saved state: the same weights, Adam states, curves,
    losses, learning rates, controller events and update counts as the run that never stopped. The masked
    path has +gcann rows whose controllers decide (warm-up 0: pauses, skips and rate changes happen), the
    device-step path is the step a CUDA graph replays (Adam's counts on the device)."""
    if path == "masked":
        settings = [RingSetting("alpha_ns", 1, 1), RingSetting("alpha_sat", 0.3, 1, controller="gcann"),
                    RingSetting("lsgan", r1=1.0, ema=0.999), RingSetting("alpha_ns", 0.5, 1.2, controller="gcann")]
        extra = dict(controller_settings={"gcann": replace(ring_gcann_config(3 if form == "source" else 4), baseline_steps=0)})
    else:
        settings = [RingSetting("alpha_ns", 1, 1), RingSetting("lsgan", r1=1.0, ema=0.999)] * 2
        extra = dict(cuda_graph="eager")
    kw = dict(n_train=300 if form == "source" else 512, curve_every=1, curve_samples=64, form=form, eval_samples=100,
              **extra)
    whole = train_ring(settings, [0, 1, 2, 3], epochs=6, **kw)
    if path == "masked":
        assert whole.events and len(set(whole.d_updates.tolist())) > 1   # the controllers did act
    state = tmp_path / "state.pt"
    first = train_ring(settings, [0, 1, 2, 3], epochs=2, state_file=state, save_every=1, **kw)
    assert first.steps == (6 if form == "source" else 8) and state.is_file()
    resumed = train_ring(settings, [0, 1, 2, 3], epochs=6, state_file=state, save_every=2, resume=True, **kw)
    _same_runs(whole, resumed)
    # the state now holds the finished run: resuming it again trains nothing and gives the same run
    again = train_ring(settings, [0, 1, 2, 3], epochs=6, state_file=state, resume=True, **kw)
    _same_runs(whole, again)


def test_events_are_written_beside_the_state_once_and_cut_back_to_it_on_resume(tmp_path):
    """The saved state holds the count of the controller events, not the events: they go to a JSON-lines file
    beside it, each once. A line written after the state (a crash between the two) is cut on resume; a fresh
    run into the same place starts the file afresh."""
    from gcann.ring.train import events_path

    settings = [RingSetting("nsgan", controller="gcann")]
    cs = {"gcann": active_config()}
    whole = train_ring(settings, [0], epochs=4, controller_settings=cs, **SMALL)
    state = tmp_path / "state.pt"
    first = train_ring(settings, [0], epochs=2, controller_settings=cs, state_file=state, save_every=1, **SMALL)
    saved = torch.load(state, weights_only=False)
    assert "events" not in saved["run"] and saved["events_saved"] == len(first.events) > 0
    lines = events_path(state).read_text().splitlines()
    assert [json.loads(x) for x in lines] == first.events          # each event once, though saved twice
    with open(events_path(state), "a") as f:
        f.write(json.dumps({"step": 10**9, "event": "stray"}) + "\n")
    resumed = train_ring(settings, [0], epochs=4, controller_settings=cs, state_file=state, save_every=1,
                         resume=True, **SMALL)
    assert resumed.events == whole.events
    assert [json.loads(x) for x in events_path(state).read_text().splitlines()] == whole.events
    train_ring(settings, [0], epochs=1, max_steps=1, controller_settings=cs, state_file=state, save_every=1, **SMALL)
    assert not events_path(state).exists() or len(events_path(state).read_text().splitlines()) <= 1


def test_resuming_refuses_another_configuration_fewer_epochs_and_an_unreadable_state(tmp_path):
    state = tmp_path / "state.pt"
    settings = [RingSetting("alpha_ns", 1, 1), RingSetting("lsgan")]
    train_ring(settings, [0, 1], epochs=2, state_file=state, save_every=2, **SMALL)
    before = state.read_bytes()
    with pytest.raises(StateError, match="another 'seeds'"):
        train_ring(settings, [0, 2], epochs=3, state_file=state, resume=True, **SMALL)
    with pytest.raises(StateError, match="another 'settings'"):
        train_ring([RingSetting("alpha_ns", 1, 1), RingSetting("lsgan", r1=1.0)], [0, 1], epochs=3,
                   state_file=state, resume=True, **SMALL)
    with pytest.raises(StateError, match="another 'lr'"):
        train_ring(settings, [0, 1], epochs=3, lr=2e-4, state_file=state, resume=True, **SMALL)
    with pytest.raises(StateError, match="another 'form'"):
        train_ring(settings, [0, 1], epochs=3, state_file=state, resume=True, **{**SMALL, **SMALL_SOURCE, "n_train": 512})
    with pytest.raises(StateError, match="more than this run's 4"):
        train_ring(settings, [0, 1], epochs=1, state_file=state, resume=True, **SMALL)
    assert state.read_bytes() == before        # a refused resume leaves the state as it was
    state.write_bytes(before[: len(before) // 2])
    with pytest.raises(StateError, match="cannot read the ring state"):
        train_ring(settings, [0, 1], epochs=3, state_file=state, resume=True, **SMALL)
    with pytest.raises(ValueError, match="needs a state_file"):
        train_ring(settings, [0, 1], epochs=1, save_every=1, **SMALL)


# --------------------------------------------------------------------------- any controller per row
CONTROLLED = [RingSetting("alpha_ns", 1, 1, controller="ada"), RingSetting("nsgan", controller="clc"),
              RingSetting("nsgan", controller="gap"), RingSetting("lsgan", controller="ttur"),
              RingSetting("alpha_sat", 0.3, 1, r1=1.0, controller="ada")]
#: settings that make each controller act within a few steps of a tiny run
ACTIVE = {"ada": {"interval": 1, "kimg": 1.0, "scale": 0.5, "target": -0.99}, "clc": {"weight": 2.0, "buffer_batches": 2}}


@pytest.mark.parametrize("small", [SMALL, SMALL_SOURCE], ids=["exact", "source"])
def test_rows_under_any_controller_equal_their_seed_alone(small):
    """Row k equals seed k alone with ADA (instance noise drawn from the row's own generator), CLC (its own
    buffers), gap-aware and TTUR rows side by side; in the source form through the short last batch."""
    seeds = [2, 7, 1, 8, 2]
    run = train_ring(CONTROLLED, seeds, epochs=2, max_steps=8, controller_settings=ACTIVE, **small)
    assert run.knobs["noise_sigma"][-1][0] > 0 and run.knobs["clc_weight"][-1][1] == 2.0
    for k in range(len(CONTROLLED)):
        alone = train_ring([CONTROLLED[k]], [seeds[k]], epochs=2, max_steps=8, controller_settings=ACTIVE, **small)
        for a, b in zip(run.g_params + run.d_params, alone.g_params + alone.d_params):
            assert torch.equal(a[k], b[0]), k


def test_clc_at_weight_zero_and_ada_that_never_moves_train_as_the_plain_row():
    """The knobs' terms are exactly zero at λ = 0 and σ = 0: the rows then equal the uncontrolled row bit for
    bit, whatever the buffers and noise generators drew."""
    plain = train_ring([RingSetting("nsgan")], [5], epochs=1, max_steps=6, **SMALL)
    for ctl, cs in (("clc", {"weight": 0.0, "buffer_batches": 2}), ("ada", {"p_max": 1e-9, "kimg": 1e9})):
        run = train_ring([RingSetting("nsgan", controller=ctl)], [5], epochs=1, max_steps=6,
                         controller_settings={ctl: cs}, **SMALL)
        for a, b in zip(run.g_params + run.d_params, plain.g_params + plain.d_params):
            assert torch.equal(a, b), ctl


def test_controllers_follow_their_own_laws_on_the_ring_one_step_later():
    """Replayed by hand from the trace: TTUR's rates are 3:1; the gap controller's rate is base × f(EMA of the
    losses − log 4); ADA's σ follows its integrator on the recorded E[sign D(x_real)] (lag 1)."""
    import math
    trace: list[dict] = []
    settings = [RingSetting("nsgan", controller="ttur"), RingSetting("nsgan", controller="gap"),
                RingSetting("nsgan", controller="ada")]
    train_ring(settings, [0, 1, 2], epochs=1, max_steps=10, controller_settings=ACTIVE, trace=trace, **SMALL)
    lr = 1e-4
    assert all(rec["lr_d"][0] == pytest.approx(3 * lr) and rec["lr_g"][0] == lr for rec in trace)
    s, p = None, 0.0
    for t, rec in enumerate(trace):
        if t:
            x = s - math.log(4.0)
            xm = 0.1 * math.log(4.0)
            f = min(max(2.0 ** (x / xm), 1.0), 2.0) if x >= 0 else min(max(0.1 ** (-x / xm), 0.1), 1.0)
            assert rec["lr_d"][1] == pytest.approx(lr * f, rel=1e-9), t
            assert rec["knobs"]["noise_sigma"][2] == pytest.approx(0.5 * p, abs=1e-15), t
        else:
            assert rec["lr_d"][1] == lr and rec["knobs"]["noise_sigma"][2] == 0.0
        s = (math.log(4.0) if s is None else s) * 0.95 + 0.05 * rec["loss_d"][1]
        r = rec["real_sign"][2]
        p = min(max(p + math.copysign(1.0, r + 0.99) * 128 * 1 / (1.0 * 1000), 0.0), 1.0) if r != -0.99 else p


def test_every_d_paused_with_r1_rows_reads_the_plain_loss(monkeypatch):
    """When no row's D trains, the ring measures D's plain loss alone (R1 needs gradients; it raised under
    no_grad). With D never trained, R1 changes nothing: an R1 row and a plain row of the same seed agree."""
    from gcann.control import rows as R

    orig = R.ControlRows.plans

    def paused(self):
        p = orig(self)
        p.d_steps = torch.zeros_like(p.d_steps)
        return p
    monkeypatch.setattr(R.ControlRows, "plans", paused)
    small = dict(epochs=1, max_steps=3, n_train=512, curve_every=0, form="exact")
    with_r1 = train_ring([RingSetting("alpha_ns", 1, 1, r1=1.0)], [0], **small)
    plain = train_ring([RingSetting("alpha_ns", 1, 1)], [0], **small)
    assert with_r1.d_updates.tolist() == [0] and with_r1.g_updates.tolist() == [3]
    assert torch.equal(with_r1.loss_d[-1], plain.loss_d[-1]) and torch.equal(with_r1.loss_g[-1], plain.loss_g[-1])
    assert all(torch.equal(a, b) for a, b in zip(with_r1.g_params + with_r1.d_params, plain.g_params + plain.d_params))
