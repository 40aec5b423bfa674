"""Rare escapes: adaptive multilevel splitting (AMS) on the engine's stepping.

For escape times far beyond direct simulation (barriers of 20–40 kT). Notation: a score
``ξ(θ)`` increasing towards the exit ``B``; ``A = {ξ ≤ z_A}`` a small neighbourhood of the
minimum; ``Σ = {ξ = z_Σ}`` with ``z_A < z_Σ``.

* **Probability.** ``p = P(reach B before A | start on Σ with law μ)``, μ the law of the
  first entrances on Σ coming from A. ``n`` replicas from μ run until A or B; ``M_i`` is
  the largest score along replica ``i`` (``+inf`` once it is in B). Iteration ``q``:
  ``Z_q`` = the ``k``-th smallest ``M``; every replica with ``M_i ≤ Z_q`` is killed
  (``K_q ≥ k`` of them when scores tie, which keeps the estimator unbiased; maxima within
  8 ulps of ``Z_q`` count as ties, see ``_ams_runs``); each is
  replaced by a copy of a uniformly chosen survivor cut at the survivor's first step with
  score ``> Z_q`` (the whole model state: velocity, moments, optimizer state), then run on
  with fresh noise until A or B. Stop when ``Z_q`` is ``+inf`` (at least ``n − k + 1``
  replicas are in B) or every replica was killed (``p̂ = 0``).
  ``p̂ = Π_q (1 − K_q/n) · (fraction of final replicas in B)`` is unbiased for any ``k``,
  any score and any discrete-time Markov chain (Bréhier, Gazeau, Goudenège, Lelièvre,
  Rousset, Ann. Appl. Probab. 26, 2016) — here the Euler–Maruyama chain itself, with its
  Brownian-bridge exit test.
* **Mean escape time** (cycle decomposition; Cérou, Guyader, Lelièvre, Pommier, JCP 134,
  2011; Lopes & Lelièvre, J. Comput. Chem. 40, 2019): a direct run from ``θ₀`` records the
  time ``T₀`` to the first entrance on Σ, entrance states (the sample of μ), and loops
  Σ → A → Σ; then ``E τ = E[T₀] + ((1 − p)/p)·E[T_loop] + E[T_reac]``, ``T_reac`` the Σ → B
  time of the successful replicas (their cloned history included). A model that
  remembers more than its position and velocity (Adam's, Adai's second-moment EMA,
  starting at 0) loops on past a warm-up (``warmup``) before its loops and entrances count.
* **No stored trajectories.** A replica is (origin state, origin step, noise key): its
  noise is counter-based per (key, run, iteration, replica, page), so its path is a pure
  function of those, and the state at its first crossing above ``Z_q`` is found by
  re-running it (cheaper than storing every replica's history, and exact). The clones of
  one iteration run together as lanes of one jitted program.
* **Intervals** come from ``n_runs`` independent AMS runs (the average of unbiased
  estimates is unbiased; its standard error is measured, not modelled — the asymptotic
  AMS variance formula assumes an ideal score).
"""

from __future__ import annotations

import dataclasses
import math
import time as _time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats as _st

from . import _checks
from . import engine as _engine
from . import exits as _exits
from . import pytrees as _pytrees

K = _engine.NOISE_PAGE
# lane outcomes of one advance
RUNNING, UP, DOWN, EXITED, CAPPED, DIVERGED = 0, 1, 2, 3, 4, 5
_STEPS = 8  # > every outcome code: the kernel's carry packs outcome + 8·steps
# noise tags of the direct run, the AMS start and the level-finding run
_TAG_DIRECT, _TAG_INIT, _TAG_LEVELS = 1 << 20, 1 << 21, 1 << 22


# ---------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------


def _towards_exit(exit, x0):
    """A direction from ``x0`` towards the exit's boundary, where one is evident."""
    if isinstance(exit, _exits.Halfspace):
        return np.asarray(exit.normal, float)
    if isinstance(exit, _exits.Box):
        lo, up = np.asarray(exit.lower, float), np.asarray(exit.upper, float)
        gaps = np.concatenate([up - x0, x0 - lo])
        i = int(np.argmin(gaps))
        v = np.zeros_like(x0)
        v[i % x0.size] = 1.0 if i < x0.size else -1.0
        return v if np.isfinite(gaps[i]) else None
    if isinstance(exit, _exits.Ellipsoid):
        v = x0 - np.asarray(exit.center, float)
        return v if np.any(v != 0) else None
    return None


@_checks.pytree_dataclass
class ExitScore:
    """The default score of an exit (a pytree: its numbers are traced, so one compiled
    program serves every run with the same kind of exit)."""

    exit: object
    theta0: jax.Array
    span_up: jax.Array | None = None
    span_lo: jax.Array | None = None

    def __call__(self, th):
        ex = self.exit
        if isinstance(ex, _exits.Halfspace):
            n = ex.normal.astype(th.dtype)
            return (jnp.dot(n, th) - ex.offset) / jnp.linalg.norm(n)
        if isinstance(ex, _exits.Box):
            x = th - self.theta0.astype(th.dtype)
            return jnp.maximum(jnp.max(x / self.span_up.astype(th.dtype)),
                               jnp.max(-x / self.span_lo.astype(th.dtype))) - 1
        if isinstance(ex, _exits.Ellipsoid):
            y = th - ex.center.astype(th.dtype)
            q = 0.5 * y @ (ex.matrix.astype(th.dtype) @ y) / ex.level
            return jnp.sqrt(jnp.maximum(q, 0)) - 1
        if isinstance(ex, _exits.Ball):
            return jnp.linalg.norm(th - ex.center.astype(th.dtype)) / ex.radius - 1
        return ex.fn(th) - ex.level  # LevelSet


def default_score(exit, theta0):
    """A score increasing towards the exit, ``0`` on its boundary, from the exit alone:
    a half-space: the signed distance ``(n·θ − offset)/|n|``; a box: the largest
    normalized coordinate progress from ``theta0`` to a finite face, minus 1; an
    ellipsoid: ``sqrt(½ yᵀAy / level) − 1``; a ball: ``‖θ − c‖/r − 1``; a level set:
    ``fn(θ) − level``. Other exits (a predicate) have none: ``escape_ams`` then scores by
    the minimum-energy path (``score="path"``)."""
    th0 = jnp.asarray(theta0)
    if isinstance(exit, _exits.Box):
        lo, up = np.asarray(exit.lower, float), np.asarray(exit.upper, float)
        x0 = np.asarray(theta0, float)
        span_up = np.where(np.isfinite(up), up - x0, np.inf)
        span_lo = np.where(np.isfinite(lo), x0 - lo, np.inf)
        if not (np.any(np.isfinite(span_up)) or np.any(np.isfinite(span_lo))):
            raise ValueError("score: a box with no finite face has no default score")
        return ExitScore(exit, th0, jnp.asarray(span_up, th0.dtype),
                         jnp.asarray(span_lo, th0.dtype))
    if isinstance(exit, _exits.Halfspace | _exits.Ellipsoid | _exits.Ball | _exits.LevelSet):
        return ExitScore(exit, th0)
    raise ValueError(f"score: no default score for an exit of type {type(exit).__name__}; "
                     f"pass score=callable theta -> scalar (increasing towards the exit)")


def _on_state(score, model, state):
    """A score of the whole state (``on_state``) or of the position."""
    if hasattr(score, "on_state"):
        return score.on_state(model, state)
    return score(model.position(state))


