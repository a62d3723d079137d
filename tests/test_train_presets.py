"""Every training preset runs a few steps on CPU (tiny widths, generated data of the preset's shape)."""
from __future__ import annotations

import json

import pytest
import torch

from gcann.train import TRAIN_PRESETS, Trainer, train_preset
from gcann.train.checkpoint import load_generator
from train_fixtures import fixture_for

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
