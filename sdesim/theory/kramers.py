"""Kramers' overdamped escape time in 1-D (F1, with its first-order correction ``kappa``
and the skew term at the saddle) and the Eyring–Kramers formula in d dimensions (F8)."""

from __future__ import annotations

import math

import numpy as np

from ._common import _choice, _fail, _real, _vectorize

__all__ = ["kramers_time", "kramers_kappa", "kramers_from_potential", "eyring_kramers_time"]


# ----------------------------------------------------------------------------------------
# Kramers (overdamped), F1
# ----------------------------------------------------------------------------------------


def kramers_time(
    barrier,
    curvature_min,
    curvature_saddle,
    temperature,
    *,
    kappa=0.0,
    where="beyond",
    d3_saddle=0.0,
):
    r"""Kramers' mean escape time of overdamped Langevin dynamics in 1-D (F1).

    SDE: ``dX = -U'(X) dt + sqrt(2T) dW`` started in the well at ``a``, barrier top at ``b``::

        tau_K = 2 pi / sqrt(U''(a) |U''(b)|) * exp(barrier / T) * (1 + kappa T)

    * ``where="beyond"``: time to go *well past* the saddle (absorbing at ``c`` with
      ``(c - b) sqrt(|U''(b)|/T) >> 1``).
    * ``where="saddle"``: absorbing exactly at the barrier top: half of it, since only the
      well side of the Gaussian saddle integral counts. The half-line integral also picks up
      an odd term of order ``sqrt(T)`` when the saddle is skewed::

          tau = tau_K/2 * (1 - (2/(3 sqrt(2 pi))) U'''(b) sqrt(T)/|U''(b)|^{3/2} + kappa T)

      (our derivation: ``int_{-inf}^0 y^3 e^{-y^2/(2 s^2)} dy = -2 s^4``, ``s^2 = T/|U''(b)|``).
      ``d3_saddle`` is ``U'''(b)`` with the well to the *left* of the saddle (mirror the sign
      for an escape to the left); 0 by default, exact for a symmetric saddle.

    ``kappa`` is the first-order correction of ``kramers_kappa`` (Laplace expansions of the
    two integrals of F4); 0 gives the leading-order formula. The asymptotic form is still
    ~10% off at ``barrier/T = 5``: compare simulations with ``mfpt_1d`` there.

    Args:
      barrier: ``U(b) - U(a) > 0``.
      curvature_min: ``U''(a) > 0``.
      curvature_saddle: ``U''(b) < 0`` (signed: not its absolute value).
      temperature: ``T > 0``.

    Returns:
      The mean escape time in SDE time (float).
    """
    barrier = _real("barrier", barrier, positive=True)
    k_a = _real("curvature_min", curvature_min, positive=True)
    k_b = _real("curvature_saddle", curvature_saddle, negative=True)
    temperature = _real("temperature", temperature, positive=True)
    kappa = _real("kappa", kappa)
    d3_saddle = _real("d3_saddle", d3_saddle)
    _choice("where", where, ("beyond", "saddle"))
    tau = 2.0 * math.pi / math.sqrt(k_a * abs(k_b)) * math.exp(barrier / temperature)
    if where == "beyond":
        return tau * (1.0 + kappa * temperature)
    skew = 2.0 / (3.0 * math.sqrt(2.0 * math.pi)) * d3_saddle * math.sqrt(temperature)
    return 0.5 * tau * (1.0 - skew / abs(k_b) ** 1.5 + kappa * temperature)


def kramers_kappa(d2a, d3a, d4a, d2b, d3b, d4b):
    r"""First-order small-``T`` correction ``kappa`` in ``tau = tau_K (1 + kappa T)`` (F1).

    From the Laplace expansions of the well integral ``int e^{-U/T}`` about the minimum
    ``a`` and of the saddle integral ``int e^{U/T}`` about the barrier top ``b``::

        kappa = 5 U'''_a^2 / (24 U''_a^3) - U''''_a / (8 U''_a^2)
              + 5 U'''_b^2 / (24 |U''_b|^3) + U''''_b / (8 U''_b^2)

    (the standard ``int e^{-f/e} ~ e^{-f_0/e} sqrt(2 pi e/f'') (1 + e (5 f'''^2/(24 f''^3)
    - f''''/(8 f''^2)))`` applied to ``f = U`` at ``a`` and ``f = -U`` at ``b``). Quartic
    double well ``U = x^4/4 - x^2/2``: ``kappa = 3/2``.

    Args: derivatives ``U''``, ``U'''``, ``U''''`` at the minimum (``d2a > 0``) and at the
    saddle (``d2b < 0``).
    """
    d2a = _real("d2a", d2a, positive=True)
    d2b = _real("d2b", d2b, negative=True)
    d3a, d4a = _real("d3a", d3a), _real("d4a", d4a)
    d3b, d4b = _real("d3b", d3b), _real("d4b", d4b)
    well = 5.0 * d3a**2 / (24.0 * d2a**3) - d4a / (8.0 * d2a**2)
    saddle = 5.0 * d3b**2 / (24.0 * abs(d2b) ** 3) + d4b / (8.0 * d2b**2)
    return float(well + saddle)


# Central finite differences on x + h k, k = -4..4: exact for polynomials of degree <= 8.
_FD_OFFSETS = np.arange(-4.0, 5.0)


