"""Training throughput: the gcann Trainer against a plain DCGAN loop written as a user would.

    python benchmarks/bench_train.py [--steps 20] [--batch 64] [--threads 2]

CPU (always): DCGAN 64×64 steps/s of ``Trainer.fit`` (plain controller, no
regulariser, no files written) against the loop of the PyTorch DCGAN example
(same networks, batch, Adam, BCE-with-logits, losses read every step), timed
in alternating rounds in one run; target ratio >= 1.0. The Adam kernels differ on
the CPU: the example's ``torch.optim.Adam`` defaults to its single-tensor form
there, the trainer's (``gcann.train.optimiser.NetworkAdam``) takes torch's fused
kernel, so part of the ratio is the optimiser's. Then the same trainer
with the GCANN controller: the time spent in the controller (observe + plan)
as a share of the step; target <= 1 %.

CUDA (when a GPU is present): images/s of the trainer with bf16 autocast,
channels_last and torch.compile, and with bf16, channels_last and the step as a
captured CUDA graph (``cuda_graph=on``), against the plain fp32 loop (target >= 2x);
the cost of reading the losses every step (lag 1, a host synchronisation per
step) against the non-blocking read one step later (lag 2); the voxel 3D
DCGAN 64³ step time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: gcann and tests.support

from gcann.models import build_models  # noqa: E402
from gcann.train import Trainer, TrainConfig  # noqa: E402
from gcann.control import ControlRows  # noqa: E402
from tests.support.train_fixtures import TensorSet  # noqa: E402


def plain_loop(data: torch.Tensor, steps: int, batch: int, device: torch.device, seed: int = 0) -> float:
    """The PyTorch DCGAN example's loop; returns seconds for ``steps`` steps (after one warm-up step)."""
    torch.manual_seed(seed)
    netG, netD = build_models("dcgan", resolution=64, channels=3, nz=100)
    netG.to(device), netD.to(device)
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)
    n = data.shape[0]
    G_losses, D_losses = [], []

    def step(i: int) -> None:
        idx = torch.randint(0, n, (batch,))
        real = data[idx].to(device)
        netD.zero_grad()
        errD_real = criterion(netD(real), ones)
        errD_real.backward()
        fake = netG(torch.randn(batch, 100, device=device))
        errD_fake = criterion(netD(fake.detach()), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        errG = criterion(netD(fake), ones)
        errG.backward()
        optG.step()
        G_losses.append(errG.item())
        D_losses.append((errD_real + errD_fake).item())

    step(-1)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return time.perf_counter() - t0


def trainer_time(data_set, steps: int, batch: int, device: torch.device, warm: int = 1,
                 **over) -> tuple[float, Trainer]:
    """The DCGAN 64×64 trainer of the benchmark with the fields ``over``, timed by :func:`timed_fit`."""
    cfg = TrainConfig(dataset="bench", resolution=64, channels=3, batch_size=batch,
                      log_every=10 ** 6, sample_every=10 ** 6, ckpt_every=10 ** 6, device=str(device), **over)
    return timed_fit(cfg, data_set, steps, warm)


def timed_fit(cfg: TrainConfig, data_set, steps: int, warm: int) -> tuple[float, Trainer]:
    """Seconds for ``steps`` steps of ``Trainer.fit`` after ``warm`` warm-up steps (compilation, CUDA-graph
    capture: the graph of a step is captured at its third occurrence)."""
    tr = Trainer(cfg.replace(max_steps=steps + warm), None, dataset=data_set, quiet=True)
    tr.total_steps = warm
    tr.fit()  # warm-up steps (and compilation, capture)
    tr.total_steps = steps + warm
    _sync(tr.device)
    t0 = time.perf_counter()
    tr.fit()
    _sync(tr.device)
    return time.perf_counter() - t0, tr


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cuda-only", action="store_true", help="skip the CPU figures")
    ap.add_argument("--cuda-variants", action="store_true",
                    help="also time every precision x channels_last x compile combination on CUDA")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU threads, DCGAN 64x64, batch {args.batch}, "
          f"{args.steps} steps per timing, {args.rounds} alternating rounds")
    ds = TensorSet(n=1024, shape=(3, 64, 64))

    gc = {"baseline_steps": 0, "gc_lr_window": 5, "cooldown_period": 5, "discriminator_pause_threshold": 0.0,
          "generator_pause_threshold": 0.0, "discriminator_skip_threshold": 0.0, "generator_skip_threshold": 0.0,
          "p": 0, "diversity_check_interval": 10 ** 6}
    if not args.cuda_only:
        cpu_figures(args, ds, gc)
    cuda_figures(gc, args.cuda_variants)


