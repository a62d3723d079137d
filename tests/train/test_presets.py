"""Every training preset runs a few steps on CPU (tiny widths, generated data of the preset's shape)."""
from __future__ import annotations

import json

import pytest
import torch

from gcann.train import TRAIN_PRESETS, Trainer, train_preset
from gcann.train.checkpoint import load_generator
from tests.support.train_fixtures import fixture_for

SMALL = dict(width_g=4, width_d=4, batch_size=8, max_steps=3, log_every=1, sample_every=3, ckpt_every=3,
             num_samples=4, num_workers=0)


@pytest.mark.parametrize("name", list(TRAIN_PRESETS))
def test_preset_trains_a_few_steps(tmp_path, name):
    cfg = train_preset(name, **SMALL)
    if cfg.controller == "gcann":  # let the controller act within three steps
        cfg = cfg.replace(gcann={"baseline_steps": 0, "gc_lr_window": 1, "cooldown_period": 0, "max_loss_diff": 0.01})
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg, n=16), quiet=True).fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all() for r in rows)
    assert (tmp_path / "run" / "samples" / "step_0000003.png").stat().st_size > 0
    G, info = load_generator(tmp_path / "run")
    x = G(torch.randn(2, info["nz"]))
    shape = (cfg.channels, cfg.resolution, cfg.resolution) if cfg.kind == "image" else (1,) + (cfg.resolution,) * 3
    assert tuple(x.shape[1:]) == shape and info["kind"] == cfg.kind
    lo, hi = (-1, 1) if cfg.kind == "image" else (0, 1)
    assert lo <= x.min() and x.max() <= hi
    if cfg.controller == "gcann":
        assert (tmp_path / "run" / "events.jsonl").read_text().strip()


def test_paper_presets_carry_the_paper_setup():
    for name in ("celeba-dcgan", "celeba-dcg-gcann", "bicar3d-dcgan", "bicar3d-dcg-gcann"):
        cfg = train_preset(name)
        assert (cfg.epochs, cfg.batch_size) == (100, 128)
    assert train_preset("celeba-dcg-gcann").gcann_preset == "paper-celeba"
    b = train_preset("bicar3d-dcg-gcann")
    assert (b.gcann_preset, b.lr_d, b.lr_g, b.resolution, b.arch) == ("paper-bicar3d", 1e-4, 1e-4, 64, "voxel")
    assert train_preset("celeba-dcgan").controller == "none"


def test_the_alpha_gan_presets_carry_the_authors_values_and_their_lsun_networks():
    """The (α_D, α_G)-GAN authors' image experiments (experiments/celeba.py, lsun_classroom.py, gan.py)."""
    from gcann.models import build_models
    from gcann.train.sweep import expand

    for name in ("alphagan-celeba", "lsgan-celeba", "alphagan-lsun", "lsgan-lsun"):
        cfg = train_preset(name)
        assert (cfg.beta1, cfg.beta2, cfg.nz, cfg.width_g, cfg.width_d, cfg.epochs) == (0.9, 0.99, 100, 64, 64, 100)
        assert cfg.lr_d == cfg.lr_g and cfg.controller == "none"
        assert (cfg.resolution, cfg.batch_size) == ((64, 128) if "celeba" in name else (112, 64))
        if name.startswith("alphagan"):
            assert (cfg.loss, cfg.alpha_g, cfg.alpha_clamp) == ("alpha_ns", 1.0, 1e-7)
        else:
            assert (cfg.loss, cfg.lsgan_a, cfg.lsgan_b, cfg.lsgan_c) == ("lsgan", 0.0, 1.0, 1.0)
    # their LSUN networks: ConvT(100, 512, 7) then 7 → 14 → 28 → 56 → 112; D mirrors it, ending in Conv(512, 1, 7)
    G, D = build_models("dcgan", resolution=112, channels=3, nz=100)
    convs = [m for m in G.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs] == \
        [(100, 512, 7), (512, 256, 4), (256, 128, 4), (128, 64, 4), (64, 3, 4)]
    assert all(m.bias is None for m in convs)
    assert G(torch.randn(2, 100)).shape == (2, 3, 112, 112) and D(torch.randn(2, 3, 112, 112)).shape == (2,)
    last = [m for m in D.net if isinstance(m, torch.nn.Conv2d)][-1]
    assert (last.in_channels, last.out_channels, last.kernel_size[0]) == (512, 1, 7)
    # the sweep's lr key sets both rates; their grids over α_D and the rate
    runs = expand("alphagan-celeba", [1, 2], {"alpha_d": [0.6, 1.0], "lr": [1e-4, 6e-4]})
    assert len(runs) == 8 and {(c.alpha_d, c.lr_d, c.lr_g) for _, c in runs} == \
        {(a, r, r) for a in (0.6, 1.0) for r in (1e-4, 6e-4)}
    with pytest.raises(ValueError, match="lr sets lr_d and lr_g together"):
        expand("alphagan-celeba", [1], {"lr": [1e-4], "lr_d": [2e-4]})