def _fd_weights(order):
    """Weights ``w`` with ``sum_k w_k f(x + h k) / h^order ~ f^(order)(x)`` (9 points)."""
    vander = np.vander(_FD_OFFSETS, increasing=True).T  # row p: k^p
    rhs = np.zeros(len(_FD_OFFSETS))
    rhs[order] = math.factorial(order)
    return np.linalg.solve(vander, rhs)


_FD = {p: _fd_weights(p) for p in (1, 2, 3, 4)}


def _derivatives(u, x, h):
    """``U(x), U'(x), ..., U''''(x)`` by 9-point central differences with step ``h``."""
    vals = u(x + h * _FD_OFFSETS)
    return [float(vals[4])] + [float(_FD[p] @ vals) / h**p for p in (1, 2, 3, 4)]


def kramers_from_potential(
    potential, minimum, saddle, temperature, *, where="beyond", correction=True
):
    r"""Kramers time (F1) with the derivatives of ``potential`` taken numerically.

    Evaluates ``U``, ``U''``, ``U'''``, ``U''''`` at ``minimum`` and ``saddle`` by 9-point
    central differences (exact for polynomials up to degree 8; step ``|saddle-minimum|/50``,
    so the truncation error is ~1e-9 relative for smooth potentials) and returns
    ``kramers_time(U(b)-U(a), U''(a), U''(b), T, kappa=..., where=...)``. With
    ``correction=True`` the ``kappa`` of ``kramers_kappa`` (and for ``where="saddle"`` the
    ``sqrt(T)`` skew term) are included. ``minimum`` and ``saddle`` must be the critical
    points; the escape goes from ``minimum`` towards ``saddle`` (either direction).
    """
    a = _real("minimum", minimum)
    b = _real("saddle", saddle)
    temperature = _real("temperature", temperature, positive=True)
    _choice("where", where, ("beyond", "saddle"))
    if a == b:
        _fail("saddle", saddle, "different from minimum")
    u = _vectorize(potential, "potential")
    h = abs(b - a) / 50.0
    ua, _, d2a, d3a, d4a = _derivatives(u, a, h)
    ub, _, d2b, d3b, d4b = _derivatives(u, b, h)
    if not d2a > 0:
        _fail("minimum", minimum, f"a minimum of the potential (U'' = {d2a:.6g} there)")
    if not d2b < 0:
        _fail("saddle", saddle, f"a barrier top of the potential (U'' = {d2b:.6g} there)")
    if not ub > ua:
        _fail("saddle", saddle, f"higher than the minimum (U(b) - U(a) = {ub - ua:.6g})")
    direction = 1.0 if b > a else -1.0  # mirror x -> -x flips the sign of U'''
    kappa = kramers_kappa(d2a, d3a, d4a, d2b, d3b, d4b) if correction else 0.0
    return kramers_time(
        ub - ua,
        d2a,
        d2b,
        temperature,
        kappa=kappa,
        where=where,
        d3_saddle=direction * d3b if correction else 0.0,
    )


# ----------------------------------------------------------------------------------------
# Eyring–Kramers (d dimensions), F8
# ----------------------------------------------------------------------------------------


def _symmetric(name, value):
    h = np.atleast_2d(np.asarray(value, dtype=np.float64))
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        _fail(name, value, "a square (d, d) matrix")
    if not np.all(np.isfinite(h)):
        _fail(name, value, "finite")
    if not np.allclose(h, h.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(h))):
        _fail(name, value, "symmetric")
    return np.linalg.eigvalsh(h)


def eyring_kramers_time(barrier, hess_min, hess_saddle, temperature):
    r"""Eyring–Kramers mean escape time in ``d`` dimensions (F8; Bovier et al. 2004).

    SDE: ``dX = -grad U(X) dt + sqrt(2T) dW`` in ``R^d``; escape from the minimum ``a``
    through the index-1 saddle ``b``, to well past the saddle::

        tau = (2 pi / |lambda_-(b)|) * sqrt(|det H_b| / det H_a) * exp(barrier / T)

    with ``lambda_-(b)`` the single negative eigenvalue of ``H_b``. For ``d = 1`` this is
    Kramers' F1; for a separable ``U(x) + k y^2/2`` the extra direction cancels.

    Args:
      barrier: ``U(b) - U(a) > 0``.
      hess_min: ``(d, d)`` Hessian at ``a``; must be positive definite.
      hess_saddle: ``(d, d)`` Hessian at ``b``; must have exactly one negative eigenvalue
        (and no zero one).
      temperature: ``T > 0``.
    """
    barrier = _real("barrier", barrier, positive=True)
    temperature = _real("temperature", temperature, positive=True)
    ev_a = _symmetric("hess_min", hess_min)
    ev_b = _symmetric("hess_saddle", hess_saddle)
    if ev_a.shape != ev_b.shape:
        _fail("hess_saddle", hess_saddle, f"the same shape as hess_min {(len(ev_a),) * 2}")
    if not np.all(ev_a > 0):
        _fail("hess_min", hess_min, f"positive definite (eigenvalues {ev_a})")
    if np.sum(ev_b < 0) != 1 or np.any(ev_b == 0):
        _fail("hess_saddle", hess_saddle, f"of index 1: one negative eigenvalue ({ev_b})")
    log_ratio = np.sum(np.log(np.abs(ev_b))) - np.sum(np.log(ev_a))  # det via eigenvalues
    lam = abs(float(ev_b[ev_b < 0][0]))
    return float(2.0 * math.pi / lam * math.exp(0.5 * log_ratio + barrier / temperature))
