"""Every controller that reads only the losses drives the Dirac-GAN testbed through the one interface.

Against closed forms: CLC's damping makes the standard GAN's Jacobian at the equilibrium
[[0, f′(0)], [−f′(0), −λ]] (Mescheder et al. write [[0, −f′(0)], [f′(0), −λ]]: θ's orientation) with eigenvalues (−λ ± √(λ² − 4f′(0)²))/2 (f′(0) = 1/2), so the
unregularised GAN converges; TTUR's rates give the simultaneous-gradient map I + diag(h_G, h_D)·J,
whose eigenvalues 1 ± i·f′(0)·√(h_G h_D) lie outside the unit circle. Both measured on the
controlled simulator's own trajectories, and on the damped game's field by autograd."""
from __future__ import annotations

import json

import pytest
import torch

from dynamics.simulate import simulate
from dynamics.study import make_game
from gcann.cli import main
from gcann.control import make_controller
from gcann.dirac import DIRAC_CONFIG, simulate_gcann
from gcann.dirac.controlled_simulator import simulate_controlled

F1 = 0.5   # f'(0) of the standard GAN, f(t) = -log(1 + e^-t)


def controllers(name, B, lr_d=0.1, lr_g=0.1, **settings):
    return [make_controller(name, lr_d, lr_g, settings or None, loss="gan") for _ in range(B)]


def step_map(traj) -> torch.Tensor:
    """The linear map M with z_(k+1) = M z_k, fitted from the first steps of two rows started near 0."""
    z = traj.z                                   # (T, rows, 2): columns of the two rows before and after
    return torch.stack([z[1, 0], z[1, 1]], 1) @ torch.linalg.inv(torch.stack([z[0, 0], z[0, 1]], 1))


