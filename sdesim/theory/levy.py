"""Escape under small Lévy (α-stable) noise: the 1-D interval exit time (F20;
Imkeller & Pavlyukevich 2006) and the d-dimensional quadratic-basin escape with Zhou et
al.'s SGD-vs-Adam comparison (F21, Theorem 1), with Adam's preconditioner at a minimum."""

from __future__ import annotations

import numpy as np
from scipy import special

from ._common import _fail, _finish, _real

__all__ = ["levy_constant", "levy_exit_time", "levy_jump_rate", "levy_escaping_measure",
           "levy_exit_time_nd", "adam_levy_preconditioner", "levy_sgd_vs_adam"]


# ----------------------------------------------------------------------------------------
# Lévy-driven escape (Imkeller–Pavlyukevich 2006), F20
# ----------------------------------------------------------------------------------------


def levy_constant(alpha):
    r"""``c_alpha = Gamma(1 + alpha) sin(pi alpha / 2) / pi``.

    The Lévy measure of the symmetric alpha-stable ``S`` with ``E e^{i w S} = e^{-|w|^alpha}``
    is ``c_alpha |y|^{-1-alpha} dy``, so ``P(S > u) ~ c_alpha u^{-alpha} / alpha``.
    ``alpha`` in ``(0, 2)`` (at 2 the noise is Gaussian and has no jumps).
    """
    a = _real("alpha", alpha, array=True)
    if np.any((a <= 0) | (a >= 2)):
        _fail("alpha", alpha, "in (0, 2) (the Lévy formulas are for alpha < 2)")
    out = special.gamma(1.0 + a) * np.sin(0.5 * np.pi * a) / np.pi
    return _finish(np.asarray(out, dtype=np.float64), a.ndim == 0)


def levy_exit_time(alpha, eps, a, b):
    r"""Mean exit time of small Lévy noise from an interval (F20; Imkeller & Pavlyukevich 2006).

    SDE: ``dX = -U'(X) dt + eps dL`` with ``L`` symmetric alpha-stable
    (``E e^{i w L_1} = e^{-|w|^alpha}``), the well at 0 and the interval ``(-b, a)``::

        E tau ~ alpha / (c_alpha eps^alpha (a^{-alpha} + b^{-alpha}))      (eps -> 0)

    i.e. one over the Lévy-measure rate of a single jump out of the interval from the
    minimum. Polynomial in ``eps`` and independent of the barrier height. Broadcasts over
    array arguments. ``a`` or ``b`` may be ``inf`` (a one-sided exit), not both.
    """
    c_alpha = levy_constant(alpha)
    alpha = _real("alpha", alpha, array=True)
    eps = _real("eps", eps, positive=True, array=True)
    a = _real("a", a, positive=True, finite=False, array=True)
    b = _real("b", b, positive=True, finite=False, array=True)
    if np.any(np.isinf(a) & np.isinf(b)):
        _fail("b", b, "finite where a is infinite (the interval must have an end)")
    rate = c_alpha / alpha * eps**alpha * (a ** (-alpha) + b ** (-alpha))
    out = np.asarray(1.0 / rate, dtype=np.float64)
    scalar = all(np.ndim(v) == 0 for v in (alpha, eps, a, b))
    return _finish(out, scalar)


# ----------------------------------------------------------------------------------------
# Lévy-driven escape in d dimensions (F21): Zhou et al.'s Theorem 1 as a number
# ----------------------------------------------------------------------------------------


