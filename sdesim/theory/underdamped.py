"""Underdamped Langevin escape: Kramers' moderate-friction rate (F10), the weak-friction
energy-diffusion rate (F11), Mel'nikov–Meshkov's turnover factor (F12) and the action at
the barrier energy that F11/F12 need."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

from ._common import _fail, _finish, _real, _vectorize
from .mfpt import _WEIGHTS, _Panels

__all__ = ["kramers_underdamped_rate", "melnikov_meshkov_A", "weak_friction_rate",
           "barrier_action"]


# ----------------------------------------------------------------------------------------
# Underdamped Langevin: Kramers (F10), weak friction (F11), Mel'nikov–Meshkov (F12)
# ----------------------------------------------------------------------------------------


def _log1mexp(x):
    """``log(1 - exp(-x))`` for ``x > 0``, accurate for small and large ``x`` (Mächler 2012)."""
    return math.log(-math.expm1(-x)) if x < math.log(2.0) else math.log1p(-math.exp(-x))


def _log_mm_a(delta):
    """``log A(delta) = (1/pi) int_0^inf log(1 - e^{-delta(y^2+1/4)}) / (y^2 + 1/4) dy``."""

    def f(y):
        q = y * y + 0.25
        return _log1mexp(delta * q) / q

    # The integrand has structure on the scale 1/2 (the Lorentzian) and on 1/sqrt(delta)
    # (where the exponential switches off); split there so quad sees both.
    y1 = 1.0 / math.sqrt(delta)
    opts = dict(epsabs=1e-15, epsrel=1e-12, limit=200)
    if y1 > 1.0:
        total = integrate.quad(f, 0.0, 1.0, **opts)[0] + integrate.quad(f, 1.0, y1, **opts)[0]
    else:
        total = integrate.quad(f, 0.0, y1, **opts)[0]
    total += integrate.quad(f, y1, np.inf, **opts)[0]
    return total / math.pi


def melnikov_meshkov_A(delta):
    r"""Mel'nikov–Meshkov depopulation factor ``A(Delta)`` (F12; Mel'nikov & Meshkov 1986)::

        A(Delta) = exp[(1/2 pi) int_{-inf}^{inf} ln(1 - e^{-Delta (y^2 + 1/4)}) / (y^2 + 1/4) dy]

    ``Delta = gamma S / T`` is the energy lost per cycle at the barrier energy in units of
    ``T``. ``0 < A < 1``, increasing; ``A ~ Delta`` as ``Delta -> 0`` (the weak-friction rate
    F11) and ``A -> 1`` as ``Delta -> inf`` (the moderate-friction rate F10). Computed by
    adaptive quadrature (relative error ~1e-10 for ``1e-3 <= Delta <= 1e3``); vectorized.

    Args:
      delta: ``Delta > 0``, scalar or array.
    Returns:
      float or float64 array shaped like ``delta``.
    """
    d = _real("delta", delta, positive=True, finite=False, array=True)
    flat = np.array([1.0 if x == np.inf else math.exp(_log_mm_a(x)) for x in d.reshape(-1)])
    return _finish(flat.reshape(d.shape), d.ndim == 0)


def _underdamped_checks(curvature_min, mass, friction, temperature):
    k_a = _real("curvature_min", curvature_min, positive=True)
    mass = _real("mass", mass, positive=True)
    friction = _real("friction", friction, positive=True)
    temperature = _real("temperature", temperature, positive=True)
    return k_a, mass, friction, temperature


def kramers_underdamped_rate(
    barrier, curvature_min, curvature_saddle, mass, friction, temperature, *, action=None
):
    r"""Kramers' escape *rate* (1/time) of underdamped Langevin dynamics (F10, F12).

    SDE (Itô, SDE time): ``dtheta = v dt``,
    ``M dv = -gamma M v dt - U'(theta) dt + sqrt(2 gamma M T) dW`` with mass ``M`` and
    friction rate ``gamma`` (1/time). With ``omega_a = sqrt(U''(a)/M)``,
    ``omega_b = sqrt(|U''(b)|/M)``:

    (F10, moderate-to-strong friction)::

        k = (lambda_b / omega_b) (omega_a / 2 pi) exp(-barrier/T),
        lambda_b = sqrt(gamma^2/4 + omega_b^2) - gamma/2

    ``lambda_b`` is the unstable eigenvalue of the linearized dynamics at the saddle; it is
    evaluated as ``omega_b^2 / (sqrt(gamma^2/4 + omega_b^2) + gamma/2)`` to avoid
    cancellation at large friction, where ``k -> omega_a omega_b / (2 pi gamma) e^{-dU/T}``,
    i.e. ``1/(gamma M tau_K)``: overdamped Kramers with mobility ``1/(gamma M)``.

    (F12, all frictions) if ``action`` ``S`` is given (``barrier_action``): the
    Mel'nikov–Meshkov turnover rate ``k = A(Delta) k_F10``, ``Delta = gamma S / T``. It
    tends to the weak-friction rate F11 as ``gamma -> 0`` and to F10 as ``gamma`` grows.

    Args:
      barrier: ``U(b) - U(a) > 0``.
      curvature_min: ``U''(a) > 0``.
      curvature_saddle: ``U''(b) < 0``.
      mass: ``M > 0``.
      friction: ``gamma > 0`` (a rate).
      temperature: ``T > 0``.
      action: ``S = oint M v dtheta`` on the orbit at the barrier energy, or None.
    """
    barrier = _real("barrier", barrier, positive=True)
    k_b = _real("curvature_saddle", curvature_saddle, negative=True)
    k_a, mass, gamma, temperature = _underdamped_checks(curvature_min, mass, friction,
                                                        temperature)
    omega_a = math.sqrt(k_a / mass)
    omega_b = math.sqrt(abs(k_b) / mass)
    lam_b = omega_b**2 / (math.sqrt(0.25 * gamma**2 + omega_b**2) + 0.5 * gamma)
    rate = lam_b / omega_b * omega_a / (2.0 * math.pi) * math.exp(-barrier / temperature)
    if action is None:
        return rate
    action = _real("action", action, positive=True)
    return rate * melnikov_meshkov_A(gamma * action / temperature)


def weak_friction_rate(barrier, curvature_min, mass, friction, temperature, action):
    r"""Kramers' energy-diffusion rate at weak friction (F11)::

        k = gamma (S / T) (omega_a / 2 pi) exp(-barrier / T),   omega_a = sqrt(U''(a)/M)

    for the underdamped SDE of ``kramers_underdamped_rate``, valid for
    ``Delta = gamma S / T << 1``; ``S`` is the action at the barrier energy.
    """
    barrier = _real("barrier", barrier, positive=True)
    k_a, mass, gamma, temperature = _underdamped_checks(curvature_min, mass, friction,
                                                        temperature)
    action = _real("action", action, positive=True)
    omega_a = math.sqrt(k_a / mass)
    return gamma * action / temperature * omega_a / (2.0 * math.pi) * math.exp(
        -barrier / temperature
    )


def barrier_action(potential, minimum, saddle, mass):
    r"""Action ``S = oint M v dtheta`` of the orbit at the barrier energy (for F11, F12)::

        S = 2 int_{x_1}^{b} sqrt(2 M (U(b) - U(x))) dx

    ``b = saddle``; ``x_1`` is the turning point on the far side of ``minimum``
    (``U(x_1) = U(b)``), found by walking away from the saddle and Brent's method (a simple
    crossing is required; a second saddle at the same height, as in the pendulum, is not
    supported). The substitution ``x = x_1 + (b - x_1) t^2`` removes the square-root
    endpoint behaviour at ``x_1``, so composite Gauss–Legendre converges fast.
    """
    a = _real("minimum", minimum)
    b = _real("saddle", saddle)
    mass = _real("mass", mass, positive=True)
    if a == b:
        _fail("saddle", saddle, "different from minimum")
    u = _vectorize(potential, "potential")
    u_b = float(u(np.array([b]))[0])
    u_a = float(u(np.array([a]))[0])
    if not u_b > u_a:
        _fail("saddle", saddle, f"higher than the minimum (U(b) - U(a) = {u_b - u_a:.6g})")
    direction = 1.0 if a > b else -1.0  # away from the saddle
    step = abs(b - a) / 4.0
    x_prev = a
    for k in range(1, 81):
        x = a + direction * step * (2.0**k - 1.0)
        ux = float(u(np.array([x]))[0])
        if not np.isfinite(ux):
            raise ValueError(f"potential is not finite at x = {x!r}")
        if ux >= u_b:
            break
        x_prev = x
    else:
        raise ValueError("potential never climbs back to U(saddle) beyond the minimum")
    x1 = optimize.brentq(lambda t: float(u(np.array([t]))[0]) - u_b, x_prev, x,
                         xtol=1e-14 * (1.0 + abs(x)), rtol=4 * np.finfo(float).eps)
    length = b - x1  # signed
    panels = _Panels(np.linspace(0.0, 1.0, 33))
    t = panels.x
    x = x1 + length * t * t
    depth = np.maximum(u_b - u(x), 0.0)  # rounding near the ends can make it -1e-16
    integrand = np.sqrt(2.0 * mass * depth) * 2.0 * abs(length) * t
    return float(2.0 * np.sum((integrand @ _WEIGHTS) * panels.half))
