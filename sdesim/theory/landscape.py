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


def path_exponent(model, loss, path, *, points: int = 4001) -> float:
    """The escape exponent a model's own noise gives along a path: ``Φ = −∫ 2μ(s)/v(s) ds``
    from the path's first point (the minimum) to its highest point (the saddle), ``s`` the
    arc length, ``μ = f·τ`` the drift along the unit tangent ``τ`` (``−∂L/∂s`` for
    gradient drift; the integrand is ``−2μ/v``), ``v = τᵀ G Gᵀ τ`` the noise variance
    rate along ``τ`` (``dθ = f dt + G dW``); ``τ ≍ e^Φ``.

    This is the one-dimensional reduction along the path: in 1-D it is the exact exponent
    (the stationary density of the Itô diffusion is ``∝ exp(∫ 2μ/v)/v``), and in d > 1 the
    quasi-potential along that path, the true one when the path is the most probable
    escape route (isotropic or path-aligned noise). It needs no assumption on how the
    noise varies: with ``Langevin(T)`` it is ``ΔL/T``; with Hessian-shaped noise ``C =
    max(|H|, floor)/B`` it is the exponent Xie et al.'s F14 approximates by freezing ``C``
    at the minimum (``2BΔL/(η H_ae)``), and the two part wherever ``|H|`` changes on the
    way up. Where the noise along the path vanishes uphill (``|H| → 0`` with no floor) the
    integral diverges: ``inf`` if ``v`` is exactly 0 at a quadrature point, else a
    ``RuntimeWarning`` that the quadrature does not settle.

    Args:
      model: an overdamped model with Gaussian noise (``Langevin``, ``SGD``, ...); raises
        ``TypeError`` for phase-space and Lévy models (no such reduction).
      loss: the loss.
      path: a ``sdesim.critical.Path`` (e.g. ``critical.escape_path(loss, θ₀)`` or
        ``string_path``) or its images ``(n, d)``, from the minimum over the saddle.
      points: points of the quadrature along the polyline through the images (the loss,
        drift and noise are evaluated there, not interpolated).

    Returns:
      ``Φ`` (float; ``inf`` where the noise along the path vanishes uphill).
    """
    from .. import model as _model

    if not (isinstance(model, _model.Overdamped) and model.noise_kind == "gaussian"):
        raise TypeError(f"path_exponent needs an overdamped model with Gaussian noise "
                        f"(Langevin, SGD, ...), got {type(model).__name__}: phase-space "
                        "and Lévy dynamics have no one-dimensional reduction along a path")
    images = np.asarray(getattr(path, "images", path), np.float64)
    if images.ndim != 2 or images.shape[0] < 2 or not np.all(np.isfinite(images)):
        raise ValueError(f"path must be a Path or finite images of shape (n >= 2, d), got "
                         f"shape {images.shape}")
    if int(points) < 3:
        raise ValueError(f"points must be >= 3, got {points}")
    seg = np.diff(images, axis=0)
    length = np.linalg.norm(seg, axis=1)
    keep = length > 0
    images = np.concatenate([images[:1], images[1:][keep]])
    seg, length = seg[keep], length[keep]
    arc = np.concatenate([[0.0], np.cumsum(length)])
    s = np.linspace(0.0, arc[-1], int(points))
    i = np.clip(np.searchsorted(arc, s, side="right") - 1, 0, len(seg) - 1)
    x = images[i] + ((s - arc[i]) / length[i])[:, None] * seg[i]
    tau = seg[i] / length[i][:, None]
    xs, taus = _point(x), _point(tau)
    energy = np.asarray(jax.vmap(loss)(xs), np.float64)
    drift, diffusion = model.vector_field(loss)  # dθ = f dt + G dW, as diffrax runs it

    def along(y, t):  # (f·τ, τᵀ G Gᵀ τ)
        zero = jnp.zeros((), y.dtype)
        g_t = diffusion(zero, y, None).T @ t
        return drift(zero, y, None) @ t, g_t @ g_t

    mu, v = (np.asarray(a, np.float64) for a in jax.vmap(along)(xs, taus))
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))
            and np.all(np.isfinite(v))):
        raise ValueError("the loss, drift or noise is not finite along the path")
    top = int(np.argmax(energy))
    if top == 0:
        raise ValueError("the path does not go uphill from its first point: pass it from "
                         "the minimum over the saddle")
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
