"""The one step engine: a per-row masked optimiser and the exponential moving average.

Every tensor handled here has a leading *row* axis ``R``: a row is one trajectory of the Dirac
testbed, one seed of the ring study (``W (S, in, out)``), or a whole network of the image trainer, its one
row (``gcann.train.optimiser.NetworkAdam``). Rows never interact.

:class:`RowOptimiser` is PyTorch's SGD (with momentum, ``buf ← μ·buf + g``, the first step
``buf = g``), Adam (``torch.optim.Adam``'s update, no weight decay) or RMSProp (``v ← αv + (1−α)g²``,
``p ← p − lr·g/(√v + ε)``) with, per row, a learning rate, a count of updates and a mask: a row whose
mask is off keeps its parameters *and* its state (moments and count) exactly. Adam's bias corrections
use each row's own count. Adam runs

* on the CPU (``fused``, the default there): ``torch.optim.Adam(fused=True)``'s kernel on each row's own
  views, one call for the rows that share a rate and a count (one pass over each tensor; a row's
  arithmetic does not depend on the other rows);
* otherwise (a GPU, or ``fused=False``): multi-tensor kernels over all rows, in the arithmetic of
  ``torch.optim.Adam(foreach=True)``: ``m ← lerp(m, g, 1−β₁)``, ``v ← β₂v + (1−β₂)g²``,
  ``p ← p − (m / (√v/√(1−β₂ᵗ) + ε)) · lr/(1−β₁ᵗ)``.

:meth:`RowOptimiser.step_all_on_device` updates every row with no host work (a CUDA graph can capture it).

:func:`ema_step` (``β·avg + (1−β)·new``, per-row β, a mask) is the one EMA of the Dirac simulators and the
ring study; :func:`ema_step_` is the same arithmetic in place over many tensors with one β (the trainer's
generator EMA).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["RULES", "RowOptimiser", "ema_step", "ema_step_"]

RULES = ("sgd", "adam", "rmsprop")


class RowOptimiser:
    """SGD, Adam or RMSProp over tensors with a leading row axis: a learning rate, a count and a mask per row.

    ``params`` are updated in place by :meth:`step`; :meth:`stepped` is the functional form for one
    tensor (the Dirac simulators, whose parameters are slices of a state rebuilt every step). ``fused``:
    Adam through the fused kernel, the rows that share a rate and a count in one call (default: on the
    CPU); ``uniform_fused``: the device-side step as one fused kernel over every row (they share a rate
    and a count there).
    """

    def __init__(self, params: Sequence[Tensor], rule: str = "adam", *, betas: tuple[float, float] = (0.9, 0.999),
                 momentum: float = 0.0, alpha: float = 0.99, eps: float = 1e-8, fused: bool | None = None,
                 uniform_fused: bool = False) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown optimiser rule {rule!r}; choose from {', '.join(RULES)}")
        self.params = list(params)
        self.rule = rule
        self.beta1, self.beta2 = betas
        self.momentum, self.alpha, self.eps = momentum, alpha, eps
        first = self.params[0]
        has_m = rule == "adam" or (rule == "sgd" and momentum != 0)
        self.exp_avg = [torch.zeros_like(p) for p in self.params] if has_m else []   # Adam's m, SGD's momentum buffer
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params] if rule != "sgd" else []   # Adam's v, RMSProp's
        self._steps = torch.zeros(first.shape[0], dtype=torch.long)
        self._pending = 0   # updates of every row not yet added to _steps (no tensor work for a rule that needs no count)
        self.fused = rule == "adam" and (first.device.type == "cpu" if fused is None else fused)
        self.uniform_fused = uniform_fused
        self._views_key: tuple[int, ...] | None = None   # the tensors _row_views' per-row views were made of

    @property
    def steps(self) -> Tensor:
        """Each row's count of updates, ``(R,)`` int64 on the host."""
        if self._pending:
            self._steps += self._pending
            self._pending = 0
        return self._steps

    @steps.setter
    def steps(self, value: Tensor) -> None:   # `opt.steps += 1` assigns the same tensor back
        self._steps = value

    def _advance(self, mask: Tensor | None) -> None:
        if mask is None:
            self._pending += 1   # a Python count: a traced Dirac chunk (make_fx) records no host tensor op for it
        else:
            self.steps += mask.to(self._steps.device, torch.long)

    # ------------------------------------------------------------------ updates
    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], lr: Tensor, mask: Tensor | None = None) -> None:
        """One update, in place, of the rows in ``mask (R,) bool`` (every row when None) at rates ``lr (R,)``."""
        every = mask is None or bool(mask.all())
        self._advance(mask)
        lr = lr.reshape(-1)
        if self.fused:
            rows = list(range(len(self.steps))) if mask is None else mask.nonzero().flatten().tolist()
            self._fused_groups(grads, rows, self.steps, lr)
            return
        factors = self._host_factors(lr)
        if every and self.rule == "adam":
            bias2_sqrt, step_size = factors
            self._update_all(grads, bias2_sqrt, step_size)
            return
        keep = None if every else self._to_device(mask)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            p.copy_(self._masked(i, p, g, factors, keep))

    def stepped(self, p: Tensor, g: Tensor, lr: Tensor, mask: Tensor | None = None) -> Tensor:
        """The functional form for a one-tensor optimiser: the new parameters of ``p (R, ...)`` (rows outside
        ``mask`` keep ``p``), the state updated in place."""
        if self.fused:
            raise ValueError("stepped: the fused Adam updates in place; build the optimiser with fused=False")
        every = mask is None or bool(mask.all())
        self._advance(mask)
        factors = self._host_factors(lr.reshape(-1))
        return self._masked(0, p, g, factors, None if every else self._to_device(mask))

    def _host_factors(self, lr: Tensor) -> tuple[Tensor, ...]:
        """The per-row numbers of this update, on the parameters' device in their dtype: Adam's ``√(1 − β₂ᵗ)``
        and ``lr / (1 − β₁ᵗ)``; SGD with momentum: the rate and whether this is the row's first update;
        otherwise the rate."""
        if self.rule == "adam":   # on the host, whatever the device of the rates
            host = self._factors(self.steps.clamp_min(1), lr.detach().to("cpu", torch.float64))
            return tuple(self._to_device(x) for x in host)
        dtype = self.params[0].dtype
        rate = self._to_device(lr) if lr.device.type == "cpu" else lr
        rate = rate.to(dtype)
        if self.rule == "sgd" and self.momentum:
            return rate, self._to_device(self.steps == 1)
        return (rate,)

    def _masked(self, i: int, p: Tensor, g: Tensor, factors: tuple[Tensor, ...], keep: Tensor | None) -> Tensor:
        """The new parameters of tensor ``i``; its state updated in place; rows outside ``keep`` keep both."""
        sh = (-1,) + (1,) * (p.dim() - 1)
        col = [f.view(sh) for f in factors]
        if self.rule == "sgd":
            if self.momentum:
                buf = self.exp_avg[i]
                new_buf = torch.where(col[1], g, self.momentum * buf + g)
                buf.copy_(new_buf if keep is None else torch.where(keep.view(sh), new_buf, buf))
                g = new_buf
            new = p - col[0] * g
        elif self.rule == "adam":
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            m_new = torch.lerp(m, g, 1 - self.beta1)
            v_new = v.mul(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = v_new.sqrt().div_(col[0]).add_(self.eps)
            new = p - (m_new / denom) * col[1]
            m.copy_(m_new if keep is None else torch.where(keep.view(sh), m_new, m))
            v.copy_(v_new if keep is None else torch.where(keep.view(sh), v_new, v))
        else:  # rmsprop
            v = self.exp_avg_sq[i]
            v_new = self.alpha * v + (1 - self.alpha) * g * g
            new = p - col[0] * g / (v_new.sqrt() + self.eps)
            v.copy_(v_new if keep is None else torch.where(keep.view(sh), v_new, v))
        return new if keep is None else torch.where(keep.view(sh), new, p)

    def _to_device(self, x: Tensor) -> Tensor:
        """A host tensor on the parameters' device (CUDA: pinned and non-blocking, no host synchronisation)."""
        dev = self.params[0].device
        if dev.type == "cuda" and x.device.type == "cpu":
            return x.pin_memory().to(dev, non_blocking=True)
        return x.to(dev)

    def _views(self, per_row: Tensor) -> list[Tensor]:
        return [per_row.view((-1,) + (1,) * (p.dim() - 1)) for p in self.params]

    def _factors(self, t: Tensor, lr: Tensor) -> tuple[Tensor, Tensor]:
        """Adam's ``√(1 − β₂ᵗ)`` and ``lr / (1 − β₁ᵗ)`` per row, computed in float64, in the parameters' dtype."""
        t = t.to(torch.float64)
        bias1 = 1 - self.beta1 ** t
        bias2_sqrt = (1 - self.beta2 ** t).sqrt()
        dtype = self.params[0].dtype
        return bias2_sqrt.to(dtype), (lr / bias1).to(dtype)

    def _fused(self, sl: slice, grads: Sequence[Tensor], step: Tensor, lr: float | Tensor) -> None:
        """The rows ``sl``, in place, with ``torch.optim.Adam(fused=True)``'s kernel at one count and rate.

        On the CPU every Adam update takes this kernel (here or in :meth:`_fused_groups`): one pass over each
        tensor instead of the nine of the multi-tensor form (measured on the 2-core machine: a seed of the
        ring's G in 0.30 ms instead of 1.29 ms), and each row's arithmetic is the same whatever the other rows
        do (a masked-out row is not touched at all)."""
        self._fused_call([p[sl] for p in self.params], [g[sl] for g in grads], [m[sl] for m in self.exp_avg],
                         [v[sl] for v in self.exp_avg_sq], step, lr)

    def _fused_call(self, ps: list[Tensor], gs: list[Tensor], ms: list[Tensor], vs: list[Tensor], step: Tensor,
                    lr: float | Tensor) -> None:
        """The fused kernel on these tensors (parameters, gradients, moments) at one count and rate."""
        torch._fused_adam_(ps, gs, ms, vs, [], [step] * len(ps), lr=lr, beta1=self.beta1, beta2=self.beta2,
                           weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)

    def _fused_groups(self, grads: Sequence[Tensor], rows: list[int], steps: Tensor, lr: Tensor) -> None:
        """The fused update of ``rows``: one kernel call per group of rows that share a rate and a count
        (usually one call for all) instead of one per row. The call gets each row's own views, never the
        whole stacked tensors: the kernel vectorises each tensor it is given and finishes its tail with
        scalar code, whose rounding can differ, so a row updated inside a larger tensor would not match
        the row alone (the ring's 2-element output bias: 7.5e-9 apart after 12 steps). With per-row views a
        row gets the same bits in any group (tested against lone torch.optim.Adam(fused=True) runs). On the
        idle 2-core machine, the ring's 64 seeds: G 22.1 ms an update against 26.5 ms for 64 one-row calls,
        D 6.5 against 9.7 ms."""
        groups: dict[tuple[float, int], list[int]] = {}
        for k, rate, count in zip(rows, lr[rows].tolist(), steps[rows].tolist()):
            groups.setdefault((rate, count), []).append(k)
        for (rate, count), ks in groups.items():
            step = torch.tensor(float(count))
            if len(ks) == 1:
                self._fused(slice(ks[0], ks[0] + 1), grads, step, rate)
            else:
                ps, ms, vs = ([t for k in ks for t in part[k]] for part in self._row_views())
                self._fused_call(ps, [g[k] for k in ks for g in grads], ms, vs, step, rate)

    def _row_views(self) -> tuple[list[list[Tensor]], ...]:
        """Per row, the views of the parameters and of Adam's moments, made once (thousands of views a step
        otherwise), made again if a tensor has been replaced."""
        key = tuple(t.data_ptr() for ts in (self.params, self.exp_avg, self.exp_avg_sq) for t in ts)
        if self._views_key != key:
            self._views_key = key
            self._views_cache = tuple([[t[k] for t in ts] for k in range(ts[0].shape[0])]
                                      for ts in (self.params, self.exp_avg, self.exp_avg_sq))
        return self._views_cache

    @torch.no_grad()
    def step_all_on_device(self, grads: Sequence[Tensor], lr: Tensor, steps: Tensor) -> None:
        """One Adam update of every row with no host work (so a CUDA graph can capture it): ``steps (R,)``
        int64 and ``lr (R,)`` float64 live on the parameters' device; ``steps`` is advanced here, and
        the caller advances ``self.steps`` to match. Fused (the CPU): :meth:`_fused` for every row; with
        ``uniform_fused``, one fused kernel for all (the rate and count of row 0 for every row)."""
        if self.rule != "adam":
            raise ValueError(f"the device-side step is Adam's; this optimiser's rule is {self.rule!r}")
        steps += 1
        if self.uniform_fused:
            # every row at lr[0] and count steps[0], both read on the device (so a CUDA graph can capture it);
            # on the CPU this equals the per-row fused updates bit for bit on a 4-seed study (tested; on larger
            # tensors the kernel's vectorised body and scalar tail can round apart, see _fused_groups). The
            # count goes in as float32 (the kernels read a float step); the rate as float64 on the CPU (read as
            # a double there) and float32 elsewhere: CUDA's fused kernel reads a tensor rate as a float32
            # pointer and refuses another dtype, as torch.optim.Adam(fused=True) keeps it
            rate = lr[0].to(torch.float64 if lr.device.type == "cpu" else torch.float32)
            self._fused(slice(None), grads, steps[0].to(torch.float32), rate)
            return
        if self.fused:
            self._fused_groups(grads, list(range(len(steps))), steps, lr)
            return
        bias2_sqrt, step_size = self._factors(steps, lr)
        self._update_all(grads, bias2_sqrt, step_size)

    def _update_all(self, grads: Sequence[Tensor], bias2_sqrt: Tensor, step_size: Tensor) -> None:
        """Adam's arithmetic for every row, in place, a few multi-tensor kernels for all tensors (the same
        numbers as :meth:`_masked` with no mask); ``bias2_sqrt`` and ``step_size`` are ``(R,)``. One row (the
        trainer's network) takes them as 0-dim tensors: the same products, and on a GPU the multi-tensor
        kernels' fast path, which per-row views of another shape than the parameters' would leave."""
        ps, ms, vs = self.params, self.exp_avg, self.exp_avg_sq
        if bias2_sqrt.numel() == 1:
            bias2_sqrt, step_size = bias2_sqrt.reshape(()), step_size.reshape(())
        else:
            bias2_sqrt, step_size = self._views(bias2_sqrt), self._views(step_size)
        torch._foreach_lerp_(ms, list(grads), 1 - self.beta1)
        torch._foreach_mul_(vs, self.beta2)
        torch._foreach_addcmul_(vs, list(grads), list(grads), value=1 - self.beta2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        upd = torch._foreach_div(ms, denom)
        torch._foreach_mul_(upd, step_size)
        torch._foreach_sub_(ps, upd)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, object]:
        """The rule, the counts and the moments (CPU copies)."""
        return {"rule": self.rule, "steps": self.steps.clone(),
                "exp_avg": [m.detach().cpu().clone() for m in self.exp_avg],
                "exp_avg_sq": [v.detach().cpu().clone() for v in self.exp_avg_sq]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`'s numbers in place (the tensors keep their addresses: a captured graph
        reads them). A state whose rows never stepped may leave the moments out (zeros); a state of another
        rule, another form or other shapes is refused (ValueError), never broadcast into these tensors."""
        try:
            if state.get("rule", self.rule) != self.rule:
                raise ValueError(f"an optimiser state of rule {state['rule']!r} cannot be loaded into {self.rule!r}")
            steps = torch.as_tensor(state["steps"])
            saved = [list(state.get(key) or []) for key in ("exp_avg", "exp_avg_sq")]
            if not any(saved) and not bool(steps.any()):
                saved = [[torch.zeros_like(t) for t in ts] for ts in (self.exp_avg, self.exp_avg_sq)]
            have = [[tuple(t.shape) for t in ts] for ts in saved]
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not an optimiser state ({type(e).__name__}: {e})") from None
        want = [[tuple(t.shape) for t in ts] for ts in (self.exp_avg, self.exp_avg_sq)]
        if tuple(steps.shape) != tuple(self._steps.shape) or have != want:
            raise ValueError(f"a state of {len(have[0]) or len(have[1])} tensors over {steps.numel()} rows does not fit "
                             f"this optimiser's {len(want[0]) or len(want[1])} tensors over {len(self._steps)} rows "
                             f"(or their shapes differ)")
        self.steps.copy_(steps)
        for mine, ts in zip((self.exp_avg, self.exp_avg_sq), saved):
            for p, q in zip(mine, ts):
                p.copy_(q)

    def state_of(self, k: int) -> dict[str, object]:
        """Row ``k``'s state (for tests and checks)."""
        return {"step": int(self.steps[k]), "exp_avg": [m[k].clone() for m in self.exp_avg],
                "exp_avg_sq": [v[k].clone() for v in self.exp_avg_sq]}


# --------------------------------------------------------------------------- EMA
def ema_step(avg: Tensor, new: Tensor, beta, mask: Tensor | None = None) -> Tensor:
    """One step of an exponential moving average, ``β·avg + (1 − β)·new`` (``beta`` a scalar or a tensor that
    broadcasts, one value per row); rows outside ``mask`` keep ``avg``.  The one definition the Dirac
    simulators, the ring study's generator EMA and (through :func:`ema_step_`) the trainer's use."""
    out = beta * avg + (1 - beta) * new
    return out if mask is None else torch.where(mask, out, avg)


@torch.no_grad()
def ema_step_(avgs: Sequence[Tensor], news: Sequence[Tensor], beta: float) -> None:
    """:func:`ema_step` in place over many tensors at one ``beta`` (a float), with multi-tensor kernels:
    the same products and sum, so the same bits."""
    avgs, news = list(avgs), list(news)
    scaled = torch._foreach_mul(news, 1 - beta)
    torch._foreach_mul_(avgs, beta)
    torch._foreach_add_(avgs, scaled)