def levy_jump_rate(alpha, r_plus, r_minus):
    r"""Lévy measure of the escaping set for i.i.d.-coordinate SαS noise (F21):
    ``nu_A(W) = sum_i (c_alpha/alpha)(r_{i+}^{-alpha} + r_{i-}^{-alpha})``.

    The driving noise has i.i.d. SαS coordinates, so its Lévy measure lives on the
    coordinate axes: a jump is ``s e_i`` with density ``c_alpha |s|^{-1-alpha}``; mapped
    through the noise matrix ``A`` it moves the state by ``s A e_i``, and it leaves the
    basin from the minimum iff ``s > r_{i+}`` or ``s < -r_{i-}`` (``r_{i±}`` the jump sizes
    in units of ``S`` that reach the boundary along ``±A e_i``; ``inf`` where ``A e_i``
    never leaves). ``r_plus``, ``r_minus``: arrays of shape ``(d,)``.
    """
    c_alpha = levy_constant(alpha)
    a = float(_real("alpha", alpha))
    rp = _real("r_plus", r_plus, positive=True, finite=False, array=True)
    rm = _real("r_minus", r_minus, positive=True, finite=False, array=True)
    if rp.shape != rm.shape:
        _fail("r_minus", r_minus, f"of the shape of r_plus {rp.shape}")
    return float(np.sum(c_alpha / a * (rp ** (-a) + rm ** (-a))))


def _noise_matrix(name, value, d):
    arr = _real(name, value, array=True)
    if arr.ndim == 0:
        return arr * np.eye(d)
    if arr.ndim == 1:
        if arr.shape != (d,):
            _fail(name, value, f"a number, a ({d},) vector or a ({d}, {d}) matrix")
        return np.diag(arr)
    if arr.shape != (d, d):
        _fail(name, value, f"a number, a ({d},) vector or a ({d}, {d}) matrix")
    return arr


def _hessian_matrix(hessian):
    hm = _real("hessian", hessian, array=True)
    if hm.ndim == 1:
        hm = np.diag(hm)
    if hm.ndim != 2 or hm.shape[0] != hm.shape[1] or hm.shape[0] < 1:
        _fail("hessian", hessian, "a (d,) vector (diagonal) or a (d, d) matrix")
    if not np.allclose(hm, hm.T, rtol=1e-12, atol=0) or np.linalg.eigvalsh(hm).min() <= 0:
        _fail("hessian", hessian, "symmetric positive definite")
    return hm


def levy_escaping_measure(alpha, scale, hessian, height):
    r"""``m(W) = nu_A(W)`` (F21) for the quadratic basin ``Omega = {y : y^T H y / 2 <= height}``
    around the minimum and the noise matrix ``A = scale`` (``Q^{-1} Sigma``).

    Along ``±A e_i`` the boundary is at jump size ``r_i = sqrt(2 height / (a_i^T H a_i))``,
    ``a_i = A e_i`` (column ``i``; both signs alike), so
    ``nu_A(W) = sum_i (2 c_alpha/alpha) r_i^{-alpha}``. The escape time is
    ``1/(eps^alpha nu_A(W))`` (``levy_exit_time_nd``). ``scale``: a number (isotropic),
    a ``(d,)`` vector (diagonal) or a ``(d, d)`` matrix; ``hessian``: ``(d,)`` or ``(d, d)``
    positive definite; ``height > 0``.
    """
    hm = _hessian_matrix(hessian)
    d = hm.shape[0]
    am = _noise_matrix("scale", scale, d)
    h = _real("height", height, positive=True)
    quad = np.einsum("ji,jk,ki->i", am, hm, am)  # a_i^T H a_i
    with np.errstate(divide="ignore"):
        r = np.where(quad > 0, np.sqrt(2 * h / np.where(quad > 0, quad, 1.0)), np.inf)
    return levy_jump_rate(alpha, r, r)