def cpu_figures(args, ds, gc) -> None:
    cpu = torch.device("cpu")
    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(plain_loop(ds.data, args.steps, args.batch, cpu))
        ours.append(trainer_time(ds, args.steps, args.batch, cpu)[0])
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"CPU plain loop : {args.steps / p:.3f} steps/s (median of {[round(x, 2) for x in plain]} s)")
    print(f"CPU Trainer    : {args.steps / o:.3f} steps/s (median of {[round(x, 2) for x in ours]} s)")
    print(f"CPU ratio Trainer/plain = {p / o:.3f}  (target >= 1.0)")

    # controller cost: time inside the controls' observe() and plan_of() during a GCANN run
    spent = [0.0]
    orig_observe, orig_plan = ControlRows.observe, ControlRows.plan_of

    def timed(fn):
        def wrapper(self, *a, **kw):
            t = time.perf_counter()
            out = fn(self, *a, **kw)
            spent[0] += time.perf_counter() - t
            return out
        return wrapper

    ControlRows.observe, ControlRows.plan_of = timed(orig_observe), timed(orig_plan)
    try:
        # gc: fixed plans of one D and one G step so the step is comparable: pauses/skips/extra steps off
        total, tr = trainer_time(ds, args.steps, args.batch, cpu, controller="gcann", gcann=gc)
        spent[0] = 0.0
        total, tr = trainer_time(ds, args.steps, args.batch, cpu, controller="gcann", gcann=gc)
    finally:
        ControlRows.observe, ControlRows.plan_of = orig_observe, orig_plan
    print(f"CPU controller: {spent[0] / args.steps * 1e6:.1f} us per step in observe()+plan_of(), "
          f"{100 * spent[0] / total:.4f} % of the step (target <= 1 %)")


