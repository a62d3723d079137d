"""Fast checks of the Dirac-GAN figures (small step counts, Agg, no display)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from gcann.dirac import figures as plots


def _n_axes(fig: Figure) -> int:
    return len(fig.axes)


def test_vector_field_single_axes_and_given_ax():
    fig = plots.vector_field("r1", {"gamma": 0.5}, steps=20, grid=6)
    assert isinstance(fig, Figure) and _n_axes(fig) == 1
    ax = fig.axes[0]
    assert "R1 penalty" in ax.get_title() and "γ=0.5" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("ODE") for lab in labels) and any(lab.startswith("simGD") for lab in labels)
    assert any(lab.startswith("altGD") for lab in labels) and "equilibrium" in labels
    # drawing into a given axes returns that axes' figure and adds none
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plots.vector_field("gan", steps=10, grid=6, schemes=("ode",), ax=ax2) is fig2
    assert _n_axes(fig2) == 1


def test_vector_fields_one_axes_per_method():
    fig = plots.vector_fields(("gan", "wgan"), steps=10, grid=6)
    assert _n_axes(fig) == 2


def test_theta_plane_one_panel_per_case():
    fig = plots.theta_plane(steps=16, t1=2.0)
    assert _n_axes(fig) == len(plots.SU_CASES) == 6
    titles = [ax.get_title() for ax in fig.axes]
    assert any("c=1" in t for t in titles) and any("L2=0.1" in t for t in titles)
    fig = plots.theta_plane(["nsgan", ("wgan_gp", {"c": 0.0})], steps=10, t1=1.0)
    assert _n_axes(fig) == 2


def test_ema_comparison_three_axes_both_dims():
    assert _n_axes(plots.ema_comparison(steps=20)) == 3
    assert _n_axes(plots.ema_comparison("gan", beta=0.9, dim=1, scheme="simgd", steps=20)) == 3


def test_r1_locus_data_matches_closed_form():
    g = np.linspace(0, 2, 41)
    data = plots.r1_locus_data(g)
    ev, cf = data["eigenvalues"], data["closed_form"]
    assert ev.shape == cf.shape == (41, 2)
    np.testing.assert_allclose(ev, cf, atol=1e-6, rtol=0)
    # independent of the pairing: the same multiset of roots per γ
    want = np.stack([-g / 2 + np.sqrt((g**2 / 4 - 0.25).astype(complex)),
                     -g / 2 - np.sqrt((g**2 / 4 - 0.25).astype(complex))], 1)
    key = lambda a: np.sort_complex(np.round(a, 9))  # noqa: E731
    for row_ev, row_want in zip(ev, want):
        np.testing.assert_allclose(key(row_ev), key(row_want), atol=1e-6)
    assert data["max_error"] < 1e-6
    # γ > 0 is locally convergent: every real part negative
    assert np.all(ev[1:].real < 0) and np.allclose(ev[0].real, 0)


def test_r1_locus_figure():
    fig = plots.r1_locus(np.linspace(0, 2, 21))
    assert _n_axes(fig) == 3  # complex plane, its colour bar, λ against γ
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "closed form" in legend


def test_all_methods_grid_and_titles():
    fig = plots.all_methods(["gan", "r1", "wgan_norm", "wgan_gp"], steps=12, grid=6, substeps=1, ncols=2)
    assert _n_axes(fig) == 4
    titles = [ax.get_title() for ax in fig.axes]
    # method names and words, not code-style titles ("spectral: None"); text large enough to read
    assert titles[0].startswith("GAN (saturating)") and titles[1].startswith("R1 penalty (γ=1)")
    assert "spectrum: locally convergent" in titles[1] and "spectrum: not differentiable" in titles[2]
    assert "spectral:" not in " ".join(titles) and "None" not in " ".join(titles)
    assert "θ-plane" in fig.axes[2].get_xlabel()
    for ax, t in zip(fig.axes, titles):
        assert "ODE: " in t and "simGD: " in t
        assert any(v in t for v in ("converging", "stalled", "oscillating", "diverging"))
        assert ax.title.get_fontsize() >= 10


def test_all_methods_draws_every_method():
    # every built-in method can be drawn (tiny step counts; instance noise is the slow one)
    from dynamics import METHODS

    fig = plots.all_methods(steps=8, grid=4, substeps=1, schemes=("ode",), methods=[m for m in METHODS if m != "instance_noise"])
    assert _n_axes(fig) == len(METHODS) - 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: plots.vector_field("nope", steps=5),
        lambda: plots.vector_field("r1", {"gama": 1.0}, steps=5),
        lambda: plots.vector_field("r1", {"gamma": -1.0}, steps=5),
        lambda: plots.vector_field("gan", steps=0),
        lambda: plots.vector_field("gan", lr=-0.1, steps=5),
        lambda: plots.vector_field("gan", init=(1.0, 2.0, 3.0), steps=5),
        lambda: plots.vector_field("gan", schemes=("euler",), steps=5),
        lambda: plots.theta_plane([("wgan_gp", {"c": -1.0})], steps=5),
        lambda: plots.theta_plane([42], steps=5),
        lambda: plots.ema_comparison(beta=1.5, steps=5),
        lambda: plots.r1_locus_data([-1.0, 0.5]),
        lambda: plots.all_methods(["gan", "bogus"], steps=5),
        lambda: plots.make_all("/nonexistent-never-written", names=["nope"]),
    ],
)
def test_bad_input_is_a_one_line_value_error(call):
    with pytest.raises(ValueError) as e:
        call()
    assert "\n" not in str(e.value)


def test_animate_writes_small_gif(tmp_path):
    p = plots.animate("gan", tmp_path / "a.gif", steps=20, frames=5, grid=6, dpi=40)
    assert p.exists() and p.stat().st_size < 2_000_000
    assert p.read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_plots_registry_names():
    assert set(plots.PLOTS) == {"vector_field", "theta_plane", "ema", "r1_locus", "all_methods"}
    assert all(callable(f) for f in plots.PLOTS.values())


def test_make_all_quick_writes_expected_files(tmp_path):
    paths = plots.make_all(tmp_path / "figs", gif=True, quick=True, dpi=50)
    names = sorted(p.name for p in paths)
    want = sorted([f"{n}.png" for n in plots.PLOTS] + [f"dirac_{m}.gif" for m in plots.GIF_METHODS])
    assert names == want
    for p in paths:
        assert p.exists() and p.stat().st_size > 0
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"GIF8")


def test_image_grids_are_enlarged_by_whole_pixels(tmp_path):
    """64 samples of 28 px make a 242 px grid; it is saved 3× (726 px), each pixel a 3×3 block of its value."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    from gcann.train.plots import save_image_grid

    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    save_image_grid(x, tmp_path / "g.png")
    img = np.asarray(Image.open(tmp_path / "g.png").convert("L"))
    assert img.shape == (726, 726)
    small = make_grid(x.clamp(-1, 1) * 0.5 + 0.5, nrow=8, padding=2)[0]
    ref = small.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()   # torchvision's own rounding
    assert np.array_equal(img[::3, ::3], ref) and np.array_equal(img, np.kron(ref, np.ones((3, 3), np.uint8)))
    big = torch.zeros(4, 3, 300, 300)
    save_image_grid(big, tmp_path / "big.png")
    assert Image.open(tmp_path / "big.png").size == (606, 606)   # already >= 512: not enlarged
