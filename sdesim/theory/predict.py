"""The closed-form mean escape time of a run, where one applies: ``reference(model, loss,
theta0, exit)``.

It reads the run's objects through their public attributes only (a model's ``lr``,
``temperature``, ``alpha``, ``sigma``, ``noise``; a landscape's ``critical_points()`` and
``basin(...)``; an exit's fields) and recognizes three cases:

* ``Langevin`` or ``SGD`` (isotropic, Hessian, population-minibatch or fixed diagonal
  noise) on a ``StyblinskiTang`` valley: F7 per coordinate, ``τ ≈ τ_1D/d``;
* ``Langevin`` on a 1-D ``DoubleWell``, exit past the saddle: F4, exact;
* ``SGDLevy`` or ``AdamLevy`` on a diagonal ``Quadratic`` basin: F21.

Anything else gives None. The start and exit must be the landscape's own basin (compared
with ``loss.basin(...)``), except the double well's exit offset and the quadratic basin's
height, which are read from the exit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .levy import levy_sgd_vs_adam
from .mfpt import mfpt_1d, mfpt_1d_ito

__all__ = ["Reference", "reference"]

_F7 = ("F7 exact 1-D MFPT per coordinate; d-D mean ≈ τ_1D/d (first of d independent "
       "metastable escapes)")
_F4 = "F4 exact 1-D MFPT"
_F21 = "F21 small-noise Lévy escape time (Zhou et al. Thm 1)"


@dataclasses.dataclass(frozen=True)
class Reference:
    """A closed-form mean escape time for a run.

    Attributes:
      mean_time: the mean escape time in SDE time (divide by ``lr`` for iterations).
      formula: which formula (its F-number and name).
      assumptions: what the number assumes, in words.
      details: intermediate numbers (``tau_1d``: the 1-D mean first-passage time F7).
      barrier_over_noise: ``ΔU/T``, the barrier over the noise's temperature (for SGD the
        effective ``T = v(θ*)/2``, half the noise variance at the minimum), where the
        formula assumes metastable escape (F7: ``τ_1D/d`` holds when each coordinate's
        escape is exponential, ``ΔU/T`` large); None where the formula holds at any noise
        level (F4 is exact) or does not involve a barrier (F21, Lévy jumps).
    """

    mean_time: float
    formula: str
    assumptions: str
    details: dict = dataclasses.field(default_factory=dict, hash=False)
    barrier_over_noise: float | None = None

    def as_dict(self):
        """``{"formula", **details, "mean_time", "assumptions"}`` (JSON-ready)."""
        return {"formula": self.formula, **self.details, "mean_time": self.mean_time,
                "assumptions": self.assumptions}


def _same_array(given, expected):
    """``given`` equals ``expected`` at ``given``'s precision (a float32 start from the
    float64 basin counts as the basin's start)."""
    g = np.asarray(given)
    e = np.asarray(expected)
    if g.shape != e.shape:
        return False
    if g.dtype.kind == "f":
        e = e.astype(g.dtype)
    return bool(np.array_equal(g, e))


def _same_tree(a, b):
    """Same pytree structure (classes and static fields) and equal leaves."""
    import jax

    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    return ta == tb and all(_same_array(x, y) for x, y in zip(la, lb, strict=True))


