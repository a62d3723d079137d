"""dynamics.optim: the one per-row masked optimiser (the Dirac testbed's and the ring study's) and the EMA.

Independent truth: torch.optim.SGD / Adam / RMSprop run on each row alone, and the Dirac testbed's former
update formulas, transcribed below (SGD, the default there, and RMSProp must give the same bits)."""
from __future__ import annotations

import pytest
import torch

from dynamics.optim import RowOptimiser, ema_step, ema_step_
from dynamics.simulate import OptimiserSpec


def _old_step(name, p, g, lr, st, mask, momentum=0.0, alpha=0.99, eps=1e-8):
    """The Dirac testbed's OptimiserSpec.step and masked_step before the shared optimiser (SGD and RMSProp)."""
    if mask is not None and not isinstance(st["t"], torch.Tensor):
        st["t"] = torch.full((p.shape[0], 1), st["t"], dtype=torch.int64)
    old = dict(st)
    st["t"] = st["t"] + 1
    if name == "sgd":
        if momentum:
            if isinstance(st["t"], torch.Tensor):
                st["m"] = torch.where(st["t"] == 1, g, momentum * st["m"] + g)
            else:
                st["m"] = g.clone() if st["t"] == 1 else momentum * st["m"] + g
            g = st["m"]
        new = p - lr * g
    else:
        st["v"] = alpha * st["v"] + (1 - alpha) * g * g
        new = p - lr * g / (st["v"].sqrt() + eps)
    if mask is None:
        return new
    for k, v in old.items():
        st[k] = torch.where(mask[:, None], st[k], v)
    return torch.where(mask[:, None], new, p)


@pytest.mark.parametrize("name,momentum", [("sgd", 0.0), ("sgd", 0.7), ("rmsprop", 0.0)])
def test_sgd_and_rmsprop_give_the_former_dirac_numbers_bit_for_bit(name, momentum):
    gen = torch.Generator().manual_seed(3)
    p_old = p_new = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    lr = torch.rand(6, 1, generator=gen, dtype=torch.float64) * 0.1
    st = {"t": 0, "m": torch.zeros_like(p_old), "v": torch.zeros_like(p_old)}
    opt = OptimiserSpec(name, momentum=momentum).init(p_new)
    for k in range(12):
        g = torch.randn(6, 3, generator=gen, dtype=torch.float64)
        mask = None if k < 3 else torch.rand(6, generator=gen) < 0.6
        p_old = _old_step(name, p_old, g, lr, st, mask, momentum)
        p_new = opt.stepped(p_new, g, lr, mask)
        assert torch.equal(p_old, p_new), k
    assert opt.steps.tolist() == st["t"].flatten().tolist()


def _torch_optimiser(rule, params, lr):
    if rule == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.6, foreach=False)
    if rule == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.8, 0.95), foreach=False)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, foreach=False)


@pytest.mark.parametrize("rule,fused", [("sgd", False), ("adam", True), ("adam", False), ("rmsprop", False)])
def test_each_row_follows_torch_optim_alone_and_a_masked_row_keeps_its_state(rule, fused):
    torch.manual_seed(0)
    R = 4
    params = [torch.randn(R, 3, 5), torch.randn(R, 1, 5)]
    lr = torch.tensor([1e-2, 2e-2, 5e-3, 1e-2], dtype=torch.float64)
    refs = [[p[k].clone().requires_grad_(True) for p in params] for k in range(R)]
    truth = [_torch_optimiser(rule, refs[k], float(lr[k])) for k in range(R)]
    opt = RowOptimiser(params, rule, betas=(0.8, 0.95), momentum=0.6, alpha=0.9, fused=fused)
    frozen = [p[1].clone() for p in params]
    for t in range(7):
        grads = [torch.randn_like(p) for p in params]
        mask = torch.tensor([True, False, t % 2 == 0, t % 3 != 1])
        if t == 4:
            before = opt.state_of(3)
        opt.step(grads, lr, mask)
        if t == 4:   # row 3 is masked out at t = 4: its parameters and its whole state are untouched
            after = opt.state_of(3)
            assert after["step"] == before["step"]
            assert all(torch.equal(a, b) for a, b in zip(after["exp_avg"] + after["exp_avg_sq"],
                                                          before["exp_avg"] + before["exp_avg_sq"]))
        for k in mask.nonzero().flatten().tolist():
            for r, g in zip(refs[k], grads):
                r.grad = g[k].clone()
            truth[k].step()
    for k in range(R):
        for p, r in zip(params, refs[k]):
            torch.testing.assert_close(p[k], r.detach(), rtol=1e-6, atol=1e-7)
    assert all(torch.equal(p[1], f) for p, f in zip(params, frozen))      # never updated: kept exactly
    assert all(torch.equal(m[1], torch.zeros_like(m[1])) for m in opt.exp_avg + opt.exp_avg_sq)
    assert opt.steps.tolist() == [7, 0, 4, 5]


