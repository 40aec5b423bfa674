"""A prediction for any landscape: ``predict(model, loss, theta0)``.

The closed forms need the minimum, the saddle(s) out of its basin, the barrier, the escape
direction and the Hessians there; ``sdesim.critical`` finds them for any loss. ``predict``
then evaluates, per model:

* ``Langevin(T)`` and ``SGD`` with isotropic noise ``σ²`` (the Langevin SDE at
  ``T = ησ²/2``): Eyring–Kramers (F8) per saddle, ``τ_i = 2π/|λ₋| · sqrt(|det H_s|/det
  H_a) · exp(ΔL_i/T)``; exact as ``ΔL/T → ∞`` for this reversible, isotropic diffusion.
* ``SGD`` with Hessian-shaped noise ``C = |H|/B``: Xie et al.'s formula (F14) along the
  escape direction ``e`` (the saddle's unstable mode): ``τ = (2π/H_ae) exp(2BΔL/(η H_ae))``
  with ``H_ae = eᵀ H_a e`` (their ``s = 1``, the leading behaviour).
* ``Momentum`` with Hessian noise: F16, the SGD exponent at the momentum temperature and
  the prefactor ``2π/λ_be`` of the underdamped saddle (``theory.momentum_escape_time``);
  ``dynamics`` gives its mass, friction and temperature along ``e``.

* ``Underdamped(M, γ, T)``: Kramers–Langer (F10 in d dimensions), ``τ = 2π/λ⁺ ·
  sqrt(|det H_s|/det H_a) · exp(ΔL/T)``, ``λ⁺`` the unstable rate of the linearized
  dynamics at the saddle.
* ``Adam`` with Hessian noise: F17, the exponent ``2ΔL·sqrt(B)/(η·sqrt(H_ae))`` (v̂ = H/B
  frozen at the minimum) and the underdamped saddle's prefactor; ``Adai`` with Hessian
  noise: F18, the SGD exponent with Adai's inertia along ``e``.

Several saddles out of one basin: the escape rates add, ``τ = 1/Σ_i τ_i⁻¹`` (independent
exits, each asymptotically exponential). Other models give ``mean_time = None`` with the
reason.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .optimizers import optimizer_dynamics, sgd_escape_exponent

DENSE_MAX = 5000  # predict forms the Hessians (their determinants enter the prefactor)


@dataclasses.dataclass(frozen=True)
class Saddle:
    point: np.ndarray
    barrier: float  # L(saddle) - L(minimum)
    direction: np.ndarray  # the unstable eigenvector at the saddle (unit)
    hessian: np.ndarray
    mean_time: float | None = None  # this saddle's own escape time (model's formula)
    log_mean_time: float | None = None  # its logarithm (finite where mean_time overflows)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """``mean_time`` (SDE time; None where no formula applies, ``reason`` says why; ``inf``
    beyond the float range, where ``log_mean_time`` still holds it), the ``formula`` and
    its ``assumptions``, the ``minimum`` and its Hessian, the ``saddles`` (each with
    barrier, direction, Hessian and its own time), and ``temperature`` (the model's
    effective temperature where it has one). ``exact``: the exact mean exit time from
    ``theta0`` (a :class:`sdesim.theory.GridMFPT`; ``exact_mean_time`` its value) where
    ``predict`` was given the exit and a box and could solve the backward equation."""

    mean_time: float | None
    formula: str
    assumptions: str
    minimum: np.ndarray
    hessian_min: np.ndarray
    saddles: tuple
    temperature: float | None = None
    reason: str | None = None
    dynamics: dict | None = None  # mass, friction, temperature along the escape direction
    log_mean_time: float | None = None
    exact: object = None  # a theory.GridMFPT where predict(..., exit=, box=) could solve

    @property
    def exact_mean_time(self):
        """The exact mean exit time (backward equation on a grid; ``predict(...,
        exit=..., box=...)`` for Langevin-type models in d ≤ 3), or None."""
        return None if self.exact is None else self.exact.mean_time

    @property
    def barrier(self):
        return min(s.barrier for s in self.saddles)


def _h_ae(saddle_info, h_a):
    """The minimum's curvature along the (first) saddle's unstable direction."""
    e = saddle_info[2]
    return float(e @ h_a @ e)


def _point(x):
    """A point in the run's float dtype (the loss may not take NumPy float64 under
    float32)."""
    return jnp.asarray(x, jnp.result_type(float))


def _hessian(loss, x):
    h = np.asarray(jax.hessian(loss)(_point(x)), np.float64)
    return 0.5 * (h + h.T)  # autodiff's float32 Hessian is symmetric only to rounding


def _log_det_ratio(h_a, h_s):
    """log sqrt(|det H_s| / det H_a)."""
    return 0.5 * float(np.sum(np.log(np.abs(np.linalg.eigvalsh(h_s))))
                       - np.sum(np.log(np.linalg.eigvalsh(h_a))))


def _log_eyring_kramers(barrier, h_a, h_s, temp):
    """log of Eyring–Kramers' 2π/|λ₋| · sqrt(|det H_s|/det H_a) · exp(ΔL/T)."""
    lam = abs(float(np.linalg.eigvalsh(h_s)[0]))
    return float(np.log(2 * np.pi / lam) + _log_det_ratio(h_a, h_s) + barrier / temp)


