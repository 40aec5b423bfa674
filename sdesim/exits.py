"""Exit regions: when a path has left its basin (SPEC §6).

An exit is a pytree with ``outside(θ) -> bool`` for one point ``θ`` of shape ``(d,)``.
Half-spaces and boxes also give ``cross_prob(x, y, factor, h)``: the probability that a
Brownian bridge from ``x`` to ``y`` over a step ``h``, with position-noise factor ``B``
(``Cov(Δθ) = B Bᵀ h``), touched the boundary although both ends are inside:
``exp(-2 d₁ d₂ / (σ_n² h))`` with ``σ_n² = nᵀ B Bᵀ n`` (F28). With it the exit-time bias
of Euler–Maruyama drops from O(sqrt h) to O(h) (Gobet 2000). Any callable ``θ -> bool``
also works as an exit (grid monitoring only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks


def _coerce(obj, *names, vector=()):
    """Turn Python numbers/lists given to a constructor into float arrays (leave tracers and
    JAX's internal placeholders alone: pytrees are rebuilt with arbitrary leaves)."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, int | float | list | tuple | np.ndarray | np.generic):
            arr = np.asarray(v, dtype=np.float64)
            if name in vector and arr.ndim == 0:
                arr = arr[None]
            object.__setattr__(obj, name, jnp.asarray(arr, dtype=jnp.result_type(float)))


def _bridge_prob(d1, d2, var, h):
    """Probability that a Brownian bridge with ends at distances d1, d2 > 0 from a face
    touched it. var = σ_n² (per unit time). Zero where a distance is infinite or var = 0."""
    var = jnp.maximum(var, jnp.finfo(var.dtype).tiny)
    arg = -2.0 * jnp.maximum(d1, 0) * jnp.maximum(d2, 0) / (var * h)
    return jnp.where(jnp.isfinite(arg), jnp.exp(arg), 0.0)


def _row_var(factor):
    """Diagonal of B Bᵀ: per-coordinate variance rate of the position noise."""
    return factor**2 if factor.ndim == 1 else jnp.sum(factor**2, axis=1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Halfspace:
    """Exit when ``normal · θ > offset``."""

    normal: jax.Array
    offset: jax.Array

    def __post_init__(self):
        _coerce(self, "normal", "offset", vector=("normal",))

    @property
    def dim(self):
        return int(np.shape(self.normal)[0])

    def check(self):
        _checks.real("normal", self.normal)
        _checks.real("offset", self.offset)
        if np.ndim(self.normal) != 1 or not np.any(np.asarray(self.normal) != 0):
            raise ValueError(f"normal must be a non-zero vector, got {self.normal!r}")

    def outside(self, theta):
        return jnp.dot(self.normal.astype(theta.dtype), theta) > self.offset

    def cross_prob(self, x, y, factor, h):
        n = self.normal.astype(x.dtype)
        var = jnp.sum((n * factor) ** 2) if factor.ndim == 1 else jnp.sum((factor.T @ n) ** 2)
        return _bridge_prob(self.offset - n @ x, self.offset - n @ y, var, h)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Box:
    """Exit when any coordinate leaves ``[lower, upper]`` (±inf allowed)."""

    lower: jax.Array
    upper: jax.Array

    def __post_init__(self):
        _coerce(self, "lower", "upper", vector=("lower", "upper"))
        if isinstance(self.lower, jax.Array) and isinstance(self.upper, jax.Array) and \
                self.lower.shape != self.upper.shape and min(self.lower.size,
                                                             self.upper.size) == 1:
            lo, up = jnp.broadcast_arrays(self.lower, self.upper)
            object.__setattr__(self, "lower", lo)
            object.__setattr__(self, "upper", up)

    @property
    def dim(self):
        return int(np.shape(self.lower)[0])

    def check(self):
        lo, up = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lo.shape != up.shape or lo.ndim != 1:
            raise ValueError(f"lower and upper must be vectors of one shape, got shapes "
                             f"{lo.shape} and {up.shape}")
        if np.any(np.isnan(lo)) or np.any(np.isnan(up)) or np.any(lo >= up):
            raise ValueError(f"Box needs lower < upper in every coordinate, got lower={lo}, "
                             f"upper={up}")

    def outside(self, theta):
        return jnp.any((theta < self.lower.astype(theta.dtype))
                       | (theta > self.upper.astype(theta.dtype)))

    def cross_prob(self, x, y, factor, h):
        lo, up = self.lower.astype(x.dtype), self.upper.astype(x.dtype)
        var = _row_var(factor)
        p_up = _bridge_prob(up - x, up - y, var, h)
        p_lo = _bridge_prob(x - lo, y - lo, var, h)
        # Faces crossed independently to first order (exact for diagonal noise, one face).
        return 1.0 - jnp.prod((1.0 - p_up) * (1.0 - p_lo))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Ellipsoid:
    """Exit when ``½ (θ - center)ᵀ A (θ - center) > level`` (a quadratic basin Ω)."""

    center: jax.Array
    matrix: jax.Array
    level: jax.Array

    def __post_init__(self):
        _coerce(self, "center", "matrix", "level", vector=("center",))

    @property
    def dim(self):
        return int(np.shape(self.center)[0])

    def check(self):
        d = self.dim
        _checks.shape("matrix", self.matrix, (d, d), " to match center")
        _checks.real("level", self.level, positive=True)
        lam = np.linalg.eigvalsh(np.asarray(self.matrix, float))
        if lam.min() <= 0:
            raise ValueError("matrix must be positive definite")

    def outside(self, theta):
        y = theta - self.center.astype(theta.dtype)
        return 0.5 * y @ (self.matrix.astype(theta.dtype) @ y) > self.level


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LevelSet:
    """Exit when ``fn(θ) > level`` (a sub-level set of any function, e.g. the loss).

    ``fn`` is a pytree child, not static metadata: a landscape's parameters (a
    ``Quadratic``'s Hessian) stay traced, so sweeping them reuses the compiled program
    (a plain function is a static leaf either way)."""

    fn: Callable
    level: jax.Array = 0.0
    dim: int | None = dataclasses.field(default=None, metadata=dict(static=True))

    def __post_init__(self):
        _coerce(self, "level")

    def check(self):
        _checks.real("level", self.level)

    def outside(self, theta):
        return self.fn(theta) > self.level


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Predicate:
    """Any ``θ -> bool`` (True = the path has exited). Grid monitoring only."""

    fn: Callable = dataclasses.field(metadata=dict(static=True))
    dim: int | None = dataclasses.field(default=None, metadata=dict(static=True))

    def check(self):
        pass

    def outside(self, theta):
        return jnp.asarray(self.fn(theta), bool).reshape(())


def as_exit(exit):
    """Coerce a user's exit (an exit object or a callable predicate) and check it."""
    if hasattr(exit, "outside"):
        exit.check()
        return exit
    if callable(exit):
        return Predicate(exit)
    raise TypeError(f"exit must be an exit from sdesim.exits or a callable theta -> bool, "
                    f"got {type(exit).__name__}")
