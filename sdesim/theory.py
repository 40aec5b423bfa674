"""Closed forms and exact quadratures for escape times: the oracle the simulations are held to.

Everything here is plain numpy/scipy on the host, in float64, deterministic (no random
numbers). Formula numbers (F1, F4, ...) refer to SPEC.md section 8.

Conventions
-----------
* Time is SDE time. For an optimizer with learning rate ``eta`` divide by ``eta`` to get
  iterations (SPEC section 1).
* Itô calculus throughout. The overdamped Langevin SDE is
  ``dX = -U'(X) dt + sqrt(2 T) dW`` (unit mobility, temperature ``T``); a general
  one-dimensional diffusion is ``dX = mu(X) dt + sqrt(v(X)) dW`` with ``D(x) = v(x)/2``.
* Curvatures are signed second derivatives: ``U''(a) > 0`` at a minimum ``a`` and
  ``U''(b) < 0`` at a saddle (barrier top) ``b``. Passing ``|U''(b)|`` is an error, so that a
  sign slip cannot go unnoticed.
* ``barrier`` is ``U(b) - U(a) > 0``.
* Asymptotic formulas (Kramers, Eyring–Kramers, Mel'nikov–Meshkov, Xie et al., Lévy) are
  leading-order estimates for small noise; the exact 1-D quadratures ``mfpt_1d`` and
  ``mfpt_1d_ito`` are what tests should compare simulations with at moderate barriers
  (at ``barrier/T = 5`` Kramers is still ~10% off).

Potentials, drifts and variances are callables of one real variable. They may be numpy
functions (vectorized or not) or JAX functions that accept a scalar or a shape-(1,) array,
such as ``lambda th: landscape(th)`` for a landscape taking ``theta`` of shape ``(1,)``; see
``_vectorize``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable

import numpy as np
from numpy.polynomial import legendre as _leg
from scipy import integrate, optimize, special

__all__ = [
    "mfpt_1d",
    "mfpt_1d_ito",
    "kramers_time",
    "kramers_kappa",
    "kramers_from_potential",
    "eyring_kramers_time",
    "kramers_underdamped_rate",
    "melnikov_meshkov_A",
    "weak_friction_rate",
    "barrier_action",
    "sgd_escape_time",
    "sgd_escape_exponent",
    "levy_exit_time",
    "levy_constant",
]

# ----------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------


def _fail(name, value, allowed):
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _real(name, value, *, positive=False, negative=False, finite=True, array=False):
    """Check a real number (or, with ``array=True``, an array of them); return float64."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number, got {value!r}") from err
    if not array and arr.ndim != 0:
        _fail(name, value, "a scalar")
    if np.any(np.isnan(arr)):
        _fail(name, value, "a number (not NaN)")
    if finite and not np.all(np.isfinite(arr)):
        _fail(name, value, "finite")
    if positive and not np.all(arr > 0):
        _fail(name, value, "> 0")
    if negative and not np.all(arr < 0):
        _fail(name, value, "< 0")
    return arr if array else float(arr)


def _choice(name, value, allowed):
    if value not in allowed:
        _fail(name, value, "one of " + ", ".join(repr(a) for a in allowed))
    return value


def _count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


# ----------------------------------------------------------------------------------------
# Callables -> vectorized float64 numpy functions
# ----------------------------------------------------------------------------------------