def levy_exit_time_nd(alpha, eps, scale, hessian, height):
    r"""Mean escape time from a quadratic basin under small Lévy noise (F21)::

        E tau ~ 1 / (eps^alpha nu_A(W))      (eps -> 0)

    for ``dθ = -P ∇L dt + eps A dL_t`` (any drift that relaxes to the minimum: only the
    first jump that leaves matters at leading order), ``A = scale`` the noise matrix,
    ``L`` with i.i.d. SαS coordinates, ``Omega = {y^T H y / 2 <= height}``. In 1-D it is
    ``levy_exit_time`` (F20) with ``a = b = sqrt(2 height/H)/|A|``. Leading order: at
    ``eps = 0.05``, ``alpha = 1.5`` simulated/F21 = 0.94-1.01 (SGD and Adam, 2-D basins of
    anisotropy 1-64, ±4% intervals; ``benchmarks/levy_escape.py``); lower at larger eps
    (0.73 at eps = 0.4 in 1-D).
    """
    e = _real("eps", eps, positive=True)
    a = float(_real("alpha", alpha))
    return 1.0 / (e**a * levy_escaping_measure(alpha, scale, hessian, height))


def adam_levy_preconditioner(sigma, epsilon=1e-8):
    r"""Adam's ``Q = diag(sqrt(v*) + epsilon)`` at the minimum for noise scale ``Sigma``:
    ``v* = diag(2 Sigma Sigma^T)`` (``models.AdamLevy``'s choice for the noise in ``v``;
    ``(∇L)^2`` is neglected at the minimum, and ``omega_t -> 1``). ``sigma``: a number,
    ``(d,)`` or ``(d, d)`` (a number gives a number). Returns the diagonal of ``Q``."""
    s = _real("sigma", sigma, array=True)
    e = _real("epsilon", epsilon, nonnegative=True)
    if s.ndim > 2:
        _fail("sigma", sigma, "a number, a vector or a matrix")
    v = 2 * (np.sum(s**2, axis=1) if s.ndim == 2 else s**2)
    return np.sqrt(v) + e


def levy_sgd_vs_adam(alpha, lr, sigma, hessian, height, *, epsilon=1e-8):
    r"""Zhou et al.'s Theorem 1 as numbers (F21): SGD vs Adam escape times in one basin.

    Same gradient noise ``Sigma`` (a number, ``(d,)`` or ``(d, d)``), learning rate ``lr``
    (``eps = lr^{(alpha-1)/alpha}``) and basin ``{y^T H y / 2 <= height}``:
    SGD has ``A = Sigma`` (``Q = I``), Adam ``A = Q^{-1} Sigma`` with
    ``Q = adam_levy_preconditioner(Sigma, epsilon)``. Returns a dict: ``sgd_time``,
    ``adam_time`` (SDE time; divide by ``lr`` for iterations), ``ratio`` =
    adam_time/sgd_time (> 1: SGD escapes faster), ``m_sgd``, ``m_adam`` (``m(W) =
    nu_A(W)``), ``eps``, ``q`` (Adam's preconditioner diagonal).

    Which optimizer escapes faster is not universal: Adam rescales the noise along
    coordinate ``i`` by ``1/q_i ≈ 1/(sqrt(2) sigma_i)``, so SGD escapes faster exactly when
    its noise, seen through the basin's shape, is larger than Adam's normalized one —
    e.g. Hessian-aligned noise ``Sigma = (H/2B)^{1/2}`` in a basin whose sharp directions
    have ``H_ii > B``-ish.
    """
    a = float(_real("alpha", alpha))
    lr = _real("lr", lr, positive=True)
    hm = _hessian_matrix(hessian)
    d = hm.shape[0]
    sig = _noise_matrix("sigma", sigma, d)
    q = adam_levy_preconditioner(sig, epsilon)
    eps = lr ** ((a - 1) / a)
    m_sgd = levy_escaping_measure(a, sig, hm, height)
    m_adam = levy_escaping_measure(a, sig / q[:, None], hm, height)
    t_sgd = 1.0 / (eps**a * m_sgd)
    t_adam = 1.0 / (eps**a * m_adam)
    return {"sgd_time": t_sgd, "adam_time": t_adam, "ratio": t_adam / t_sgd,
            "m_sgd": m_sgd, "m_adam": m_adam, "eps": eps, "q": q}
