"""The trainer's Adam (gcann.train.optimiser.NetworkAdam, the one-row RowOptimiser) against torch.optim.Adam,
its device-side step against its host step, and checkpoints of format 1 (torch.optim.Adam's states)."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from gcann.state import save_state
from gcann.train import Trainer
from gcann.train.checkpoint import FORMAT, KIND, find_checkpoints, load_checkpoint
from gcann.train.optimiser import NetworkAdam, from_torch_adam
from tests.support.train_fixtures import fixture_for, tiny


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 3))


def _grads(net: nn.Module, k: int) -> None:
    gen = torch.Generator().manual_seed(100 + k)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * (10.0 ** (k % 3 - 1))


def _same_steps(ref: nn.Module, torch_opt, mine: nn.Module, opt: NetworkAdam, ks, rates) -> None:
    """Step torch's optimiser and ours on the same gradients at the same rates; the weights agree bit for bit."""
    for k, lr in zip(ks, rates):
        for g in torch_opt.param_groups:
            g["lr"] = lr
        opt.lr = lr
        _grads(ref, k)
        _grads(mine, k)
        torch_opt.step()
        opt.step()
        for a, b in zip(ref.parameters(), mine.parameters()):
            assert torch.equal(a, b), k


@settings(max_examples=12, deadline=None)
@given(rates=st.lists(st.sampled_from([1e-4, 2e-4, 5e-4, 1e-3, 3e-3]), min_size=1, max_size=8),
       betas=st.sampled_from([(0.5, 0.999), (0.0, 0.99), (0.9, 0.999)]))
def test_network_adam_equals_torch_fused_adam_bit_for_bit(rates, betas):
    """On the CPU the one-row optimiser takes torch's fused Adam kernel: the same bits as
    torch.optim.Adam(fused=True) at every step, whatever the rate schedule."""
    ref, mine = _net(), _net()
    torch_opt = torch.optim.Adam(ref.parameters(), lr=rates[0], betas=betas, fused=True)
    opt = NetworkAdam(mine, rates[0], betas)
    _same_steps(ref, torch_opt, mine, opt, range(len(rates)), rates)
    assert opt.steps == len(rates)


def test_device_side_step_equals_the_host_step_in_both_arithmetics():
    """The step a CUDA graph captures (rate and count read from device tensors) against the host step:
    identical with the fused kernel (the CPU's) and with the multi-tensor form (a GPU's), which in turn is
    torch.optim.Adam(foreach=True)'s arithmetic to float32 rounding."""
    for fused in (True, False):
        host_net, dev_net, ref = _net(), _net(), _net()
        host, dev = NetworkAdam(host_net, 1e-3, (0.5, 0.999)), NetworkAdam(dev_net, 1e-3, (0.5, 0.999))
        host.rows.fused = dev.rows.fused = fused
        torch_opt = torch.optim.Adam(ref.parameters(), lr=1e-3, betas=(0.5, 0.999), foreach=True)
        for k, lr in enumerate([1e-3, 2e-3, 2e-3, 5e-4, 1e-3]):
            host.lr = dev.lr = lr
            for g in torch_opt.param_groups:
                g["lr"] = lr
            for net in (host_net, dev_net, ref):
                _grads(net, k)
            host.step()
            if k % 2:                   # the eager steps between replays keep the two counts in step
                dev.step()
            else:
                dev.prepare_device_step()
                dev.step_on_device()
                dev.count_device_steps()
            torch_opt.step()
            for a, b, c in zip(host_net.parameters(), dev_net.parameters(), ref.parameters()):
                assert torch.equal(a, b), (fused, k)
                torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-7)
        assert host.steps == dev.steps == 5 and int(dev.device_steps[0]) == 5


