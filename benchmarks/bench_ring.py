"""Ring study: N seeds in one batched model against a per-seed loop doing the same work.

Work: N seeds of Welfert et al.'s toy GAN (G 2-400x4-2, D 2-200x4-1, batch 128, Adam), ``--steps`` training
steps each, non-saturating (1, 1) loss. Timed in one run, on this machine:

* batched     gcann.ring.train_ring with all N seeds as one model (stacked weights, batched matmuls)
* per-seed    the same function called once per seed (N = 1 each time): the same arithmetic, one seed at a time

Two figures for each: the whole call of ``WARM`` + ``--steps`` steps (set-up: initial weights, data,
first-touch memory), and the cost of one training step once running: the median over the last ``--steps``
steps of the call (run as epochs of one batch, timed at each epoch's end). A study runs hundreds of steps
per set-up (780 at the CPU size, 156,000 at the source's), so its time is the per-step figure; the target
is read there.

Both give every seed the same weights bit for bit (checked here on the final generator weights).
Also measured: the cost of N GCANN controllers (observe + plan, in Python) per step of the batched run,
all N rows +gcann with the paper-celeba preset at warm-up 0 so that the controllers make decisions.

On a GPU (``--device cuda``), ``--study-epochs E`` also trains one setting of the study at the source's
size, ``--study-seeds`` (200) seeds, for E epochs of 390 steps with the coverage curve every epoch, and
projects the time of the full 400 epochs from it; the per-seed loop's projection is the per-seed-step
time measured above × 200 seeds × 156,000 steps.

``--profile`` also prints the batched step's operators and kernels (torch.profiler, sorted by their own time
on the device) over ``--steps`` steps: what to read before choosing a lever (on the CPU, read it beside the clock:
under torch.profiler the weight-gradient ``bmm`` of G's 400-wide layers runs about 17 ms against 9.4 ms without
it). ``--form`` chooses the study's form (source: the authors' code, the default; exact).

``--compare-backward`` (CPU) times the batched step with each of the layer's two backwards, alternated in one
process (``--reps`` calls each, medians): autograd's own backward of ``baddbmm`` (the default) and the
seed-by-seed weight gradient (``gcann.ring.models.CPU_SEEDWISE_BACKWARD``), and checks that both give every
seed the same weights.

Usage: python benchmarks/bench_ring.py [--seeds 64] [--steps 10] [--device cpu|cuda] [--study-epochs E]
       [--form source|exact] [--profile] [--compare-backward [--reps 3]] [--out benchmarks/results/bench_ring.txt]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from gcann.ring import RingSetting, ring_gcann_config, train_ring
from gcann.sysmem import keep_freed_memory

WARM = 2  # first steps of a call left out of the per-step figure (first-touch memory, caches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--study-epochs", type=int, default=0)
    ap.add_argument("--study-seeds", type=int, default=200)
    ap.add_argument("--form", choices=("source", "exact"), default="source")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--compare-backward", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    dev = torch.device(a.device)
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    n, steps = a.seeds, a.steps
    malloc_kept = keep_freed_memory() if dev.type == "cpu" else False   # as gcann ring study does on the CPU
    plain = RingSetting("alpha_ns", 1.0, 1.0)

    def timed(m, k, seed0=0):
        """One call training seeds seed0 .. seed0 + m - 1 for k steps, as epochs of one batch each:
        (seconds for the call, seconds of each step from the epoch ends, the run)."""
        marks = []

        def mark(epoch, epochs):
            sync()
            marks.append(time.perf_counter())
        sync()
        t = time.perf_counter()
        run = train_ring([plain] * m, list(range(seed0, seed0 + m)), epochs=k, n_train=128, curve_every=0,
                         device=dev, progress=mark, form=a.form)
        sync()
        return time.perf_counter() - t, [b - a for a, b in zip(marks, marks[1:])], run

    timed(2, WARM)                                                               # warm-up of the process
    t_batched, per_step, batched = timed(n, WARM + steps)
    step_b = statistics.median(per_step[WARM - 1:])          # one step of all n seeds, once running
    t_loop, step_l = 0.0, 0.0
    same, worst = True, 0.0
    for k in range(n):
        dt, per_step, alone = timed(1, WARM + steps, k)
        t_loop += dt
        step_l += statistics.median(per_step[WARM - 1:])     # n per-seed steps, once running
        same &= all(torch.equal(a[k], b[0]) for a, b in zip(batched.g_params, alone.g_params))
        worst = max(worst, max(float((a[k] - b[0]).abs().max()) for a, b in zip(batched.g_params, alone.g_params)))

    floor = matmul_floor(n, dev) if dev.type == "cpu" else None

    gcann = RingSetting("alpha_ns", 1.0, 1.0, controller="gcann")
    cfg = ring_gcann_config(steps_per_epoch=390, lr=1e-4)
    from dataclasses import replace
    cfg = replace(cfg, baseline_steps=0)
    ctl = train_ring([gcann] * n, list(range(n)), controller_settings={"gcann": cfg}, epochs=1, max_steps=steps,
                     n_train=128 * (steps + 1), curve_every=0, device=dev, form=a.form)

    lines = [
        f"bench_ring: {n} seeds, Welfert et al.'s networks, batch 128, ns(1,1), {a.form} form; each call {WARM} + {steps} "
        f"steps",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {dev_name}; "
        f"malloc keeps freed memory (gcann.sysmem): {malloc_kept}",
        f"per training step, once running (median of steps {WARM + 1}..{WARM + steps} of one call):",
        f"  batched  (one model of {n} seeds): {1e3 * step_b:8.1f} ms/step  ({1e3 * step_b / n:.2f} ms per seed-step)",
        f"  per-seed loop ({n} runs of 1 seed): {1e3 * step_l:8.1f} ms     ({1e3 * step_l / n:.2f} ms per seed-step)",
        f"  speed-up batched / per-seed: {step_l / step_b:.2f}x   (target >= 2x at 64 seeds)",
        f"whole calls of {WARM + steps} steps, set-up and first steps included: batched {t_batched:.2f} s, per-seed "
        f"loop {t_loop:.2f} s, ratio {t_loop / t_batched:.2f}x",
        f"final generator weights identical, batched vs alone, every seed: {same} (largest difference {worst:.1e})",
        f"{n} GCANN controllers: {1e3 * ctl.time_control / steps:.2f} ms/step of {1e3 * ctl.time_total / steps:.0f} ms/step "
        f"({100 * ctl.time_control / ctl.time_total:.2f} %); {len(ctl.events)} events, D updates per seed "
        f"{ctl.d_updates.min().item()}..{ctl.d_updates.max().item()}",
        "times include the per-step Python of train_ring (plans, streams); the machine is shared, so timings vary",
    ]
    if floor is not None:
        flops, rate = floor
        lines.insert(6, f"  matmul floor: {flops / 1e9:.3f} GFLOP of matmuls per seed-step at this machine's batched "
                        f"rate ({rate / 1e9:.0f} GFLOP/s, G's 400-wide products) = {1e3 * flops / rate:.2f} ms per "
                        f"seed-step; no batched form doing the same arithmetic beats the per-seed loop by more than "
                        f"{step_l / n / (flops / rate):.2f}x here")
    if floor is not None:
        lines.insert(7, f"  batched step against the floor: {flops / rate * n / step_b:.0%} of the matmul floor's speed, "
                        f"{step_l / step_b / (step_l / n / (flops / rate)):.0%} of the largest ratio (goal >= 90 %)")
    if floor is not None:
        adam = adam_time(n)
        per_seed = flops / rate * n
        lines[8:8] = [f"  Adam's fused kernel alone, by the clock: {1e3 * adam:.1f} ms per step of {n} seeds (D and G, "
                      f"memory-bound); with it no step doing this arithmetic exceeds floor / (floor + Adam) = "
                      f"{per_seed / (per_seed + adam):.0%} of the floor's speed, even with matmuls at the floor's rate "
                      f"and nothing else"]
        lines[9:9] = step_breakdown(plain, n, steps, dev, a.form, floor)
    if a.compare_backward and dev.type == "cpu":
        lines += compare_backward(plain, n, steps, a.form, a.reps)
    if a.profile:
        lines += profile_step(plain, n, steps, dev, a.form)
    if a.study_epochs:
        full_steps = 400 * (391 if a.form == "source" else 390)
        ns = a.study_seeds
        loop_proj = step_l / n * ns * full_steps
        runs = {}
        variants = ((True, a.study_epochs, False, False), (True, a.study_epochs, False, True),
                    (True, a.study_epochs, True, False), (True, a.study_epochs, True, True),
                    (False, max(1, a.study_epochs // 5), False, False))
        for graph, epochs, tf32, fused in variants:
            kw = dict(curve_every=1, device=dev, cuda_graph=graph, tf32=tf32, fused_adam=fused, form=a.form)
            step = "CUDA graph" if graph and dev.type == "cuda" else "eager"
            name = f"{step}, {'TF32' if tf32 else 'fp32'} matmuls" + (", Adam as one fused kernel" if fused else "")
            try:
                train_ring([plain] * ns, list(range(ns)), epochs=1, max_steps=3, **kw)  # warm-up
                sync()
                t = time.perf_counter()
                runs[graph, tf32, fused] = study = train_ring([plain] * ns, list(range(ns)), epochs=epochs, **kw)
                sync()
            except Exception as e:  # a variant that fails on this torch/GPU is reported, not fatal
                lines.append(f"study of one setting, {name}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                continue
            t_study = time.perf_counter() - t
            per_step = t_study / study.steps
            lines += [
                f"study of one setting, {ns} seeds x {epochs} epochs ({study.steps} steps, coverage curve every "
                f"epoch), {name}: {t_study:.1f} s, {1e3 * per_step:.2f} ms/step",
                f"  projected to the full 400 epochs ({full_steps} steps): {per_step * full_steps / 60:.1f} min "
                f"(target < 30 min); the per-seed loop projected: {loop_proj / 3600:.1f} h",
            ]
        n_cmp = runs[False, False, False].steps
        check = train_ring([plain] * ns, list(range(ns)), epochs=max(1, a.study_epochs // 5), curve_every=0,
                           device=dev, cuda_graph=True, form=a.form)
        diff = max(float((x - y).abs().max()) for x, y in zip(check.g_params, runs[False, False, False].g_params))
        lines.append(f"CUDA graph vs eager after {n_cmp} steps: generator weights differ by at most {diff:.1e}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        from gcann.fileio import atomic_write_text
        atomic_write_text(a.out, text)


def profile_step(setting, n: int, steps: int, dev: torch.device, form: str, top: int = 15) -> list[str]:
    """The operators (CPU) or kernels (CUDA) of ``steps`` batched steps of ``n`` seeds, by their own time."""
    from torch.profiler import ProfilerActivity, profile

    kw = dict(n_train=128, curve_every=0, device=dev, form=form)
    train_ring([setting] * n, list(range(n)), epochs=2, **kw)                      # warm-up
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        train_ring([setting] * n, list(range(n)), epochs=steps, **kw)
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=top, max_name_column_width=48)
    return [f"profile of {steps} batched steps of {n} seeds (set-up included), by {key}:", *table.splitlines()]


def compare_backward(setting, n: int, steps: int, form: str, reps: int) -> list[str]:
    """The batched CPU step with autograd's backward of ``baddbmm`` and with the seed-by-seed weight gradient
    (``gcann.ring.models.CPU_SEEDWISE_BACKWARD``), ``reps`` calls of each alternated in this process (the
    machine's load then weighs on both alike): the median step of each call, the median over calls."""
    from gcann.ring import models

    def call(seedwise: bool):
        models.CPU_SEEDWISE_BACKWARD = seedwise
        marks = []
        run = train_ring([setting] * n, list(range(n)), epochs=WARM + steps, n_train=128, curve_every=0,
                         progress=lambda e, E: marks.append(time.perf_counter()), form=form)
        return statistics.median([b - a for a, b in zip(marks, marks[1:])][WARM - 1:]), run
    default = models.CPU_SEEDWISE_BACKWARD
    got = {False: [], True: []}
    try:
        runs = {k: call(k)[1] for k in (False, True)}                            # warm-up, and the weights
        for r in range(reps):
            for k in ((False, True) if r % 2 == 0 else (True, False)):
                got[k].append(call(k)[0])
    finally:
        models.CPU_SEEDWISE_BACKWARD = default
    same = all(torch.equal(x, y) for x, y in zip(runs[False].g_params + runs[False].d_params,
                                                 runs[True].g_params + runs[True].d_params))
    old, new = (statistics.median(got[k]) for k in (False, True))
    each = lambda k: ", ".join(f"{1e3 * t:.1f}" for t in got[k])
    return [f"  layer backward, {reps} calls of each alternated: autograd's baddbmm backward {1e3 * old:.1f} ms/step "
            f"({each(False)}), seed-by-seed weight gradient {1e3 * new:.1f} ms/step ({each(True)}): "
            f"the seed-by-seed step at {old / new:.3f}x the default's speed; the same weights either way: {same}"]


def step_breakdown(setting, n: int, steps: int, dev: torch.device, form: str, floor: tuple[float, float]) -> list[str]:
    """Where a batched CPU step's time goes (torch.profiler's own time of each operator over ``steps`` steps,
    set-up left out by timing a call of 1 step and subtracting it): the matmuls, at what share of the
    floor's rate, Adam's fused kernel, and everything else; the reason the step stands where it does."""
    from torch.profiler import ProfilerActivity, profile

    kw = dict(n_train=128, curve_every=0, device=dev, form=form)
    train_ring([setting] * n, list(range(n)), epochs=2, **kw)                      # warm-up

    def parts(epochs):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            train_ring([setting] * n, list(range(n)), epochs=epochs, **kw)
            wall = time.perf_counter() - t
        got = {"matmul": 0.0, "adam": 0.0, "init": 0.0}
        for e in prof.key_averages():
            key = ("matmul" if e.key in ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm") else
                   "adam" if e.key == "aten::_fused_adam_" else "init" if e.key == "aten::uniform_" else None)
            if key:
                got[key] += e.self_cpu_time_total / 1e6
        return wall, got
    w1, p1 = parts(1)
    wk, pk = parts(1 + steps)
    per = {k: (pk[k] - p1[k]) / steps for k in pk}
    wall = (wk - w1) / steps
    flops, rate = floor
    mm_rate = flops * n / per["matmul"]
    rest = wall - per["matmul"] - per["adam"]
    return [f"  where a batched step goes (profiled, {steps} steps, set-up subtracted; the profiler slows the "
            f"weight-gradient bmm of G's layers about 1.8x, so the matmul share is an upper bound): "
            f"{1e3 * wall:.1f} ms/step under "
            f"the profiler = matmuls {1e3 * per['matmul']:.1f} ms ({mm_rate / 1e9:.0f} GFLOP/s, {mm_rate / rate:.0%} "
            f"of the floor's rate) + Adam's fused kernel {1e3 * per['adam']:.1f} ms + the rest (activations and "
            f"their gradients, losses, data, Python) {1e3 * rest:.1f} ms; the matmuls alone are "
            f"{flops * n / rate / per['matmul']:.0%} of the floor's speed"]


def adam_time(n: int, reps: int = 5) -> float:
    """Seconds of one Adam update (``dynamics.optim.RowOptimiser``, the ring's, fused on the CPU) of ``n`` seeds'
    D and G, by the clock (median of ``reps``, after a warm-up): the optimiser's share of a step, timed alone."""
    from dynamics.optim import RowOptimiser
    from gcann.ring.train import BETAS
    from gcann.ring.models import DISCRIMINATOR, GENERATOR, init_mlp

    gens = [torch.Generator().manual_seed(k) for k in range(n)]
    nets = [init_mlp(spec, gens) for spec in (DISCRIMINATOR, GENERATOR)]
    opts = [RowOptimiser(P, "adam", betas=BETAS) for P in nets]
    grads = [[torch.randn_like(q) * 1e-3 for q in P] for P in nets]
    lr = torch.full((n,), 1e-4, dtype=torch.float64)
    times = []
    for r in range(reps + 1):
        t = time.perf_counter()
        for opt, g in zip(opts, grads):
            opt.step(g, lr)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def matmul_floor(n: int, dev: torch.device, reps: int = 5) -> tuple[float, float]:
    """(matmul FLOPs of one training step per seed, counted by torch's FlopCounterMode on a 2-seed step;
    this machine's rate on the products of G's 400-wide layers at ``n`` seeds, batch 128: the forward
    x·W, the input gradient δ·Wᵀ and the weight gradient xᵀ·δ, median of ``reps`` timings)."""
    from torch.utils.flop_counter import FlopCounterMode

    plain = RingSetting("alpha_ns", 1.0, 1.0)
    counter = FlopCounterMode(display=False)
    with counter:
        train_ring([plain] * 2, [0, 1], epochs=1, n_train=128, curve_every=0, device=dev)
    flops = counter.get_total_flops() / 2
    x, w = torch.randn(n, 128, 400, device=dev), torch.randn(n, 400, 400, device=dev)
    b = torch.randn(n, 1, 400, device=dev)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.baddbmm(b, x, w)                    # forward
        torch.bmm(x, w.transpose(1, 2))           # input gradient
        torch.bmm(x.transpose(1, 2), x)           # weight gradient
        times.append(time.perf_counter() - t)
    return flops, 3 * 2 * n * 128 * 400 * 400 / statistics.median(times)


if __name__ == "__main__":
    main()
