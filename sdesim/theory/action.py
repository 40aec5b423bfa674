"""The least action of an escape in all coordinates.

``least_action(model, loss, path)`` is the Freidlin–Wentzell quasi-potential at the saddle:
the least ``½∫ rᵀ Σ⁻¹ r dt`` over paths from the minimum to the saddle, ``Σ`` the noise's
covariance rate and ``r`` the part of the motion the noise must supply. For an inertial
model ``dθ = v dt``, ``M dv = (F(θ) − Γv) dt + Σ(θ)^{1/2} dW``, ``r = Mθ̈ + Γθ̇ − F`` and the
path runs from rest to rest; for an overdamped one ``dθ = f(θ) dt + G(θ) dW``, ``r = θ̇ − f``
and ``Σ = GGᵀ``. ``τ ≍ e^Φ`` as the noise → 0 with its shape fixed. ``path_exponent``
restricts the motion to the minimum-energy path; here it is free, so the noise of every
direction may feed the escape (an inertial particle that carries energy from a stiff, noisy
direction into the escape direction escapes faster than any path-restricted estimate says).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

ACTION_DT = 0.02  # the action's step, × the fastest linearized rate along the relaxation
ACTION_MAX_UNKNOWNS = 2_000_000  # steps × d
ACTION_ITERATIONS = 2000  # Gauss–Newton / Levenberg–Marquardt steps
BATCH = 512  # points per block of the terms' evaluation
COARSE_STEPS = 4000  # the coarsest grid's steps (coarse to fine; more: one grid)
COARSE_SETTLE = 1e-4  # a coarse grid's path is settled when 50 steps gain less


class LeastAction(NamedTuple):
    """``action`` (Φ), the path of least action ``theta`` (n+1, d) at ``times``, whether
    Levenberg–Marquardt ``converged``, its ``iterations`` (on the finest grid) and the
    action of the path it started from there (the time-reversed relaxation out of the
    saddle, or a coarser grid's path)."""

    action: float
    times: np.ndarray
    theta: np.ndarray
    converged: bool
    iterations: int
    start_action: float


def _point(x):
    return jnp.asarray(x, jnp.result_type(float))


def inertial_terms(model, loss, x_min, ema="frozen"):
    """``at(θ) -> (F, M, Γ, Σ)`` of a phase-space model at rest at ``θ``: force, mass and
    friction force per coordinate, the noise force's covariance rate ``(d, d)``. Adam's and
    Adai's second-moment EMA: settled at the minimum and frozen (``ema="frozen"``) or
    settled at each ``θ`` (``"instant"``, ``v̂ = g² + diag C``)."""
    from .. import model as _model
    from .. import models as M

    if isinstance(model, M.Underdamped):
        def at(y):
            mass, fric, sig = model._coeffs(y.dtype)
            one = jnp.ones_like(y)
            return (-jax.grad(loss)(y), mass * one, fric * mass * one,
                    (mass * sig) ** 2 * jnp.eye(y.size, dtype=y.dtype))
        return at
    st0 = model.init(_point(x_min))
    settled = None
    if hasattr(st0, "v2"):  # t = 0, h = ∞: the EMA's value at the minimum (v2 = g²)
        settled = model.terms(st0, 0.0, jnp.inf, loss).aux.v2

    def at(y):
        st = model.init(y)
        if settled is not None:  # t = 0, h = ∞ at y: v2 = g²(y)
            st = st._replace(v2=settled if ema == "frozen"
                             else model.terms(st, 0.0, jnp.inf, loss).aux.v2)
        # t = ∞: no bias correction; h = 0: the EMA does not move
        terms = model.terms(st, jnp.inf, 0.0, loss)
        if not isinstance(terms, _model.Inertial):
            raise TypeError(f"{type(model).__name__}.terms is not Inertial (a phase-space "
                            "model's mass, friction and noise force)")
        f = terms.factor
        if f is None:
            f = jnp.eye(y.size, dtype=y.dtype)
        elif f.ndim == 1:
            f = jnp.diag(f)
        if terms.scale is not None:
            f = f * terms.scale
        return (terms.force, jnp.broadcast_to(terms.mass, y.shape),
                jnp.broadcast_to(terms.friction, y.shape), f @ f.T)

    return at


def overdamped_terms(model, loss):
    """``at(θ) -> (f, 0, 1, Σ)`` of an overdamped model ``dθ = f dt + G dW`` as diffrax runs
    it (``model.vector_field``, as ``path_exponent`` reads it): the drift, no mass, unit
    friction (the residual ``θ̇ − f``) and ``Σ = GGᵀ`` (d, d)."""
    drift, diffusion = model.vector_field(loss)

    def at(y):
        zero = jnp.zeros((), y.dtype)
        g = diffusion(zero, y, None)
        return drift(zero, y, None), jnp.zeros_like(y), jnp.ones_like(y), g @ g.T

    return at


def _endpoints(loss, path):
    """The minimum (the path's first point) and the saddle (the Path's refined one, or its
    highest image refined by Newton), both checked."""
    from .. import critical

    images = np.asarray(getattr(path, "images", path), np.float64)
    if images.ndim != 2 or images.shape[0] < 2 or not np.all(np.isfinite(images)):
        raise ValueError(f"path must be a Path or finite images of shape (n >= 2, d), got "
                         f"shape {images.shape}")
    x_min = np.asarray(critical.newton(loss, _point(images[0])), np.float64)
    saddle = getattr(path, "saddle", None)
    if saddle is None:
        energy = np.asarray(jax.vmap(loss)(_point(images)), np.float64)
        saddle = critical.newton(loss, _point(images[int(np.argmax(energy))]))
    saddle = np.asarray(saddle, np.float64)
    if not np.all(np.isfinite(saddle)) or critical.morse_index(loss, saddle) != 1:
        raise ValueError("least_action: the path's highest point does not refine to an "
                         "index-1 saddle (pass a sdesim.critical.Path with its saddle)")
    lowest = critical.lowest_modes(loss, x_min)[0][0]
    if np.linalg.norm(x_min - images[0]) > 1e-2 * np.linalg.norm(saddle - images[0]) \
            or lowest <= 0 or critical.morse_index(loss, x_min) != 0:
        raise ValueError("least_action: the path's first point is not (near) a minimum: a "
                         "phase-space escape starts at rest in the minimum")
    if np.linalg.norm(saddle - x_min) == 0:
        raise ValueError("least_action: the saddle is the minimum")
    return x_min, saddle, critical.lowest_modes(loss, saddle)[1][0]


def _relaxation(at, loss, x_min, saddle, u, order):
    """The deterministic motion from (just below) the saddle (at rest, ``order`` 2) to the
    minimum (diffrax: Tsit5, or Kvaerno5 where that fails), as a dense solution, and its
    duration."""
    import diffrax

    d = x_min.size
    lo = float(loss(_point(x_min)))
    barrier = float(loss(_point(saddle))) - lo
    scale = float(np.linalg.norm(saddle - x_min))
    # where the loss's rounding stops the energy from settling further (float32: ~1e-7|L|)
    tol = max(1e-6 * barrier, 8 * float(jnp.finfo(jnp.result_type(float)).eps) * abs(lo))

    def field(t, z, args):
        y, v = z[:d], z[d:]
        force, mass, fric, _ = at(y)
        if order == 1:  # Q θ̇ = f
            return force / fric
        return jnp.concatenate([v, (force - fric * v) / mass])

    def energy(t, z, args, **kwargs):
        y, v = z[:d], z[d:]
        kinetic = 0.0 if order == 1 else 0.5 * jnp.sum(at(y)[1] * v * v)
        return kinetic + loss(y) - lo - tol

    z0 = saddle + 1e-3 * scale * u
    z0 = _point(z0 if order == 1 else np.concatenate([z0, np.zeros(d)]))
    rtol = max(1e-8, 30 * float(jnp.finfo(z0.dtype).eps))  # a guess: float32's is fine
    # explicit first; implicit where that fails (stiff). Kvaerno5 alone stalled in float32
    # on Müller–Brown with Adai (its step shrank to nothing at t ≈ 2; Tsit5: 3 463 steps)
    for solver in (diffrax.Tsit5(), diffrax.Kvaerno5()):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), solver, 0.0, 1e9, None, z0,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * scale),
            event=diffrax.Event(energy), saveat=diffrax.SaveAt(t1=True, dense=True),
            max_steps=200_000, throw=False)
        if sol.result == diffrax.RESULTS.event_occurred:
            break
    if sol.result != diffrax.RESULTS.event_occurred:
        raise ValueError(f"least_action: the relaxation out of the saddle did not settle in "
                         f"the minimum ({sol.result})")
    return sol, float(sol.ts[-1])