def cuda_figures(gc, variants: bool = False) -> None:
    if not torch.cuda.is_available():
        print("CUDA: no GPU here; the CUDA figures (bf16 + channels_last + compile vs plain, lag 1 vs 2, "
              "3D 64^3 step) are not measured")
        return
    gpu = torch.device("cuda")
    name = torch.cuda.get_device_name()
    big = TensorSet(n=8192, shape=(3, 64, 64))
    big.data = big.data.to(gpu)
    steps, batch = 200, 128
    p = plain_loop(big.data, steps, batch, gpu)
    warm = 4   # every trainer variant: its first 4 steps untimed (compilation; a CUDA graph's capture at step 3)
    if variants:
        from torch import _dynamo as dynamo

        for prec in ("fp32", "bf16"):
            for cl in (False, True):
                for comp in (False, "default", "reduce-overhead", "graph"):
                    dynamo.reset()
                    dynamo.utils.counters.clear()
                    kw = dict(compile=True, compile_mode=comp) if comp not in (False, "graph") else dict(compile=False)
                    if comp == "graph":
                        kw["cuda_graph"] = "on"
                    label = (f"  variant precision={prec} channels_last={cl} "
                             + ("cuda_graph=on" if comp == "graph" else f"compile={comp}"))
                    try:
                        t, _ = trainer_time(big, steps, batch, gpu, warm, precision=prec, channels_last=cl, **kw)
                    except Exception as e:  # a mode that fails on this torch/GPU is reported, not fatal
                        print(f"{label}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
                        continue
                    c = dynamo.utils.counters
                    print(f"{label}: {steps * batch / t:.0f} "
                          f"img/s (plain {steps * batch / p:.0f}); dynamo frames {sum(c['frames'].values())}, "
                          f"graph breaks {sum(c['graph_break'].values())}, recompiles "
                          f"{sum(v for k, v in c['stats'].items() if 'recompil' in k)}", flush=True)
    same, _ = trainer_time(big, steps, batch, gpu, warm, precision="fp32", channels_last=False, compile=False)
    fast, _ = trainer_time(big, steps, batch, gpu, warm, precision="bf16", channels_last=True, compile=True)
    print(f"{name}: plain fp32 loop {steps * batch / p:.0f} img/s; Trainer fp32 (no compile) "
          f"{steps * batch / same:.0f} img/s, ratio {p / same:.2f}; Trainer bf16+channels_last+compile "
          f"{steps * batch / fast:.0f} img/s; ratio {p / fast:.2f} (target >= 2)", flush=True)
    try:
        graph, tr = trainer_time(big, steps, batch, gpu, warm, precision="bf16", channels_last=True, cuda_graph="on")
        print(f"{name}: Trainer bf16+channels_last+cuda_graph {steps * batch / graph:.0f} img/s; ratio "
              f"{p / graph:.2f} (target >= 2); {tr.graphs.replays} of {steps + warm} steps replayed, "
              f"{len(tr.graphs.graphs)} graph(s)", flush=True)
    except Exception as e:  # reported, not fatal: the other figures still come
        print(f"{name}: Trainer bf16+channels_last+cuda_graph failed: {type(e).__name__}: "
              f"{str(e).splitlines()[0][:200]}", flush=True)
    lag1, _ = trainer_time(big, steps, batch, gpu, warm, precision="bf16", compile=True, controller="gcann",
                           gcann=gc, controller_lag=1)
    lag2, _ = trainer_time(big, steps, batch, gpu, warm, precision="bf16", compile=True, controller="gcann",
                           gcann=gc, controller_lag=2)
    print(f"{name}: GCANN step with losses read at once (lag 1) {lag1 / steps * 1e3:.2f} ms, one step late "
          f"(lag 2) {lag2 / steps * 1e3:.2f} ms: reading at once costs {100 * (lag1 - lag2) / lag2:.1f} %")
    try:
        g2, tr = trainer_time(big, steps, batch, gpu, warm, precision="bf16", cuda_graph="on", controller="gcann",
                              gcann=gc, controller_lag=2)
        print(f"{name}: GCANN step with cuda_graph (lag 2) {g2 / steps * 1e3:.2f} ms, {tr.graphs.replays} steps "
              f"replayed", flush=True)
    except Exception as e:
        print(f"{name}: GCANN step with cuda_graph failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    vox = TensorSet(n=512, shape=(1, 64, 64, 64), kind="voxel")
    vox.data = vox.data.to(gpu)
    cfg = TrainConfig(dataset="bench", arch="voxel", resolution=64, channels=1, nz=200, batch_size=32,
                      log_every=10 ** 6, sample_every=10 ** 6, ckpt_every=10 ** 6, precision="bf16",
                      device="cuda")
    t, _ = timed_fit(cfg, vox, 20, 1)
    print(f"{name}: voxel 3D DCGAN 64^3, batch 32, bf16: {t / 20 * 1e3:.1f} ms per step", flush=True)
    try:
        t, _ = timed_fit(cfg.replace(cuda_graph="on"), vox, 20, 4)
        print(f"{name}: voxel 3D DCGAN 64^3, batch 32, bf16, cuda_graph: {t / 20 * 1e3:.1f} ms per step")
    except Exception as e:
        print(f"{name}: voxel 3D with cuda_graph failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")


if __name__ == "__main__":
    main()
