"""``gcann fid`` and ``gcann eval``: values equal the library on the same images, one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcann.cli import main
from gcann.metrics import inception as inc
from gcann.metrics import fid as fidmod
from gcann.metrics.fid import kid_from_features
from tests.support.inception_stand_in import FeatureOnly, StandIn

WEIGHTS = inc.default_fid_weights()


def _arrays(n: int, seed: int, gray: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 10, 10, 1 if gray else 3), dtype=np.uint8)
    x[..., 0] //= 1 + seed % 3
    return x


def _folder(path: Path, arr: np.ndarray) -> Path:
    path.mkdir()
    for i, a in enumerate(arr):
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(path / f"{i:03d}.png")
    return path


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    net = StandIn()
    net.feature_dim = 8
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    monkeypatch.setattr(inc, "load_inception", lambda path, device="cpu": net)
    monkeypatch.setattr(fidmod, "load_inception", lambda path, device="cpu": net)
    return net, weights


def test_fid_command_equals_torchmetrics_on_folders_and_npz(tmp_path, stand_in, capsys):
    from torchmetrics.image.fid import FrechetInceptionDistance

    net, weights = stand_in
    a, b = _arrays(14, 1, gray=True), _arrays(12, 2)
    folder = _folder(tmp_path / "a", a)
    npz = tmp_path / "b.npz"
    np.savez(npz, images=b)
    assert main(["fid", str(folder), str(npz), "--weights", str(weights), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["fid"]
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).expand(-1, 3, -1, -1).contiguous()
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).contiguous()
    tm = FrechetInceptionDistance(feature=FeatureOnly(net))
    tm.update(ta, real=True)
    tm.update(tb, real=False)
    assert got == pytest.approx(float(tm.compute()), rel=1e-3)
    assert main(["fid", str(npz), str(folder), "--weights", str(weights)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("FID: ") and float(line[5:]) == pytest.approx(got, rel=1e-9)
    # pytorch-fid's statistics files are accepted as one side
    with torch.no_grad():
        f = net.features(tb).double().numpy()
    np.savez(tmp_path / "stats.npz", mu=f.mean(0), sigma=np.cov(f, rowvar=False))
    assert main(["fid", str(folder), str(tmp_path / "stats.npz"), "--weights", str(weights), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(got, rel=1e-9)


def test_fid_command_errors_are_one_line(tmp_path, stand_in, capsys):
    _, weights = stand_in
    good = tmp_path / "good.npz"
    np.savez(good, x=_arrays(12, 3))
    cases = []
    np.savez(tmp_path / "float.npz", x=np.zeros((12, 10, 10, 3), dtype=np.float32))
    cases.append(([str(tmp_path / "float.npz"), str(good)], "must be uint8 (N, H, W, C)"))
    np.savez(tmp_path / "two.npz", x=_arrays(12, 3), y=_arrays(12, 3))
    cases.append(([str(tmp_path / "two.npz"), str(good)], "must hold one uint8 array"))
    np.savez(tmp_path / "few.npz", x=_arrays(5, 3))
    cases.append(([str(tmp_path / "few.npz"), str(good)], "holds 5 images; FID needs at least 8"))
    (tmp_path / "empty").mkdir()
    cases.append(([str(tmp_path / "empty"), str(good)], "holds no images"))
    bad = _folder(tmp_path / "bad", _arrays(12, 4))
    (bad / "zz.png").write_bytes(b"not a png")
    cases.append(([str(bad), str(good)], "cannot read image"))
    cases.append(([str(tmp_path / "missing"), str(good)], "does not exist"))
    (tmp_path / "t.txt").write_text("x")
    cases.append(([str(tmp_path / "t.txt"), str(good)], "neither a folder of images nor an .npz"))
    for args, msg in cases:
        assert main(["fid", *args, "--weights", str(weights)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gcann: error: ") and msg in err and err.count("\n") == 1, (msg, err)
    assert main(["fid", str(good), str(good), "--weights", str(tmp_path / "absent.pt")]) == 2
    assert f"no Inception weights at {tmp_path / 'absent.pt'}" in capsys.readouterr().err


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="no FID weights")
def test_fid_command_refuses_too_few_images_before_running_the_network(tmp_path, capsys):
    npz = tmp_path / "a.npz"
    np.savez(npz, x=_arrays(3, 1))
    assert main(["fid", str(npz), str(npz)]) == 2
    assert "holds 3 images; FID needs at least 2048" in capsys.readouterr().err


def _images(folder: Path, n: int = 24, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_eval_of_a_trained_run(tmp_path, stand_in, capsys, monkeypatch):
    """A real checkpoint of the trainer, evaluated through gcann eval, equals the metric functions by hand."""
    from gcann.data import build_dataset
    from gcann.train.checkpoint import load_generator

    net, weights = stand_in
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
                 "--max-steps", "2", "--out", str(run), "--width-g", "4", "--width-d", "4", "--batch-size", "8",
                 "--ckpt-every", "2", "--sample-every", "1000", "--num-samples", "4", "--num-workers", "1",
                 "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--metrics", "kid,pairwise,is", "--num-samples", "20", "--fid-weights",
                 str(weights), "--json", "--out", str(out), "--seed", "3"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec == json.loads(out.read_text())
    assert rec["step"] == 2 and rec["kind"] == "image"
    assert rec["metrics"]["is"] is None and "1008-class head" in rec["metrics"]["is_unavailable"]
    G, info = load_generator(run)
    z = torch.randn(20, info["nz"], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = G(z)
    ds = build_dataset("images", str(root), resolution=info["resolution"])
    reals = torch.stack([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        fg = net.features(inc.to_uint8(x, (-1, 1)))
        fr = net.features(inc.to_uint8(reals, (-1, 1)))
    assert rec["metrics"]["kid"] == pytest.approx(kid_from_features(fg, fr)[0], rel=1e-6)
    # the human-readable form, and one-line errors
    assert main(["eval", str(run), "--metrics", "pairwise", "--num-samples", "8"]) == 0
    assert "pairwise: " in capsys.readouterr().out
    for args, msg in [(["eval", str(tmp_path / "nope")], "does not exist"),
                      (["eval", str(root)], "holds no checkpoints"),
                      (["eval", str(run), "--metrics", "chamfer"], "for voxel samples, not image"),
                      (["eval", str(run), "--metrics", "fid", "--num-samples", "100"], "at least 2048"),
                      (["eval", str(run), "--metrics", "bogus"], "unknown metric")]:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("gcann: error: ") and msg in err and err.count("\n") == 1, (msg, err)


def test_eval_says_what_it_will_compute_and_records_its_time(tmp_path, stand_in, capsys, monkeypatch):
    _, weights = stand_in
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "cache"))
    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
                 "--max-steps", "1", "--out", str(run), "--width-g", "4", "--width-d", "4", "--batch-size", "8",
                 "--num-samples", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "kid,pairwise", "--num-samples", "20", "--fid-weights",
                 str(weights), "--json"]) == 0
    cap = capsys.readouterr()
    rec = json.loads(cap.out)
    assert rec["seconds"] > 0 and set(rec["metrics"]) == {"kid", "kid_std", "pairwise"}
    line = [x for x in cap.err.splitlines() if x.startswith("gcann eval: ")]
    assert len(line) == 1, cap.err
    assert "20 generated and 24 real (not cached yet) images for kid, pairwise: 44 images through Inception" \
        in line[0] and "s each (measured here on cpu): about " in line[0]
    # the real features are cached now: only the generated images go through the network
    assert main(["eval", str(run), "--metrics", "kid", "--num-samples", "20", "--fid-weights", str(weights)]) == 0
    assert "24 real (features cached) images for kid: 20 images through Inception" in capsys.readouterr().err
    assert main(["eval", str(run), "--metrics", "pairwise", "--num-samples", "8", "--quiet"]) == 0
    assert "gcann eval:" not in capsys.readouterr().err


def test_eval_reads_the_data_as_the_run_trained_on_it(tmp_path, monkeypatch):
    """A grayscale run of an image folder: gcann eval's real images are grayscale too (the same data set, the
    same content key), not the folder's RGB; and an empty --metrics is refused, not read as the default."""
    from gcann.metrics import MetricError
    from gcann.metrics.evaluate import prepare_eval
    from gcann.train.config import TrainConfig

    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "cache"))
    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
                 "--channels", "1", "--resolution", "32", "--max-steps", "1", "--out", str(run), "--width-g", "4",
                 "--width-d", "4", "--batch-size", "8", "--num-samples", "4", "--quiet"]) == 0
    trained = TrainConfig.from_dict(json.loads((run / "config.json").read_text())).build_data()
    _, ctx, _, _ = prepare_eval(run, metrics="pairwise", num_samples=4)
    ds = ctx.options["dataset"]
    assert tuple(ds.sample_shape) == (1, 32, 32) == tuple(trained.sample_shape)
    assert ctx.dataset_key == trained.key
    assert torch.equal(ds[3], trained[3])
    with pytest.raises(MetricError, match="--metrics is empty"):
        prepare_eval(run, metrics="", num_samples=4)


