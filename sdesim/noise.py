"""Gradient noise: the SαS sampler and the covariance models of SGD's noise.

Convention (docs/concepts/mathematics.md, "Conventions"): one iteration's gradient noise
is ``u = Σ·S``; for Gaussian noise of covariance ``C`` the continuous-time noise of every
model is ``sqrt(η C) dW``. A covariance model here returns a *factor* ``B(θ)`` with
``B Bᵀ = C(θ)``: either a vector (diagonal ``C``, the fast path) or a ``(d, d)`` matrix.
Models multiply it by ``sqrt(η)`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks

# ---------------------------------------------------------------------------------------
# Symmetric α-stable sampler
# ---------------------------------------------------------------------------------------


def _open_uniform(key, shape, dtype):
    """Uniform on the *open* interval (0, 1): JAX's ``uniform`` returns ``k·2^-p`` (``p`` the
    mantissa bits, ``k = 0 … 2^p − 1``); shifting by half a step gives the midpoints
    ``(k + ½)·2^-p``, exact in floating point, symmetric about ½ and never 0 or 1."""
    u = jax.random.uniform(key, shape, dtype)
    return u + jnp.asarray(0.5 * float(jnp.finfo(dtype).eps), dtype)


def _cms(v, w, a):
    """Chambers–Mallows–Stuck for α ∉ {1, 2} in log space: ``|S| = exp(log|sin αV|
    − log(cos V)/α + ((1−α)/α) log(cos((1−α)V)/W))``. Log space never forms
    ``inf·0`` (small α: ``cos(V)^{-1/α}`` overflows while the other factor underflows);
    an overflow of the exponential gives ``±inf``, clipped by the caller."""
    sin_av = jnp.sin(a * v)
    # cos((1−α)V)/W is finite: W >= −log(1 − eps/2) > 0 (about 6e-8 in float32)
    log_abs = (jnp.log(jnp.abs(sin_av)) - jnp.log(jnp.cos(v)) / a
               + (1 - a) / a * jnp.log(jnp.cos((1 - a) * v) / w))
    return jnp.sign(sin_av) * jnp.exp(log_abs)


def sas(key, alpha, shape, dtype=None):
    """Draw symmetric α-stable samples with ``E exp(iωS) = exp(-|ω|^α)``.

    This is scipy's ``levy_stable(alpha, beta=0, scale=1)`` (for β = 0 its S0 and S1
    parametrizations coincide); ``α = 2`` is ``N(0, 2)``, ``α = 1`` the standard Cauchy.

    Chambers–Mallows–Stuck: ``V = π(U₁ − ½)`` on the *open* interval (−π/2, π/2) and
    ``W = −log U₂ > 0``, with ``U₁, U₂`` uniform on the open interval (0, 1) (midpoints of
    JAX's uniform grid, see ``_open_uniform``); then
    ``S = sin(αV)/cos(V)^{1/α} · (cos((1−α)V)/W)^{(1−α)/α}``, evaluated in log space.
    Exact special cases: ``α = 1`` gives ``tan V`` (Cauchy) and ``α = 2`` gives
    ``2 sin(V) sqrt(W)``, which is exactly ``N(0, 2)`` (Box–Muller: ``sqrt(2W)`` is Rayleigh
    and ``sin V`` has the arcsine law). A Python-number ``alpha`` selects its branch at
    trace time (``α = 2`` then uses ``sqrt(2)·jax.random.normal``, the fastest); a traced
    ``alpha`` (a sweep over α compiles once) selects it with ``lax.switch``, so only one
    branch runs. A draw beyond the largest finite float (float32: only for ``α ≲ 0.3`` at
    the extreme ``U``) is clipped to ``±finfo.max``: no draw is ever non-finite.
    Resolution: the uniforms live on a grid of step ``2^-p`` (``p`` = 23 in float32, 52 in
    float64), so the law is truncated where its tail mass is ``~2^-p`` per draw (float32:
    ``|S| ≲ 5e6`` for the Cauchy, ``P(|S| > 5e6) ≈ 1.2e-7``); float64 pushes that to
    ``~1e-16``.

    Args:
      key: a JAX PRNG key.
      alpha: stability index in (0, 2] (Python number, array, or traced scalar).
      shape: output shape.
      dtype: float dtype (default: JAX's default float, float32 or float64 under x64).
    """
    _checks.alpha("alpha", alpha)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    shape = tuple(shape)
    big = jnp.finfo(dtype).max
    static = isinstance(alpha, int | float | np.integer | np.floating)
    if static and float(alpha) == 2.0:
        return jnp.sqrt(jnp.asarray(2.0, dtype)) * jax.random.normal(key, shape, dtype)
    u = _open_uniform(key, (2, *shape), dtype)
    half = jnp.asarray(0.5, dtype)
    lim = jnp.nextafter(jnp.asarray(np.pi / 2, dtype), jnp.asarray(0, dtype))  # < π/2
    v = jnp.clip(jnp.asarray(np.pi, dtype) * (u[0] - half), -lim, lim)
    w = -jnp.log(u[1])  # > 0: u[1] < 1

    def gauss(a):
        return 2 * jnp.sin(v) * jnp.sqrt(w)

    def cauchy(a):
        return jnp.tan(v)

    def generic(a):
        return _cms(v, w, a)

    if static:
        a = float(alpha)
        s = cauchy(a) if a == 1.0 else generic(jnp.asarray(a, dtype))
    else:
        a = jnp.asarray(alpha, dtype)
        branch = jnp.where(a == 2, 0, jnp.where(a == 1, 1, 2))
        if a.ndim == 0:
            s = jax.lax.switch(branch, [gauss, cauchy, generic], a)
        else:  # per-element α (broadcast against shape): select
            s = jnp.where(a == 2, gauss(a), jnp.where(a == 1, cauchy(a), generic(
                jnp.where((a == 1) | (a == 2), jnp.asarray(1.5, dtype), a))))
    # Overflow (small α) gives ±inf; clip to the largest finite value. NaN cannot occur
    # (every factor is finite and positive or a signed sine), but stay defensive.
    return jnp.clip(jnp.nan_to_num(s, nan=0.0), -big, big)


# ---------------------------------------------------------------------------------------
# Covariance models
# ---------------------------------------------------------------------------------------


def _psd_sqrt(c):
    """Symmetric square root of a PSD matrix (negative eigenvalues from rounding -> 0)."""
    lam, vec = jnp.linalg.eigh(c)
    return (vec * jnp.sqrt(jnp.maximum(lam, 0))) @ vec.T


class CovarianceModel:
    """Base of the covariance models: ``factor(θ, loss)`` returns ``B(θ)`` with
    ``B Bᵀ = C(θ)`` (a vector for diagonal ``C``, or a ``(d, d)`` matrix); ``check(d)``
    checks shapes against the dimension. Values are checked at construction."""

    def __post_init__(self):
        _checks.coerce_fields(self)
        self._validate()

    def _validate(self):
        pass

    def check(self, d):
        self._validate()

    def factor(self, theta, loss):
        """The noise factor ``B(θ)`` with ``B Bᵀ = C(θ)``: each covariance model defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define factor(theta, loss)")

    def noise_dim(self, d):
        """Normals per step that drive ``B z`` (``B`` is ``d × noise_dim``): ``d`` but for
        low-rank forms."""
        return d


@_checks.pytree_dataclass
class Isotropic(CovarianceModel):
    """``C = σ² I``."""

    variance: jax.Array

    def _validate(self):
        _checks.scalar("variance", self.variance)
        _checks.real("variance", self.variance, nonnegative=True)

    def factor(self, theta, loss):
        return jnp.broadcast_to(jnp.sqrt(jnp.asarray(self.variance, theta.dtype)), theta.shape)


@_checks.pytree_dataclass
class Fixed(CovarianceModel):
    """A constant covariance ``C``: a vector (diagonal) or a ``(d, d)`` PSD matrix.

    The square root is taken once, at construction (``fixed``), so the step does no
    factorization.
    """

    sqrt_cov: jax.Array

    def _validate(self):
        _checks.real("noise covariance", self.sqrt_cov)
        if np.ndim(self.sqrt_cov) not in (1, 2):
            raise ValueError(f"noise covariance must be a vector or a square matrix, got "
                             f"shape {np.shape(self.sqrt_cov)}")

    def check(self, d):
        super().check(d)
        s = self.sqrt_cov
        if np.ndim(s) == 1:
            _checks.shape("noise covariance", s, (d,), " (diagonal) to match theta0")
        else:
            _checks.shape("noise covariance", s, (d, d), " to match theta0")

    def factor(self, theta, loss):
        return jnp.asarray(self.sqrt_cov, theta.dtype)


@_checks.pytree_dataclass
class Hessian(CovarianceModel):
    """``C(θ) = max(|H(θ)|, floor)/B`` [Xie2021: C ≈ H/B near a minimum].

    ``|H|`` takes absolute eigenvalues. Caution: ``|H|`` vanishes at the
    inflection points between a minimum and its saddle, where the continuous SDE cannot
    cross; a positive ``floor`` (in Hessian units) keeps the noise alive there. Separable
    landscapes (``loss.separable`` true) with ``hessian_diag`` use the diagonal fast path;
    any other loss forms its dense Hessian and an eigendecomposition every step.
    """

    batch_size: jax.Array
    floor: jax.Array = 0.0

    def _validate(self):
        _checks.scalar("batch_size", self.batch_size)
        _checks.scalar("floor", self.floor)
        _checks.real("batch_size", self.batch_size, positive=True)
        _checks.real("floor", self.floor, nonnegative=True)

    def factor(self, theta, loss):
        b = jnp.asarray(self.batch_size, theta.dtype)
        fl = jnp.asarray(self.floor, theta.dtype)
        if getattr(loss, "separable", False) and hasattr(loss, "hessian_diag"):
            return jnp.sqrt(jnp.maximum(jnp.abs(loss.hessian_diag(theta)), fl) / b)
        h = jax.hessian(loss)(theta)
        lam, vec = jnp.linalg.eigh(h)
        return (vec * jnp.sqrt(jnp.maximum(jnp.abs(lam), fl) / b)) @ vec.T


@_checks.pytree_dataclass
class Minibatch(CovarianceModel):
    """``C(θ) = Cov_x[∇ℓ(θ; x)]/B`` over a data set (exact, from per-sample gradients).

    ``data=None`` uses the landscape's population closed form ``loss.grad_cov(θ)`` (e.g.
    the data-shifted Styblinski–Tang), which costs O(d) per step instead of
    O(N·d). Otherwise ``per_sample(θ, x)`` (default ``loss.per_sample``) is evaluated on
    every row of ``data`` each step: keep the data set small.
    """

    batch_size: jax.Array
    data: jax.Array | None = None
    # a pytree child, not static: an Equinox bound method (its arrays traced) works too
    per_sample: Callable | None = None

    def _validate(self):
        _checks.scalar("batch_size", self.batch_size)
        _checks.real("batch_size", self.batch_size, positive=True)
        if self.data is not None:
            n = np.shape(self.data)[0] if np.ndim(self.data) else 0
            if n < 1:
                raise ValueError(f"data must hold at least one sample (first axis), got "
                                 f"shape {np.shape(self.data)}")
            if not isinstance(self.data, jax.core.Tracer):
                if not np.all(np.isfinite(np.asarray(self.data, float))):
                    bad = np.flatnonzero(~np.all(np.isfinite(
                        np.asarray(self.data, float).reshape(n, -1)), axis=1))
                    raise ValueError(f"data must be finite: rows {bad[:5].tolist()} hold "
                                     f"NaN or inf")
            if not isinstance(self.batch_size, jax.core.Tracer) and self.batch_size > n:
                raise ValueError(f"batch_size must be <= the number of samples ({n}), "
                                 f"got {self.batch_size!r}")

    def factor(self, theta, loss):
        b = jnp.asarray(self.batch_size, theta.dtype)
        if self.data is None:
            cov = loss.grad_cov(theta)
            if cov.ndim == 1:
                return jnp.sqrt(jnp.maximum(cov, 0) / b)
            return _psd_sqrt(cov / b)
        fn = per_sample_of(self.per_sample, loss)
        grads = jax.vmap(jax.grad(fn), in_axes=(None, 0))(theta, self.data)
        g = grads - grads.mean(0)
        cov = g.T @ g / grads.shape[0]
        return _psd_sqrt(cov / b)


@_checks.pytree_dataclass
class LowRank(CovarianceModel):
    """A constant low-rank covariance ``C = V diag(λ) Vᵀ`` from ``k`` eigenpairs (columns
    of ``vectors``, ``(d, k)``; ``values`` ``(k,)``, ≥ 0): the local form of a network's
    gradient noise at a minimum, its top eigenpairs (Xie et al.'s approximation;
    ``sdesim.diagnostics.noise_eigs`` measures them). ``B = V diag(√λ)`` is ``d × k``
    and drives ``k`` normals per step: O(d·k) per step, nothing ``d × d``."""

    vectors: jax.Array
    values: jax.Array

    def _validate(self):
        if np.ndim(self.vectors) != 2 or np.ndim(self.values) != 1 or \
                np.shape(self.vectors)[1] != np.shape(self.values)[0]:
            raise ValueError(f"vectors must be (d, k) and values (k,), got "
                             f"{np.shape(self.vectors)} and {np.shape(self.values)}")
        _checks.real("vectors", self.vectors)
        _checks.real("values", self.values, nonnegative=True)

    def check(self, d):
        self._validate()
        if np.shape(self.vectors)[0] != d:
            raise ValueError(f"vectors have {np.shape(self.vectors)[0]} rows but theta has "
                             f"dimension {d}")

    def noise_dim(self, d):
        return int(np.shape(self.values)[0])

    def factor(self, theta, loss):
        return self.vectors.astype(theta.dtype) * jnp.sqrt(self.values.astype(theta.dtype))


def lowrank(values, vectors=None):
    """``LowRank`` covariance from ``k`` eigenpairs: ``lowrank(eigs)`` with the result of
    ``sdesim.diagnostics.noise_eigs`` (its eigenvectors are rows, flat), or
    ``lowrank(values (k,), vectors (k, d))`` with eigenvectors as rows."""
    if vectors is None:
        if not hasattr(values, "values") or not hasattr(values, "vectors"):
            raise TypeError("lowrank(eigs) needs an object with .values and .vectors (from "
                            "sdesim.diagnostics.noise_eigs), or lowrank(values, vectors)")
        values, vectors = values.values, values.vectors
    lam = np.asarray(values, np.float64)
    vec = np.asarray(vectors, np.float64)
    if vec.ndim != 2 or lam.ndim != 1 or vec.shape[0] != lam.shape[0]:
        raise ValueError(f"values must be (k,) and vectors (k, d) (rows), got {lam.shape} "
                         f"and {vec.shape}")
    dtype = jnp.result_type(float)
    return LowRank(jnp.asarray(vec.T, dtype), jnp.asarray(np.maximum(lam, 0.0), dtype))


def per_sample_of(per_sample, loss):
    """The per-sample loss ``ℓ(θ, x)``: ``per_sample`` if given, else ``loss.per_sample``
    (a landscape that defines one, e.g. the data-shifted Styblinski–Tang)."""
    fn = per_sample if per_sample is not None else getattr(loss, "per_sample", None)
    if fn is None:
        raise TypeError("minibatch gradients with data need per_sample(theta, x): pass "
                        "per_sample= or use a landscape that defines it")
    return fn


def isotropic(variance):
    """Isotropic gradient-noise covariance ``σ² I``."""
    _checks.real("variance", variance, nonnegative=True)
    return Isotropic(jnp.asarray(variance))


def fixed(cov):
    """Constant covariance: a vector (its diagonal) or a symmetric PSD ``(d, d)`` matrix."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 1:
        _checks.real("cov", c, nonnegative=True)
        return Fixed(jnp.asarray(np.sqrt(c)))
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be a vector or a square matrix, got shape {c.shape}")
    _checks.real("cov", c)
    if not np.allclose(c, c.T, atol=1e-10 * max(1.0, np.abs(c).max())):
        raise ValueError("cov must be symmetric")
    lam, vec = np.linalg.eigh(c)
    if lam.min() < -1e-8 * max(1.0, abs(lam).max()):
        raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {lam.min()}")
    return Fixed(jnp.asarray((vec * np.sqrt(np.maximum(lam, 0))) @ vec.T))


def hessian(batch_size, floor=0.0):
    """Hessian-shaped noise ``C(θ) = max(|H(θ)|, floor)/batch_size``."""
    _checks.real("batch_size", batch_size, positive=True)
    _checks.real("floor", floor, nonnegative=True)
    return Hessian(jnp.asarray(batch_size, dtype=jnp.result_type(float)),
                   jnp.asarray(floor, dtype=jnp.result_type(float)))


def minibatch(data, batch_size, per_sample=None):
    """Exact minibatch noise ``Cov_x[∇ℓ(θ; x)]/batch_size``.

    ``data``: array of samples (first axis = sample), or None for the landscape's
    population closed form (``loss.grad_cov``).
    """
    _checks.real("batch_size", batch_size, positive=True)
    if data is not None:
        data = jnp.asarray(data)
        if not jnp.issubdtype(data.dtype, jnp.number) or jnp.iscomplexobj(data):
            raise TypeError(f"data must be an array of real numbers, got dtype {data.dtype}")
        if jnp.issubdtype(data.dtype, jnp.floating):  # the run's float dtype, as θ
            data = data.astype(jnp.result_type(float))
    if per_sample is not None and not callable(per_sample):
        raise TypeError(f"per_sample must be a function (theta, x) -> scalar, got "
                        f"{type(per_sample).__name__}")
    return Minibatch(jnp.asarray(batch_size, dtype=jnp.result_type(float)), data, per_sample)


def apply_factor(factor, z):
    """``B z`` for a scalar or diagonal (vector) factor, or a full ``(d, d)`` matrix."""
    return factor @ z if factor.ndim == 2 else factor * z


def factor_var(factor):
    """``diag(B Bᵀ)`` from a factor ``B`` (vector: diagonal; matrix: full): the
    per-coordinate variance rate."""
    return factor**2 if factor.ndim == 1 else jnp.sum(factor**2, axis=1)
