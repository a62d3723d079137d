"""Cost of the GCANN controller relative to one DCGAN training step.

Measures, in one run:

* the mean cost of ``GCANNController.observe`` over 10^5 steps of a noisy,
  regime-switching loss sequence on which the controller adjusts, pauses and
  skips (the loss sequence is generated beforehand and not timed);
* one D+G training step (forward, backward, Adam step for both) of the 64×64
  DCGAN in ``gcann.models`` on CPU with batch size 16 and 2 torch threads;

and prints both with their ratio (target: at most 1 %). Run from the repository
root: ``python benchmarks/bench_controller.py``; the report is also written to
``benchmarks/results/bench_controller.txt``.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from gcann.controller import GCANNConfig, GCANNController
from gcann.models import DCGANDiscriminator, DCGANGenerator

N_CONTROLLER_STEPS = 100_000
BATCH_SIZE = 16
TRAIN_STEPS = 10
WARMUP_TRAIN_STEPS = 2
RESULT = Path(__file__).resolve().parent / "results" / "bench_controller.txt"


def noisy_losses(n: int, seed: int = 0) -> list[tuple[float, float]]:
    """Regime-switching BCE-like losses: balanced, D winning, G winning, near-zero D."""
    rng = random.Random(seed)
    regimes = [(0.7, 1.5, 0.3), (0.1, 4.0, 0.5), (3.0, 0.3, 0.8), (0.03, 2.0, 0.02), (1.0, 1.0, 1.5)]
    out: list[tuple[float, float]] = []
    while len(out) < n:
        mu_d, mu_g, sigma = rng.choice(regimes)
        out.extend((abs(rng.gauss(mu_d, sigma)), abs(rng.gauss(mu_g, sigma))) for _ in range(rng.randint(200, 3000)))
    return out[:n]


def time_controller(losses: list[tuple[float, float]], repeats: int = 3) -> tuple[float, Counter[str]]:
    """Best-of-``repeats`` mean seconds per ``observe`` call, and the events of one run."""
    config = GCANNConfig(baseline_steps=1000)
    best = float("inf")
    for _ in range(repeats):
        ctrl = GCANNController(config)
        observe = ctrl.observe
        t0 = time.perf_counter()
        for d, g in losses:
            observe(d, g)
        best = min(best, (time.perf_counter() - t0) / len(losses))
    return best, Counter(e.event for e in ctrl.events)


def time_dcgan_step() -> tuple[float, float]:
    """Median and min seconds of one D+G DCGAN training step."""
    torch.manual_seed(0)
    gen, disc = DCGANGenerator(), DCGANDiscriminator()
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(BATCH_SIZE, 3, 64, 64) * 2 - 1
    ones, zeros = torch.ones(BATCH_SIZE), torch.zeros(BATCH_SIZE)

    def step() -> None:
        fake = gen(gen.sample_latent(BATCH_SIZE))
        opt_d.zero_grad()
        (bce(disc(real), ones) + bce(disc(fake.detach()), zeros)).backward()
        opt_d.step()
        opt_g.zero_grad()
        bce(disc(fake), ones).backward()
        opt_g.step()

    for _ in range(WARMUP_TRAIN_STEPS):
        step()
    times = []
    for _ in range(TRAIN_STEPS):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    torch.set_num_threads(2)
    losses = noisy_losses(N_CONTROLLER_STEPS)
    per_observe, events = time_controller(losses)
    median_step, min_step = time_dcgan_step()
    ratio = per_observe / min_step
    lines = [
        "GCANN controller overhead benchmark (benchmarks/bench_controller.py)",
        f"machine: {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", os.cpu_count()={os.cpu_count()}, torch threads={torch.get_num_threads()}",
        f"python {platform.python_version()}, torch {torch.__version__}",
        "",
        f"controller: {N_CONTROLLER_STEPS} observe() calls on a noisy regime-switching loss sequence",
        f"  events: {dict(sorted(events.items()))}",
        f"  cost per observe(): {per_observe * 1e6:.2f} us (best of 3 runs)",
        f"DCGAN 64x64 (nz=100, ngf=ndf=64) D+G training step on CPU, batch size {BATCH_SIZE}, Adam:",
        f"  median {median_step * 1e3:.1f} ms, min {min_step * 1e3:.1f} ms over {TRAIN_STEPS} steps",
        f"ratio observe() / training step (min): {ratio * 100:.5f} %  (target <= 1 %: "
        + ("met" if ratio <= 0.01 else "NOT met") + ")",
    ]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(report)


if __name__ == "__main__":
    main()
