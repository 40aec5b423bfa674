"""Gradient noise: the SαS sampler and the covariance models of SGD's noise (SPEC §1-2).

Convention (SPEC §1): one iteration's gradient noise is ``u = Σ·S``; for Gaussian noise of
covariance ``C`` the continuous-time noise of every model is ``sqrt(η C) dW``. A covariance
model here returns a *factor* ``B(θ)`` with ``B Bᵀ = C(θ)``: either a vector (diagonal
``C``, the fast path) or a ``(d, d)`` matrix. Models multiply it by ``sqrt(η)`` themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks

# ---------------------------------------------------------------------------------------
# Symmetric α-stable sampler
# ---------------------------------------------------------------------------------------


def sas(key, alpha, shape, dtype=None):
    """Draw symmetric α-stable samples with ``E exp(iωS) = exp(-|ω|^α)`` (SPEC §2).

    Chambers–Mallows–Stuck: ``V ~ U(-π/2, π/2)`` on the *open* interval, ``W ~ Exp(1)``
    with ``W > 0``; ``S = sin(αV)/cos(V)^{1/α} · (cos((1-α)V)/W)^{(1-α)/α}``. ``α = 1``
    gives ``tan V`` (Cauchy) and ``α = 2`` gives ``N(0, 2)``, both exact. ``alpha`` may be
    traced (a sweep over α compiles once); the α = 1 and α = 2 cases are selected with
    ``where`` so the formula never divides by ``1 - α``. No draw is ever non-finite.

    Args:
      key: a JAX PRNG key.
      alpha: stability index in (0, 2].
      shape: output shape.
      dtype: float dtype (default: JAX's default float).
    """
    _checks.alpha("alpha", alpha)
    dtype = jnp.result_type(float) if dtype is None else dtype
    if isinstance(alpha, int | float) and alpha == 2:
        # Static α = 2: the exact Gaussian fast path sqrt(2)·N(0, 1). (A traced α = 2 goes
        # through CMS, which is also exactly N(0, 2): 2 sin(V) sqrt(W).)
        return jnp.sqrt(jnp.asarray(2.0, dtype)) * jax.random.normal(key, shape, dtype)
    kv, kw = jax.random.split(key)
    tiny = jnp.finfo(dtype).tiny
    half_pi = jnp.asarray(np.pi / 2, dtype)
    # Open interval: minval/maxval strictly inside ±π/2 (float32 rounds π/2·u to π/2).
    lim = jnp.nextafter(half_pi, jnp.asarray(0, dtype))
    v = jax.random.uniform(kv, shape, dtype, minval=-lim, maxval=lim)
    w = jnp.maximum(jax.random.exponential(kw, shape, dtype), tiny)
    a = jnp.asarray(alpha, dtype)
    cos_v = jnp.cos(v)
    # Generic α. Guard α = 1 (division by 1-α in the exponent is fine: (1-α)/α = 0 then,
    # but keep both branches finite so `where` has no NaN to propagate into gradients).
    a_safe = jnp.where(a == 1, jnp.asarray(0.5, dtype), a)
    generic = (jnp.sin(a_safe * v) / cos_v ** (1 / a_safe)
               * (jnp.cos((1 - a_safe) * v) / w) ** ((1 - a_safe) / a_safe))
    cauchy = jnp.tan(v)
    s = jnp.where(a == 1, cauchy, generic)
    # Extreme draws for small α overflow float32: clip to the largest finite value so the
    # sampler never emits inf (the engine treats a state that leaves the box as an exit).
    big = jnp.finfo(dtype).max
    return jnp.clip(jnp.nan_to_num(s, nan=0.0, posinf=big, neginf=-big), -big, big)


# ---------------------------------------------------------------------------------------
# Covariance models
# ---------------------------------------------------------------------------------------


def _psd_sqrt(c):
    """Symmetric square root of a PSD matrix (negative eigenvalues from rounding -> 0)."""
    lam, vec = jnp.linalg.eigh(c)
    return (vec * jnp.sqrt(jnp.maximum(lam, 0))) @ vec.T


def _abs_sqrt(h, scale):
    """``(|H| / scale)^{1/2}`` through an eigendecomposition (|H| = V|Λ|Vᵀ)."""
    lam, vec = jnp.linalg.eigh(h)
    return (vec * jnp.sqrt(jnp.abs(lam) / scale)) @ vec.T


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Isotropic:
    """``C = σ² I``."""

    variance: jax.Array

    def check(self, d):
        _checks.real("variance", self.variance, nonnegative=True)

    def factor(self, theta, loss):
        return jnp.broadcast_to(jnp.sqrt(jnp.asarray(self.variance, theta.dtype)), theta.shape)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Fixed:
    """A constant covariance ``C``: a vector (diagonal) or a ``(d, d)`` PSD matrix.

    The square root is taken once, at construction, so the step does no factorization.
    """

    sqrt_cov: jax.Array

    def check(self, d):
        s = self.sqrt_cov
        if np.ndim(s) == 1:
            _checks.shape("noise covariance", s, (d,), " (diagonal) to match theta0")
        else:
            _checks.shape("noise covariance", s, (d, d), " to match theta0")

    def factor(self, theta, loss):
        return jnp.asarray(self.sqrt_cov, theta.dtype)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Hessian:
    """``C(θ) = max(|H(θ)|, floor)/B`` [Xie2021: C ≈ H/B near a minimum].

    ``|H|`` takes absolute eigenvalues. Caution (SPEC §2): ``|H|`` vanishes at the
    inflection points between a minimum and its saddle, where the continuous SDE cannot
    cross; a positive ``floor`` (in Hessian units) keeps the noise alive there. Landscapes
    that define ``hessian_diag`` (separable ones) use the diagonal fast path.
    """

    batch_size: jax.Array
    floor: jax.Array = 0.0

    def check(self, d):
        _checks.real("batch_size", self.batch_size, positive=True)
        _checks.real("floor", self.floor, nonnegative=True)

    def factor(self, theta, loss):
        b = jnp.asarray(self.batch_size, theta.dtype)
        fl = jnp.asarray(self.floor, theta.dtype)
        hd = getattr(loss, "hessian_diag", None)
        if hd is not None:
            return jnp.sqrt(jnp.maximum(jnp.abs(hd(theta)), fl) / b)
        h = jax.hessian(loss)(theta)
        lam, vec = jnp.linalg.eigh(h)
        return (vec * jnp.sqrt(jnp.maximum(jnp.abs(lam), fl) / b)) @ vec.T


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Minibatch:
    """``C(θ) = Cov_x[∇ℓ(θ; x)]/B`` over a data set (exact, from per-sample gradients).

    ``data=None`` uses the landscape's population closed form ``loss.grad_cov(θ)`` (e.g.
    the data-shifted Styblinski–Tang, SPEC §5), which costs O(d) per step instead of
    O(N·d). Otherwise ``per_sample(θ, x)`` (default ``loss.per_sample``) is evaluated on
    every row of ``data`` each step: keep the data set small.
    """

    batch_size: jax.Array
    data: jax.Array | None = None
    per_sample: Callable | None = dataclasses.field(default=None, metadata=dict(static=True))

    def check(self, d):
        _checks.real("batch_size", self.batch_size, positive=True)
        if self.data is not None:
            n = np.shape(self.data)[0] if np.ndim(self.data) else 0
            if n < 1:
                raise ValueError("data must hold at least one sample, got an empty array")
            if not isinstance(self.batch_size, jax.core.Tracer) and self.batch_size > n:
                raise ValueError(f"batch_size must be <= the number of samples ({n}), "
                                 f"got {self.batch_size!r}")

    def _per_sample(self, loss):
        fn = self.per_sample if self.per_sample is not None else getattr(loss, "per_sample",
                                                                          None)
        if fn is None:
            raise TypeError("minibatch noise with data needs per_sample(theta, x): pass "
                            "per_sample= or use a landscape that defines it")
        return fn

    def factor(self, theta, loss):
        b = jnp.asarray(self.batch_size, theta.dtype)
        if self.data is None:
            cov = loss.grad_cov(theta)
            if cov.ndim == 1:
                return jnp.sqrt(jnp.maximum(cov, 0) / b)
            return _psd_sqrt(cov / b)
        fn = self._per_sample(loss)
        grads = jax.vmap(jax.grad(fn), in_axes=(None, 0))(theta, self.data)
        g = grads - grads.mean(0)
        cov = g.T @ g / grads.shape[0]
        return _psd_sqrt(cov / b)


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
    """Hessian-shaped noise ``C(θ) = max(|H(θ)|, floor)/batch_size`` (SPEC §2)."""
    _checks.real("batch_size", batch_size, positive=True)
    _checks.real("floor", floor, nonnegative=True)
    return Hessian(jnp.asarray(batch_size, dtype=jnp.result_type(float)),
                   jnp.asarray(floor, dtype=jnp.result_type(float)))


def minibatch(data, batch_size, per_sample=None):
    """Exact minibatch noise ``Cov_x[∇ℓ(θ; x)]/batch_size`` (SPEC §2).

    ``data``: array of samples (first axis = sample), or None for the landscape's
    population closed form (``loss.grad_cov``).
    """
    _checks.real("batch_size", batch_size, positive=True)
    if data is not None:
        data = jnp.asarray(data)
        if data.ndim == 0 or data.shape[0] < 1:
            raise ValueError(f"data must hold at least one sample, got shape {data.shape}")
        if batch_size > data.shape[0]:
            raise ValueError(f"batch_size must be <= the number of samples "
                             f"({data.shape[0]}), got {batch_size!r}")
    return Minibatch(jnp.asarray(batch_size, dtype=jnp.result_type(float)), data, per_sample)


def apply_factor(factor, z):
    """``B z`` for a diagonal (vector) or full (matrix) factor."""
    return factor * z if factor.ndim == z.ndim else factor @ z
