"""The ring's stacked linear layer with the seed-by-seed weight gradient (gcann.ring.models.SeedwiseLinear, off
by default, selected here): checked against autograd on plain torch.baddbmm, second order included, and row k
against seed k alone."""
from __future__ import annotations

import pytest
import torch

import gcann.ring.models as models
from gcann.ring import RingSetting, train_ring
from gcann.ring.models import SeedwiseLinear, linear

DEFAULT = models.CPU_SEEDWISE_BACKWARD   # as imported, before any test sets it

#: the study's layer shapes (in, out): G 2→400→400→2, D 2→200→200
SHAPES = [(2, 400), (400, 400), (400, 2), (2, 200), (200, 200)]


@pytest.fixture(autouse=True)
def seedwise_on(monkeypatch):
    """The switch on for every test here; a test that wants the default path sets it back."""
    monkeypatch.setattr(models, "CPU_SEEDWISE_BACKWARD", True)


def test_the_default_is_autograd_s_own_backward_of_baddbmm():
    assert DEFAULT is False                     # the faster on the CPU measured (gcann.ring.models' docstring)


def _layer(S, i, o, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype).requires_grad_()
            for shape in ((S, 16, i), (S, i, o), (S, 1, o))]


def _reference(x, w, b):
    return torch.baddbmm(b, x, w)


def test_the_switch_selects_the_function_on_the_cpu_and_plain_baddbmm_otherwise(monkeypatch):
    x, w, b = _layer(2, 3, 4)
    assert type(linear(x, w, b).grad_fn).__name__ == SeedwiseLinear.__name__ + "Backward"
    with torch.no_grad():
        assert linear(x, w, b).grad_fn is None
    meta = [t.detach().to("meta").requires_grad_() for t in (x, w, b)]
    assert linear(*meta).grad_fn.__class__.__name__ == "BaddbmmBackward0"         # not the CPU: autograd's
    monkeypatch.setattr(models, "CPU_SEEDWISE_BACKWARD", False)                  # the old path, selectable
    assert linear(x, w, b).grad_fn.__class__.__name__ == "BaddbmmBackward0"


def test_forward_and_gradients_equal_autograd_on_baddbmm():
    x, w, b = _layer(5, 7, 6)
    assert torch.autograd.gradcheck(linear, (x, w, b))
    y, ref = linear(x, w, b), _reference(x, w, b)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)                          # the same forward
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, b), g)
    want = torch.autograd.grad(ref, (x, w, b), g)
    for a, c in zip(got, want):
        torch.testing.assert_close(a, c)
    # through .backward() too, into .grad
    (linear(x, w, b) * g).sum().backward()
    for t, c in zip((x, w, b), want):
        torch.testing.assert_close(t.grad, c)


def test_second_order_gradients_equal_autograd_on_baddbmm():
    """R1's way: the input gradient with create_graph=True, then its square differentiated again."""
    x, w1, b1 = _layer(4, 2, 6)
    _, w2, b2 = _layer(4, 6, 5, seed=1)
    assert torch.autograd.gradgradcheck(linear, (x, w1, b1))

    def r1(layer):
        out = layer(torch.nn.functional.leaky_relu(layer(x, w1, b1), 0.2), w2, b2).sum()
        (gx,) = torch.autograd.grad(out, x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), (w1, w2))
    for a, c in zip(r1(linear), r1(_reference)):
        torch.testing.assert_close(a, c)


def test_gradients_a_backward_does_not_want_are_not_computed(monkeypatch):
    """torch.autograd.grad(loss, G) through D takes no product for D's weights (as autograd's own node)."""
    x, w1, b1 = _layer(3, 4, 5)
    _, w2, b2 = _layer(3, 5, 2, seed=1)
    calls = []
    mm = torch.mm
    monkeypatch.setattr(torch, "mm", lambda *a, **k: calls.append(1) or mm(*a, **k))
    out = linear(linear(x, w1, b1).relu(), w2, b2).sum()
    (gx,) = torch.autograd.grad(out, x, retain_graph=True)
    assert calls == []                                                           # no weight gradient taken
    torch.autograd.grad(out, w2, retain_graph=True)
    assert len(calls) == 3                                                       # one product per seed
    torch.testing.assert_close(gx, torch.autograd.grad(
        _reference(_reference(x, w1, b1).relu(), w2, b2).sum(), x)[0])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_row_k_of_the_layer_equals_seed_k_alone_bit_for_bit(shape):
    """Forward, input, weight and bias gradients of row k at S = 64 and S = 5 equal the same seed at S = 1,
    in float32 at batch 128 (the study's)."""
    i, o = shape
    for S in (64, 5):
        g = torch.Generator().manual_seed(S)
        x, w, b = (torch.randn(s, generator=g).requires_grad_() for s in ((S, 128, i), (S, i, o), (S, 1, o)))
        y = linear(x, w, b)
        dy = torch.randn(y.shape, generator=g)
        grads = torch.autograd.grad(y, (x, w, b), dy)
        for k in (0, 2, S - 1):
            one = [t[k:k + 1].detach().clone().requires_grad_() for t in (x, w, b)]
            y1 = linear(*one)
            grads1 = torch.autograd.grad(y1, one, dy[k:k + 1].clone())
            assert torch.equal(y[k], y1[0])
            for a, c in zip(grads, grads1):
                assert torch.equal(a[k], c[0])


ROWS = [RingSetting("alpha_ns", 1, 1), RingSetting("lsgan", r1=1.0), RingSetting("alpha_sat", 0.3, 1, r1=1.0)]


@pytest.mark.parametrize("seedwise", [True, False], ids=["seedwise", "baddbmm"])
def test_training_rows_equal_their_seed_alone_on_either_path(seedwise, monkeypatch):
    """A few train_ring steps (R1 rows included, so double backward runs): row k equals seed k alone."""
    seeds = [4, 0, 9]
    monkeypatch.setattr(models, "CPU_SEEDWISE_BACKWARD", seedwise)
    run = train_ring(ROWS, seeds, epochs=1, max_steps=3, n_train=384, curve_every=0, form="exact")
    for k in range(len(ROWS)):
        alone = train_ring([ROWS[k]], [seeds[k]], epochs=1, max_steps=3, n_train=384, curve_every=0, form="exact")
        for a, b in zip(run.g_params + run.d_params, alone.g_params + alone.d_params):
            assert torch.equal(a[k], b[0]), k


def test_both_paths_train_to_the_same_weights_up_to_rounding(monkeypatch):
    kw = dict(epochs=1, max_steps=3, n_train=384, curve_every=0, form="exact")
    new = train_ring(ROWS, [4, 0, 9], **kw)
    monkeypatch.setattr(models, "CPU_SEEDWISE_BACKWARD", False)
    old = train_ring(ROWS, [4, 0, 9], **kw)
    for a, b in zip(new.g_params + new.d_params, old.g_params + old.d_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
