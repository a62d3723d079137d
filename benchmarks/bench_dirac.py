"""Batched Dirac-GAN simulation against per-trajectory loops doing the same work.

Work: B initial conditions × S simultaneous-GD steps (SGD, lr 0.05), float64, 1-D Dirac-GAN,
for several methods.  Timed in one run, on this machine:

* batched, eager          dynamics.simulate (field by autograd each step)
* batched, compiled       dynamics.simulate(compile=True): K steps traced with make_fx, torch.compile
* NumPy loop              one trajectory at a time, hand-written closed-form field (the strongest
                          per-trajectory baseline: no autograd at all), every trajectory run
* torch loop              one trajectory at a time through the same autograd field (B = 1); run on
                          a subset of trajectories and scaled linearly to B (stated in the output)

Final states of the batched runs are checked against the NumPy loop.
Usage: python benchmarks/bench_dirac.py [--batch 4096] [--steps 1000] [--out benchmarks/results/bench_dirac.txt]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import torch

import dynamics as dy
from dynamics.study import make_game


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


# hand-written closed-form fields (θ̇, ψ̇) of the 1-D Dirac-GAN, D(x) = ψx the logit of "real"
def f_gan(t, p):
    s = _sig(p * t)
    return s * p, -s * t


def f_r1(t, p, g=1.0):
    s = _sig(p * t)
    return s * p, -s * t - g * p


def f_wgan_gp0(t, p, g=1.0):
    return p, -t - g * p


def f_conopt(t, p, g=1.0):
    s = _sig(p * t)
    ds = s * (1 - s)
    u = p * t
    v0, v1 = s * p, -s * t
    # v − γ Jᵀ v
    j00, j01, j10, j11 = ds * p * p, s + ds * u, -s - ds * u, -ds * t * t
    return v0 - g * (j00 * v0 + j10 * v1), v1 - g * (j01 * v0 + j11 * v1)


CASES = [("gan", {}, f_gan), ("r1", {"gamma": 1.0}, f_r1), ("wgan_gp", {"gamma": 1.0, "c": 0.0}, f_wgan_gp0),
         ("conopt", {"gamma": 1.0}, f_conopt)]


def numpy_loop(field, z0: np.ndarray, steps: int, lr: float) -> np.ndarray:
    out = np.empty_like(z0)
    for i in range(len(z0)):
        z = z0[i].copy()
        for _ in range(steps):
            a, b = field(z[0], z[1])
            z = z + lr * np.array([a, b])
        out[i] = z
    return out


def torch_loop(game, z0: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    hp = game.prepare(None, 1)
    out = []
    for i in range(len(z0)):
        z = z0[i : i + 1].clone()
        for _ in range(steps):
            z = z + lr * game.field(z, hp)
        out.append(z)
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--torch-subset", type=int, default=16, help="trajectories timed in the per-trajectory torch loop")
    ap.add_argument("--out", default="benchmarks/results/bench_dirac.txt")
    a = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    lines = [f"# bench_dirac: {a.batch} initial conditions x {a.steps} simGD steps, lr {a.lr}, float64, 1-D Dirac-GAN",
             f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads), numpy {np.__version__}, python {platform.python_version()}",
             "# times in seconds; ratios = per-trajectory loop time / batched time",
             f"{'method':9s} {'numpy_loop':>10s} {'torch_loop*':>11s} {'eager':>8s} {'compiled':>9s} {'compile':>8s} "
             f"{'np/eager':>9s} {'np/comp':>8s} {'torch/comp':>10s} {'max|Δ|':>9s}"]
    print("\n".join(lines), flush=True)
    z0 = dy.circle_points(a.batch, 1.0) * torch.linspace(0.2, 1.5, a.batch, dtype=torch.float64)[:, None]
    for method, params, field in CASES:
        game = make_game(method, params)
        t = time.perf_counter()
        ref = numpy_loop(field, z0.numpy(), a.steps, a.lr)
        t_np = time.perf_counter() - t

        sub = z0[: a.torch_subset]
        t = time.perf_counter()
        torch_loop(game, sub, a.steps, a.lr)
        t_torch = (time.perf_counter() - t) * a.batch / len(sub)

        t = time.perf_counter()
        eager = dy.simulate(game, z0, steps=a.steps, lr=a.lr, record_every=25)
        t_eager = time.perf_counter() - t

        t = time.perf_counter()
        dy.simulate(game, z0, steps=a.steps, lr=a.lr, record_every=25, compile=True, chunk=25)  # compile + warm-up
        t_compile = time.perf_counter() - t
        t = time.perf_counter()
        comp = dy.simulate(game, z0, steps=a.steps, lr=a.lr, record_every=25, compile=True, chunk=25)
        t_comp = time.perf_counter() - t

        err = max(float(np.abs(eager.z[-1].numpy() - ref).max()), float(np.abs(comp.z[-1].numpy() - ref).max()))
        row = (f"{method:9s} {t_np:10.2f} {t_torch:11.1f} {t_eager:8.3f} {t_comp:9.3f} {t_compile:8.1f} "
               f"{t_np / t_eager:9.1f} {t_np / t_comp:8.1f} {t_torch / t_comp:10.0f} {err:9.1e}")
        print(row, flush=True)
        lines.append(row)
    lines.append(f"# * torch_loop timed on {a.torch_subset} trajectories and scaled linearly to {a.batch} "
                 "(each trajectory is independent, so the loop time is proportional to their number)")
    lines.append("# compile: first compiled run (trace + torch.compile + one simulation), excluded from 'compiled'")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