def _log_langer(barrier, h_a, h_s, temp, mass, gamma):
    """log of Kramers–Langer's 2π/λ⁺ · sqrt(|det H_s|/det H_a) · exp(ΔL/T)."""
    w2 = abs(float(np.linalg.eigvalsh(h_s)[0])) / mass
    lam_plus = w2 / (np.sqrt(0.25 * gamma**2 + w2) + 0.5 * gamma)  # no cancellation
    return float(np.log(2 * np.pi / lam_plus) + _log_det_ratio(h_a, h_s) + barrier / temp)


def _log_underdamped_saddle(barrier, dyn, h_be):
    """log(2π/λ_be) + ΔL/T for a phase-space optimizer with ``dyn``'s mass, friction and
    temperature; λ_be the unstable rate of its saddle, curvature ``h_be`` < 0."""
    m = float(np.asarray(dyn["mass"]))
    gm = float(np.asarray(dyn["friction"])) * m
    lam = (np.sqrt(gm**2 + 4 * m * abs(h_be)) - gm) / (2 * m)
    return float(np.log(2 * np.pi / lam) + barrier / float(np.asarray(dyn["temperature"])))


def _adaptive_time(model, barrier, h_ae, h_be, h_a, e, b):
    """Adam (F17) / Adai (F18) log escape time along ``e`` and their dynamics there."""
    from .. import models as M

    lr = float(model.lr)
    c = h_ae / b  # the noise variance along e at the minimum, C = H/B
    if isinstance(model, M.Adam):
        eps = float(model.eps)
        dyn = optimizer_dynamics("adam", lr, c, beta1=float(model.beta1), vhat=c, eps=eps)
    else:
        vhat = np.clip(np.diag(h_a), 0.0, None) / b
        ratio = float(e**2 @ vhat / vhat.mean()) if vhat.mean() > 0 else 1.0
        beta1 = float(np.clip(1 - float(model.beta0) * ratio, 0.0, 1 - float(model.eps)))
        dyn = optimizer_dynamics("adai", lr, c, beta1=beta1)
        dyn["beta1"] = beta1
    return _log_underdamped_saddle(barrier, dyn, h_be), dyn


def _bounds_basin(loss, saddle, x_min):
    """Does the saddle bound the basin of ``x_min``: does the gradient flow from it,
    started a little along ± its unstable mode, end at ``x_min`` on one side?"""
    from .. import critical

    e = critical.lowest_modes(loss, saddle, 1)[1][0]
    step = 1e-3 * max(1.0, float(np.linalg.norm(saddle)))
    tol = 1e-4 * max(1.0, float(np.linalg.norm(x_min)))
    for sign in (1.0, -1.0):
        try:  # the gradient flow first: BFGS alone may jump into another basin
            m = critical.descend(loss, _point(saddle + sign * step * e))
            m = np.asarray(critical.minimize(loss, m), np.float64)
        except RuntimeError:
            continue
        if np.linalg.norm(m - np.asarray(x_min, np.float64)) < tol:
            return True
    return False


def _find_saddles(loss, x_min, n_modes, dt, steps):
    """Index-1 saddles reached by gentlest ascent from ``x_min`` along ± each of the
    ``n_modes`` softest Hessian modes, duplicates removed, kept only if they bound the
    basin of ``x_min`` (gentlest ascent can climb past the basin's own saddles)."""
    from .. import critical

    _, vecs = critical.lowest_modes(loss, x_min, n_modes)
    found = []
    for k in range(vecs.shape[0]):
        for sign in (1.0, -1.0):
            try:
                s = np.asarray(critical.saddle_from_minimum(loss, x_min, sign * vecs[k],
                                                            dt=dt, steps=steps), np.float64)
            except RuntimeError:
                continue
            scale = max(1.0, float(np.linalg.norm(s)))
            if all(np.linalg.norm(s - f) > 1e-6 * scale for f in found) and \
                    _bounds_basin(loss, s, x_min):
                found.append(s)
    return found