def _step(at, loss, sol, t_relax, d, order):
    """``dt`` = ``ACTION_DT`` / the fastest linearized rate along the relaxation (the slow
    root where overdamped) and, with inertia, at most half the shortest period
    ``sqrt(m/|k|)``/2."""
    ts = jnp.linspace(0.0, t_relax, 256)
    ys = jax.vmap(sol.evaluate)(ts)[:, :d]

    def rates(y):
        _, mass, fric, _ = at(y)
        if order == 1:  # Q θ̇ = −Hθ: the rates of Q^{-1/2} H Q^{-1/2}
            s = 1 / jnp.sqrt(fric)
            lam = jnp.abs(jnp.linalg.eigvalsh(s[:, None] * jax.hessian(loss)(y) * s[None, :]))
            return jnp.max(lam), jnp.zeros((), y.dtype)
        s = 1 / jnp.sqrt(mass)
        lam = jnp.abs(jnp.linalg.eigvalsh(s[:, None] * jax.hessian(loss)(y) * s[None, :]))
        g = jnp.min(fric / mass)
        disc = g * g - 4 * lam
        r = jnp.where(disc < 0, jnp.sqrt(lam),
                      2 * lam / (g + jnp.sqrt(jnp.maximum(disc, 0.0))))
        return jnp.max(r), jnp.sqrt(jnp.max(lam))

    rate, omega = (float(jnp.max(a)) for a in jax.vmap(rates)(ys))
    return ACTION_DT / rate if order == 1 else min(ACTION_DT / rate, 0.5 / omega)