def test_torch_adam_state_converts_and_continues_bit_for_bit():
    """A torch.optim.Adam state (a checkpoint of format 1) in NetworkAdam's form: the run goes on as the
    torch optimiser would have."""
    ref, mine = _net(), _net()
    torch_opt = torch.optim.Adam(ref.parameters(), lr=1e-3, betas=(0.5, 0.999), fused=True)
    for k in range(3):
        _grads(ref, k)
        torch_opt.step()
    mine.load_state_dict(ref.state_dict())
    opt = NetworkAdam(mine, 1e-3, (0.5, 0.999))
    opt.load_state_dict(from_torch_adam(torch_opt.state_dict()))
    assert opt.steps == 3
    _same_steps(ref, torch_opt, mine, opt, range(3, 6), [1e-3] * 3)
    # an optimiser that never stepped keeps no moments: zeros
    fresh = NetworkAdam(_net(), 1e-3, (0.5, 0.999))
    fresh.load_state_dict(from_torch_adam(torch.optim.Adam(_net().parameters()).state_dict()))
    assert fresh.steps == 0 and all(not m.any() for m in fresh.rows.exp_avg)


def test_state_of_another_network_is_refused():
    opt = NetworkAdam(_net(), 1e-3, (0.5, 0.999))
    other = NetworkAdam(nn.Linear(3, 2), 1e-3, (0.5, 0.999))
    with pytest.raises(ValueError, match="cannot be loaded into this network's"):
        opt.load_state_dict(other.state_dict())


def test_missing_gradient_is_an_error():
    net = _net()
    opt = NetworkAdam(net, 1e-3, (0.5, 0.999))
    _grads(net, 0)
    net[0].bias.grad = None
    with pytest.raises(RuntimeError, match=r"parameters \[1\] have no gradient"):
        opt.step()


def _as_format_1(path) -> None:
    """Rewrite a checkpoint of this version as format 1 wrote it: torch.optim.Adam's state dicts."""
    state = torch.load(path, weights_only=False)
    assert state["format"] == FORMAT == 2
    for key in ("opt_d", "opt_g"):
        ours = state[key]
        step = float(ours["steps"][0])
        state[key] = {"state": {i: {"step": torch.tensor(step), "exp_avg": m[0], "exp_avg_sq": v[0]}
                                for i, (m, v) in enumerate(zip(ours["exp_avg"], ours["exp_avg_sq"]))},
                      "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": list(range(len(ours["exp_avg"])))}]}
    payload = {k: v for k, v in state.items() if k not in ("kind", "format")}
    save_state(path, KIND, 1, payload)


def test_a_checkpoint_of_format_1_resumes_as_the_uninterrupted_run(tmp_path):
    cfg = tiny(max_steps=8, ckpt_every=4, keep_checkpoints=10)
    ds = fixture_for(cfg)
    Trainer(cfg, tmp_path / "a", dataset=ds, quiet=True).fit()
    Trainer(cfg.replace(max_steps=4), tmp_path / "b", dataset=ds, quiet=True).fit()
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg.to_dict()))
    ckpt = find_checkpoints(tmp_path / "b")[-1]
    _as_format_1(ckpt)
    assert torch.load(ckpt, weights_only=False)["format"] == 1
    Trainer.resume(tmp_path / "b", max_steps=8, dataset=ds, quiet=True).fit()
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a["step"] == b["step"] == 8
    for key in ("G", "D"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), (key, k)
    assert torch.equal(a["opt_g"]["steps"], b["opt_g"]["steps"])


@pytest.mark.parametrize("broken", [{}, {"steps": torch.ones(1, dtype=torch.long)}, "drop_sq", "bad_sq"])
def test_a_malformed_state_is_a_value_error(broken):
    opt = NetworkAdam(_net(), 1e-3, (0.5, 0.999))
    good = opt.state_dict()
    if broken == "drop_sq":
        broken = {k: v for k, v in good.items() if k != "exp_avg_sq"}
    elif broken == "bad_sq":
        broken = {**good, "exp_avg_sq": [v[:, :1] if v.dim() > 1 else v for v in good["exp_avg_sq"]]}
    with pytest.raises(ValueError):
        opt.load_state_dict(broken)
    opt.load_state_dict(good)    # the good one still loads
