"""The exact mean exit time of overdamped Langevin dynamics in 1 to 3 dimensions, from the
backward (Dynkin) equation solved on a grid: the reference where Eyring–Kramers is only
asymptotic.

For ``dθ = −∇L dt + sqrt(2T) dW`` started at ``θ`` and stopped when it leaves the region
``Ω`` (``exit.outside`` false), the mean exit time ``τ(θ)`` solves

    T Δτ − ∇L·∇τ = −1 in Ω,   τ = 0 outside Ω,

written in the self-adjoint form ``T e^{L/T} ∇·(e^{−L/T} ∇τ) = −1``. A box
``[lower, upper]`` around the basin closes the domain with reflecting faces (no flux: put
them where ``e^{−L/T}`` is negligible). Finite volumes on a cell-centred grid, with the
flux between neighbours ``i, j`` weighted by ``e^{−(L_i + L_j)/(2T)}`` (exact for the
stationary density ``e^{−L/T}``, so detailed balance holds on the grid), give a sparse
linear system; cells outside ``Ω`` are absorbing. The error is second order in the
spacing away from the exit's boundary, which the grid resolves to a cell (first order
there; an exit far down the other side of a saddle, where ``τ`` is flat, does not feel
it). ``mfpt_grid`` solves at ``n`` and ``n/2`` cells per side and reports both, and
their Richardson extrapolation: their difference is the error estimate.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _checks


@dataclasses.dataclass(frozen=True)
class GridMFPT:
    """Result of :func:`mfpt_grid`.

    mean_time: ``τ(theta0)`` on the fine grid (``n`` cells per side).
    coarse: the same on ``n // 2`` cells per side.
    extrapolated: ``mean_time + (mean_time − coarse)/3`` (Richardson, second order).
    rel_error: ``|extrapolated − mean_time| / extrapolated``, the discretization error
        estimate of ``mean_time``.
    n, cells: cells per side, and cells inside the exit region (the unknowns).
    field: ``τ`` on the fine grid's cell centres (shape ``(n,)*d``; 0 outside the region).
    """

    mean_time: float
    coarse: float
    extrapolated: float
    rel_error: float
    n: int
    cells: int
    field: np.ndarray = dataclasses.field(repr=False)


def _solve(values, inside, h, temperature):
    """τ on the grid: the finite-volume system, solved by sparse LU."""
    from scipy import sparse
    from scipy.sparse import linalg as spla

    shape = values.shape
    idx = -np.ones(shape, np.int64)
    idx[inside] = np.arange(int(inside.sum()))
    rows, cols, vals = [], [], []
    diag = np.zeros(int(inside.sum()))
    for axis in range(len(shape)):
        for shift in (1, -1):
            # neighbour j of every cell i along ±axis, inside the box
            sl_i = [slice(None)] * len(shape)
            sl_j = [slice(None)] * len(shape)
            if shift == 1:
                sl_i[axis], sl_j[axis] = slice(0, -1), slice(1, None)
            else:
                sl_i[axis], sl_j[axis] = slice(1, None), slice(0, -1)
            vi, vj = values[tuple(sl_i)], values[tuple(sl_j)]
            ii, jj = idx[tuple(sl_i)], idx[tuple(sl_j)]
            ins_i = inside[tuple(sl_i)]
            w = np.exp(-(vj - vi) / (2 * temperature)) / h[axis] ** 2
            m = ins_i
            np.add.at(diag, ii[m], -w[m])
            both = m & (jj >= 0)
            rows.append(ii[both])
            cols.append(jj[both])
            vals.append(w[both])  # neighbours outside the region: τ = 0 there
    rows.append(np.arange(diag.size))
    cols.append(np.arange(diag.size))
    vals.append(diag)
    a = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                   np.concatenate(cols))),
                          shape=(diag.size, diag.size))
    tau_in = spla.spsolve(a, np.full(diag.size, -1.0 / temperature))
    tau = np.zeros(shape)
    tau[inside] = tau_in
    return tau


def _grid(lower, upper, n):
    h = (upper - lower) / n
    axes = [lower[k] + (np.arange(n) + 0.5) * h[k] for k in range(lower.size)]
    return axes, h


def _field(loss, exit, axes):
    import jax
    import jax.numpy as jnp

    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    dtype = jnp.result_type(float)
    f = jax.jit(jax.vmap(lambda th: (loss(th), exit.outside(th))))
    vals, out = [], []
    for start in range(0, mesh.shape[0], 1 << 16):
        v, o = f(jnp.asarray(mesh[start:start + (1 << 16)], dtype))
        vals.append(np.asarray(v, np.float64))
        out.append(np.asarray(o, bool))
    shape = tuple(a.size for a in axes)
    return np.concatenate(vals).reshape(shape), ~np.concatenate(out).reshape(shape)


def _at(tau, axes, theta0):
    from scipy.interpolate import RegularGridInterpolator

    interp = RegularGridInterpolator(axes, tau, bounds_error=False, fill_value=None)
    return float(interp(theta0[None])[0])


def mfpt_grid(loss, temperature, theta0, exit, lower, upper, *, n=None):
    """Exact mean exit time of overdamped Langevin ``dθ = −∇L dt + sqrt(2T) dW`` from
    ``theta0`` until the path leaves ``exit``'s region, for ``d`` = 1, 2 or 3, by solving
    the backward equation on a grid over the box ``[lower, upper]`` (reflecting faces;
    choose it so that ``L`` is many ``T`` above the basin on its faces). See the module
    doc for the scheme. ``n``: cells per side (default 4 000, 400, 60 for d = 1, 2, 3);
    the solve is repeated on ``n // 2`` for the error estimate.

    This is the reference for ``sd.escape`` with ``sd.models.Langevin(T)`` (and for
    ``sd.theory.predict``'s Eyring–Kramers time, which it approaches as ΔL/T grows).
    Returns a :class:`GridMFPT`.
    """
    from .. import exits as _exits

    t = _checks.real("temperature", temperature, positive=True)
    theta0 = np.asarray(theta0, np.float64).reshape(-1)
    d = theta0.size
    if d not in (1, 2, 3):
        raise ValueError(f"mfpt_grid: theta0 has {d} coordinates; the grid solver takes 1, "
                         f"2 or 3 (use sd.theory.predict or simulation above)")
    lower = np.broadcast_to(np.asarray(lower, np.float64), (d,)).copy()
    upper = np.broadcast_to(np.asarray(upper, np.float64), (d,)).copy()
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
            and np.all(upper > lower)):
        raise ValueError(f"mfpt_grid: the box needs finite lower < upper in every "
                         f"coordinate, got lower={lower.tolist()}, upper={upper.tolist()}")
    if not np.all((theta0 > lower) & (theta0 < upper)):
        raise ValueError(f"mfpt_grid: theta0 = {theta0.tolist()} is not inside the box "
                         f"[{lower.tolist()}, {upper.tolist()}]")
    n = {1: 4000, 2: 400, 3: 60}[d] if n is None else int(n)
    if n < 8:
        raise ValueError(f"mfpt_grid: n = {n} cells per side; need at least 8")
    ex = _exits.as_exit(exit)
    results = []
    for cells in (n, n // 2):
        axes, h = _grid(lower, upper, cells)
        values, inside = _field(loss, ex, axes)
        if not np.all(np.isfinite(values)):
            raise ValueError("mfpt_grid: the loss is not finite everywhere on the box; "
                             "shrink the box")
        if not inside.any():
            raise ValueError("mfpt_grid: no grid cell lies inside the exit region")
        if inside.all():
            raise ValueError("mfpt_grid: every grid cell lies inside the exit region, so "
                             "no path can leave within the box; enlarge the box past the "
                             "exit's boundary")
        tau = _solve(values, inside, h, t)
        results.append((_at(tau, axes, theta0), tau, int(inside.sum())))
    (fine, field, count), (coarse, _, _) = results
    extra = fine + (fine - coarse) / 3.0
    if not (math.isfinite(fine) and fine > 0):
        raise ValueError(f"mfpt_grid: the solve gave τ = {fine}; the grid does not resolve "
                         f"the problem (a finer n, a smaller box)")
    return GridMFPT(mean_time=fine, coarse=coarse, extrapolated=extra,
                    rel_error=abs(extra - fine) / abs(extra), n=n, cells=count, field=field)