def banded_levenberg_marquardt(y, residual, system, apply, iterations, settle=1e-6):
    """Levenberg–Marquardt on ``½|ρ(y)|²`` with banded normal equations.

    ``residual(y, jac=False)`` gives ``ρ`` (or ``(ρ, J's pieces)`` with ``jac=True``);
    ``system(y, ρ, jac, lam, history)`` the damped matrix in ``solveh_banded``'s upper form
    and ``Jᵀρ``; ``apply(y, step)`` the trial point. Settled when a (nearly) undamped step
    no longer lowers the action by 1e-9, or when 50 steps lowered it by less than
    ``settle`` (relative; Gauss–Newton's slow tail where the residual is not small).
    Returns ``(y, action, settled, steps, starting action)``."""
    from scipy import linalg

    rho, jac = residual(y, jac=True)
    action = start = 0.5 * float(np.sum(rho ** 2))
    lam, converged, history = 1e-6, False, []
    for _ in range(iterations):
        history.append(action)
        if len(history) > 50 and history[-51] - action <= settle * action:
            converged = True
            break
        damped, grad = system(y, rho, jac, lam, history)
        try:
            step = linalg.solveh_banded(damped, -grad)
        except linalg.LinAlgError:
            lam *= 10
            if lam > 1e12:
                break
            continue
        trial = apply(y, step)
        r_trial = residual(trial)
        a_trial = 0.5 * float(np.sum(r_trial ** 2))
        if np.isfinite(a_trial) and a_trial <= action:
            converged = action - a_trial <= 1e-9 * action and lam <= 1e-3
            y, action = trial, a_trial
            rho, jac = residual(y, jac=True)
            lam = max(lam / 10, 1e-12)
            if converged:
                break
        else:
            lam *= 10
            if lam > 1e12:
                break
    return y, action, converged, len(history), start