def reference(model, loss, theta0=None, exit=None):
    r"""The closed-form mean escape time of ``escape(model, loss, theta0, exit)``, or None.

    Cases (everything else, including a start or exit other than the landscape's basin,
    returns None):

    * **StyblinskiTang**, start at a valley's minimum in every coordinate and exit when a
      coordinate crosses the saddle (``loss.basin(valley)``), with ``Langevin`` or ``SGD``
      whose noise is ``noise.isotropic``, ``noise.hessian``, ``noise.minibatch(None, B)``
      (population) or ``noise.fixed`` with equal diagonal entries (e.g. the minibatch
      covariance at the start held fixed): landscape and noise are separable, each
      coordinate is the 1-D diffusion ``dx = -L_1'(x) dt + sqrt(v(x)) dW`` with
      ``v = 2T`` (Langevin) or ``v = (sqrt(η) B(x))²`` (SGD, the model's noise factor on
      the 1-D landscape); F7 gives ``τ_1D`` (``mfpt_1d_ito``) and the d-D escape, the first
      of ``d`` independent metastable escapes, has mean ``≈ τ_1D/d``.
    * **DoubleWell** with ``dim = 1`` and ``Langevin``, start at a minimum and exit a
      half-space ``±θ > offset`` beyond it (``loss.basin(side, past)``): F4 exactly
      (``mfpt_1d``), absorbing at the exit point.
    * **Quadratic** with a diagonal Hessian (symmetric), ``SGDLevy`` or ``AdamLevy`` whose
      ``sigma`` is a number, a vector, a matrix, ``noise.hessian`` or ``noise.isotropic``
      (``Σ = (C/2)^{1/2}``), start at the centre, exit ``Ellipsoid(center, diag(h),
      height)`` or ``LevelSet(loss, height)`` (``loss.basin(height)``): F21,
      ``levy_sgd_vs_adam`` (Adam's ``eps`` from the model).

    Args:
      model, loss, theta0, exit: as given to ``sdesim.escape``; ``theta0=None`` or
        ``exit=None`` stand for the landscape's own basin (the first valley or side that
        matches the other argument; the Lévy case needs the exit for its height).

    Returns:
      ``Reference(mean_time, formula, assumptions, details)`` or None.
    """
    from .. import landscapes

    if isinstance(loss, landscapes.StyblinskiTang):
        return _styblinski_tang(model, loss, theta0, exit)
    if isinstance(loss, landscapes.DoubleWell):
        return _double_well(model, loss, theta0, exit)
    if isinstance(loss, landscapes.Quadratic):
        return _quadratic_levy(model, loss, theta0, exit)
    return None


def _styblinski_tang(model, loss, theta0, exit):
    import jax
    import jax.numpy as jnp

    from .. import landscapes, models, noise

    langevin = isinstance(model, models.Langevin)
    if not langevin and type(model) is not models.SGD:
        return None
    for valley in ("local", "global"):
        t0, ex = loss.basin(valley)
        if (theta0 is None or _same_array(theta0, t0)) and (exit is None
                                                           or _same_tree(exit, ex)):
            break
    else:
        return None
    one = landscapes.StyblinskiTang(1, loss.sharpness, loss.data_std)
    cp = one.critical_points()
    drift = lambda x: -np.asarray(jax.vmap(jax.grad(lambda t: one(t[None])))(
        jnp.asarray(x)), float)
    if langevin:
        temp = float(model.temperature)
        variance = lambda x: np.full(np.shape(x), 2 * temp)
        what = "Langevin noise 2T"
    else:
        nz = model.noise
        if isinstance(nz, noise.Fixed):
            s = np.asarray(nz.sqrt_cov)
            if s.ndim != 1 or not np.all(s == s[0]):
                return None  # not separable into identical coordinates
            # every coordinate's variance is ηC_11
            var = float(model.lr) * float(nz.sqrt_cov[0]) ** 2
            variance = lambda x: np.full(np.shape(x), var)
            what = "SGD with the fixed covariance ηC_11 per coordinate"
        elif isinstance(nz, noise.Isotropic | noise.Hessian) or (
                isinstance(nz, noise.Minibatch) and nz.data is None and nz.per_sample is None):
            lr = model.lr

            # the model's noise factor on the 1-D landscape: variance = (sqrt(η)·B)², in
            # this order (as SGD's step builds its factor) so the numbers do not move
            def var1(t):
                return (jnp.sqrt(jnp.asarray(lr, t.dtype)) * nz.factor(t[None], one))[0] ** 2

            variance = lambda x: np.asarray(jax.vmap(var1)(jnp.asarray(x)), float)
            what = f"SGD with {type(nz).__name__} noise evaluated on one coordinate"
        else:
            return None
    tau1 = mfpt_1d_ito(drift, variance, cp[f"{valley}_min"], cp["saddle"],
                       lower=np.inf if valley == "local" else -np.inf)
    # ΔU/T of one coordinate: its barrier over half the noise variance at the minimum
    u = lambda x: float(one(jnp.asarray([x], jnp.result_type(float))))
    barrier = u(cp["saddle"]) - u(cp[f"{valley}_min"])
    v0 = float(np.asarray(variance(np.array([cp[f"{valley}_min"]])), float)[0])
    ratio = 2 * barrier / v0 if v0 > 0 else np.inf
    return Reference(
        float(tau1) / loss.dim, _F7,
        f"separable landscape and noise ({what}): the {loss.dim} coordinates are "
        f"independent 1-D Itô diffusions started at the {valley} minimum; escape is "
        f"metastable, so the first of d escapes has mean τ_1D/d",
        {"tau_1d": float(tau1)}, barrier_over_noise=float(ratio))