@_checks.pytree_dataclass
class PhaseScore:
    """The splitting score on a phase-space state ``(θ, v)`` from a position score ``s``.
    Along ``e``, the unit gradient of ``s`` at ``θ₀``, the linearized dynamics is
    ``ẍ + γẋ + ω²x = noise`` with ``ω² = λ/M`` (``phase_score`` measures them):

    * ``kind="energy"`` (light friction, ``γ < ω``): ``ξ = s₀ + sqrt(2E/λ)``, ``E = L(θ) −
      L(θ₀) + ½ Σ M_i v_i²`` the energy above the minimum, expressed as the distance along
      ``e`` at which a harmonic well of curvature ``λ`` holds it (``ξ = s₀`` at rest at
      the minimum; the map is monotone, so the splitting sees the energy). With little
      friction a path escapes once its energy has grown past the barrier, whatever its
      phase, and the basin set ``A = {ξ <= z_A}`` is then low energy; with the position
      alone a path swinging through the minimum fast is taken as returned to A every
      half period, and the runs' ``p̂`` differ by orders of magnitude;
    * ``kind="look-ahead"`` (heavy friction, ``γ >= ω``, damping ratio ``γ/2ω >= ½``):
      ``ξ = s(θ) + τ·∇s·v`` with ``τ = 1/r₊``, ``r₊ = (γ + sqrt(max(γ² − 4ω², 0)))/2``
      the velocity's relaxation rate (``γ/2`` below critical damping): the score where
      the velocity carries it before it relaxes (``τ → 1/γ`` when overdamped). From
      ``γ/2ω = ½`` on, the energy of an oscillation falls more than a thousandfold per
      period, so it no longer says whether a path goes on, and the energy kind fails
      (runs' ``p̂`` 10²⁶⁷× apart for Momentum at ``γ/2ω`` = 0.71, ΔL/T = 40, against
      102× for the look-ahead: ``benchmarks/phase_score_kinds.py``, docs: rare events).

    With escape directions ``u_k`` (``directions``; unit rows, e.g. the saddles' unstable
    directions) the energy is taken along each line ``θ₀ + a·u_k`` instead of in every
    coordinate: ``E_k = L(θ₀ + a_k u_k) − L(θ₀) + ½ M_k w_k²``, ``a_k = u_k·(θ − θ₀)``,
    ``w_k = u_k·v``, ``M_k = Σ u_ki² M_i``, and ``ξ = s₀ + max_k sqrt(2E_k/λ_k)`` with
    ``λ_k = |u_kᵀ H u_k|`` at θ₀. In many coordinates the whole energy is mostly the
    thermal energy of the directions a path does not escape along (about ``d·T``, with
    fluctuations of ``sqrt(d)·T``), which drowns the part that matters.

    * ``kind="quasi-potential"`` (``phase_score(..., quasi_potential=True)``): ``ξ = s₀ +
      sqrt(V(θ − θ₀, v)/V_e)`` with ``V(z) = ½ zᵀ S⁻¹ z`` the quasi-potential of the
      dynamics linearized at rest at ``θ₀`` (``S`` the stationary covariance of that
      Ornstein–Uhlenbeck process in phase space: ``AS + SAᵀ + Q = 0``) and ``V_e`` its
      value at rest one unit along ``e``. Where the fluctuation–dissipation relation
      holds ``V = E/T`` and this is the energy kind; where the noise is not thermal (the
      Hessian-shaped noise: each mode at its own temperature) it weighs each mode's energy
      by that mode's temperature, so a replica whose energy sits in a hot, stiff mode is
      not scored as rarer than it is.

    ``state_mass``: the kinetic energy takes the mass the state carries (``model.mass_of``,
    Adai's and Adam's, which follow the second-moment EMA) instead of the mass at ``θ₀``.
    Adai's mass ``η/(β₀ v̂_i/mean(v̂))`` changes along the way out as the noise does, and
    ``L + ½ M₀ v²`` with the mass frozen then swings within each oscillation. Measured
    biased (``phase_score``), so off by default.

    Called on ``θ`` alone it is ``s(θ)`` (the score at rest: the input checks at θ₀)."""

    score: object
    loss: object
    s0: jax.Array
    l0: jax.Array
    mass: jax.Array  # (d,) the model's mass at θ₀ (the energy's, unless state_mass)
    lam: jax.Array  # curvature of the loss along e at θ₀
    tau: jax.Array
    kind: str = dataclasses.field(default="energy", metadata=dict(static=True))
    x0: jax.Array | None = None  # θ₀ (with directions)
    u: jax.Array | None = None  # (K, d) unit escape directions, or None: all coordinates
    u_mass: jax.Array | None = None  # (K,) M_k
    u_lam: jax.Array | None = None  # (K,) λ_k
    state_mass: bool = dataclasses.field(default=False, metadata=dict(static=True))
    quad: jax.Array | None = None  # (2d, 2d) S⁻¹/(2V_e) (kind="quasi-potential")

    def __call__(self, theta):
        return self.score(theta)

    def on_state(self, model, state):
        th, v = model.position(state), model.velocity(state)
        if v is None:
            return self.score(th)
        dtype = th.dtype
        if self.kind == "look-ahead":
            s, w = jax.jvp(self.score, (th,), (v,))
            return s + self.tau.astype(dtype) * w
        if self.kind == "quasi-potential":
            z = jnp.concatenate([th - self.x0.astype(dtype), v])
            q = z @ (self.quad.astype(dtype) @ z)
            return self.s0.astype(dtype) + jnp.sqrt(jnp.maximum(q, 0))
        mass = (model.mass_of(state).astype(dtype) if self.state_mass
                else self.mass.astype(dtype))
        if self.u is not None:
            x0, u = self.x0.astype(dtype), self.u.astype(dtype)
            a, w = u @ (th - x0), u @ v
            pot = jax.vmap(lambda t, uk: self.loss(x0 + t * uk))(a, u)
            u_mass = (u * u) @ mass if self.state_mass else self.u_mass.astype(dtype)
            e = pot - self.l0.astype(dtype) + 0.5 * u_mass * w * w
            r = jnp.sqrt(2 * jnp.maximum(e, 0) / self.u_lam.astype(dtype))
            return self.s0.astype(dtype) + jnp.max(r)
        e = self.loss(th) - self.l0.astype(dtype) + 0.5 * jnp.sum(mass * v * v)
        return self.s0.astype(dtype) + jnp.sqrt(2 * jnp.maximum(e, 0) / self.lam.astype(dtype))


def inertia(model, loss, theta0, dt):
    """``(M, γ)`` of a phase-space model at the state ``model.init(theta0)`` (mass and
    friction rate per coordinate, as arrays), or None for a model without a velocity."""
    state = model.init(theta0)
    if model.velocity(state) is None:
        return None
    if hasattr(model, "mass") and hasattr(model, "friction"):  # Underdamped: γ a rate
        m, g = model.mass, model.friction
    else:
        from .model import Inertial

        tm = model.terms(state, jnp.zeros((), theta0.dtype), jnp.asarray(dt, theta0.dtype),
                         loss)
        if not isinstance(tm, Inertial):
            return None
        m, g = tm.mass, tm.friction / tm.mass
    shape = np.shape(theta0)
    return (np.broadcast_to(np.asarray(m, float), shape),
            np.broadcast_to(np.asarray(g, float), shape))


def _unit_gradient(score, theta0):
    """The unit gradient of ``score`` at ``θ₀`` (float64), or the diagonal where it has
    none (zero or non-finite)."""
    e = np.array(jax.grad(score)(theta0), float)
    norm = np.linalg.norm(e)
    return e / norm if np.isfinite(norm) and norm > 0 else np.full(e.shape, e.size ** -0.5)


def _curvature(loss, theta0, e):
    """``|eᵀ H e|`` of the loss at ``θ₀`` (a Hessian-vector product)."""
    hv = jax.jvp(jax.grad(loss), (theta0,), (jnp.asarray(e, theta0.dtype),))[1]
    return abs(float(np.asarray(e, float) @ np.asarray(hv, float)))


def _directions(directions, theta0):
    """``directions`` as unit rows ``(K, d)`` (float), checked."""
    u = np.array(directions, float)
    if u.ndim == 1:
        u = u[None]
    d = np.shape(theta0)[0]
    if u.ndim != 2 or u.shape[1] != d or u.shape[0] == 0:
        raise ValueError(f"directions must be K >= 1 vectors of theta0's size {d}, got "
                         f"shape {np.shape(directions)}")
    norm = np.linalg.norm(u, axis=1)
    if not np.all(np.isfinite(u)) or np.any(norm == 0):
        raise ValueError("directions must be finite and non-zero")
    return u / norm[:, None]