def test_the_fused_cpu_adam_is_torch_adams_fused_kernel_bit_for_bit_per_row():
    torch.manual_seed(1)
    params = [torch.randn(3, 4, 6)]
    lr = torch.tensor([1e-3, 2e-3, 5e-4], dtype=torch.float64)
    refs = [params[0][k].clone().requires_grad_(True) for k in range(3)]
    adams = [torch.optim.Adam([r], lr=float(lr[k]), betas=(0.9, 0.99), fused=True) for k, r in enumerate(refs)]
    opt = RowOptimiser(params, "adam", betas=(0.9, 0.99))
    for t in range(5):
        g = torch.randn_like(params[0])
        mask = torch.tensor([True, t % 2 == 0, t != 2])
        opt.step([g], lr, mask)
        for k in mask.nonzero().flatten().tolist():
            refs[k].grad = g[k].clone()
            adams[k].step()
    assert all(torch.equal(params[0][k], refs[k].detach()) for k in range(3))


@pytest.mark.parametrize("pattern", ["all", "pairs", "mixed"])
@pytest.mark.parametrize("device_side", [False, True])
def test_grouped_fused_calls_give_each_row_its_lone_fused_adam_bits(pattern, device_side):
    """The CPU step updates the rows that share a rate and a count in one fused call (all rows at once when
    they all do): every row still equals a lone torch.optim.Adam(fused=True) on its own tensors exactly,
    through ``step`` with masks and through ``step_all_on_device``."""
    torch.manual_seed(0)
    n = 64   # (n, 1, 2): a row alone is all scalar tail for the kernel, the whole tensor mostly vectorised
    params = [torch.randn(n, 5, 9), torch.randn(n, 1, 9), torch.randn(n, 1, 2)]
    rates = {"all": [1e-3] * n, "pairs": [1e-3, 1e-3, 2e-3, 2e-3, 5e-4, 5e-4, 3e-3, 3e-3] * 8,
             "mixed": [1e-3, 2e-3, 1e-3, 1e-3, 3e-3, 2e-3, 1e-3, 1e-3] * 8}[pattern]
    lr = torch.tensor(rates, dtype=torch.float64)
    refs = [[p[k].clone().requires_grad_(True) for p in params] for k in range(n)]
    adams = [torch.optim.Adam(r, lr=rates[k], betas=(0.9, 0.99), fused=True) for k, r in enumerate(refs)]
    opt = RowOptimiser(params, "adam", betas=(0.9, 0.99))
    counts = torch.zeros(n, dtype=torch.long)
    for t in range(12):
        grads = [torch.randn_like(p) for p in params]
        if device_side:
            mask = torch.ones(n, dtype=torch.bool)
            opt.step_all_on_device(grads, lr, counts)
        else:
            mask = torch.ones(n, dtype=torch.bool) if pattern != "mixed" or t < 2 else torch.rand(n) < 0.6
            opt.step(grads, lr, mask)
        for k in mask.nonzero().flatten().tolist():
            for r, g in zip(refs[k], grads):
                r.grad = g[k].clone()
            adams[k].step()
    for k in range(n):
        assert all(torch.equal(p[k], r.detach()) for p, r in zip(params, refs[k])), k
        done = int(adams[k].state[refs[k][0]]["step"])
        assert int(counts[k] if device_side else opt.steps[k]) == done