def predict(model, loss, theta0, *, saddles=None, n_modes: int = 2, dt: float = 1e-4,
            steps: int = 20_000, exit=None, box=None, grid_n=None) -> Prediction:
    """The theory's mean escape time of ``model`` from the basin of the minimum nearest
    ``theta0`` (downhill), for any loss. ``saddles``: the saddle points (each refined by
    Newton), or None to search them by gentlest ascent along ± the ``n_modes`` softest
    modes (``dt``, ``steps``: its step and length). Returns a ``Prediction``.

    ``exit`` and ``box = (lower, upper)``: for Langevin and isotropic SGD (reversible,
    isotropic) in d ≤ 3, also the *exact* mean time from ``theta0`` to leave ``exit``'s
    region, by :func:`sdesim.theory.mfpt_grid` on the box (``grid_n`` cells per side):
    ``Prediction.exact``. Eyring–Kramers is exact only as ΔL/T → ∞; on Müller–Brown it is
    19% short at ΔL/T = 10 and 11% at 20, where the grid agrees with splitting
    (``benchmarks/theory_vs_simulation.py``)."""
    from .. import critical
    from .. import models as M
    from .. import noise as N

    if (exit is None) != (box is None):
        raise ValueError("predict: give exit and box = (lower, upper) together (the exact "
                         "mean time solves the backward equation on that box), or neither")

    if np.size(theta0) > DENSE_MAX:
        raise ValueError(f"predict needs the Hessians' determinants at the minimum and the "
                         f"saddles (dense, d × d): d = {np.size(theta0)} exceeds "
                         f"{DENSE_MAX}; sdesim.critical finds the saddles of larger models "
                         f"by Hessian-vector products")
    x_min = critical.minimize(loss, theta0)
    if saddles is None:
        points = _find_saddles(loss, x_min, n_modes, dt, steps)
    else:
        points = []
        for s in saddles:
            p = critical.newton(loss, s)
            if critical.morse_index(loss, p) != 1:
                raise ValueError(f"saddle {np.asarray(s)} refines to {np.asarray(p)}, which "
                                 f"is not an index-1 saddle")
            points.append(np.asarray(p, np.float64))
    if not points:
        raise ValueError("no index-1 saddle found from the minimum: pass saddles= or raise "
                         "n_modes/steps")
    l_min = float(loss(_point(x_min)))
    h_a = _hessian(loss, x_min)
    info = []
    for p in points:
        h_s = _hessian(loss, p)
        lam, vec = np.linalg.eigh(h_s)
        info.append((p, float(loss(_point(p))) - l_min, vec[:, 0], h_s))

    temp, times, formula, assumptions, reason = None, None, "", "", None
    dynamics = None
    iso = isinstance(model, M.SGD) and isinstance(model.noise, N.Isotropic)
    if isinstance(model, M.Langevin) or iso:
        temp = (float(model.temperature) if isinstance(model, M.Langevin)
                else float(model.lr) * float(model.noise.variance) / 2.0)
        times = [_log_eyring_kramers(b, h_a, h_s, temp) for _, b, _, h_s in info]
        formula = "F8 Eyring–Kramers"
        assumptions = ("reversible isotropic diffusion dθ = −∇L dt + sqrt(2T) dW; "
                       "non-degenerate minimum and index-1 saddles; exact as ΔL/T → ∞ "
                       "(relative error O(T/ΔL)); rates of several saddles add")
    elif isinstance(model, M.SGD) and isinstance(model.noise, N.Hessian):
        b = float(model.noise.batch_size)
        times = []
        for _, barrier, e, _ in info:
            h_ae = float(e @ h_a @ e)  # F14: (2π/H_ae) exp(2BΔL/(ηH_ae))
            times.append(float(np.log(2 * np.pi / h_ae))
                         + sgd_escape_exponent(barrier, h_ae, float(model.lr), b))
        dynamics = optimizer_dynamics("sgd", float(model.lr), _h_ae(info[0], h_a) / b)
        formula = "F14 Xie et al. (s = 1), along the saddle's unstable direction"
        assumptions = ("SGD diffusion with C = H/B (Hessian noise; floor ignored); "
                       "quadratic basin along the escape direction, H_ae = eᵀH_a e; "
                       "leading order in BΔL/(ηH_ae) ≫ 1; rates of several saddles add")
    elif isinstance(model, M.Momentum) and isinstance(model.noise, N.Hessian) and \
            model.alpha is None:
        b = float(model.noise.batch_size)
        beta3 = None if model.beta3 is None else float(model.beta3)
        kw = dict(beta1=float(model.beta1), beta3=beta3)
        times = [_log_underdamped_saddle(
            barrier, optimizer_dynamics("momentum", float(model.lr),
                                        _h_ae((p, barrier, e, h_s), h_a) / b, **kw),
            float(np.linalg.eigvalsh(h_s)[0])) for p, barrier, e, h_s in info]
        dynamics = optimizer_dynamics("momentum", float(model.lr),
                                      _h_ae(info[0], h_a) / b, **kw)
        formula = "F16 momentum (Xie et al., Adai §3), along the saddle's unstable direction"
        assumptions = ("phase-space SDE with mass M = η/β₃, friction γM = (1−β₁)/β₃, "
                       "C = H/B; the SGD exponent at the momentum temperature and the "
                       "prefactor 2π/λ_be of the underdamped saddle; leading order in small "
                       "noise; rates of several saddles add")
    elif isinstance(model, M.Underdamped):
        temp = float(model.temperature)
        mass, gamma = float(model.mass), float(model.friction)
        times = [_log_langer(b, h_a, h_s, temp, mass, gamma) for _, b, _, h_s in info]
        dynamics = dict(mass=mass, friction=gamma, temperature=temp)
        formula = "F10 Kramers–Langer (underdamped Eyring–Kramers)"
        assumptions = ("underdamped Langevin with scalar mass M and friction rate γ; "
                       "prefactor λ⁺/2π with λ⁺ = sqrt(γ²/4 + |λ₋|/M) − γ/2 the unstable "
                       "rate at the saddle, times sqrt(det H_a/|det H_s|); moderate-to-"
                       "strong friction (γ·action/T ≫ 1: below it energy diffusion limits "
                       "the rate, Mel'nikov–Meshkov); exact as ΔL/T → ∞; rates add")
    elif isinstance(model, (M.Adam, M.Adai)) and isinstance(model.noise, N.Hessian) and \
            model.alpha is None:
        b = float(model.noise.batch_size)
        times, dyns = [], []
        for _, barrier, e, h_s in info:
            t, dyn = _adaptive_time(model, barrier, float(e @ h_a @ e),
                                    float(np.linalg.eigvalsh(h_s)[0]), h_a, e, b)
            times.append(t)
            dyns.append(dyn)
        dynamics = dyns[0]
        if isinstance(model, M.Adam):
            formula = "F17 Adam (Xie et al., Adai §3), along the saddle's unstable direction"
            assumptions = ("phase-space SDE of Adam with v̂ frozen at its value at the "
                           "minimum, v̂ = C = H/B, read along the escape direction e "
                           "(exact when e is a coordinate axis: Adam's preconditioner is "
                           "diagonal); mass η(sqrt(v̂)+ϵ)/(1−β₁), friction force "
                           "sqrt(v̂)+ϵ, temperature ηC/(2(sqrt(v̂)+ϵ)): the exponent "
                           "2ΔL·sqrt(B)/(η·sqrt(H_ae)) (∝ H^{-1/2}); prefactor 2π/λ_be of "
                           "the underdamped saddle; leading order in small noise; rates add")
        else:
            formula = "F18 Adai (Xie et al. 2022), along the saddle's unstable direction"
            assumptions = ("phase-space SDE of Adai with v̂ = diag(H_a)/B at the minimum; "
                           "the inertia β₁ along e from v̂ₑ/mean(v̂) (clipped as Adai "
                           "does); mass η/(1−β₁), friction force 1, temperature ηC/2: "
                           "the SGD exponent 2BΔL/(ηH_ae); prefactor 2π/λ_be of the "
                           "underdamped saddle; leading order in small noise; rates add")
    else:
        reason = (f"no closed form for {type(model).__name__} with this noise here (Langevin, "
                  f"Underdamped; SGD with isotropic or Hessian noise; Momentum, Adam and "
                  f"Adai with Hessian noise)")
    log_mean = None
    if times is not None:  # log-times; the rates add: τ = 1/Σ 1/τ_i
        logs = np.asarray(times, np.float64)
        log_mean = float(-np.logaddexp.reduce(-logs))
        with np.errstate(over="ignore"):
            mean = float(np.exp(log_mean))
            sad = tuple(Saddle(p, b, e, h, float(np.exp(t)), float(t))
                        for (p, b, e, h), t in zip(info, logs, strict=True))
    else:
        mean = None
        sad = tuple(Saddle(p, b, e, h) for p, b, e, h in info)
    if dynamics is not None:
        dynamics = {k: float(np.asarray(v)) for k, v in dynamics.items()}
        temp = dynamics["temperature"]
    exact = None
    if exit is not None:
        if not (isinstance(model, M.Langevin) or iso):
            raise ValueError(f"predict: the exact mean time (exit=, box=) solves the backward "
                             f"equation of reversible isotropic dynamics (Langevin, SGD with "
                             f"isotropic noise), not {type(model).__name__} with this noise")
        from .grid import mfpt_grid

        lower, upper = box
        exact = mfpt_grid(loss, temp, theta0, exit, lower, upper, n=grid_n)
    return Prediction(mean, formula, assumptions, np.asarray(x_min, np.float64), h_a, sad,
                      temp, reason, dynamics, log_mean, exact)


