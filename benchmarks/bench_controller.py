"""Cost of every registered controller relative to the training steps it drives.

Measures, in one run:

* the GCANN core (``GCANNController.observe``) over 10^5 steps of a noisy, regime-switching loss
  sequence on which it adjusts, pauses and skips (the sequence is generated beforehand, not timed);
* per registered controller (``gcann.control.CONTROLLERS``), through the engines' own
  :class:`gcann.control.ControlRows`: the cost of one step's ``observe`` + ``plans`` for one row (the
  image trainer's case) and for 64 rows (the ring study at 64 seeds), on the same loss sequence;
* one D+G training step of the 64×64 DCGAN in ``gcann.models`` on the CPU (batch 16, 2 threads);
* the batched ring step at 64 seeds with no controller, and with 64 rows of each controller end to
  end (``train_ring``), which adds what the controller's knobs cost in the objective (ADA's
  instance noise, CLC's buffers and feedback term) to the controller's own cost.

It prints the ratios (targets: controller / DCGAN step ≤ 1 %, controller at 64 rows / ring step ≤ 2 %).
Run from the repository root: ``python benchmarks/bench_controller.py``; the report is also written to
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

from gcann.control import CONTROLLERS, ControlRows, make_controller
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


RING_ROWS = 64
RING_STEPS = 20
ROWS_STEPS = 5_000


def time_rows(name: str, rows: int, losses: list[tuple[float, float]], repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds per step of ControlRows.observe + plans for ``rows`` rows of ``name``."""
    best = float("inf")
    n = min(len(losses), ROWS_STEPS)
    jitter = [0.01 * k for k in range(rows)]
    seqs = [([d + j for j in jitter], [g] * rows, {"real_sign": [0.5] * rows, "d_real": [0.1] * rows,
                                                    "d_fake": [-0.1] * rows}) for d, g in losses[:n]]
    for _ in range(repeats):
        bank = ControlRows([make_controller(name, 2e-4, 2e-4, batch_size=64, steps_per_epoch=1000, loss="gan")
                            for _ in range(rows)])
        t0 = time.perf_counter()
        for t, (ld, lg, stats) in enumerate(seqs):
            bank.plans()
            if bank.dynamic:
                bank.observe(t, ld, lg, stats=stats)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def time_ring(controller: str) -> float:
    """Seconds per step of the batched ring study at RING_ROWS seeds, every row under ``controller``."""
    from gcann.ring import RingSetting, train_ring

    settings = [RingSetting("alpha_ns", 1.0, 1.0, controller=controller)] * RING_ROWS
    run = train_ring(settings, list(range(RING_ROWS)), epochs=1, max_steps=RING_STEPS, n_train=4096,
                     curve_every=0, form="exact", device="cpu")
    return run.time_total / run.steps


def main() -> None:
    torch.set_num_threads(2)
    losses = noisy_losses(N_CONTROLLER_STEPS)
    per_observe, events = time_controller(losses)
    median_step, min_step = time_dcgan_step()
    ratio = per_observe / min_step
    ring_plain = time_ring("none")
    table = []
    for name in CONTROLLERS:
        one, many = time_rows(name, 1, losses), time_rows(name, RING_ROWS, losses)
        ring = time_ring(name)
        table.append((name, one, many, ring))
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
        "",
        f"every registered controller through ControlRows (observe + plans per step, best of 3 over "
        f"{ROWS_STEPS} steps); ring step: train_ring, {RING_ROWS} seeds, exact form, {RING_STEPS} steps, "
        f"no controller: {ring_plain * 1e3:.2f} ms",
        "| controller | 1 row (us) | / DCGAN step | 64 rows (us) | / ring step | ring step with it (ms) | / plain ring step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, one, many, ring in table:
        lines.append(f"| {name} | {one * 1e6:.2f} | {one / min_step * 100:.4f} % | {many * 1e6:.1f} | "
                     f"{many / ring_plain * 100:.2f} % | {ring * 1e3:.2f} | {ring / ring_plain:.3f} |")
    worst_one = max(one / min_step for _, one, _, _ in table)
    worst_many = max(many / ring_plain for _, _, many, _ in table)
    lines += [f"largest controller / DCGAN step: {worst_one * 100:.4f} % (target <= 1 %: "
              + ("met" if worst_one <= 0.01 else "NOT met") + ")",
              f"largest controller at 64 rows / ring step: {worst_many * 100:.2f} % (target <= 2 %: "
              + ("met" if worst_many <= 0.02 else "NOT met") + ")",
              "the last two columns include what each controller's knobs cost in the objective (noise draws, "
              "CLC buffers and term, GCANN's diversity term and catch-up bursts), not only the controller"]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(report)


if __name__ == "__main__":
    main()
