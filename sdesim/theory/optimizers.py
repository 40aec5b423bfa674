"""Optimizer mappings: the SGD-diffusion escape time of Xie et al. (F14) and the mass,
friction and temperature of Momentum, Adam and Adai as SDEs in phase space, with their
escape exponents and the momentum escape time (F15-F18)."""

from __future__ import annotations

import math

import numpy as np

from .. import _checks
from ._common import _choice, _fail, _real

__all__ = ["sgd_escape_time", "sgd_escape_exponent", "optimizer_dynamics",
           "escape_exponent", "momentum_escape_time"]


# ----------------------------------------------------------------------------------------
# SGD diffusion (Xie et al. 2021), F14
# ----------------------------------------------------------------------------------------


def _sgd_checks(barrier, hess_min, lr, batch_size, hess_saddle, s):
    barrier = _real("barrier", barrier, positive=True)
    h_a = _real("hess_min", hess_min, positive=True)
    lr = _real("lr", lr, positive=True)
    batch_size = _real("batch_size", batch_size, positive=True)
    s = _real("s", s)
    _checks.real("s", s, lo=0.0, hi=1.0)
    h_b = None
    if hess_saddle is not None:
        h_b = abs(_real("hess_saddle", hess_saddle, negative=True))
    elif s < 1.0:
        _fail("hess_saddle", hess_saddle, "given (the Hessian at the saddle) when s < 1")
    return barrier, h_a, lr, batch_size, h_b, s


def sgd_escape_exponent(barrier, hess_min, lr, batch_size, *, hess_saddle=None, s=1.0):
    r"""Exponent of the SGD-diffusion escape time (F14; Xie, Sato & Sugiyama 2021)::

        log tau ~ (2 B dL / eta) (s / H_a + (1 - s) / |H_b|)   ->   2 B dL / (eta H_a)  (s=1)

    For the Gaussian SGD SDE ``dtheta = -L' dt + sqrt(eta H / B) dW`` (``D = eta H/(2B)``),
    the scale density grows by ``exp(int L'/D)`` along the path; with ``D = eta H_a/(2B)``
    on the fraction ``s`` of the barrier climbed near the minimum and ``eta |H_b|/(2B)``
    near the saddle this gives the exponent above (Xie et al.'s path parameter ``s``).
    The default ``s = 1`` is the leading behaviour: linear in ``B/eta`` and ``1/H_a``.
    """
    barrier, h_a, lr, batch_size, h_b, s = _sgd_checks(barrier, hess_min, lr, batch_size,
                                                       hess_saddle, s)
    inv_h = s / h_a + ((1.0 - s) / h_b if s < 1.0 else 0.0)
    return 2.0 * batch_size * barrier / lr * inv_h


def sgd_escape_time(barrier, hess_min, lr, batch_size, *, hess_saddle=None, s=1.0):
    r"""Asymptotic mean escape time of Gaussian SGD diffusion (F14; Xie et al. 2021).

    SDE (Itô, SDE time; divide by ``lr`` for iterations):
    ``dtheta = -L'(theta) dt + sqrt(eta H(theta)/B) dW``, i.e. ``D = eta H/(2B)``::

        tau ~ (2 pi / H_a) exp(sgd_escape_exponent(...))  =  (2 pi/H_a) exp(2 B dL/(eta H_a))

    An asymptotic estimate for ``B dL/(eta H_a) >> 1``. The prefactor is our derivation from
    the exact Itô formula F7 (``mfpt_1d_ito``), with the diffusion ``D_a = eta H_a/(2B)``
    around the minimum and ``D_b = eta |H_b|/(2B)`` around the saddle: the two Laplace
    integrals give ``(1/D_a) sqrt(2 pi D_a/H_a) sqrt(2 pi D_b/|H_b|) = 2 pi/H_a`` because
    ``D_a/H_a = D_b/|H_b| = eta/(2B)``; so ``H_b`` drops out (unlike Kramers' F1 at fixed
    temperature). Other calculus conventions for the state-dependent noise change the
    prefactor, not the exponent (F14). ``hess_saddle`` (``H_b < 0``) is needed only
    for ``s < 1``.
    """
    exponent = sgd_escape_exponent(barrier, hess_min, lr, batch_size,
                                   hess_saddle=hess_saddle, s=s)
    return 2.0 * math.pi / float(hess_min) * math.exp(exponent)


# ---------------------------------------------------------------------------------------
# Optimizer SDEs in phase space: mass, friction, temperature (F15-F18) [Adai §3-5]
# ---------------------------------------------------------------------------------------

_OPTIMIZERS = ("sgd", "momentum", "adam", "adai")