Z0 = 1e-7 * torch.tensor([[1.0, 0.3], [-0.4, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("lam", [0.5, 1.0, 10.0])
def test_clc_damped_field_has_the_closed_form_jacobian_and_eigenvalues(lam):
    game = make_game("gan")
    damped = type(game)(game.objective.with_(l2=True, defaults={"l2": lam}), game.dim)
    J = torch.autograd.functional.jacobian(lambda z: damped.field(z[None], create_graph=True)[0],
                                           torch.zeros(2, dtype=torch.float64))
    expect = torch.tensor([[0.0, F1], [-F1, -lam]], dtype=torch.float64)
    assert torch.allclose(J, expect, atol=1e-12)
    disc = complex(lam * lam - 4 * F1 * F1) ** 0.5
    closed = sorted([(-lam + disc) / 2, (-lam - disc) / 2], key=lambda c: (c.real, c.imag))
    got = sorted(torch.linalg.eigvals(J).tolist(), key=lambda c: (c.real, c.imag))
    assert all(abs(a - b) < 1e-9 for a, b in zip(got, closed))
    assert all(c.real < 0 for c in closed)


@pytest.mark.parametrize("lam", [0.5, 1.0, 10.0])
def test_the_clc_controlled_step_is_the_damped_linear_map_and_converges(lam):
    """Near the equilibrium the controlled SGD step is z ← (I + h·J_clc) z; its spectral radius
    max|1 + hμ| < 1 for the eigenvalues μ above; and from anywhere in the unit box the GAN converges."""
    game, h = make_game("gan"), 0.1
    traj, _ = simulate_controlled(game, Z0, controllers=controllers("clc", 2, weight=lam), steps=1)
    M = step_map(traj)
    J = torch.tensor([[0.0, F1], [-F1, -lam]], dtype=torch.float64)
    assert torch.allclose(M, torch.eye(2, dtype=torch.float64) + h * J, rtol=0, atol=1e-9)
    disc = complex(lam * lam - 4 * F1 * F1) ** 0.5
    assert max(abs(1 + h * (-lam + s * disc) / 2) for s in (1, -1)) < 1
    z0 = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    far, _ = simulate_controlled(game, z0, controllers=controllers("clc", 6, weight=lam), steps=4000)
    plain = simulate(game, z0, steps=4000, lr=h)
    assert float(far.distance()[-1].max()) < 1e-3 < float(plain.distance()[-1].min())


def test_ttur_step_is_the_two_rate_map_spiralling_out():
    """TTUR's step near 0 is I + diag(h_G, h_D)·J with h_D = 3 h_G; it multiplies b·θ² + a·ψ²
    (a = h_G f′(0), b = h_D f′(0)) by exactly 1 + ab: eigenvalues 1 ± i√(ab), outside the unit circle."""
    game, h = make_game("gan"), 0.1
    traj, logs = simulate_controlled(game, Z0, controllers=controllers("ttur", 2, lr_g=h, ratio=3.0), steps=200)
    assert torch.all(logs.lr_d == 3 * h) and torch.all(logs.lr_g == h)
    J = torch.tensor([[0.0, F1], [-F1, 0.0]], dtype=torch.float64)
    M = step_map(traj)
    assert torch.allclose(M, torch.eye(2, dtype=torch.float64) + torch.diag(torch.tensor([h, 3 * h], dtype=torch.float64)) @ J,
                          rtol=0, atol=1e-9)
    a, b = h * F1, 3 * h * F1
    q = b * traj.z[:, :, 0] ** 2 + a * traj.z[:, :, 1] ** 2
    assert torch.allclose(q[1:] / q[:-1], torch.full_like(q[1:], 1 + a * b), rtol=1e-9, atol=0)


@pytest.mark.parametrize("ratio", [1.0, 3.0, 10.0])
def test_ttur_closed_loop_eigenvalues_by_autograd(ratio):
    """TTUR's closed-loop step map at the equilibrium, I + diag(h_G, h_D)·∂v/∂z with the field's Jacobian by
    autograd, has the eigenvalues 1 ± i·f′(0)·√(h_G h_D) (h_D = ratio·h_G), of modulus √(1 + f′(0)² h_G h_D) > 1."""
    game, h = make_game("gan"), 0.1
    ctl = make_controller("ttur", h, h, {"ratio": ratio}, loss="gan")
    plan = ctl.initial_plan()
    h_g, h_d = float(plan.lr_g), float(plan.lr_d)
    assert h_d == pytest.approx(ratio * h_g)
    J = torch.autograd.functional.jacobian(lambda z: game.field(z[None], create_graph=True)[0],
                                           torch.zeros(2, dtype=torch.float64))
    M = torch.eye(2, dtype=torch.float64) + torch.diag(torch.tensor([h_g, h_d], dtype=torch.float64)) @ J
    got = sorted(torch.linalg.eigvals(M).tolist(), key=lambda c: c.imag)
    w = F1 * (h_g * h_d) ** 0.5
    assert all(abs(a - b) < 1e-12 for a, b in zip(got, [complex(1, -w), complex(1, w)]))
    assert all(abs(c) > 1 for c in got)


def test_no_controller_rows_equal_the_plain_simulator():
    game = make_game("nsgan")
    z0 = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    traj, _ = simulate_controlled(game, z0, controllers=controllers("none", 5, lr_d=0.2, lr_g=0.2), steps=300)
    plain = simulate(game, z0, steps=300, lr=0.2)
    assert torch.equal(traj.z, plain.z)


def test_the_gcann_spelling_and_the_controller_spelling_agree(tmp_path, capsys):
    args = ["dirac", "simulate", "--method", "gan", "--random", "4", "--steps", "200", "--json", "-q"]
    assert main(args + ["--gcann", "dirac"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(args + ["--controller", "gcann"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a == b and a["gcann"]["events"]
    game = make_game("gan")
    z0 = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    t1, l1 = simulate_gcann(game, z0, config=DIRAC_CONFIG, steps=150)
    t2, l2 = simulate_controlled(game, z0, controllers=[make_controller("gcann", DIRAC_CONFIG.lr_d, DIRAC_CONFIG.lr_g,
                                                                        DIRAC_CONFIG) for _ in range(3)], steps=150)
    assert torch.equal(t1.z, t2.z) and l1.event_counts() == l2.event_counts()


def test_clc_from_the_command_line_converges(capsys):
    assert main(["dirac", "simulate", "--method", "gan", "--controller", "clc", "--random", "8", "--steps", "3000",
                 "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdicts"]["converging"] == 1.0 and out["controller"]["name"] == "clc"


def test_controller_settings_key_value_equals_json(capsys):
    runs = []
    for sets in (["weight=0.5"], ['{"weight": 0.5}'], ["weight=2", '{"weight": 0.5}']):
        args = ["dirac", "simulate", "--method", "gan", "--controller", "clc", "--random", "4", "--steps", "200", "--json", "-q"]
        assert main(args + [x for s in sets for x in ("--controller-set", s)]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1] == runs[2]
    assert runs[0]["controller"]["settings"]["weight"] == 0.5


@pytest.mark.parametrize("args,msg", [
    (["--controller", "ada"], "Dirac-GAN"),
    (["--controller", "nope"], "unknown controller"),
    (["--controller", "ttur", "--controller-set", '{"rato": 2}'], "unknown setting"),
    (["--controller", "ttur", "--controller-set", "[1]"], "JSON object or KEY=VALUE"),
    (["--controller", "ttur", "--controller-set", "ratio"], "JSON object or KEY=VALUE"),
    (["--controller", "ttur", "--controller-set", "{1: 2}"], "JSON object or KEY=VALUE"),
    (["--controller", "ttur", "--gcann", "dirac"], "configures the GCANN controllers"),
    (["--controller-set", "{}"], "needs --controller"),
])
def test_bad_controller_options_are_one_line(capsys, args, msg):
    assert main(["dirac", "simulate", "--method", "gan", "--steps", "10", "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gcann: error: ") and msg in err and err.count("\n") == 1


def test_the_controller_table_counts_what_the_controlled_simulator_gives(tmp_path, capsys):
    """Each cell is the verdict count of that controller's own simulation (recomputed here); a controller
    undefined for an objective gets n/a with its reason; the CLI adds the table to `dirac table`'s output."""
    from dynamics.verdict import Tolerances, classify
    from gcann.dirac.controlled_simulator import effective_distance
    from gcann.dirac.table import _inits, controller_table

    md, doc = controller_table(("none", "clc", "gap"), n_init=6, steps=400, methods=["gan", "wgan"])
    game = make_game("gan")
    z0 = _inits(6, 1, 0)
    traj, _ = simulate_controlled(game, z0, controllers=controllers("clc", 6), steps=400)
    labels = classify(effective_distance(traj), Tolerances(), z=traj.z, t=traj.t)
    gan = doc["rows"][0]["cells"]
    assert gan["clc"]["converged"] == sum(lab == "converging" for lab in labels) / 6
    assert "refused" in doc["rows"][1]["cells"]["gap"] and "V* = 0" in doc["rows"][1]["cells"]["gap"]["refused"]
    assert "| wgan (clip 1) |" in md and "n/a" in md


def test_all_controllers_get_a_table_column_and_cells_name_the_commonest_other_verdict():
    from gcann.control import CONTROLLERS
    from gcann.dirac.table import _cell, controller_table, dirac_controllers

    assert dirac_controllers() == tuple(CONTROLLERS)
    cell = {"converged": 0.25, "median_final_distance": 0.5, "slowly_converging": 0.5, "stalled": 0.0,
            "oscillating": 0.25, "diverging": 0.0}
    assert _cell(cell).endswith("(slowly converging 0.50)") and _cell({"refused": "why"}) == "n/a"
    assert "(" not in _cell({**cell, "converged": 1.0, "slowly_converging": 0.0, "oscillating": 0.0})
    md, doc = controller_table(("ada", "gcann-div"), n_init=2, steps=20, methods=["gan"])
    assert "refused" in doc["rows"][0]["cells"]["ada"] and "converged" in doc["rows"][0]["cells"]["gcann-div"]


@pytest.mark.slow
def test_dirac_table_adds_the_controller_table(tmp_path, capsys):
    """The CLI adds the per-controller table (14 methods x 2000 steps: about 3 minutes here, hence slow)."""
    assert main(["dirac", "table", "--no-gcann", "--controllers", "clc,none", "--n-init", "2", "-q",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Dirac-GAN per controller" in out and "| method | clc | none |" in out
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["controllers"]["controllers"] == ["clc", "none"] and len(saved["controllers"]["rows"]) == 14


def test_an_unknown_controller_in_the_table_is_one_line(capsys):
    assert main(["dirac", "table", "--no-gcann", "--controllers", "nope", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gcann: error: ") and "unknown controller" in err and err.count("\n") == 1


def test_a_preset_in_the_controller_settings_starts_from_that_preset(capsys):
    """--controller gcann --controller-set preset=paper-celeba is --gcann paper (it was the Dirac config)."""
    base = ["dirac", "simulate", "--method", "nsgan", "--random", "4", "--steps", "300", "--json", "-q"]
    got = []
    for extra in (["--gcann", "paper"], ["--controller", "gcann", "--controller-set", "preset=paper-celeba"],
                  ["--gcann", "dirac"]):
        assert main(base + extra) == 0
        got.append(json.loads(capsys.readouterr().out))
    key = lambda d: (d["verdicts"], d["median_final_distance"], d["settings"])
    assert key(got[0]) == key(got[1]) != key(got[2])