def _double_well(model, loss, theta0, exit):
    from .. import exits, models

    if not isinstance(model, models.Langevin) or loss.dim != 1:
        return None
    cp = loss.critical_points()
    for side in ("left", "right"):
        t0, ex = loss.basin(side)
        if theta0 is not None and not _same_array(theta0, t0):
            continue
        if exit is None or _same_tree(exit, ex):
            c = cp["saddle"]  # past = 0: the saddle itself (not its rounded offset)
            break
        if isinstance(exit, exits.Halfspace) and _same_array(exit.normal, ex.normal):
            # the basin's half-space moved `past` the saddle: absorbed at its offset
            sign = float(np.asarray(ex.normal)[0])  # +1: the left well, exit to the right
            c = sign * float(exit.offset)
            if not (np.isfinite(c) and sign * (c - cp[f"{side}_min"]) > 0):
                return None  # the start is not inside the half-space
            break
    else:
        return None
    well = lambda x: np.asarray(loss.well(np.asarray(x, float)), float)
    tau = mfpt_1d(well, float(cp[f"{side}_min"]), c, float(model.temperature))
    return Reference(
        float(tau), _F4,
        f"1-D overdamped Langevin from the {side} minimum, absorbed at θ = {c:.6g}; exact "
        f"(no small-noise asymptotics)")


def _quadratic_levy(model, loss, theta0, exit):
    from .. import exits, models, noise

    if type(model) not in (models.SGDLevy, models.AdamLevy) or np.ndim(loss.hessian) != 1 \
            or loss.hessian_neg is not None:
        return None
    hess = np.asarray(loss.hessian, float)
    center = np.broadcast_to(np.asarray(loss.center, float), hess.shape)
    if theta0 is not None and not _same_array(theta0, center):
        return None
    if isinstance(exit, exits.Ellipsoid):
        if not (_same_array(exit.center, center)
                and _same_array(exit.matrix, np.diag(np.asarray(loss.hessian)))):
            return None
    elif isinstance(exit, exits.LevelSet):
        if not _same_tree(exit.fn, loss):
            return None
    else:
        return None
    height = float(exit.level)
    sig = model.sigma
    if isinstance(sig, noise.Hessian):  # Σ = (C/2)^{1/2}, C = max(H, floor)/B
        c = np.maximum(hess, float(sig.floor)) / float(sig.batch_size)
        sigma = np.sqrt(c / 2)
        what = "Σ = (max(H, floor)/2B)^{1/2}"
    elif isinstance(sig, noise.Isotropic):
        sigma = np.full(hess.shape, np.sqrt(float(sig.variance) / 2))
        what = "Σ = (σ²/2)^{1/2} I"
    elif not hasattr(sig, "factor"):  # a number, a vector or a matrix
        s = np.asarray(sig, float)
        sigma = np.broadcast_to(s, hess.shape) if s.ndim < 2 else s
        what = "Σ as given"
    else:
        return None
    sgd = type(model) is models.SGDLevy
    eps = 1e-8 if sgd else getattr(model, "eps", None)
    if eps is None:
        eps = model.epsilon
    pred = levy_sgd_vs_adam(float(model.alpha), float(model.lr), sigma, hess, height,
                            epsilon=float(eps))
    return Reference(
        float(pred["sgd_time" if sgd else "adam_time"]), _F21,
        f"small noise (ε = lr^((α−1)/α) → 0: leading order, the first jump that leaves); "
        f"noise scale at the minimum, {what}"
        + ("" if sgd else ", Adam's preconditioner at the minimum Q = sqrt(2 diag ΣΣᵀ) + ϵ")
        + f"; basin {{½ yᵀHy ≤ {height:.6g}}}")