def _x64():
    """A context enabling float64 in JAX, or a no-op if JAX was never imported.

    A JAX function can only come from a caller who imported JAX, so a numpy-only user does
    not pay for importing it here.
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return contextlib.nullcontext()
    return jax.enable_x64(True)


def _vectorize(fn: Callable, name: str = "potential") -> Callable[[np.ndarray], np.ndarray]:
    """Return a float64 numpy function ``x (n,) -> fn(x) (n,)`` built from ``fn``.

    Tried in order, keeping the first that works on a probe array:

    1. ``fn`` is already numpy-vectorized: called on a float64 1-D array it returns an array
       of the same shape.
    2. ``fn`` is a JAX function of a scalar: ``jax.vmap`` over scalars.
    3. ``fn`` is a JAX function of a shape-(1,) array (a 1-D landscape ``theta -> L(theta)``):
       ``jax.vmap`` over shape-(1,) rows.
    4. ``fn`` is a scalar Python function (e.g. using ``math``): a loop over floats.

    Every call runs under ``jax.enable_x64`` so that a JAX function computes in float64:
    ``U/T`` with ``T`` small amplifies float32 rounding in ``U`` into percent-level errors.
    A function that returns a scalar for an array input (e.g. ``jnp.sum(theta**2)``) fails
    the shape check in step 1 and is treated as a function of one point, as intended.
    """
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {fn!r}")
    probe = np.array([0.25, 0.5, 0.75], dtype=np.float64)

    def as_f64(out, n):
        out = np.asarray(out, dtype=np.float64)
        if out.shape != (n,):
            raise ValueError(f"{name} returned shape {out.shape} for {n} points")
        return out

    def numpy_vectorized(x):
        with _x64():
            return as_f64(fn(x), x.shape[0])

    def jax_vmapped(x, rows):
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            xj = jnp.asarray(x, dtype=jnp.float64)
            out = jax.vmap(lambda s: jnp.reshape(fn(s), ()))(xj[:, None] if rows else xj)
            return as_f64(out, x.shape[0])

    def jax_scalar(x):
        return jax_vmapped(x, rows=False)

    def jax_row(x):
        return jax_vmapped(x, rows=True)

    def python_scalar(x):
        with _x64():
            return np.array([float(np.asarray(fn(float(xi))).reshape(())) for xi in x])

    candidates = [numpy_vectorized, jax_scalar, jax_row, python_scalar]

    errors = []
    for cand in candidates:
        try:
            cand(probe)
        except Exception as err:  # each convention fails in its own way; try the next one
            errors.append(f"{cand.__name__}: {type(err).__name__}: {err}")
            continue

        def vectorized(x, _cand=cand):
            x = np.asarray(x, dtype=np.float64)
            flat = x.reshape(-1)
            if flat.size == 0:
                return np.zeros(x.shape)
            return _cand(flat).reshape(x.shape)

        return vectorized
    raise TypeError(f"cannot evaluate {name} on real numbers: " + "; ".join(errors))


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


def _finish(values, scalar):
    return float(values.reshape(())) if scalar else values


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


# ----------------------------------------------------------------------------------------
# SGD diffusion (Xie et al. 2021), F14
# ----------------------------------------------------------------------------------------


def _sgd_checks(barrier, hess_min, lr, batch_size, hess_saddle, s):
    barrier = _real("barrier", barrier, positive=True)
    h_a = _real("hess_min", hess_min, positive=True)
    lr = _real("lr", lr, positive=True)
    batch_size = _real("batch_size", batch_size, positive=True)
    s = _real("s", s)
    if not 0.0 <= s <= 1.0:
        _fail("s", s, "in [0, 1]")
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
    prefactor, not the exponent (SPEC F14). ``hess_saddle`` (``H_b < 0``) is needed only
    for ``s < 1``.
    """
    exponent = sgd_escape_exponent(barrier, hess_min, lr, batch_size,
                                   hess_saddle=hess_saddle, s=s)
    return 2.0 * math.pi / float(hess_min) * math.exp(exponent)


# ----------------------------------------------------------------------------------------
# Lévy-driven escape (Imkeller–Pavlyukevich 2006), F20
# ----------------------------------------------------------------------------------------


def levy_constant(alpha):
    r"""``c_alpha = Gamma(1 + alpha) sin(pi alpha / 2) / pi`` (SPEC section 2).

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
    e = _real("epsilon", epsilon, finite=True)
    if e < 0:
        _fail("epsilon", epsilon, ">= 0")
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


__all__ += ["levy_jump_rate", "levy_escaping_measure", "levy_exit_time_nd",
            "adam_levy_preconditioner", "levy_sgd_vs_adam"]


# ---------------------------------------------------------------------------------------
# Optimizer SDEs in phase space: mass, friction, temperature (F15-F18) [Adai §3-5]
# ---------------------------------------------------------------------------------------

_OPTIMIZERS = ("sgd", "momentum", "adam", "adai")


def optimizer_dynamics(optimizer, lr, noise_var, *, beta1=0.9, beta3=None, vhat=None,
                       eps=None):
    """Mass ``M``, friction rate ``γ`` and temperature ``T`` of an optimizer's SDE
    (SPEC §3 items 2, 5-7), per coordinate, for gradient-noise variance ``C = noise_var``
    (per iteration; ``C ≈ H/B`` near a minimum).

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
    c = _real("noise_var", noise_var, array=True)
    if np.any(c < 0):
        _fail("noise_var", noise_var, ">= 0")
    b1 = _real("beta1", beta1, array=True)
    if np.any((b1 < 0) | (b1 >= 1)):
        _fail("beta1", beta1, "in [0, 1)")
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


__all__ += ["optimizer_dynamics", "escape_exponent", "momentum_escape_time"]