def phase_score(model, loss, theta0, score, dt, directions=None, state_mass=False,
                quasi_potential=False):
    """The ``PhaseScore`` of ``score`` for ``model`` at ``θ₀``, or ``score`` itself for a
    model without a velocity. Along ``e``, the score's gradient at ``θ₀`` (unit):
    ``M = Σ e_i² M_i``, ``γ = Σ e_i² γ_i`` (the model's mass and friction rate at
    ``model.init(θ₀)``), ``ω² = λ/M`` with ``λ = |eᵀ H e|`` the loss's curvature there;
    these choose the kind. ``directions`` (``(K, d)``, e.g. the unstable directions of
    ``sd.theory.predict(...).saddles``, or ``"saddles"`` to find those): the energy score
    takes the energy along each of them (the largest) instead of in every coordinate
    (``PhaseScore``); the look-ahead kind does not use them. ``state_mass``: a model with
    ``mass_of(state)`` (Adam, Adai) puts the mass its state carries in the energy instead
    of the mass at ``θ₀`` — fewer orders between the runs' ``p̂``, but measured biased
    (Adai, 10-D Styblinski–Tang, ΔL/T = 5: 78.0 and 84.6 against direct simulation's
    62.8; docs: rare events), so not ``escape_ams``'s default: pass the score it makes.
    ``quasi_potential``: the ``"quasi-potential"`` kind (``PhaseScore``; Gaussian noise,
    ``θ₀`` a minimum, up to ``critical.DENSE_MAX`` coordinates), whatever the friction;
    ``directions`` and ``state_mass`` do not apply to it."""
    theta0 = jnp.asarray(theta0, jnp.result_type(float))  # a float64 numpy point too
    mg = inertia(model, loss, theta0, dt)
    if mg is None:
        return score
    if quasi_potential:
        return _quasi_potential_score(model, loss, theta0, score)
    m, g = mg
    saddles = isinstance(directions, str)
    if saddles and directions != "saddles":
        raise ValueError(f"directions must be vectors or \"saddles\", got {directions!r}")
    u = None if directions is None or saddles else _directions(directions, theta0)
    e = _unit_gradient(score, theta0)
    lam = _curvature(loss, theta0, e)
    w = e * e
    m_e, g_e = float(w @ m), float(w @ g)
    om = math.sqrt(lam / m_e)
    if not (math.isfinite(om) and om > 0):
        raise ValueError(f"phase_score: the loss has no curvature along the score's gradient "
                         f"at theta0 ({lam:.3g}): pass phase_score=False")
    kind, tau = "energy", 0.0
    if g_e >= om:  # damping ratio γ/2ω >= ½: the energy is gone within a period
        kind, tau = "look-ahead", 2 / (g_e + math.sqrt(max(g_e * g_e - 4 * om * om, 0.0)))
    f = jnp.result_type(float)
    along = {}
    if saddles and kind == "energy":
        from . import critical

        u = _directions(critical.saddle_directions(loss, theta0), theta0)
    if u is not None and kind == "energy":
        lam_k = np.array([_curvature(loss, theta0, uk) for uk in u])
        if not np.all(np.isfinite(lam_k) & (lam_k > 0)):
            raise ValueError(f"phase_score: the loss has no curvature along directions "
                             f"{np.flatnonzero(~(lam_k > 0)).tolist()} at theta0")
        along = dict(x0=jnp.asarray(theta0, f), u=jnp.asarray(u, f),
                     u_mass=jnp.asarray(u * u @ m, f), u_lam=jnp.asarray(lam_k, f))
    return PhaseScore(score, loss, jnp.asarray(score(theta0), f), jnp.asarray(loss(theta0), f),
                      jnp.asarray(m, f), jnp.asarray(lam, f), jnp.asarray(tau, f), kind,
                      state_mass=bool(state_mass) and hasattr(model, "mass_of"), **along)


def _quasi_potential_score(model, loss, theta0, score):
    """``PhaseScore(kind="quasi-potential")``: the linearized dynamics at rest at ``θ₀``
    (``sd.theory``'s ``inertial_terms``: force, mass ``M``, friction force ``Γ``, noise
    force covariance ``Σ``), ``ż = Az + noise`` with ``A = [[0, I], [−M⁻¹H, −M⁻¹Γ]]`` and
    noise covariance ``Q = [[0, 0], [0, M⁻¹ΣM⁻¹]]``; ``S`` from the Lyapunov equation."""
    from scipy import linalg

    from . import critical
    from .theory import action as _action

    if model.noise_kind != "gaussian":
        raise ValueError(f"phase_score(quasi_potential=True) needs Gaussian noise, got "
                         f"{type(model).__name__} ({model.noise_kind})")
    th0 = theta0  # phase_score's: in the run's float dtype
    d = th0.size
    if d > critical.DENSE_MAX:
        raise ValueError(f"phase_score(quasi_potential=True) forms dense (2d, 2d) matrices: "
                         f"d = {d} > {critical.DENSE_MAX}")
    _, mass, fric, cov = (np.asarray(a, np.float64)
                          for a in _action.inertial_terms(model, loss, th0)(th0))
    hess = np.asarray(jax.hessian(loss)(th0), np.float64)
    a = np.zeros((2 * d, 2 * d))
    a[:d, d:] = np.eye(d)
    a[d:, :d] = -hess / mass[:, None]
    a[d:, d:] = -np.diag(fric / mass)
    q = np.zeros((2 * d, 2 * d))
    q[d:, d:] = cov / np.outer(mass, mass)
    cov_z = linalg.solve_continuous_lyapunov(a, -q)
    cov_z = 0.5 * (cov_z + cov_z.T)
    if not (np.all(np.isfinite(cov_z)) and np.all(np.linalg.eigvalsh(cov_z) > 0)
            and np.all(np.linalg.eigvals(a).real < 0)):
        raise ValueError("phase_score(quasi_potential=True): the dynamics linearized at "
                         "theta0 has no stationary law there (theta0 not a minimum, or "
                         "noise that misses a mode)")
    prec = np.linalg.inv(cov_z)
    e = _unit_gradient(score, th0)
    f = jnp.result_type(float)
    # ξ = s₀ + |a| at rest at θ₀ + a·e: the quadratic form over its value there
    quad = prec / float(e @ prec[:d, :d] @ e)
    return PhaseScore(score, loss, jnp.asarray(score(th0), f), jnp.asarray(loss(th0), f),
                      jnp.asarray(mass, f), jnp.asarray(0.0, f), jnp.asarray(0.0, f),
                      "quasi-potential", x0=jnp.asarray(th0, f), quad=jnp.asarray(quad, f))


def _state_score(phase, model, loss, theta0, score, dt, directions=None):
    """The score ``_Runner`` evaluates on states: ``score`` as given if it already is one
    (``on_state``); else ``phase_score`` of it (``phase`` True) or ``score`` alone."""
    if hasattr(score, "on_state"):
        return score
    if phase:
        return phase_score(model, loss, theta0, score, dt, directions)
    return score


def _flat_directions(directions, un):
    """Escape directions as flat vectors: pytrees shaped like θ₀ are ravelled."""
    if directions is None or un is None or isinstance(directions, str):
        return directions
    return np.stack([np.asarray(un.ravel(t), float) for t in directions])


# ---------------------------------------------------------------------------------------
# The jitted kernel: advance lanes until a level, A, B, a cap or divergence
# ---------------------------------------------------------------------------------------


class _Lanes(eqx.Module):
    state: object  # model state, leading axis W
    step: jax.Array  # (W,) absolute step (model time t = step·dt)
    page: jax.Array  # (W,) pages run since the lane's origin (its noise counter)
    key: jax.Array  # (W, ...) noise key data (``jax.random.key_data``) of the lane's path
    best: jax.Array  # (W,) largest score so far
    status: jax.Array  # (W,) RUNNING, UP, DOWN, EXITED, CAPPED, DIVERGED
    up: jax.Array  # (W,) stop once the score exceeds this
    down: jax.Array  # (W,) stop once the score is at or below this
    # a continuation: at the first crossing above ``up`` the lane records its state as
    # ``origin`` and goes on with ``key2``, ``up2``, ``down2`` (page counter from 0)
    cont: jax.Array  # (W,) bool: a continuation is pending
    key2: jax.Array
    up2: jax.Array
    down2: jax.Array
    origin: object  # state at the switch (or where phase one ended)
    origin_step: jax.Array
    in_b: jax.Array  # (W,) bool: phase one left through the exit before the crossing


def _start_status(lanes, score, model):
    s0 = jax.vmap(lambda st: _on_state(score, model, st))(lanes.state)
    return jnp.where(s0 > lanes.up, UP, RUNNING), s0


def _switch(lanes, score, model):
    """Lanes whose first phase ended take their continuation (at a page boundary: the
    state is frozen from the crossing step to the end of the page)."""
    end = lanes.cont & (lanes.status != RUNNING)
    sw = end & (lanes.status == UP)
    keep = lambda a, b: jnp.where(end.reshape(end.shape + (1,) * (a.ndim - 1)), a, b)
    origin = jax.tree_util.tree_map(keep, lanes.state, lanes.origin)
    lanes = dataclasses.replace(
        lanes, origin=origin, origin_step=jnp.where(end, lanes.step, lanes.origin_step),
        in_b=lanes.in_b | (end & (lanes.status == EXITED)), cont=lanes.cont & ~end,
        key=jnp.where(sw[:, None], lanes.key2, lanes.key), page=jnp.where(sw, 0, lanes.page),
        up=jnp.where(sw, lanes.up2, lanes.up), down=jnp.where(sw, lanes.down2, lanes.down))
    st, _ = _start_status(lanes, score, model)
    return dataclasses.replace(lanes, status=jnp.where(sw, st, lanes.status))