def least_action(model, loss, path, *, ema: str = "frozen", span: float = 1.5,
                 iterations: int = ACTION_ITERATIONS, dt: float | None = None,
                 start: LeastAction | None = None) -> LeastAction:
    """The least action of a model's escape over a saddle, in all coordinates (the
    Freidlin–Wentzell quasi-potential of its dynamics there).

    **Phase-space models** ``dθ = v dt``, ``M dv = (F − Γv) dt + Σ^{1/2} dW`` (the model's
    ``terms``: force, mass and friction force per coordinate, the noise force's covariance
    ``Σ(θ)``): ``Φ = min ½∫ rᵀΣ⁻¹r dt`` with ``r = Mθ̈ + Γθ̇ − F`` over paths from rest at
    the minimum to rest at the saddle. **Overdamped models** ``dθ = f dt + G dW``
    (``Langevin``, ``SGD``, any ``Overdamped`` with Gaussian noise, read through its
    ``vector_field``): ``r = θ̇ − f``, ``Σ = GGᵀ``, from the minimum to the
    saddle. ``τ ≍ e^Φ`` as the noise → 0 with its shape fixed. Where the
    fluctuation–dissipation relation holds (``Σ = 2ΓT``, constant ``T`` and ``M``; overdamped:
    ``f = −∇L``, ``Σ = 2T``) the time-reversed relaxation out of the saddle is optimal and
    ``Φ = ΔL/T``. Where it does not (Hessian-shaped noise: ``Σ ∝ |H(θ)|``), the optimal
    path may leave the minimum-energy path and ``Φ`` lie below ``path_exponent``'s
    path-restricted value: the noise across a bent valley pushes along it. With inertia the
    gain can be large (a particle with light friction carries energy from a stiff, noisy
    direction into the escape direction: Müller–Brown, Momentum, docs/theory.md); overdamped
    it is smaller (the tests' bent double well: SGD 51.7 against 123.8 along the path,
    Momentum 11.9 against 60.1; Müller–Brown SGD 3.557 against 3.622 per unit of ΔL/T).

    The path is discretized in time (``n`` steps of ``dt`` = ``ACTION_DT`` / the fastest
    linearized rate along the relaxation, and with inertia at most half the shortest
    oscillation period over 2π; total time ``span`` × the relaxation's; inertial: second
    and central differences, overdamped: forward differences with the terms at the
    midpoint) and the action minimized over the interior points by Levenberg–Marquardt
    (block-banded normal equations; exact-Hessian steps once Gauss–Newton slows) from the
    time-reversed relaxation; differences in float64, the model's terms in the run's dtype.
    The time is fixed: a longer ``span`` can only lower ``Φ`` (check it). Where the grid
    has more than ``2 × COARSE_STEPS`` steps, the descent starts on grids 2, 4, … times
    coarser (the coarsest with fewer): each one's path, settled loosely (50 steps gaining
    less than ``COARSE_SETTLE``), interpolated onto the next, so that the slow, long-wave
    part of the descent happens where steps are cheap. Where the action on the finest grid
    is not settled after ``iterations`` steps (50 steps lowering it by less than 1e-6
    relative is settled), ``converged`` is False and a ``RuntimeWarning`` says so: Φ is then
    an upper bound. ``start_action`` is the action of the path the finest grid started
    from. Cost: one Levenberg–Marquardt step evaluates the terms and their
    Jacobians at ``n`` points (Müller–Brown, Momentum: n = 5.9e4, ~0.4 s a step on one core
    of a 2-core machine, settled in 5.6 min coarse to fine; Adai there: 2.3e5 steps, 18
    min; the 2-D test landscapes settle in 5–35 s, Müller–Brown SGD in 23 s, 10-D
    Styblinski–Tang SGD in 25 s). float32 rounding in the terms stops the descent earlier
    than float64 (docs/theory.md).

    Args:
      model: a model with Gaussian noise: phase-space (``Momentum``, ``Adai``, ``Adam``,
        ``Underdamped``, or any whose ``terms`` are ``Inertial``) or overdamped
        (``Langevin``, ``SGD``, any ``Overdamped``).
      loss: the loss.
      path: a ``sdesim.critical.Path`` from the minimum over the saddle (its refined saddle
        is the end point), or images ``(n, d)`` whose highest point refines (Newton) to an
        index-1 saddle; the first point must be the minimum.
      ema: ``"frozen"`` or ``"instant"``: Adam's/Adai's second-moment EMA frozen at the
        minimum or following ``g²`` (as ``path_exponent``; no effect on other models).
      span: the path's duration in units of the relaxation's.
      iterations: the most Levenberg–Marquardt steps (on each grid).
      dt: the time step (default: from the rates, above); a longer one is coarser and
        cheaper, its Φ less exact.
      start: a previous ``LeastAction`` of the same escape (e.g. with fewer iterations, a
        shorter ``span`` or another ``dt``) to start from, interpolated (cubic, C²) onto
        this grid with its arrival at the saddle kept; no coarse grids then.

    Returns:
      ``LeastAction(action, times, theta, converged, iterations, start_action)``.
    """
    import warnings

    from .. import model as _model

    if model.noise_kind != "gaussian":
        raise TypeError(f"least_action needs an SDE with Gaussian noise, got "
                        f"{type(model).__name__} ({model.noise_kind} noise)")
    if ema not in ("frozen", "instant"):
        raise ValueError(f"ema must be 'frozen' or 'instant', got {ema!r}")
    if not (np.isfinite(span) and span >= 1.0):
        raise ValueError(f"span must be >= 1 (the relaxation's duration), got {span}")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    x_min, saddle, u = _endpoints(loss, path)
    if isinstance(model, _model.Overdamped):
        order, at = 1, overdamped_terms(model, loss)
    elif model.velocity(model.init(_point(x_min))) is not None:
        order, at = 2, inertial_terms(model, loss, x_min, ema)
    else:
        raise TypeError(f"least_action needs an overdamped model or a phase-space one "
                        f"(Inertial terms), got {type(model).__name__}")
    d = x_min.size
    force, mass, fric, cov = (np.asarray(a, np.float64) for a in at(_point(saddle)))
    if (order == 2 and np.any(mass <= 0)) or np.any(fric <= 0):
        raise ValueError("least_action: the mass and friction must be > 0")
    if np.any(np.linalg.eigvalsh(cov) <= 0):
        raise ValueError("least_action: the noise's covariance is singular at the saddle: "
                         "the action has no finite weight there")
    if u @ (x_min - saddle) < 0:
        u = -u
    sol, t_relax = _relaxation(at, loss, x_min, saddle, u, order)
    fine = _step(at, loss, sol, t_relax, d, order) if dt is None else float(dt)
    if not (np.isfinite(fine) and fine > 0):
        raise ValueError(f"dt must be > 0, got {dt}")

    def solve(dt, prev, iterations, settle):
        n = int(np.ceil(span * t_relax / dt)) + 2 * order
        nb = n + 1 - 2 * order  # the free points θ_order … θ_{n−order}
        if nb * d > ACTION_MAX_UNKNOWNS:
            raise ValueError(f"least_action: the path needs {n} steps of {d} coordinates "
                             f"(more than {ACTION_MAX_UNKNOWNS} unknowns): the dynamics are "
                             "too stiff against their slowest rate")
        times = np.arange(n + 1) * dt
        back = times[-1] - times  # reversed time
        guess = np.empty((n + 1, d))
        if prev is None:  # the time-reversed relaxation
            live = back <= t_relax
            guess[live] = np.asarray(jax.vmap(sol.evaluate)(_point(back[live])),
                                     np.float64)[:, :d]
        else:  # a previous path, C² in time, its arrival at the saddle kept
            from scipy.interpolate import CubicSpline

            live = back <= prev.times[-1] - prev.times[0]
            guess[live] = CubicSpline(prev.times - prev.times[-1], prev.theta)(-back[live])
        guess[~live] = x_min
        guess[:order], guess[-order:] = x_min, saddle

        dtype = jnp.result_type(float)
        root = float(np.sqrt(dt))

        def local(y, a, b):  # the point, its second and first difference (formed in float64)
            force, mass, fric, cov = at(y)
            r = mass * a + fric * b - force
            c = jnp.linalg.cholesky(cov)
            return jax.scipy.linalg.solve_triangular(c, r, lower=True) * root

        def batched(f):  # in blocks of BATCH points (one vmap over all of them has hung
            # XLA's multi-threaded CPU runtime: every thread waiting, 2 cores, jax 0.10.2)
            return jax.jit(lambda *a: jax.lax.map(lambda t: f(*t), a, batch_size=BATCH))

        res = batched(local)
        jacs = batched(jax.jacfwd(local, argnums=(0, 1, 2)))

        def cost(y, a, b):
            r = local(y, a, b)
            return 0.5 * jnp.sum(r * r)

        hess = batched(jax.hessian(cost, argnums=(0, 1, 2)))
        # row k of the residual reads the window θ_k … θ_{k+order}: (point, second difference,
        # first difference) = coef @ window. Inertial: θ_{k+1}, the second and the central
        # difference; overdamped: the midpoint and the forward difference (θ̈ unused, M = 0)
        if order == 2:
            coef = np.array([[0.0, 1.0, 0.0], [1 / dt**2, -2 / dt**2, 1 / dt**2],
                             [-0.5 / dt, 0.0, 0.5 / dt]])
        else:
            coef = np.array([[0.5, 0.5], [0.0, 0.0], [-1 / dt, 1 / dt]])
        lin = np.kron(coef, np.eye(d))
        rows = n + 1 - order

        def points(y):
            window = [y[s:s + rows] for s in range(order + 1)]
            return tuple(jnp.asarray(sum(coef[i, s] * window[s] for s in range(order + 1)), dtype)
                         for i in range(3))

        def exact_blocks(y):
            """The action's Hessian, per row k, on its window (rows, (order+1)d, (order+1)d)."""
            h = hess(*points(y))
            full = np.block([[np.asarray(h[i][j], np.float64) for j in range(3)]
                             for i in range(3)])
            return lin.T @ full @ lin

        def residual(y, jac=False):
            args = points(y)
            rho = np.asarray(res(*args), np.float64)
            if not jac:
                return rho
            j3 = [np.asarray(z, np.float64) for z in jacs(*args)]
            # ∂ρ_k/∂θ_{k+s}, s = 0 … order
            return rho, [sum(coef[i, s] * j3[i] for i in range(3)) for s in range(order + 1)]

        width = (order + 1) * d - 1  # JᵀJ's upper bandwidth, the points' coordinates interleaved
        ii, jj = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
        c = np.arange(order, n - order + 1)  # the free points; point c is slot s of row c − s

        def to_band(blocks):
            band = np.zeros((width + 1, nb * d))
            for off, blk in enumerate(blocks):
                cb = np.arange(nb - off)[:, None, None]
                row, col = cb * d + ii, (cb + off) * d + jj
                keep = col >= row
                band[width + row[keep] - col[keep], col[keep]] = blk[:nb - off][keep]
            return band

        def exact_band(y):
            hk = exact_blocks(y)
            blk = lambda k, i, j: hk[k][:, i * d:(i + 1) * d, j * d:(j + 1) * d]
            return to_band([sum(blk(c - s, s, s + off) for s in range(order + 1 - off))
                            for off in range(order + 1)])

        def normal(rho, jac):
            """Jᵀρ and JᵀJ in banded upper form: the free point c meets rows c − order … c."""
            tr = lambda m: np.swapaxes(m, 1, 2)
            grad = sum(np.einsum("kij,ki->kj", jac[s][c - s], rho[c - s])
                       for s in range(order + 1)).reshape(-1)
            blocks = [sum(tr(jac[s][c - s]) @ jac[s + off][c - s]
                          for s in range(order + 1 - off)) for off in range(order + 1)]
            return grad, to_band(blocks)

        def system(y, rho, jac, lam, history):
            grad, band = normal(rho, jac)
            # once Gauss–Newton lowers the action by < 1e-3 in 20 steps, steps with the exact
            # Hessian (Levenberg-damped by the Gauss–Newton diagonal): on the bent double well
            # of the tests it settles in 88 steps where Gauss–Newton alone takes 470 (from the
            # start Newton stalls at a stationary path, 56.3 against 21.1)
            if len(history) > 20 and history[-21] - history[-1] <= 1e-3 * history[-1]:
                damped = exact_band(y)
                damped[width] += lam * band[width]
            else:
                damped = band
                damped[width] *= 1 + lam
            return damped, grad

        def apply(y, step):
            trial = y.copy()
            trial[order:n - order + 1] += step.reshape(nb, d)
            return trial

        if not np.isfinite(0.5 * float(np.sum(residual(guess) ** 2))):
            raise ValueError("least_action: the loss, force or noise is not finite along the "
                             "relaxation")
        y, action, converged, steps, first = banded_levenberg_marquardt(
            guess, residual, system, apply, iterations, settle)
        return LeastAction(float(action), times, y, bool(converged), steps, float(first))

    # coarse to fine: a path on a grid COARSE times coarser (fewer than COARSE_STEPS
    # steps), settled loosely, is the start of the next finer one; the slow, long-wave
    # part of the descent happens where a step is cheap (Müller–Brown, Momentum: 8.3268
    # settled in 5.6 min from grids 8, 4, 2 times coarser, where the fine grid alone stood
    # at 8.354 after 2 500 steps and 13 min)
    levels = [fine]
    while span * t_relax / levels[-1] > 2 * COARSE_STEPS and start is None:
        levels.append(2 * levels[-1])
    prev = start
    for level in levels[:0:-1]:
        prev = solve(level, prev, iterations, COARSE_SETTLE)
    r = solve(fine, prev, iterations, 1e-6)
    converged, steps, action = r.converged, r.iterations, r.action
    if not converged:
        warnings.warn(f"least_action: not settled after {steps} Levenberg–Marquardt steps "
                      f"(action {action:.6g}, an upper bound on Φ); raise iterations",
                      RuntimeWarning, stacklevel=2)
    return r