def _uphill(loss, x):
    """The loss at the path's points and the index of the highest (refusing a path that
    does not climb from its first point, or a non-finite loss)."""
    energy = np.asarray(jax.vmap(loss)(_point(x)), np.float64)
    if not np.all(np.isfinite(energy)):
        raise ValueError("the loss, drift or noise is not finite along the path")
    top = int(np.argmax(energy))
    if top == 0:
        raise ValueError("the path does not go uphill from its first point: pass it from "
                         "the minimum over the saddle")
    return energy, top


def path_exponent(model, loss, path, *, points: int = 4001, ema: str = "frozen") -> float:
    """The escape exponent a model's own noise gives along a path (``τ ≍ e^Φ``), from the
    path's first point (the minimum) to its highest point (the saddle).

    **Overdamped models** (``dθ = f dt + G dW``): ``Φ = −∫ 2μ(s)/v(s) ds``, ``s`` the arc
    length, ``μ = f·τ`` the drift along the unit tangent ``τ`` (``−∂L/∂s`` for gradient
    drift), ``v = τᵀ G Gᵀ τ`` the noise variance rate along ``τ``. This is the
    one-dimensional reduction along the path: in 1-D it is the exact exponent (the
    stationary density of the Itô diffusion is ``∝ exp(∫ 2μ/v)/v``), and in d > 1 the
    quasi-potential along that path, the true one when the path is the most probable
    escape route (isotropic or path-aligned noise). It needs no assumption on how the
    noise varies: with ``Langevin(T)`` it is ``ΔL/T``; with Hessian-shaped noise ``C =
    max(|H|, floor)/B`` it is the exponent Xie et al.'s F14 approximates by freezing ``C``
    at the minimum (``2BΔL/(η H_ae)``), and the two part wherever ``|H|`` changes on the
    way up. Where the noise along the path vanishes uphill (``|H| → 0`` with no floor) the
    integral diverges: ``inf`` if ``v`` is exactly 0 at a quadrature point, else a
    ``RuntimeWarning`` that the quadrature does not settle.

    **Phase-space models** (``Momentum``, ``Adai``, ``Adam``, ``Underdamped``, or any model
    whose ``terms`` are ``Inertial``, with Gaussian noise): the motion is restricted to a
    smooth curve through the images, ``m s̈ + (τᵀMτ')ṡ² = −∂L/∂s − Γṡ + σξ`` with ``m =
    τᵀMτ``, ``Γ = τᵀΓτ`` (the mass and friction force of the model's ``terms``), ``σ² =
    τᵀΣτ`` (the noise force's variance rate) and ``τ'`` the curve's turning (the constraint
    force does no work; ``τᵀMτ' = 0`` for a scalar mass), and ``Φ`` is the
    Freidlin–Wentzell quasi-potential of that two-dimensional (position, velocity) system
    at the saddle: the least action ``½∫(m s̈ + (τᵀMτ')ṡ² + Γṡ + ∂L/∂s)²/σ² dt`` of a path
    from rest at the minimum to rest at the saddle. Where the fluctuation–dissipation
    relation holds (``σ² = 2ΓT``, constant ``T``, ``M`` constant in θ) it is ``ΔL/T``
    whatever the mass (the phase-space formulas F16/F18/F17 assume it, ``T`` frozen at the
    minimum). Where ``σ²`` varies, its limits are the overdamped value ``∫ 2Γ(∂L/∂s)/σ²
    ds`` (heavy friction; used directly where ``m|k|/Γ² < 1e-4`` and the action would need
    more than ``PHASE_MAX_STEPS`` steps) and the energy-diffusion value ``∫ dE / T_E``,
    ``T_E = ∮σ²|ṡ| / (2∮Γ|ṡ|)`` over the orbit of energy ``E`` (light friction); the
    minimization finds where between. Adam's and Adai's second-moment EMA (``ema``):
    ``"frozen"`` at its value at the minimum (``v̂ = diag(C)``, as F17/F18 assume: the limit
    of a memory ``η/(1−β₂)`` long against the climb) or ``"instant"``, ``v̂ = (∇L)² +
    diag(C)`` at each point (the limit of a short one). The orbits swing to the far side of
    the minimum: the loss there is read along the straight line back from the minimum
    along the path's first direction (``ValueError`` if it never rises to the saddle's
    height, or if the path's first point is not a minimum). Noise that vanishes exactly at
    a tabulated point is refused (``ValueError``); noise that only nears 0 (Hessian noise
    without a floor) is fine: an inertial path coasts through it. The path of least action
    is found by Levenberg–Marquardt on the discretized action (steps of 1/50 of the
    fastest rate the path moves at and at most ``sqrt(m/|k|)/2``, from the time-reversed
    relaxation out of the saddle, the exact optimum when ``T`` is constant); its
    discretization error is ~1e-4 relative; a ``RuntimeWarning`` if it does not converge
    (the action returned is then an upper bound).

    Args:
      model: a model with Gaussian noise (raises ``TypeError`` for Lévy dynamics, which
        have no such exponent).
      loss: the loss.
      path: a ``sdesim.critical.Path`` (e.g. ``critical.escape_path(loss, θ₀)`` or
        ``string_path``) or its images ``(n, d)``, from the minimum over the saddle.
      points: points of the quadrature (tabulation) along the polyline through the images
        (the loss, drift and noise are evaluated there, not interpolated).
      ema: ``"frozen"`` or ``"instant"``: the second-moment EMA of a model that has one
        (its state's ``v2``), frozen at the minimum or following ``g²`` along the path.

    Returns:
      ``Φ`` (float; ``inf`` where the noise along the path vanishes uphill).
    """
    from .. import model as _model

    if model.noise_kind != "gaussian":
        raise TypeError(f"path_exponent needs an SDE with Gaussian noise, got "
                        f"{type(model).__name__} ({model.noise_kind} noise): Lévy dynamics "
                        "escape by jumps and a discrete optimizer has no SDE here, with no "
                        "such exponent")
    images = np.asarray(getattr(path, "images", path), np.float64)
    if images.ndim != 2 or images.shape[0] < 2 or not np.all(np.isfinite(images)):
        raise ValueError(f"path must be a Path or finite images of shape (n >= 2, d), got "
                         f"shape {images.shape}")
    if int(points) < 3:
        raise ValueError(f"points must be >= 3, got {points}")
    if ema not in ("frozen", "instant"):
        raise ValueError(f"ema must be 'frozen' or 'instant', got {ema!r}")
    seg = np.diff(images, axis=0)
    length = np.linalg.norm(seg, axis=1)
    keep = length > 0
    images = np.concatenate([images[:1], images[1:][keep]])
    seg, length = seg[keep], length[keep]
    if not isinstance(model, _model.Overdamped):  # its own smooth curve through the images
        if model.velocity(model.init(_point(images[0]))) is None:
            raise TypeError(f"path_exponent needs an overdamped or a phase-space model, got "
                            f"{type(model).__name__}")
        return _phase_exponent(model, loss, images, points, ema)
    arc = np.concatenate([[0.0], np.cumsum(length)])
    s = np.linspace(0.0, arc[-1], int(points))
    i = np.clip(np.searchsorted(arc, s, side="right") - 1, 0, len(seg) - 1)
    x = images[i] + ((s - arc[i]) / length[i])[:, None] * seg[i]
    tau = seg[i] / length[i][:, None]
    energy, top = _uphill(loss, x)
    drift, diffusion = model.vector_field(loss)  # dθ = f dt + G dW, as diffrax runs it

    def along(y, t):  # (f·τ, τᵀ G Gᵀ τ)
        zero = jnp.zeros((), y.dtype)
        g_t = diffusion(zero, y, None).T @ t
        return drift(zero, y, None) @ t, g_t @ g_t

    mu, v = (np.asarray(a, np.float64) for a in jax.vmap(along)(_point(x), _point(tau)))
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(v))):
        raise ValueError("the loss, drift or noise is not finite along the path")
    mu, v, s = mu[:top + 1], v[:top + 1], s[:top + 1]
    if np.any((v <= 0) & (mu < 0)):
        return float("inf")
    g = np.where(v > 0, -2.0 * mu / np.where(v > 0, v, 1.0), 0.0)  # -2μ/v: μ < 0 uphill
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(s))])
    phi = float(cum[-1])
    # the same rule on every other point: a zero of v on the way (|H| → 0 without a floor)
    # makes the integral diverge, which shows as a quadrature that does not settle
    m = top - top % 2
    half = float(np.sum(0.5 * (g[2:m + 1:2] + g[:m - 1:2]) * np.diff(s[:m + 1:2])))
    if m >= 4 and abs(half - cum[m]) > 1e-3 * abs(cum[m]) + 1e-9:
        import warnings

        warnings.warn(f"path_exponent: the quadrature does not settle ({half:.6g} on half "
                      f"the points, {cum[m]:.6g} on all): the noise along the path (nearly) "
                      "vanishes where the drift holds the path back, and Φ may be infinite; "
                      "raise points to see", RuntimeWarning, stacklevel=2)
    return phi