def test_a_paused_row_keeps_its_adam_step_count():
    """A paused row's bias correction does not advance: its first update after a pause is a fresh Adam's."""
    opt = OptimiserSpec("adam", betas=(0.9, 0.999)).init(torch.zeros(2, 1, dtype=torch.float64))
    p = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    lr = torch.full((2, 1), 0.1, dtype=torch.float64)
    g = torch.tensor([[0.5], [0.5]], dtype=torch.float64)
    for _ in range(3):                              # row 1 paused for three steps, row 0 trains
        p = opt.stepped(p, g, lr, torch.tensor([True, False]))
    assert opt.steps.tolist() == [3, 0] and float(p[1]) == 1.0
    p = opt.stepped(p, g, lr, torch.tensor([True, True]))
    m, v = 0.1 * 0.5, 0.001 * 0.25                  # row 1's first update: a step of lr * g/|g|
    step = 0.1 * (m / (1 - 0.9)) / ((v / (1 - 0.999)) ** 0.5 + 1e-8)
    assert abs(float(p[1]) - (1.0 - step)) < 1e-15
    m0 = v0 = 0.0
    x = 1.0
    for t in range(1, 5):                           # row 0's fourth update with t = 4, by hand
        m0 = 0.9 * m0 + 0.1 * 0.5
        v0 = 0.999 * v0 + 0.001 * 0.25
        x -= 0.1 * (m0 / (1 - 0.9 ** t)) / ((v0 / (1 - 0.999 ** t)) ** 0.5 + 1e-8)
    assert abs(float(p[0]) - x) < 1e-15
    assert opt.steps.tolist() == [4, 1]


def test_the_state_dict_restores_the_run_bit_for_bit():
    torch.manual_seed(4)
    base = [torch.randn(3, 5)]
    grads = [[torch.randn(3, 5)] for _ in range(6)]
    lr = torch.full((3,), 1e-2, dtype=torch.float64)
    masks = [torch.tensor([True, k % 2 == 0, k != 1]) for k in range(6)]
    whole = [base[0].clone()]
    a = RowOptimiser(whole, "adam", fused=False)
    for g, m in zip(grads, masks):
        a.step(g, lr, m)
    first = [base[0].clone()]
    b = RowOptimiser(first, "adam", fused=False)
    for g, m in zip(grads[:3], masks[:3]):
        b.step(g, lr, m)
    saved = b.state_dict()
    resumed = [first[0].clone()]
    c = RowOptimiser(resumed, "adam", fused=False)
    c.load_state_dict(saved)
    for g, m in zip(grads[3:], masks[3:]):
        c.step(g, lr, m)
    assert torch.equal(whole[0], resumed[0]) and torch.equal(a.steps, c.steps)
    with pytest.raises(ValueError, match="rule 'adam'"):
        RowOptimiser([torch.zeros(3, 5)], "sgd", momentum=0.5).load_state_dict(saved)
    # other shapes or another row count are refused, never broadcast; a state that never stepped may hold no moments
    for other in ([torch.zeros(3, 1)], [torch.zeros(2, 5)]):
        with pytest.raises(ValueError, match="does not fit this optimiser's 1 tensors over 3 rows"):
            RowOptimiser([torch.zeros(3, 5)], "adam", fused=False).load_state_dict(RowOptimiser(other).state_dict())
    with pytest.raises(ValueError, match="not an optimiser state"):
        c.load_state_dict({"rule": "adam"})
    fresh = RowOptimiser([torch.zeros(3, 5)], "adam", fused=False)
    fresh.load_state_dict({"rule": "adam", "steps": torch.zeros(3, dtype=torch.long)})
    assert not fresh.exp_avg[0].any() and not fresh.exp_avg_sq[0].any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999, 0.9999])
def test_the_in_place_multi_tensor_ema_equals_ema_step_bit_for_bit(dtype, beta):
    gen = torch.Generator().manual_seed(7)
    avgs = [torch.randn(4, 3, generator=gen, dtype=dtype), torch.randn(9, generator=gen, dtype=dtype)]
    expected = [a.clone() for a in avgs]
    for _ in range(5):
        news = [torch.randn(a.shape, generator=gen, dtype=dtype) for a in avgs]
        expected = [ema_step(e, n, beta) for e, n in zip(expected, news)]
        ema_step_(avgs, news, beta)
        assert all(torch.equal(a, e) for a, e in zip(avgs, expected))