def optimizer_dynamics(optimizer, lr, noise_var, *, beta1=0.9, beta3=None, vhat=None,
                       eps=None):
    """Mass ``M``, friction rate ``γ`` and temperature ``T`` of an optimizer's SDE
    (docs/concepts/mathematics.md, "Models"), per coordinate, for gradient-noise variance
    ``C = noise_var`` (per iteration; ``C ≈ H/B`` near a minimum).

    - ``"sgd"``: overdamped, ``M = 0``, ``T = ηC/2``.
    - ``"momentum"``: ``M = η/β₃``, ``γM = (1−β₁)/β₃``, ``T = ηβ₃C/(2(1−β₁))``
      (``beta3=None``: Adam-style ``β₃ = 1−β₁``).
    - ``"adam"``: ``M = η(sqrt(v̂)+ϵ)/(1−β₁)``, ``γM = sqrt(v̂)+ϵ``,
      ``T = ηC/(2(sqrt(v̂)+ϵ))``; ``vhat`` defaults to ``C`` (its value at a minimum),
      ``eps`` to 1e-8.
    - ``"adai"``: Adam-style momentum with per-coordinate ``β₁`` (pass ``beta1``, e.g. from
      ``models.Adai.inertia``): ``M = η/(1−β₁)``, ``γM = 1``, ``T = ηC/2``.

    Returns a dict with numpy arrays ``mass``, ``friction`` (γ, a rate) and ``temperature``.
    """
    _choice("optimizer", optimizer, _OPTIMIZERS)
    lr = _real("lr", lr, positive=True)
    c = _real("noise_var", noise_var, nonnegative=True, array=True)
    b1 = _real("beta1", beta1, array=True)
    _checks.unit_interval("beta1", beta1)
    if optimizer == "sgd":
        return {"mass": np.zeros_like(c), "friction": np.full_like(c, np.inf),
                "temperature": lr * c / 2}
    if optimizer in ("momentum", "adai"):
        b3 = 1 - b1 if (beta3 is None or optimizer == "adai") else _real("beta3", beta3,
                                                                            positive=True)
        mass = lr / b3 * np.ones_like(c)
        fric_force = (1 - b1) / b3 * np.ones_like(c)
        return {"mass": mass, "friction": fric_force / mass,
                "temperature": lr * c / (2 * fric_force)}
    v = c if vhat is None else _real("vhat", vhat, array=True)
    e = 1e-8 if eps is None else _real("eps", eps, positive=True)
    fric_force = np.sqrt(v) + e
    mass = lr * fric_force / (1 - b1)
    return {"mass": mass, "friction": fric_force / mass,
            "temperature": lr * c / (2 * fric_force)}


def escape_exponent(optimizer, barrier, hess_min, lr, batch_size, *, beta1=0.9, beta3=None):
    """``ΔL/T`` at the minimum for Hessian-shaped noise ``C = H_a/B`` (F14-F18):
    SGD, Adam-style Momentum and Adai: ``2BΔL/(ηH_a)`` (log escape time ∝ 1/H);
    PyTorch-style momentum (β₃ = 1): ``2BΔL(1−β₁)/(ηH_a)``; Adam:
    ``2ΔL sqrt(B)/(η sqrt(H_a))`` (∝ H^{-1/2}, F17, with v̂ = H_a/B, ϵ → 0)."""
    _choice("optimizer", optimizer, _OPTIMIZERS)
    barrier = _real("barrier", barrier, positive=True)
    h = _real("hess_min", hess_min, positive=True, array=True)
    b = _real("batch_size", batch_size, positive=True)
    dyn = optimizer_dynamics(optimizer, lr, h / b, beta1=beta1, beta3=beta3,
                             eps=1e-300 if optimizer == "adam" else None)
    out = barrier / dyn["temperature"]
    return float(out) if np.ndim(out) == 0 else out


def momentum_escape_time(barrier, hess_min, hess_saddle, lr, batch_size, *, beta1=0.9,
                         beta3=None):
    """Momentum/Adai escape time (F16/F18): the SGD exponent with the momentum temperature
    and the prefactor ``2π/λ_be``, ``λ_be = (sqrt(γ²M² + 4M|H_b|) − γM)/(2M)`` (for the
    Adam-style ``γM = 1``: ``(sqrt(1+4M|H_b|)−1)/(2M)``). Leading order in small noise;
    ``hess_saddle`` is the (negative) curvature along the escape direction."""
    hb = _real("hess_saddle", hess_saddle, negative=True)
    dyn = optimizer_dynamics("momentum", lr, 1.0, beta1=beta1, beta3=beta3)
    m = float(dyn["mass"])
    gm = float(dyn["friction"]) * m
    lam = (math.sqrt(gm**2 + 4 * m * abs(hb)) - gm) / (2 * m)
    expo = escape_exponent("momentum", barrier, hess_min, lr, batch_size, beta1=beta1,
                           beta3=beta3)
    return 2 * math.pi / lam * math.exp(expo)