PHASE_DT = 0.02  # the action's step, × the fastest linearized rate along the path
PHASE_MAX_STEPS = 400_000
PHASE_ITERATIONS = 400  # Levenberg–Marquardt steps


def _phase_coefficients(model, loss, x_min, ema="frozen"):
    """``f(x, τ, τ') -> (∂L/∂s, m, Γ, σ², τᵀMτ')`` along ``τ`` for a phase-space model
    (its terms at rest, ``action.inertial_terms``, read along the tangent)."""
    from .action import inertial_terms

    terms = inertial_terms(model, loss, x_min, ema)

    def at(y, t, turn):
        force, mass, fric, cov = terms(y)
        return (-force @ t, jnp.sum(mass * t * t), jnp.sum(fric * t * t), t @ cov @ t,
                jnp.sum(mass * t * turn))

    return at


def _phase_exponent(model, loss, images, points, ema):
    """The least action of the path-restricted phase-space dynamics (``path_exponent``)."""
    from scipy import integrate, interpolate

    from .action import banded_levenberg_marquardt

    # a smooth curve through the images, by arc length: the tangent τ and its turning τ'
    # (a curved path with an anisotropic mass M adds (τᵀMτ')ṡ² to the restricted equation)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(images, axis=0),
                                                            axis=1))])
    curve = interpolate.CubicSpline(chord, images, bc_type="natural")
    fine = np.linspace(0.0, chord[-1], 8 * int(points))
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve(fine), axis=0),
                                                          axis=1))])
    s = np.linspace(0.0, arc[-1], int(points))
    p = np.interp(s, arc, fine)
    x = curve(p)
    tau = curve(p, 1)
    tau /= np.linalg.norm(tau, axis=1, keepdims=True)
    turn = np.gradient(tau, s, axis=0)
    energy, top = _uphill(loss, x)
    at = jax.jit(jax.vmap(_phase_coefficients(model, loss, x[0], ema)))
    top_e = energy[top]
    # the far side of the minimum: back along the path's first direction until the loss
    # reaches the saddle's height (the orbits of energy up to it swing there), a bit beyond
    ds = s[1] - s[0]
    chunk = np.arange(1, len(s) + 1) * ds  # one shape: one compilation
    u, eb = np.zeros(0), np.zeros(0)
    for j in range(64):
        uj = j * chunk[-1] + chunk
        ej = np.asarray(jax.vmap(loss)(_point(x[0] - uj[:, None] * tau[0])), np.float64)
        u, eb = np.concatenate([u, uj]), np.concatenate([eb, ej])
        over = np.nonzero(~(eb < top_e))[0]
        if over.size:
            end = min(len(u), int(over[0] * 1.2) + 2)
            break
    else:
        raise ValueError("path_exponent: the loss does not rise to the saddle's height behind "
                         "the minimum (along the path's first direction, up to 64 path "
                         "lengths): the orbits of a phase-space model need a closed well")
    u, eb = u[:end], eb[:end]
    xb = x[0] - u[:, None] * tau[0]
    # forward: up to the top and a little past it where the path goes on
    fwd = slice(0, min(len(s), top + max(3, top // 20) + 1))
    grid = np.concatenate([-u[::-1], s[fwd]])
    xs = np.concatenate([xb[::-1], x[fwd]])
    ts = np.concatenate([np.broadcast_to(tau[0], xb.shape), tau[fwd]])
    turns = np.concatenate([np.zeros_like(xb), turn[fwd]])
    coef = [np.asarray(a, np.float64) for a in at(_point(xs), _point(ts), _point(turns))]
    if not all(np.all(np.isfinite(c)) for c in coef):
        raise ValueError("the loss, drift or noise is not finite along the path")
    dl, mass, fric, var, _ = coef
    if np.any(mass <= 0) or np.any(fric <= 0):
        raise ValueError("path_exponent: the mass and friction along the path must be > 0")
    if np.any(var <= 0):
        raise ValueError("path_exponent: the noise along the path vanishes at a point of "
                         "the tabulation: the action has no finite weight there (noise that "
                         "only nears 0, e.g. Hessian noise without a floor, is fine: the "
                         "path coasts through it)")
    i0 = len(u)  # the path's first point
    if abs(dl[i0]) > 1e-2 * np.max(np.abs(dl[i0:])):
        raise ValueError(f"path_exponent: the path's first point is not a minimum (∂L/∂s = "
                         f"{dl[i0]:.3g} there, up to {np.max(np.abs(dl[i0:])):.3g} along the "
                         "path): a phase-space escape starts at rest in the minimum")
    spl = [interpolate.PchipInterpolator(grid, c, extrapolate=True) for c in coef]
    dspl = [c.derivative() for c in spl]
    s_top = s[top]
    # the step: PHASE_DT / the fastest rate the path moves at, from m μ² + Γ μ + k = 0
    # along it: |μ| where the roots are complex (oscillation), else the slow root (the
    # fast one, Γ/m, is a decay the smooth path does not excite; heavy friction would
    # otherwise ask for steps of m/Γ along a climb that takes Γ/k) — and at most
    # sqrt(m/|k|)/2, so that m/dt² dominates |k| and an odd-even zig-zag of the discrete
    # path (which the central velocity does not see) always costs action
    k = np.abs(dspl[0](grid))
    disc = fric ** 2 - 4 * mass * k
    rate = float(np.max(np.where(disc < 0, np.sqrt(k / mass),
                                 2 * k / (fric + np.sqrt(np.maximum(disc, 0.0))))))
    dt = min(PHASE_DT / rate, 0.5 * float(np.sqrt(np.min(mass / np.maximum(k, 1e-300)))))
    heavy = float(np.max(mass * k / fric ** 2))  # inertia against friction

    # the relaxation out of the saddle (deterministic, m s̈ + qṡ² = −∂L/∂s − Γ ṡ) to rest at
    # the minimum; reversed in time, it is the least-action path when σ² = 2ΓT
    # (the potential from ∫ ∂L/∂s, smooth where a float32 loss is not: its rounding near
    # the minimum, ~1e-7 |L|, can exceed the rest the relaxation is stopped at)
    loss_s = spl[0].antiderivative()
    e_min = float(np.min(loss_s(grid)))
    barrier = float(loss_s(s_top)) - e_min

    def overdamped():  # m k/Γ² → 0: Γṡ = −∂L/∂s + noise, Φ = ∫ 2Γ ∂L/∂s / σ² ds
        g = 2 * fric * dl / var
        return float(np.trapezoid(g[i0:i0 + top + 1], grid[i0:i0 + top + 1]))

    def rhs(_, y):
        z = y[0]
        return [y[1], (-spl[0](z) - spl[2](z) * y[1] - spl[4](z) * y[1] ** 2) / spl[1](z)]

    def settled(_, y):
        return 0.5 * spl[1](y[0]) * y[1] ** 2 + loss_s(y[0]) - e_min - 1e-9 * barrier
    settled.terminal = True
    delta = 1e-3 * s_top
    sol = integrate.solve_ivp(rhs, (0.0, PHASE_MAX_STEPS * dt), [s_top - delta, 0.0],
                              events=settled, dense_output=True, method="LSODA",
                              rtol=1e-8, atol=1e-10 * s_top, max_step=50 * dt)
    n = (int(np.ceil(1.5 * float(sol.t_events[0][0]) / dt)) + 4 if sol.status == 1
         else PHASE_MAX_STEPS + 1)
    if n > PHASE_MAX_STEPS:
        if heavy < 1e-4:  # the overdamped limit, to O(m k/Γ²)
            return overdamped()
        raise ValueError(f"path_exponent: the least-action path needs more than "
                         f"{PHASE_MAX_STEPS} steps: the friction is too light or the dynamics "
                         f"too stiff for this path")
    t_relax = float(sol.t_events[0][0])
    t = np.arange(n + 1) * dt
    guess = np.zeros(n + 1)
    back_t = t[-1] - t  # reversed time
    live = back_t <= t_relax
    guess[live] = sol.sol(back_t[live])[0]
    guess[-2:] = s_top
    guess[:2] = 0.0

    def residual(y, jac=False):
        a_, b_ = y[2:] - 2 * y[1:-1] + y[:-2], (y[2:] - y[:-2]) / (2 * dt)
        z = y[1:-1]
        f_, m_, g_, v_, q_ = (c(z) for c in spl)
        r = m_ * a_ / dt**2 + q_ * b_**2 + g_ * b_ + f_
        w = np.sqrt(dt / v_)
        if not jac:
            return w * r
        df, dm, dg, dv, dq = (c(z) for c in dspl)
        diag = w * (-2 * m_ / dt**2 + dm * a_ / dt**2 + dq * b_**2 + dg * b_ + df) \
            - 0.5 * w * r * dv / v_
        side = (2 * q_ * b_ + g_) / (2 * dt)
        lower = w * (m_ / dt**2 - side)  # ∂ρ_k/∂y_{k−1}
        upper = w * (m_ / dt**2 + side)  # ∂ρ_k/∂y_{k+1}
        return w * r, (lower, diag, upper)

    def normal(rho, jac):
        """Jᵀρ and the bands of JᵀJ (upper form) on the free points y_2 … y_{n−2}: row k of
        J (k = 1 … n−1) holds ∂ρ_k/∂y_{k−1}, ∂ρ_k/∂y_k, ∂ρ_k/∂y_{k+1}."""
        lo, di, up = (np.pad(b, (1, 1)) for b in jac)  # index k = 0 … n
        r = np.pad(rho, (1, 1))
        c = np.arange(2, n - 1)  # column y_c meets rows c+1 (lo), c (di), c−1 (up)
        grad = lo[c + 1] * r[c + 1] + di[c] * r[c] + up[c - 1] * r[c - 1]
        d0 = lo[c + 1] ** 2 + di[c] ** 2 + up[c - 1] ** 2
        d1 = lo[c + 1] * di[c + 1] + di[c] * up[c]  # (c, c+1): rows c+1 and c
        d2 = lo[c + 1] * up[c + 1]  # (c, c+2): row c+1
        band = np.zeros((3, c.size))
        band[2], band[1, 1:], band[0, 2:] = d0, d1[:-1], d2[:-2]
        return grad, band

    def system(y, rho, jac, lam, history):
        grad, band = normal(rho, jac)
        band[2] *= 1 + lam
        return band, grad

    def apply(y, step):
        trial = y.copy()
        trial[2:n - 1] += step
        return trial

    _, action, converged, _, _ = banded_levenberg_marquardt(guess, residual, system, apply,
                                                            PHASE_ITERATIONS)
    if not converged:
        import warnings

        warnings.warn(f"path_exponent: the least-action path did not converge in "
                      f"{PHASE_ITERATIONS} Levenberg–Marquardt steps (action {action:.6g}, "
                      "an upper bound on Φ)", RuntimeWarning, stacklevel=3)
    return float(action)
