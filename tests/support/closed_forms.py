"""Hand-derived Dirac-GAN vector fields, written independently of `dynamics`.

Convention: D_ψ(x) = ψ·x is the logit of "real", real data at 0, u = ψ·θ,
v = (θ̇, ψ̇) = (−∂loss_g/∂θ, −∂loss_d/∂ψ).  Used only as test oracles.
"""
from __future__ import annotations

import numpy as np
from scipy import integrate


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def field(method: str, theta, psi, p: dict):
    th, ps = np.asarray(theta, float), np.asarray(psi, float)
    u = float(th @ ps)
    nps = np.linalg.norm(ps)
    nth = np.linalg.norm(th)
    if method == "gan":
        vt, vp = sig(u) * ps, -sig(u) * th
    elif method == "nsgan":
        vt, vp = sig(-u) * ps, -sig(u) * th
    elif method == "wgan":
        vt, vp = ps.copy(), -th.copy()
    elif method == "wgan_norm":
        vt, vp = ps / nps, -(th / nps - u * ps / nps**3)
    elif method == "wgan_gp":
        vt, vp = ps.copy(), -th - p["gamma"] * (nps - p["c"]) * ps / nps
    elif method == "dragan":
        vt, vp = sig(u) * ps, -sig(u) * th - p["gamma"] * (nps - p["c"]) * ps / nps
    elif method in ("r1", "r2"):
        vt, vp = sig(u) * ps, -sig(u) * th - p["gamma"] * ps
    elif method == "roth":
        s = sig(u)
        pen = p["gamma"] * (ps / 4 + s**2 * ps + s * s * (1 - s) * th * nps**2)
        vt, vp = s * ps, -s * th - pen
    elif method == "gan_qp":
        vt, vp = ps.copy(), -th - u * th / (p["lam"] * nth)
    elif method == "lsgan":
        vt, vp = -(u - p["c"]) * ps, -(u - p["a"]) * th
    elif method in ("alpha", "alpha_sat"):
        kd = (p["alpha_d"] - 1) / p["alpha_d"]
        kg = (p["alpha_g"] - 1) / p["alpha_g"]
        vp = -sig(-u) ** kd * sig(u) * th
        if method == "alpha":
            vt = sig(u) ** kg * (1 - sig(u)) * ps
        else:
            vt = sig(-u) ** kg * sig(u) * ps
    elif method == "instance_noise":  # 1-D only, by adaptive quadrature against the normal density
        sd = p["sigma"]
        t, q = float(th[0]), float(ps[0])
        pdf = lambda z: np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
        E = lambda f: integrate.quad(lambda z: f(z) * pdf(z), -12, 12, epsabs=1e-13, epsrel=1e-13)[0]  # noqa: E731
        dld = E(lambda z: -sd * z * sig(-sd * q * z) + (t + sd * z) * sig(q * t + sd * q * z))
        vt = np.array([E(lambda z: q * sig(q * t + sd * q * z))])
        vp = np.array([-dld])
    elif method == "conopt":  # 1-D: v − γ Jᵀv for the GAN field (L2 is part of the game it regularises)
        t, q = float(th[0]), float(ps[0])
        s = sig(u)
        ds = s * (1 - s)
        l2 = p.get("l2", 0.0)
        v = np.array([s * q, -s * t - l2 * q])
        J = np.array([[ds * q * q, s + ds * u], [-s - ds * u, -ds * t * t - l2]])
        w = v - p["gamma"] * J.T @ v
        return w
    else:
        raise KeyError(method)
    if "l2" in p:
        vp = vp - p["l2"] * ps
    return np.concatenate([np.atleast_1d(vt), np.atleast_1d(vp)])


def continuous_eigenvalues(method: str, p: dict) -> list[complex]:
    """Closed-form eigenvalues of ∂v/∂z at the equilibrium (1-D)."""
    sq = lambda x: complex(x) ** 0.5  # noqa: E731
    g = p.get("gamma", 0.0)
    if method in ("r1", "r2"):  # Mescheder et al. (2018): −γ/2 ± sqrt(γ²/4 − f'(0)²), f'(0) = 1/2
        return [-g / 2 + sq(g * g / 4 - 0.25), -g / 2 - sq(g * g / 4 - 0.25)]
    if method == "wgan_gp":  # c = 0: ψ̇ = −θ − γψ, θ̇ = ψ
        return [-g / 2 + sq(g * g / 4 - 1), -g / 2 - sq(g * g / 4 - 1)]
    if method == "instance_noise":  # derived: ψ̇ ≈ −θ/2 − σ²ψ/2, θ̇ ≈ ψ/2
        s2 = p["sigma"] ** 2
        return [-s2 / 4 + sq(s2 * s2 / 16 - 0.25), -s2 / 4 - sq(s2 * s2 / 16 - 0.25)]
    if method == "conopt":  # derived: (A − γ AᵀA), A = [[0, 1/2], [−1/2, 0]], AᵀA = I/4
        return [complex(-g / 4, 0.5), complex(-g / 4, -0.5)]
    if method == "roth":  # derived: ψ̇ ≈ −θ/2 − γψ/2
        return [-g / 4 + sq(g * g / 16 - 0.25), -g / 4 - sq(g * g / 16 - 0.25)]
    if method in ("gan", "nsgan"):
        return [0.5j, -0.5j]
    if method == "wgan":
        return [1j, -1j]
    if method == "lsgan":
        r = sq(p["a"] * p["c"])
        return [r, -r]
    raise KeyError(method)