@eqx.filter_jit
def _advance(params, lanes, max_pages, min_live, *, d, bridge, impl, signature):
    """Run every running lane, a page of K steps at a time, until its score exceeds
    ``up`` (state frozen at that step: the first crossing), falls to ``<= down``, its
    position leaves the exit, becomes non-finite, or it ran ``max_pages`` pages; a lane
    with a continuation then goes on with it. Returns when at most ``min_live`` lanes
    still run (the host compacts them into a narrower program), with the pages run."""
    model, loss, exit, score, dt = params
    dtype = dt.dtype
    use_bridge = bridge and hasattr(exit, "cross_prob")  # as the engine decides

    def page_fn(lanes):
        keys = jax.random.wrap_key_data(lanes.key, impl=impl)
        z, u = _engine._lanes_noise(model, _engine._fold_in(keys, jnp.zeros_like(lanes.page)),
                                    lanes.page, d, dtype, use_bridge)
        u = u if use_bridge else jnp.zeros(lanes.step.shape, dtype)

        def lane_step(state, c, best, uj, up, down, step0, j, zj):
            # ``c``: the bridge survival (>= 0) while the lane runs, then ``-1 - code``
            # with ``code = outcome + 8·(steps run in this page)``: one carried array
            # for survival, outcome and step (XLA CPU runs each carried array's update
            # as its own kernel every step)
            run = ~(c < 0)
            t = (step0 + j).astype(dtype) * dt
            new, y, surv, gone, bad = _engine.step_and_test(model, loss, exit, state, c,
                                                            uj, t, dt, zj, use_bridge)
            s = _on_state(score, model, new)
            new_status = jnp.where(bad, DIVERGED, jnp.where(gone, EXITED, jnp.where(
                s > up, UP, jnp.where(s <= down, DOWN, RUNNING))))
            keep = lambda a, b: jnp.where(run, a, b)
            state = jax.tree_util.tree_map(keep, new, state)
            # a diverged lane keeps the largest score it reached while finite; one that
            # left through the exit gets +inf at the page end (kept apart from ``gone``
            # here, so the bridge's exp is computed in one kernel, not two)
            best = jnp.where(run & ~bad, jnp.maximum(best, s), best)
            code = (-1 - (new_status + _STEPS * (j + 1))).astype(dtype)
            return state, jnp.where(run, jnp.where(new_status == RUNNING, surv, code), c), best

        def body(carry, xs):
            state, c, best = carry
            j, zj = xs
            out = jax.vmap(lane_step, (0,) * 7 + (None, -1))(state, c, best, u, lanes.up,
                                                             lanes.down, lanes.step, j, zj)
            return out, None

        c0 = jnp.where(lanes.status == RUNNING, jnp.ones((), dtype),
                       (-1 - lanes.status).astype(dtype))
        (state, c, best), _ = jax.lax.scan(
            body, (lanes.state, c0, lanes.best), (jnp.arange(K, dtype=jnp.int32), z))
        code = (-1 - c).astype(jnp.int32)  # exact: small integers
        stopped = c < 0
        status = jnp.where(stopped, code % _STEPS, RUNNING)
        step = lanes.step + jnp.where(stopped, code // _STEPS, K)
        best = jnp.where(status == EXITED, jnp.inf, best)
        page = lanes.page + 1
        status = jnp.where((status == RUNNING) & (page >= max_pages), CAPPED, status)
        lanes = dataclasses.replace(lanes, state=state, step=step, page=page,
                                    status=status, best=best)
        return _switch(lanes, score, model)

    def cond(c):
        lanes, n = c
        return jnp.sum(lanes.status == RUNNING, dtype=jnp.int32) > min_live

    def body(c):
        lanes, n = c
        return page_fn(lanes), n + 1

    lanes, n = jax.lax.while_loop(cond, body, (lanes, jnp.asarray(0, jnp.int32)))
    return lanes, n


@eqx.filter_jit
def _init_lanes(params, states, steps, keys, up, down, keys2, up2, down2, n, pending):
    """Fresh lanes (the first ``n`` real); a score above ``up`` at the origin is UP at
    once (and takes its continuation, if any, at once); an origin already past the exit
    is EXITED at once. The latter is a replica that reached B before its parent's level
    (a score not aligned with the exit, e.g. the energy, can stay below the level all the
    way out): it is a success at its origin, and a clone of it is one too. Re-run from
    that origin as if it were a path start, it went back into the basin and, with no
    level below to stop it, ran until the cap (seen: 2 of ~20 000 clones, Momentum in the
    1-D double well at ΔU/T = 15 with the energy score)."""
    model, _, exit, score, _ = params
    w = steps.shape[0]
    real = jnp.arange(w, dtype=jnp.int32) < n
    zi = jnp.zeros(w, jnp.int32)
    lanes = _Lanes(states, steps, zi, keys, jnp.full(w, -jnp.inf, up.dtype),
                   jnp.where(real, RUNNING, CAPPED).astype(jnp.int32), up, down,
                   real & pending, keys2, up2, down2, states, zi, jnp.zeros(w, bool))
    st, s0 = _start_status(lanes, score, model)
    # a non-finite origin (a lane that diverged) is never taken as past the exit: run
    # on, it diverges again and is counted so
    out = jax.vmap(lambda s: exit.outside(model.position(s))
                   & jnp.all(jnp.isfinite(model.position(s))))(states)
    lanes = dataclasses.replace(lanes, status=jnp.where(real, jnp.where(out, EXITED, st),
                                                        CAPPED),
                                best=jnp.where(out, jnp.inf, jnp.maximum(lanes.best, s0)))
    return _switch(lanes, score, model)


# ---------------------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------------------


def _pad(n):
    """Lane widths: powers of two (few compiled programs)."""
    return max(8, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


COMPACT = 8  # a program returns when at most 1/COMPACT of its lanes still run


_RESULT = ("state", "step", "best", "status", "origin", "origin_step", "in_b")


class _Runner:
    """Runs batches of lanes through ``_advance`` (padded to a power-of-two width; lanes
    still running when most have finished are compacted into a narrower program, so the
    cost follows the live lanes, not the slowest one)."""

    def __init__(self, model, loss, exit, score, dt, d, bridge, max_pages, key):
        dtype = _engine._float_dtype()
        self.params = _engine._arrayify((model, loss, exit, score, jnp.asarray(dt, dtype)))
        self.score = self.params[3]
        self.sig = _engine._signature(self.params)
        # the bridge test: Gaussian noise acting on the position (overdamped models)
        bridge = bool(bridge) and model.noise_kind == "gaussian" and model.diffusive_position
        self.model, self.d, self.bridge, self.max_pages = model, d, bridge, max_pages
        self.dtype = dtype
        self.impl = str(jax.random.key_impl(key))
        self.steps = 0  # executed lane-steps (cost)

    def run(self, states, steps, keys, up, down, n, cont=None, max_pages=None):
        """Advance lanes from ``states`` (a pytree with a leading axis of a power-of-two
        width ``w``, ``_pad``; the first ``n`` lanes are real, the rest padding) until
        ``up``/``down``/the exit/the cap. ``steps`` (host, ``>= n`` entries) are their
        absolute steps, ``up``/``down`` scalars or ``n`` levels. ``cont = (keys2, up2,
        down2)``: at its first crossing above ``up`` each lane goes on from there with
        ``keys2`` until ``up2``/``down2``. Returns ``(state, step, best, status, origin,
        origin_step, in_b)``: the two states at width ``w``, the rest host arrays of the
        ``n`` real lanes. Every device array has a power-of-two width: few programs."""
        w = int(keys.shape[0])
        hv = lambda v, dt=self.dtype: jnp.asarray(_hpad(np.broadcast_to(
            np.asarray(v, dt), (n,)), w))
        steps = hv(np.asarray(steps)[:n], np.int32)
        if cont is None:
            cont, pending = (keys, np.inf, -np.inf), False
        else:
            pending = True
        lanes = _init_lanes(self.params, states, steps, keys, hv(up), hv(down), cont[0],
                            hv(cont[1]), hv(cont[2]), jnp.asarray(n, jnp.int32),
                            jnp.asarray(pending))
        mp = jnp.asarray(self.max_pages if max_pages is None else max_pages, jnp.int32)
        host = lambda tree: jax.tree_util.tree_map(np.asarray, tree)
        final = jax.tree_util.tree_map(np.array, {k: getattr(lanes, k) for k in _RESULT})
        idx = np.arange(w)  # the lane of ``final`` in each slot (>= n: padding)
        while True:
            wd = idx.size
            min_live = wd // COMPACT if wd > 8 else 0
            out, pages = _advance(self.params, lanes, mp, jnp.asarray(min_live, jnp.int32),
                                  d=self.d, bridge=self.bridge, impl=self.impl,
                                  signature=self.sig)
            self.steps += int(pages) * wd * K
            # compaction on the host (no program per pair of widths)
            out = host(out)
            real = idx < n
            slots = idx[real]
            for name in _RESULT:
                for f, o in zip(jax.tree_util.tree_leaves(final[name]),
                                jax.tree_util.tree_leaves(getattr(out, name)), strict=True):
                    f[slots] = o[real]
            live = np.flatnonzero((out.status == RUNNING) & real)
            if live.size == 0:
                break
            w2 = _pad(live.size)
            sel = np.concatenate([live, np.full(w2 - live.size, live[0])])
            pad = np.arange(w2) >= live.size
            lanes = jax.tree_util.tree_map(lambda a, sel=sel: a[sel], out)
            lanes = dataclasses.replace(
                lanes, status=np.where(pad, CAPPED, lanes.status).astype(np.int32),
                cont=lanes.cont & ~pad)
            lanes = jax.tree_util.tree_map(jnp.asarray, lanes)
            idx = np.concatenate([idx[live], np.full(w2 - live.size, n)])
        final = {k: (jax.tree_util.tree_map(jnp.asarray, v) if k in ("state", "origin")
                     else v) for k, v in final.items()}
        h = {k: final[k][:n] for k in _RESULT if k not in ("state", "origin")}
        return (final["state"], h["step"], h["best"], h["status"], final["origin"],
                h["origin_step"], h["in_b"])


@jax.jit
def _keys_jit(base, tag, slots):
    k = jax.random.fold_in(base, tag)
    return jax.random.key_data(jax.vmap(lambda s: jax.random.fold_in(k, s))(slots))


def _keys(base, tag, slots):
    return _keys_jit(base, jnp.asarray(tag, jnp.uint32), jnp.asarray(slots, jnp.uint32))


def _hpad(a, w):
    """A host array padded to length ``w`` with copies of its first entry."""
    a = np.asarray(a)
    if a.shape[0] >= w:
        return a[:w]
    fill = a[:1] if a.shape[0] else np.zeros((1,) + a.shape[1:], a.dtype)
    return np.concatenate([a, np.repeat(fill, w - a.shape[0], axis=0)])


@jax.jit
def _take_jit(states, idx):
    return jax.tree_util.tree_map(lambda a: a[idx], states)


def _take(states, idx, width=None):
    """Entries ``idx`` (host ints) of a batch, as a batch of width ``_pad(len(idx))``
    (or ``width``), padded with copies of the first."""
    w = _pad(len(idx)) if width is None else width
    return _take_jit(states, jnp.asarray(_hpad(np.asarray(idx, np.int32), w)))


@jax.jit
def _put(dst, idx, src):
    """``dst[idx] = src`` per leaf; out-of-range ``idx`` (padding) are dropped."""
    return jax.tree_util.tree_map(lambda a, b: a.at[idx].set(b, mode="drop"), dst, src)


@dataclasses.dataclass(frozen=True)
class AMSResult:
    """Result of ``escape_ams``.

    Attributes:
      p: mean over the runs of ``p̂ = P(B before A | start on Σ)``; ``p_runs`` per run.
      t_first: ``E[T₀]`` (θ₀ to the first entrance on Σ), ``t_loop``: ``E[T_loop]``
        (Σ → A → Σ), ``t_reactive``: ``E[T_reac]`` (Σ → B of the successful replicas),
        each with its standard error (``*_se``).
      levels: ``(z_A, z_Σ)``; iterations: AMS iterations per run; n_replicas, k.
      cost: executed lane-steps (direct run + AMS); wall_time in seconds.
      failed: replicas that reached neither A nor B within ``t_max`` (0 when all ended).
      diverged: paths or replicas whose state became non-finite (never an escape: such a
        replica ends at the largest score it reached while finite; warned about).
      phase_score: whether the replicas were scored on position and velocity
        (``PhaseScore``); directions: how many escape directions its energy was taken
        along (0: all coordinates, or not the energy); state_mass: whether that energy
        took the mass the state carries (``PhaseScore.state_mass``: Adam, Adai).
      warmup: SDE time the direct run looped before sampling μ and ``T_loop`` (0: the
        first loop; ``escape_ams``'s ``warmup``).
      extinct: runs that ended with every replica at or below a level (``p̂ = 0`` for
        that run; warned about). When every run did, ``p_ci`` is ``(0, 1)``: zero spread
        among zeros says nothing about how small ``p`` is.
    """

    p: float
    p_runs: np.ndarray
    t_first: float
    t_first_se: float
    t_loop: float
    t_loop_se: float
    t_reactive: float
    levels: tuple
    iterations: np.ndarray
    n_replicas: int
    k: int
    cost: int
    wall_time: float
    dt: float
    lr: float | None = None
    failed: int = 0
    diverged: int = 0
    phase_score: bool = False
    directions: int = 0
    warmup: float = 0.0
    extinct: int = 0
    state_mass: bool = False

    @property
    def n_runs(self):
        return int(self.p_runs.size)

    def p_ci(self, level=0.95):
        """Interval of ``p`` from the spread of the independent runs (Student t on their
        mean; the runs are i.i.d. and each is unbiased)."""
        r = self.p_runs
        if r.size < 2:
            return (0.0, np.inf)
        if not np.any(r > 0):  # every run extinct: no information on the upper end
            return (0.0, 1.0)
        se = float(np.std(r, ddof=1) / np.sqrt(r.size))
        q = float(_st.t.ppf(0.5 + level / 2, r.size - 1))
        return max(0.0, self.p - q * se), self.p + q * se

    def _time(self, p, t_loop, t_first, t_reac):
        if p <= 0:
            return np.inf
        p = min(p, 1.0)  # a probability (an interval end from one run may be +inf)
        return t_first + (1 - p) / p * t_loop + t_reac

    def mean_time(self):
        """``E τ = E[T₀] + ((1 − p)/p)·E[T_loop] + E[T_reac]``."""
        return self._time(self.p, self.t_loop, self.t_first, self.t_reactive)

    def mean_time_ci(self, level=0.95):
        """Interval of ``E τ``: the ends of ``p``'s interval and of the loop time's (a
        normal interval from its standard error), combined at their worst."""
        lo_p, hi_p = self.p_ci(level)
        zq = float(_st.norm.ppf(0.5 + level / 2))
        lo_l = max(0.0, self.t_loop - zq * self.t_loop_se)
        hi_l = self.t_loop + zq * self.t_loop_se
        lo = self._time(hi_p, lo_l, max(0.0, self.t_first - zq * self.t_first_se),
                        max(0.0, self.t_reactive))
        hi = self._time(lo_p, hi_l, self.t_first + zq * self.t_first_se, self.t_reactive)
        return lo, hi

    def rate(self):
        return 1.0 / self.mean_time()

    def rate_ci(self, level=0.95):
        lo, hi = self.mean_time_ci(level)
        return (1.0 / hi if hi > 0 else np.inf), (1.0 / lo if lo > 0 else np.inf)

    def summary(self):
        lo, hi = self.mean_time_ci()
        return {"method": "ams", "p": self.p, "p_ci95": list(self.p_ci()),
                "mean_time": self.mean_time(), "mean_time_ci95": [lo, hi],
                "rate": self.rate(), "t_first": self.t_first, "t_loop": self.t_loop,
                "t_reactive": self.t_reactive, "levels": list(self.levels),
                "n_runs": self.n_runs, "n_replicas": self.n_replicas, "k": self.k,
                "iterations": self.iterations.tolist(), "cost_lane_steps": self.cost,
                "wall_time_s": self.wall_time, "failed": self.failed,
                "diverged": self.diverged, "dt": self.dt, "phase_score": self.phase_score,
                "directions": self.directions, "warmup": self.warmup,
                "extinct": self.extinct, "state_mass": self.state_mass}

    def __repr__(self):
        lo, hi = self.mean_time_ci()
        return (f"AMSResult(p={self.p:.4g}, mean_time={self.mean_time():.4g} "
                f"[{lo:.4g}, {hi:.4g}], runs={self.n_runs}, replicas={self.n_replicas}, "
                f"k={self.k})")


_MAX_WARM_LOOPS = 10_000
WARMUP_MEMORIES = 5  # default warm-up, in memory times of the model (``_warmup_time``)


def _warmup_time(model, warmup):
    """SDE time after which the direct run's loops sample μ and ``T_loop``: ``warmup`` if
    given, else ``WARMUP_MEMORIES`` times the model's ``memory_time()`` — ``η/(1 − β₂)``,
    the time constant of the second-moment EMA of Adam, Adai, the Lévy Adam/AdaL and
    ``sd.optim``'s adam/adai/adal — and 0 for a model whose state is its position and
    velocity alone. An unknown memory (a plain optax optimizer with a second moment) is
    warned about and taken as 0."""
    if warmup is not None:
        _checks.scalar("warmup", warmup)
        return float(_checks.real("warmup", warmup, nonnegative=True))
    memory = getattr(model, "memory_time", lambda: 0.0)()
    if memory is None:
        import warnings

        warnings.warn(f"{type(model).__name__}: the model keeps a memory of its start (e.g. "
                      f"a second-moment EMA) whose length sdesim cannot read, so the "
                      f"direct run samples the entrances on Sigma after its first loop; "
                      f"pass warmup= (SDE time, e.g. {WARMUP_MEMORIES}·lr/(1 − b2))",
                      RuntimeWarning, stacklevel=3)
        return 0.0
    return WARMUP_MEMORIES * float(memory)


def _mean_se(x):
    x = np.asarray(x, float)
    if x.size == 0:
        return np.nan, np.nan
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else np.inf


@jax.jit
def _clone_keys(key, runs, tags, slots):
    """Noise key of replica ``slot`` created at ``tag`` in run ``run``: a pure function of
    (key, run, iteration, replica)."""
    one = lambda r, t, s: jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(
        key, r), t), s)
    return jax.random.key_data(jax.vmap(one)(runs, tags, slots))


