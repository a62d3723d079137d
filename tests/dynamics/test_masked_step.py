"""The Dirac testbed's masked optimiser keeps one step count per row: a paused row's Adam bias correction
does not advance, so its first update after a pause is the one a fresh Adam makes (by hand below)."""
from __future__ import annotations

import torch

from dynamics.simulate import OptimiserSpec, masked_step


def test_a_paused_row_keeps_its_adam_step_count():
    spec = OptimiserSpec("adam", betas=(0.9, 0.999))
    p = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    st = spec.init(p)
    lr = torch.full((2, 1), 0.1, dtype=torch.float64)
    g = torch.tensor([[0.5], [0.5]], dtype=torch.float64)
    for k in range(3):                              # row 1 paused for three steps, row 0 trains
        p = masked_step(spec, p, g, lr, st, torch.tensor([True, False]))
    assert st["t"].flatten().tolist() == [3, 0] and float(p[1]) == 1.0
    p = masked_step(spec, p, g, lr, st, torch.tensor([True, True]))
    # row 1's first update: m = (1-b1) g, v = (1-b2) g^2, bias-corrected with t = 1 -> a step of lr * g/|g|
    m, v = 0.1 * 0.5, 0.001 * 0.25
    step = 0.1 * (m / (1 - 0.9)) / ((v / (1 - 0.999)) ** 0.5 + 1e-8)
    assert abs(float(p[1]) - (1.0 - step)) < 1e-15
    # row 0's fourth update with t = 4, by hand
    m0 = v0 = 0.0
    x = 1.0
    for t in range(1, 5):
        m0 = 0.9 * m0 + 0.1 * 0.5
        v0 = 0.999 * v0 + 0.001 * 0.25
        x -= 0.1 * (m0 / (1 - 0.9 ** t)) / ((v0 / (1 - 0.999 ** t)) ** 0.5 + 1e-8)
    assert abs(float(p[0]) - x) < 1e-15
    assert st["t"].flatten().tolist() == [4, 1]