def test_eval_refuses_an_unwritable_out_before_computing(tmp_path, capsys, monkeypatch):
    import gcann.metrics.evaluate as ev

    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "cache"))
    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
                 "--resolution", "32", "--max-steps", "1", "--out", str(run), "--width-g", "4", "--width-d", "4",
                 "--batch-size", "8", "--num-samples", "4", "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(ev, "prepare_eval", lambda *a, **k: pytest.fail("computed before checking --out"))
    assert main(["eval", str(run), "--metrics", "pairwise", "--num-samples", "4",
                 "--out", str(run / "config.json" / "e.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcann: error: --out") and "\n" not in err


def test_fid_refuses_a_truncated_npz_in_one_line(tmp_path, capsys):
    good = tmp_path / "a.npz"
    np.savez_compressed(good, images=np.zeros((4, 8, 8, 3), np.uint8))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:40])
    assert main(["fid", str(cut), str(good)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gcann: error: cannot read {cut} as .npz") and "\n" not in err


def test_an_unwritable_metrics_cache_costs_the_cache_not_the_value(tmp_path):
    from gcann.metrics.registry import MetricWarning, write_cache

    blocker = tmp_path / "afile"
    blocker.write_text("x")                        # a file where the cache folder should be: mkdir fails, as root too
    with pytest.warns(MetricWarning, match="cannot write the metrics cache"):
        write_cache(blocker / "sub" / "f.npz", lambda tmp: np.savez(tmp, x=np.zeros(2)))
    write_cache(tmp_path / "ok" / "f.npz", lambda tmp: np.savez(tmp, x=np.arange(3)))
    assert np.load(tmp_path / "ok" / "f.npz")["x"].tolist() == [0, 1, 2]