def _ams_runs(runner, key, runs, orig, orig_step, t_sigma, n, k, z_a, max_iterations):
    """Independent AMS runs ``runs`` side by side (their clones share each kernel call;
    results per run do not depend on which runs share it). ``orig`` holds ``len(runs)·n``
    start states (run-major). Returns per run ``p̂``, iterations, and the reactive steps
    of the replicas that ended in B, plus the numbers of failed and diverged segments."""
    runs = np.asarray(runs, np.int64)
    n_r = runs.size
    eps = float(np.finfo(runner.dtype).eps)
    tot = n_r * n
    w0 = int(jax.tree_util.tree_leaves(orig)[0].shape[0])  # _pad(tot): slots >= tot idle
    rr = np.repeat(runs, n)
    keys = _clone_keys(key, jnp.asarray(_hpad(rr, w0), jnp.uint32),
                       jnp.full(w0, _TAG_INIT + 1, jnp.uint32),
                       jnp.asarray(_hpad(np.tile(np.arange(n), n_r), w0), jnp.uint32))
    _, end_step, best, status = runner.run(orig, orig_step, keys, np.inf, z_a, tot)[:4]
    failed = int(np.sum(status == CAPPED))
    diverged = int(np.sum(status == DIVERGED))
    best = np.where(status == EXITED, np.inf, best).reshape(n_r, n)
    end_step = end_step.reshape(n_r, n).copy()
    orig_step = np.asarray(orig_step)[:tot].reshape(n_r, n).copy()
    t_sigma = np.asarray(t_sigma)[:tot].reshape(n_r, n).copy()
    weight = np.ones(n_r)
    iters = np.zeros(n_r, np.int64)
    done = np.zeros(n_r, bool)
    extinct = np.zeros(n_r, bool)
    rngs = [np.random.default_rng(np.asarray(jax.random.key_data(jax.random.fold_in(key, r)))
                                  .astype(np.uint64).tolist()) for r in runs]
    while not done.all():
        rows, kid, par, zs = [], [], [], []
        for i in np.flatnonzero(~done):
            z = np.partition(best[i], k - 1)[k - 1]
            if z == np.inf:
                done[i] = True
                continue
            if iters[i] >= max_iterations:
                raise ValueError(f"AMS run {runs[i]} did not finish in max_iterations = "
                                 f"{max_iterations}: raise it or move the levels")
            # maxima within rounding of the level are ties: the same peak of one path,
            # computed in two compiled programs (a parent's run and its clone's re-run,
            # or two clones of one parent), can differ in its last bits; had the higher
            # one survived as a parent, its re-run could peak at z itself, never cross
            # it, and run to the cap (seen: 1 of ~20 000 clones, Momentum in the 1-D
            # double well at ΔU/T = 15, float32). So the kill level is z + 8 ulps of z
            # (the re-run still looks for the first score above z: a clone can start
            # at most those 8 ulps below the kill level)
            zk = z + 8 * eps * abs(z)
            killed = np.flatnonzero(best[i] <= zk)
            alive = np.flatnonzero(best[i] > zk)
            if alive.size == 0:  # every replica at or below the level: p̂ = 0
                weight[i], done[i], extinct[i] = 0.0, True, True
                continue
            weight[i] *= 1 - killed.size / n
            rows.append(np.full(killed.size, i))
            kid.append(killed)
            par.append(alive[rngs[i].integers(0, alive.size, killed.size)])
            zs.append(np.full(killed.size, z))
        if not rows:
            break
        rows, kid, par, zs = (np.concatenate(x) for x in (rows, kid, par, zs))
        m = rows.size
        wm = _pad(m)
        flat_par = rows * n + par
        flat_kid = np.concatenate([rows * n + kid, np.full(wm - m, w0)])  # w0: dropped
        # re-run each parent's path from its origin to its first score > z (its noise is
        # a pure function of its key, so this is the very same path), then run the clone
        # on from there with its own key: both in one lane
        new_keys = _clone_keys(key, jnp.asarray(_hpad(runs[rows], wm), jnp.uint32),
                               jnp.asarray(_hpad(_TAG_INIT + 2 + iters[rows], wm),
                                           jnp.uint32),
                               jnp.asarray(_hpad(kid, wm), jnp.uint32))
        _, fstep, fbest, fstatus, cst, cstep, in_b = runner.run(
            _take(orig, flat_par), orig_step[rows, par], _take(keys, flat_par), zs,
            -np.inf, m, cont=(new_keys, np.inf, z_a))
        failed += int(np.sum(fstatus == CAPPED))
        diverged += int(np.sum(fstatus == DIVERGED))
        fbest = np.where((fstatus == EXITED) | in_b, np.inf, fbest)
        ix = jnp.asarray(flat_kid, jnp.int32)
        orig, keys = _put((orig, keys), ix, (cst, new_keys))
        orig_step[rows, kid] = cstep
        t_sigma[rows, kid] = t_sigma[rows, par]
        end_step[rows, kid] = np.where(in_b, cstep, fstep)
        best[rows, kid] = fbest
        iters[np.unique(rows)] += 1
    in_b = best == np.inf
    p = weight * in_b.mean(axis=1)
    reac = [(end_step[i] - t_sigma[i])[in_b[i]] for i in range(n_r)]
    return p, iters, reac, failed, diverged, int(extinct.sum())


