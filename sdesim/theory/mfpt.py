"""Exact mean first-passage times of 1-D diffusions (F4, F5, F7) by panel quadrature in
log space: ``mfpt_1d`` (overdamped Langevin) and ``mfpt_1d_ito`` (any Itô drift and
variance). The panel machinery (``_Panels``, spectral running integrals) is also used by
``underdamped.barrier_action``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import legendre as _leg
from scipy import optimize

from ._common import _choice, _count, _fail, _finish, _real, _vectorize

__all__ = ["mfpt_1d", "mfpt_1d_ito"]


# ----------------------------------------------------------------------------------------
# Panel quadrature in log space (the engine behind F4, F5, F7)
# ----------------------------------------------------------------------------------------

# Composite Gauss–Legendre: each panel carries _P nodes. Inside a panel, integrals from the
# panel's left end to a node use the spectral integration matrix of the Lagrange
# interpolant, so running (cumulative) integrals are as accurate as the panel rule itself
# (error ~ (h/2)^(2P) times a derivative), not O(h^2) like a cumulative trapezoid.
_P = 8
_NODES, _WEIGHTS = _leg.leggauss(_P)


def _spectral_integration_matrix(t):
    """``S[i, j] = int_{-1}^{t_i} l_j(s) ds`` for the Lagrange basis ``l_j`` on nodes ``t``."""
    n = len(t)
    vander = _leg.legvander(t, n)  # P_0 .. P_n at the nodes
    # int_{-1}^{x} P_k = (P_{k+1}(x) - P_{k-1}(x)) / (2k + 1) for k >= 1; and x + 1 for k = 0.
    q = np.empty((n, n))
    q[:, 0] = t + 1.0
    for k in range(1, n):
        q[:, k] = (vander[:, k + 1] - vander[:, k - 1]) / (2 * k + 1)
    return q @ np.linalg.inv(vander[:, :n])


_S_FWD = _spectral_integration_matrix(_NODES)
# By the symmetry t -> -t of the nodes, int_{t_i}^{1} l_j = S[P-1-i, P-1-j].
_S_REV = _S_FWD[::-1, ::-1].copy()


class _Panels:
    """Panels between sorted ``edges``; ``x`` are the (n_panels, _P) quadrature nodes."""

    def __init__(self, edges):
        self.edges = edges
        self.half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        self.x = mid[:, None] + self.half[:, None] * _NODES[None, :]


def _log_panel_parts(logf, panels, matrix):
    """Log of within-panel partial integrals (at nodes, via ``matrix``) and panel totals."""
    top = np.max(logf, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # all -inf: integrand vanishes on the panel
    f = np.exp(logf - top)  # <= 1: no overflow whatever the scale of the integrand
    part = (f @ matrix.T) * panels.half[:, None]
    total = (f @ _WEIGHTS) * panels.half
    with np.errstate(divide="ignore"):
        # A partial integral is positive; rounding can make a vanishing one <= 0: it is 0.
        log_part = np.where(part > 0, np.log(np.where(part > 0, part, 1.0)), -np.inf) + top
        log_total = np.where(total > 0, np.log(np.where(total > 0, total, 1.0)), -np.inf)
    return log_part, log_total + top[:, 0]


def _log_cumulative(logf, panels, reverse=False):
    """Running integrals of ``f = exp(logf)`` in log space.

    Returns ``(at_nodes, at_edges)``: ``log int_{lo}^{x} f`` (or ``log int_{x}^{hi} f`` with
    ``reverse=True``) at every node ``(n_panels, _P)`` and every edge ``(n_panels + 1,)``.
    """
    log_part, log_total = _log_panel_parts(logf, panels, _S_REV if reverse else _S_FWD)
    start = np.array([-np.inf])
    if not reverse:
        at_edges = np.logaddexp.accumulate(np.concatenate([start, log_total]))
        at_nodes = np.logaddexp(at_edges[:-1, None], log_part)
    else:
        at_edges = np.logaddexp.accumulate(np.concatenate([start, log_total[::-1]]))[::-1]
        at_nodes = np.logaddexp(at_edges[1:, None], log_part)
    return at_nodes, at_edges


def _cumulative(f, panels):
    """Plain (signed) running integral ``int_{lo}^{x} f`` at nodes and edges."""
    part = (f @ _S_FWD.T) * panels.half[:, None]
    total = (f @ _WEIGHTS) * panels.half
    at_edges = np.concatenate([[0.0], np.cumsum(total)])
    return at_edges[:-1, None] + part, at_edges


def _equidistributed_edges(x, log_s, log_m, n_panels):
    """Panel edges that give every panel an equal share of the variation of log s, log m.

    The integrands are exponentials of ``log s`` and ``log m``; a panel over which they
    change by O(1) is resolved to near machine precision by 8 Gauss nodes. A quarter of the
    panels are spread uniformly so that flat stretches are not left with one huge panel.
    """
    variation = 0.5 * (np.abs(np.diff(log_s)) + np.abs(np.diff(log_m)))
    cum = np.concatenate([[0.0], np.cumsum(variation)])
    uniform = (x - x[0]) / (x[-1] - x[0])
    if cum[-1] > 0:
        measure = 0.75 * cum / cum[-1] + 0.25 * uniform
        # Keep the change per panel below ~2 even for steep walls (a start point far up a
        # wall), at the cost of more panels; capped so a pathological input stays bounded.
        n_panels = int(min(max(n_panels, np.ceil(cum[-1] / (0.75 * 2.0))), 100 * n_panels))
    else:
        measure = uniform
    edges = np.interp(np.linspace(0.0, 1.0, n_panels + 1), measure, x)
    edges[0], edges[-1] = x[0], x[-1]
    return edges


# Where the inner integrand m is below its maximum by this much (in log), it is dropped:
# e^-50 ~ 2e-22, far below float64 resolution of the integral.
_TRUNCATION_LOG_MARGIN = 50.0


def _truncate_left(log_m_at, x_left, what):
    """Find ``L <= x_left`` where ``log m`` has fallen ``_TRUNCATION_LOG_MARGIN`` below its max.

    ``log_m_at(z)`` evaluates ``log m`` (up to a common constant) at an array of points.
    The inner integral ``M(y) = int_L^y m`` is needed only for ``y >= x_left`` (the leftmost
    start point), so its relative error from the cut is at most
    ``int_{-inf}^L m / int_L^{x_left} m``; the cut is placed where ``log m`` is
    ``_TRUNCATION_LOG_MARGIN`` below its maximum over ``[L, x_left]``. Measuring from the
    maximum over ``[x_left, c]`` instead would be wrong for a start point high on a wall,
    where ``M(x0)`` is itself tiny and its relative accuracy sets the descent time.

    Walks left from ``x_left`` with doubling steps, then refines the crossing with Brent's
    method. Raises ValueError if nothing is found within 2^80 steps (the process is not
    confined on the left, e.g. a potential that does not grow).
    """
    step = 1e-2 * (1.0 + abs(x_left))
    z_prev = x_left
    running_max = float(log_m_at(np.array([x_left]))[0])
    for k in range(1, 81):
        z = x_left - step * (2.0**k - 1.0)
        val = float(log_m_at(np.array([z]))[0])
        if np.isnan(val):
            raise ValueError(f"{what} is not finite at x = {z!r}")
        level = running_max - _TRUNCATION_LOG_MARGIN
        if val < level:

            def g(t, level=level):
                return float(log_m_at(np.array([t]))[0]) - level

            # g(z_prev) >= 0 by construction (z_prev did not stop the walk).
            return optimize.brentq(g, z, z_prev, xtol=1e-3 * (z_prev - z), rtol=1e-6)
        running_max = max(running_max, val)
        z_prev = z
    raise ValueError(
        f"{what}: the process is not confined on the far side of the absorbing point "
        f"(e^(-U/T) does not decay); pass a finite `lower` boundary"
    )


def _orient(x0, c, lower):
    """Decide the exit direction; return (sign, x0, c, lower) mapped so that c is on the right.

    The process lives between ``lower`` and ``c``. A left exit (``c < x0``) is handled by the
    mirror map ``x -> -x``. With ``lower = -inf`` (the default) and every start point to the
    right of ``c``, ``lower`` is read as ``+inf``: the process is confined on the right.
    """
    if np.isfinite(lower):
        if lower == c:
            _fail("lower", lower, "different from c")
        sign = 1.0 if lower < c else -1.0
    elif np.all(x0 == c):
        sign = 1.0 if lower < 0 else -1.0
    elif np.all(x0 <= c):
        sign = 1.0
    elif np.all(x0 >= c):
        sign = -1.0
    else:
        _fail("x0", x0, "all on the same side of c (the process lives between lower and c)")
    if sign < 0:
        x0, c = -x0, -c
        lower = -lower if np.isfinite(lower) else -np.inf
    elif not np.isfinite(lower) and lower > 0:
        _fail("lower", lower, "-inf or finite when x0 <= c (+inf is the far side for x0 > c)")
    bad = (x0 > c) | (x0 < lower)
    if np.any(bad):
        first = float(x0[bad][0] * sign)
        _fail("x0", first, "between lower and c")
    return sign, x0, c, lower


def _mfpt_from_log_densities(sm, x0, c, lo, lower_bc, n_grid, return_log, breaks):
    """MFPT by the scale/speed formulas on the interval ``[lo, c]`` (``c`` absorbing).

    ``sm(panels) -> (log s, log m)`` gives the log scale and log speed densities at the
    nodes ``panels.x`` (up to constants that cancel); it receives the whole panel layout
    because ``log s`` may itself be a running integral along it (F7). ``x0`` is a 1-D array
    of start points in ``[lo, c]``; returns ``tau`` (or ``log tau``) at each of them.
    """
    # Probe on a fine uniform grid to place the panels where the integrands vary.
    probe = _Panels(np.linspace(lo, c, 2 * n_grid + 1))
    log_s, log_m = (a.reshape(-1) for a in sm(probe))
    # The nodes are interior and sorted; pad with the end points (nearest-node values).
    edges = _equidistributed_edges(
        np.concatenate([[lo], probe.x.reshape(-1), [c]]),
        np.concatenate([log_s[:1], log_s, log_s[-1:]]),
        np.concatenate([log_m[:1], log_m, log_m[-1:]]),
        n_grid,
    )
    # Start points become panel edges, so tau(x0) is a sum over whole panels; so do the
    # user's breakpoints (kinks or jumps of the coefficients), which would otherwise cost
    # the Gauss rule its accuracy on the panel that contains them.
    breaks = breaks[(breaks > lo) & (breaks < c)]
    edges = np.unique(np.concatenate([edges, x0.reshape(-1), breaks]))
    panels = _Panels(edges)
    log_s, log_m = sm(panels)
    idx = np.searchsorted(edges, x0)

    if lower_bc == "reflecting":
        # F4/F7: tau(x) = int_x^c s(y) int_lo^y m(z) dz dy.
        log_inner, _ = _log_cumulative(log_m, panels)
        _, log_tau_edges = _log_cumulative(log_s + log_inner, panels, reverse=True)
        log_tau = log_tau_edges[idx]
    else:
        # F5: both ends absorbing. With A(x) = int_lo^x s and B(x) = int_x^c s,
        #   tau(x) = [B(x) int_lo^x A m + A(x) int_x^c B m] / (A + B)
        # (the Green's function of the generator). Every term is positive: no cancellation,
        # unlike tau_refl(x) - tau_refl(lo) * P(reach c first), which loses all digits when
        # escape through `lower` is much faster than through c.
        log_a_nodes, log_a_edges = _log_cumulative(log_s, panels)
        log_b_nodes, log_b_edges = _log_cumulative(log_s, panels, reverse=True)
        _, log_p = _log_cumulative(log_a_nodes + log_m, panels)
        _, log_q = _log_cumulative(log_b_nodes + log_m, panels, reverse=True)
        log_tau = (
            np.logaddexp(log_b_edges[idx] + log_p[idx], log_a_edges[idx] + log_q[idx])
            - log_a_edges[-1]
        )
        # Both ends absorb: tau is exactly 0 there (the formula gives it up to rounding).
        log_tau = np.where(x0 == lo, -np.inf, log_tau)
    log_tau = np.where(x0 == c, -np.inf, log_tau)
    if return_log:
        return log_tau
    with np.errstate(over="ignore"):
        return np.exp(log_tau)


def _check_lower(lower, lower_bc):
    lower = _real("lower", lower, finite=False)
    _choice("lower_bc", lower_bc, ("reflecting", "absorbing"))
    if lower_bc == "absorbing" and not np.isfinite(lower):
        _fail("lower", lower, "finite when lower_bc='absorbing' (F5 needs two absorbing ends)")
    return lower


def _require_finite(name, x, values):
    bad = ~np.isfinite(values)
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))[0]
        raise ValueError(
            f"{name} must be finite on the integration range; "
            f"{name}({x.reshape(-1)[i]!r}) = {values.reshape(-1)[i]!r}"
        )


def mfpt_1d(
    potential,
    x0,
    c,
    temperature,
    lower=-np.inf,
    *,
    lower_bc="reflecting",
    n_grid=400,
    log=False,
    breakpoints=(),
):
    r"""Exact mean first-passage time of 1-D overdamped Langevin dynamics (F4, F5).

    SDE (Itô, SDE time): ``dX = -U'(X) dt + sqrt(2 T) dW``, ``X_0 = x0``, stopped at the
    first time ``X`` reaches ``c``.

    (F4) With ``lower`` reflecting (``lower = -inf`` means no boundary; the potential must
    then confine the process)::

        tau(x0) = (1/T) int_{x0}^{c} e^{U(y)/T} int_{lower}^{y} e^{-U(z)/T} dz dy.

    (F5) ``lower_bc="absorbing"`` stops the process at ``lower`` too (``lower`` finite):
    ``tau`` is the mean time to hit either end, from the Green's function of the generator
    (see ``mfpt_1d_ito``).

    Direction: the process lives between ``lower`` and ``c``. ``c > x0`` is the native case;
    ``c < x0`` (exit to the left) is computed by the mirror map ``x -> -x``. With the default
    ``lower = -inf`` and ``x0 > c`` the confining side is taken to be ``+inf``.

    Numerics: composite 8-point Gauss–Legendre panels, placed so that every panel carries an
    equal share of the variation of ``U/T``, with running integrals done in log space
    (log-sum-exp), so nothing overflows for any barrier; ``exp(40)`` is returned as a plain
    float and ``log=True`` returns ``log tau`` when even that would overflow. With an
    infinite ``lower`` the range is cut where ``U/T`` exceeds its minimum by 50 (found by
    walking outwards; ValueError if it never does). Relative accuracy ~1e-10 for smooth
    potentials at the default ``n_grid``.

    Args:
      potential: callable ``U(x)`` (numpy-vectorized, scalar, or JAX; see ``_vectorize``).
      x0: start point(s), scalar or array; all on the same side of ``c``.
      c: absorbing point.
      temperature: ``T > 0``.
      lower: the other end of the interval; ``-inf`` (default) for none.
      lower_bc: ``"reflecting"`` (F4) or ``"absorbing"`` (F5).
      n_grid: number of quadrature panels (8 Gauss nodes each); more are added where the
        potential is steep.
      log: return ``log tau`` instead of ``tau``.
      breakpoints: points where the potential is not smooth (a kink); they become panel
        edges. Without them a kink costs accuracy (error ~ panel width).

    Returns:
      float (scalar ``x0``) or float64 array shaped like ``x0``; 0 where ``x0 == c``.
    """
    x0_arr = _real("x0", x0, array=True)
    scalar = x0_arr.ndim == 0
    c = _real("c", c)
    temperature = _real("temperature", temperature, positive=True)
    lower = _check_lower(lower, lower_bc)
    n_grid = _count("n_grid", n_grid, 4)
    u_raw = _vectorize(potential, "potential")

    sign, xs, c_, lo = _orient(x0_arr.reshape(-1), c, lower)

    def u(x):
        vals = u_raw(sign * np.asarray(x))
        _require_finite("potential", sign * np.asarray(x), vals)
        return vals / temperature

    if not np.isfinite(lo):
        lo = _truncate_left(lambda z: -u(z), float(np.min(xs)), "potential")

    def sm(panels):
        uu = u(panels.x)
        return uu, -uu - math.log(temperature)

    breaks = sign * _real("breakpoints", breakpoints, array=True).reshape(-1)
    out = _mfpt_from_log_densities(sm, xs, c_, lo, lower_bc, n_grid, log, breaks)
    return _finish(out.reshape(x0_arr.shape), scalar)


def mfpt_1d_ito(
    drift,
    variance,
    x0,
    c,
    lower=-np.inf,
    *,
    lower_bc="reflecting",
    n_grid=400,
    log=False,
    breakpoints=(),
):
    r"""Exact mean first-passage time of a general 1-D Itô diffusion (F7).

    SDE: ``dX = mu(X) dt + sqrt(v(X)) dW`` (``mu = drift``, ``v = variance``,
    ``D = v/2``), stopped when ``X`` reaches ``c``. With the scale density
    ``s(x) = exp(-int^x 2 mu/v)`` and the speed density ``m(x) = 2/(v(x) s(x))``:

    * reflecting at ``lower`` (F7)::

          tau(x0) = int_{x0}^{c} s(y) int_{lower}^{y} m(z) dz dy;

    * both ends absorbing (F5 in general form), with ``A(x) = int_{lower}^{x} s``,
      ``B(x) = int_{x}^{c} s``::

          tau(x0) = [B(x0) int_{lower}^{x0} A m + A(x0) int_{x0}^{c} B m] / (A(x0) + B(x0)).

    With ``mu = -U'`` and ``v = 2T`` this is ``mfpt_1d`` (``s = e^{U/T}``,
    ``m = e^{-U/T}/T``). Brownian motion ``dX = sqrt(v) dW`` on ``(0, c)`` gives
    ``tau = x(c-x)/v`` (both absorbing) and ``(c^2 - x^2)/v`` (reflecting at 0).

    ``log s`` is the running integral of ``-2 mu/v`` on the same panels (spectral
    accuracy); everything else is as in ``mfpt_1d`` (log space, automatic truncation of an
    infinite ``lower``, mirror map for ``c < x0``). Note the prefactor of an escape time
    depends on the calculus convention of the state-dependent noise: this is the Itô one.

    Args:
      drift: callable ``mu(x)``; variance: callable ``v(x) > 0`` (numpy or JAX).
      x0, c, lower, lower_bc, n_grid, log: as in ``mfpt_1d``.
      breakpoints: points where ``mu`` or ``v`` jump or have kinks; they become panel edges.
        A jump inside a panel would put an O(panel width) error into ``log s`` and hence
        into ``tau`` (a percent-level error for steep coefficients).

    Raises:
      ValueError: if ``variance <= 0`` (or either callable is not finite) somewhere on the
        integration range; the message names the point.
    """
    x0_arr = _real("x0", x0, array=True)
    scalar = x0_arr.ndim == 0
    c = _real("c", c)
    lower = _check_lower(lower, lower_bc)
    n_grid = _count("n_grid", n_grid, 4)
    mu_raw = _vectorize(drift, "drift")
    var_raw = _vectorize(variance, "variance")

    sign, xs, c_, lo = _orient(x0_arr.reshape(-1), c, lower)

    def ratio_and_var(x):
        """``2 mu/v`` and ``v`` in the oriented coordinate (mirror: mu -> -mu)."""
        x = np.asarray(x, dtype=np.float64)
        mu = sign * mu_raw(sign * x)
        v = var_raw(sign * x)
        _require_finite("drift", sign * x, mu)
        _require_finite("variance", sign * x, v)
        bad = ~(v > 0)
        if np.any(bad):
            i = np.flatnonzero(bad.reshape(-1))[0]
            raise ValueError(
                "variance must be > 0 on the integration range; "
                f"variance({sign * x.reshape(-1)[i]!r}) = {v.reshape(-1)[i]!r}"
            )
        return 2.0 * mu / v, v

    if not np.isfinite(lo):
        # log m(z) - log m(c) = int_z^c 2 mu/v + log v(c) - log v(z); the walk needs it only
        # roughly (to decide where m is negligible), so one 64-node Gauss rule per point.
        t64, w64 = _leg.leggauss(64)

        def log_m_rel(z):
            z = np.asarray(z, dtype=np.float64)
            half = 0.5 * (c_ - z)
            nodes = 0.5 * (c_ + z)[:, None] + half[:, None] * t64[None, :]
            r, _ = ratio_and_var(nodes)
            _, v = ratio_and_var(z)
            return -half * (r @ w64) - np.log(v)

        lo = _truncate_left(log_m_rel, float(np.min(xs)), "drift/variance")

    def sm(panels):
        r, v = ratio_and_var(panels.x)
        phi_nodes, _ = _cumulative(-r, panels)  # log s, up to a constant that cancels
        return phi_nodes, math.log(2.0) - np.log(v) - phi_nodes

    breaks = sign * _real("breakpoints", breakpoints, array=True).reshape(-1)
    out = _mfpt_from_log_densities(sm, xs, c_, lo, lower_bc, n_grid, log, breaks)
    return _finish(out.reshape(x0_arr.shape), scalar)