@eqx.filter_jit
def _scores(score, model, states):
    return jax.vmap(lambda st: _on_state(score, model, st))(states)


def _auto_levels(runner, model, theta0, score, s0, n, key, max_pages):
    """Default ``(z_A, z_Σ)`` from the score's distribution in the basin: ``n`` direct
    paths from θ₀ run in chunks of doubling length (fresh counter-based noise per chunk)
    until the median and the 90% quantile of the score over the paths still inside move
    by less than 5% of ``q₉₀ − s₀`` (or two standard errors) from one chunk to the next;
    then ``z_A =
    max(median, s₀)`` (A is visited about half the time: short loops) and ``z_Σ = q₉₀``.
    Scale-free: a box in many dimensions, whose largest-coordinate score sits far from
    its value at θ₀ at equilibrium, gets levels it actually visits."""
    kb = jax.random.fold_in(key, _TAG_LEVELS)
    states = jax.vmap(lambda _: model.init(theta0))(jnp.arange(_pad(n)))
    steps = np.zeros(n, np.int64)
    pages, used, prev, prev_se = 4, 0, None, None
    for chunk in range(64):
        pages = min(pages, max_pages - used)
        if pages <= 0:
            break
        st, stp, _, status = runner.run(states, steps, _keys(kb, chunk, np.arange(
            _pad(n))), np.inf, -np.inf, n, max_pages=pages)[:4]
        used += pages
        keep = np.flatnonzero(status == CAPPED)  # still inside after the chunk
        if keep.size < max(10, n // 10):
            raise ValueError(f"levels: {n - keep.size} of {n} direct paths left the basin "
                             f"within {used * K} steps: the escape is not rare (use "
                             f"sd.escape), or pass levels")
        states, steps, n = _take(st, keep), stp[keep], int(keep.size)
        sc = np.asarray(_scores(runner.score, model, states))[:n]
        q = np.quantile(sc, [0.5, 0.9])
        # standard errors of the quantiles from order statistics: q(u ± sqrt(u(1−u)/n))
        du = np.sqrt(np.array([0.25, 0.09]) / n)
        se = (np.quantile(sc, np.minimum([0.5, 0.9] + du, 1))
              - np.quantile(sc, np.maximum([0.5, 0.9] - du, 0))) / 2
        if prev is not None and np.all(np.abs(q - prev) <= np.maximum(
                0.05 * max(q[1] - s0, 1e-12), 2 * np.hypot(se, prev_se))):
            break
        prev, prev_se, pages = q, se, 2 * pages
    z_a, z_s = max(float(q[0]), s0), float(q[1])
    if not z_a < z_s:
        raise ValueError(f"levels: the score's distribution in the basin is degenerate "
                         f"(median {q[0]:.4g}, 90% quantile {z_s:.4g}, score(theta0) "
                         f"{s0:.4g}); pass levels")
    return z_a, z_s


def splitting_probability(model, loss, start, exit, *, level_a, dt, key, n_replicas=100,
                          k=None, score=None, n_runs=1, t_max=None, bridge=True,
                          max_iterations=100_000, phase_score=True, directions=None):
    """AMS estimates of ``P(reach the exit before score <= level_a | start)`` from a fixed
    start point (all replicas start at ``start``, velocity zero), one per run: the
    splitting core of ``escape_ams`` on its own (unbiased for the discrete chain; a
    model with a velocity is scored on its phase, ``phase_score`` and ``directions`` as
    there).
    Returns ``(p̂ per run (n_runs,), iterations per run)``."""
    n = _checks.integer("n_replicas", n_replicas, minimum=2)
    k = max(1, n // 4) if k is None else _checks.integer("k", k, minimum=1)
    if k >= n:
        raise ValueError(f"k must be < n_replicas ({n}), got {k}")
    n_runs = _checks.integer("n_runs", n_runs, minimum=1)
    t_max = 1e5 * float(dt) if t_max is None else t_max
    model, loss, start, exit, un = _pytrees.flatten_problem(model, loss, start, exit)
    if un is not None and score is not None:
        score = _pytrees.OnParams(score, un)
    directions = _flat_directions(directions, un)
    _, start, exit, key = _engine.check_inputs(model, loss, start, exit, 1, dt, t_max, key)
    score = default_score(exit, start) if score is None else score
    if float(score(start)) <= float(level_a):
        raise ValueError(f"level_a = {level_a} must be below score(start) = "
                         f"{float(score(start)):.4g}")
    sscore = _state_score(phase_score, model, loss, start, score, dt, directions)
    runner = _Runner(model, loss, exit, sscore, dt, start.shape[0], bridge,
                     max(1, math.ceil(_engine.n_steps(t_max, dt) / K)), key)
    states = jax.vmap(lambda _: model.init(start))(jnp.arange(_pad(n * n_runs)))
    zero = np.zeros(n * n_runs, np.int64)
    p, iters, *_ = _ams_runs(runner, key, np.arange(n_runs), states, zero, zero, n, k,
                               float(level_a), max_iterations)
    return p, iters


def escape_ams(model, loss, theta0, exit, *, dt: float, key: jax.Array,
               n_replicas: int = 200, k: int | None = None, score=None,
               levels: tuple[float, float] | None = None, n_runs: int = 8,
               n_direct: int | None = None, t_max: float | None = None, bridge: bool = True,
               max_iterations: int = 100_000, phase_score: bool = True,
               directions=None, warmup: float | None = None) -> AMSResult:
    """Mean escape time by adaptive multilevel splitting (see the module docstring).

    Args:
      model, loss, theta0, exit, dt, key: as ``sd.escape`` (``theta0`` near the minimum).
      n_replicas: replicas per AMS run (``n``); k: replicas killed per iteration at least
        (default ``n // 4``; ties kill more). The relative variance of ``p̂`` is about
        ``|ln p|·(k/n)/((1 − k/n)·|ln(1 − k/n)|)/n`` per run with a good score (1.16
        ``|ln p|/n`` at ``k = n/4``, against ``|ln p|/n`` at ``k = 1``) while the number of
        iterations, ``|ln p|/|ln(1 − k/n)|``, falls from ``n|ln p|`` to ``3.5|ln p|``: the
        clones of an iteration run as lanes together, so large ``k`` is cheap.
      score: ``θ -> scalar`` increasing towards the exit; default ``default_score`` of
        the exit where it has one, else ``"path"``: the arc length along the
        minimum-energy path from the minimum near ``θ₀`` over its lowest saddle
        (``sdesim.critical.escape_path``; 0 at the saddle, negative in the basin) — a
        reaction coordinate for any landscape, found, not written.
      levels: ``(z_A, z_Σ)`` with ``score(θ₀) <= z_A < z_Σ < score on the exit``; by
        default from the score's distribution in the basin (``_auto_levels``: a direct
        run from θ₀ until that distribution settles; ``z_A`` its median or ``score(θ₀)``
        if higher, ``z_Σ`` its 90% quantile), which needs ``score(θ₀) < 0``.
      n_runs: independent AMS runs (the interval comes from their spread).
      n_direct: paths of the direct run that measures ``T₀``, ``T_loop`` and samples μ
        (default ``2·n_replicas``).
      t_max: longest SDE time one replica segment or direct-run stage may take (default
        ``10⁵·dt``); replicas that reach neither A nor B by then are reported in
        ``failed`` (and warned about), never counted as escapes.
      bridge: Brownian-bridge exit test (Gaussian overdamped models, half-space/box).
      phase_score: a model with a velocity (Momentum, Adam, Adai, Underdamped) is split on
        its position and velocity, ``PhaseScore`` of ``score`` (``phase_score``): the
        amplitude the energy along the escape direction would reach (light friction,
        damping ratio ``γ/2ω < ½``), or where the velocity carries the score before it
        relaxes (heavier friction). ``False``:
        the position alone, which with light friction beyond ΔL/T ≈ 5 gives runs whose
        ``p̂`` differ by orders of magnitude (the basin set ``A`` is then crossed every
        half oscillation); for ``½ <= γ/2ω < 1`` it measured as good or better than the
        look-ahead (docs: rare events). The energy's kinetic part takes the model's mass at θ₀. A
        score with an ``on_state(model, state)`` method is used as it is (e.g.
        ``phase_score(..., state_mass=True)``: the mass the state carries;
        ``quasi_potential=True``: each mode's energy over its own temperature).
      directions: escape directions ``(K, d)`` (or K pytrees shaped like ``theta0``), e.g.
        ``[s.direction for s in sd.theory.predict(...).saddles]``: the energy score takes
        the energy along each (the largest) rather than in all coordinates, which in many
        coordinates is mostly the thermal energy of directions that do not escape
        (``PhaseScore``; docs: rare events). ``"saddles"``: those of the saddles found
        from θ₀ (``sdesim.critical.saddle_directions``; only when the energy score is
        used). Default: all coordinates.
      warmup: SDE time the direct run's paths loop Σ → A → Σ before their entrances on Σ
        sample μ and their loops measure ``T_loop``. The cycle formula needs the
        entrances of the settled process; a model that remembers beyond its position and
        velocity (Adam's and Adai's second-moment EMA, time constant ``η/(1 − β₂)``)
        starts from ``v = 0`` and keeps each loop's history for several loops. Default:
        5 of the model's ``memory_time()`` (that time constant for Adam, Adai, the Lévy
        Adam/AdaL and ``sd.optim``'s adam/adai/adal; 0 — the first loop — for a model
        whose state is its position and velocity). A plain optax optimizer whose state
        holds a second moment (``nu``) has a memory sdesim cannot read: warned about and
        taken as 0, pass ``warmup``; your own models: define ``memory_time``.

    Returns:
      ``AMSResult``: ``p``, ``p_ci()``, ``mean_time()``, ``mean_time_ci()``, ``rate()``,
      ``rate_ci()``, the cycle times, iterations and cost.
    """
    t_start = _time.perf_counter()
    n = _checks.integer("n_replicas", n_replicas, minimum=2)
    k = max(1, n // 4) if k is None else _checks.integer("k", k, minimum=1)
    if k >= n:
        raise ValueError(f"k must be < n_replicas ({n}), got {k}")
    n_runs = _checks.integer("n_runs", n_runs, minimum=1)
    n_direct = 2 * n if n_direct is None else _checks.integer("n_direct", n_direct, minimum=2)
    max_iterations = _checks.integer("max_iterations", max_iterations, minimum=1)
    t_max = 1e5 * float(dt) if t_max is None else t_max
    model, loss, theta0, exit, un = _pytrees.flatten_problem(model, loss, theta0, exit)
    if un is not None and callable(score):
        score = _pytrees.OnParams(score, un)
    directions = _flat_directions(directions, un)
    _, theta0, exit, key = _engine.check_inputs(model, loss, theta0, exit, 1, dt, t_max, key)
    if exit is None:
        raise TypeError("exit is required: an exit from sdesim.exits")
    t_warm = _warmup_time(model, warmup)
    if score is None:
        try:
            score = default_score(exit, theta0)
        except ValueError:
            score = "path"
    if isinstance(score, str) and score == "path":
        from . import critical

        score = critical.path_coordinate(critical.escape_path(loss, theta0))
    elif not callable(score):
        raise TypeError(f"score must be a callable theta -> scalar, got "
                        f"{type(score).__name__}")
    s_out = jax.eval_shape(score, theta0)
    if s_out.shape != ():
        raise ValueError(f"score must return a scalar, got shape {s_out.shape}")
    s0 = float(score(theta0))
    if not np.isfinite(s0):
        raise ValueError(f"score(theta0) = {s0} must be finite")
    # the score must increase towards the exit at theta0 (a step along its gradient
    # moves towards the exit's boundary)
    g = np.asarray(jax.grad(score)(theta0), float)
    if not np.all(np.isfinite(g)) or not np.any(g != 0):
        raise ValueError("score must be differentiable with a non-zero gradient at theta0 "
                         "(increasing towards the exit)")
    towards = _towards_exit(exit, np.asarray(theta0, float))
    if towards is not None and float(g @ towards) <= 0:
        raise ValueError("score must increase towards the exit at theta0: its gradient "
                         "there points away from the exit (did you flip its sign?)")
    _engine.warn_if_unstable(model, loss, theta0, dt)
    if model.noise_kind == "levy":
        import warnings

        warnings.warn("a Lévy-driven model leaves a basin in one jump, not by climbing the "
                      "score: splitting's runs then differ by orders of magnitude and an "
                      "interval from a few runs can miss the mean time. Its mean escape "
                      "time grows only polynomially with the barrier, so sd.escape "
                      "simulates it directly", RuntimeWarning, stacklevel=2)
    sscore = _state_score(phase_score, model, loss, theta0, score, dt, directions)
    d = theta0.shape[0]
    max_pages = max(1, math.ceil(_engine.n_steps(t_max, dt) / K))
    runner = _Runner(model, loss, exit, sscore, dt, d, bridge, max_pages, key)
    if levels is None:
        if s0 >= 0:
            raise ValueError(f"score(theta0) = {s0:.4g} >= 0: the default levels need a "
                             f"score that is negative inside and 0 on the exit; pass levels")
        levels = _auto_levels(runner, model, theta0, score, s0, n_direct, key, max_pages)
    z_a, z_s = (float(v) for v in levels)
    if not (s0 <= z_a < z_s):
        raise ValueError(f"levels must satisfy score(theta0) = {s0:.4g} <= z_A < z_Sigma, got "
                         f"levels=({z_a:.4g}, {z_s:.4g})")
    if isinstance(score, ExitScore) and not isinstance(sscore, PhaseScore) and not z_s < 0:
        raise ValueError(f"levels: z_Sigma = {z_s:.4g} must be below 0, the default score's "
                         f"value on the exit's boundary")
    dtv = float(dt)
    failed = diverged = 0

    # -- direct run: T0, entrance states on Σ, loops Σ -> A -> Σ ------------------------
    kd = jax.random.fold_in(key, _TAG_DIRECT)
    init = jax.vmap(lambda _: model.init(theta0))(jnp.arange(_pad(n_direct)))
    st, stp, _, status = runner.run(init, np.zeros(n_direct, np.int64),
                                    _keys(kd, 0, np.arange(_pad(n_direct))), z_s, -np.inf,
                                    n_direct)[:4]
    reached = status == UP
    failed += int(np.sum(status == CAPPED))
    diverged += int(np.sum(status == DIVERGED))
    if not reached.any():
        raise ValueError(f"no direct path from theta0 reached the level z_Sigma = {z_s:.4g} "
                         f"within t_max = {t_max:g}: lower levels[1] or raise t_max")
    t_first = stp[reached] * dtv
    ent_states, ent_steps = _take(st, np.flatnonzero(reached)), stp[reached]
    # Σ -> A (or B) then A -> Σ: loop durations and fresh entrances (coming from A). A
    # model with a memory (Adam's, Adai's second-moment EMA) loops on until the loop's
    # start is past the warm-up, so that μ and T_loop are those of the settled process
    cur, cur_steps = ent_states, ent_steps
    loops, mu_parts = [], []
    for rnd in range(_MAX_WARM_LOOPS):
        m = int(cur_steps.size)
        st2, stp2, _, status2 = runner.run(cur, cur_steps,
                                           _keys(kd, 1 + 2 * rnd, np.arange(_pad(m))),
                                           np.inf, z_a, m)[:4]
        back = status2 == DOWN
        failed += int(np.sum(status2 == CAPPED))
        diverged += int(np.sum(status2 == DIVERGED))
        if not back.any():
            if rnd == 0:
                raise ValueError("no direct path returned from Sigma to A: the levels are "
                                 "too close to the exit (or A too small); lower levels")
            break
        n_back = int(back.sum())
        st3, stp3, _, status3 = runner.run(_take(st2, np.flatnonzero(back)), stp2[back],
                                           _keys(kd, 2 + 2 * rnd, np.arange(_pad(n_back))),
                                           z_s, -np.inf, n_back)[:4]
        again = status3 == UP
        failed += int(np.sum(status3 == CAPPED))
        diverged += int(np.sum(status3 == DIVERGED))
        start, end = cur_steps[back][again], stp3[again]
        warm = start * dtv >= t_warm
        loops.append((end - start)[warm] * dtv)
        idx = np.flatnonzero(again)
        if warm.any():
            mu_parts.append((_take(st3, idx[warm]), end[warm]))
        if warm.all():
            break
        cur, cur_steps = _take(st3, idx[~warm]), end[~warm]
    loops = np.concatenate(loops)
    if loops.size < 2:
        raise ValueError("fewer than 2 loops Sigma -> A -> Sigma in the direct run"
                         + (f" after the warm-up t = {t_warm:g}" if t_warm > 0 else "")
                         + ": raise n_direct or t_max")
    if not mu_parts:
        raise ValueError(f"no direct path looped Sigma -> A -> Sigma past the warm-up t = "
                         f"{t_warm:g} within {_MAX_WARM_LOOPS} loops: lower warmup or "
                         f"the levels")
    mu_steps = np.concatenate([s for _, s in mu_parts])
    n_mu = int(mu_steps.size)
    mu_states = _take(jax.tree_util.tree_map(
        lambda *a: jnp.concatenate(a), *[jax.tree_util.tree_map(
            lambda x, c=s.size: x[:c], st) for st, s in mu_parts]), np.arange(n_mu))
    mu_start = mu_steps.copy()

    # -- AMS runs ----------------------------------------------------------------------
    pick = np.concatenate([np.asarray(jax.random.randint(
        jax.random.fold_in(jax.random.fold_in(key, r), _TAG_INIT), (n,), 0, n_mu))
        for r in range(n_runs)])
    p_runs, iters, reac, fail_r, div_r, extinct = _ams_runs(
        runner, key, np.arange(n_runs), _take(mu_states, pick), mu_steps[pick],
        mu_start[pick], n, k, z_a, max_iterations)
    failed += fail_r
    diverged += div_r
    reac = np.concatenate(reac) * dtv if len(reac) else np.zeros(0)
    if failed:
        import warnings

        warnings.warn(f"{failed} paths or replicas reached neither A nor the exit within "
                      f"t_max = {t_max:g} (counted as failures to escape, which biases p "
                      f"low): raise t_max", RuntimeWarning, stacklevel=2)
    if diverged:
        import warnings

        warnings.warn(f"{diverged} paths or replicas diverged (non-finite state; counted as "
                      f"failures to escape): use a smaller dt or JAX_ENABLE_X64=1",
                      _engine.DivergenceWarning, stacklevel=2)
    if extinct:
        import warnings

        warnings.warn(f"{extinct} of {n_runs} AMS runs went extinct (every replica at or "
                      f"below a level: p = 0 for that run, which keeps the mean unbiased "
                      f"but says the replicas are too few for this score"
                      + ("; with every run at 0 the interval of the mean time is "
                         "unbounded above" if extinct == n_runs else "")
                      + "): raise n_replicas", RuntimeWarning, stacklevel=2)
    p_runs = np.asarray(p_runs)
    tf, tf_se = _mean_se(t_first)
    tl, tl_se = _mean_se(loops)
    tr = float(np.mean(reac)) if reac.size else 0.0
    return AMSResult(p=float(p_runs.mean()), p_runs=p_runs, t_first=tf, t_first_se=tf_se,
                     t_loop=tl, t_loop_se=tl_se, t_reactive=tr, levels=(z_a, z_s),
                     iterations=np.asarray(iters), n_replicas=n, k=k, cost=runner.steps,
                     wall_time=_time.perf_counter() - t_start, dt=dtv,
                     lr=_engine._lr_of(model), failed=failed,
                     diverged=diverged, phase_score=isinstance(sscore, PhaseScore),
                     directions=int(sscore.u.shape[0]) if isinstance(sscore, PhaseScore)
                     and sscore.u is not None else 0, warmup=t_warm, extinct=extinct,
                     state_mass=isinstance(sscore, PhaseScore) and sscore.kind == "energy"
                     and sscore.state_mass)
