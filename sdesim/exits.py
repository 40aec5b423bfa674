"""Exit regions: when a path has left its basin (docs/concepts/mathematics.md, section 4).

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
from .noise import factor_var


def _bridge_prob(d1, d2, var, h):
    """Probability that a Brownian bridge with ends at distances d1, d2 > 0 from a face
    touched it. var = σ_n² (per unit time). Zero where a distance is infinite or var = 0."""
    var = jnp.maximum(var, jnp.finfo(var.dtype).tiny)
    arg = -2.0 * jnp.maximum(d1, 0) * jnp.maximum(d2, 0) / (var * h)
    return jnp.where(jnp.isfinite(arg), jnp.exp(arg), 0.0)


class Exit:
    """Base of the exit regions: ``outside(θ) -> bool`` for one point; values are checked
    at construction (``check()`` runs the same checks again)."""

    dim = None  # the dimension the region is defined for, or None (any)

    def __post_init__(self):
        _checks.coerce_fields(self)
        self.check()

    def check(self):
        pass


@_checks.pytree_dataclass
class Halfspace(Exit):
    """Exit when ``normal · θ > offset``."""

    normal: jax.Array = dataclasses.field(metadata=dict(vector=True))
    offset: jax.Array = dataclasses.field()

    @property
    def dim(self):
        return int(np.shape(self.normal)[0])

    def check(self):
        _checks.real("normal", self.normal)
        _checks.scalar("offset", self.offset)
        _checks.real("offset", self.offset, finite=False)
        if np.ndim(self.normal) != 1 or not np.any(np.asarray(self.normal) != 0):
            raise ValueError(f"normal must be a non-zero vector, got {self.normal!r}")

    def outside(self, theta):
        return jnp.dot(self.normal.astype(theta.dtype), theta) > self.offset

    def cross_prob(self, x, y, factor, h):
        n = self.normal.astype(x.dtype)
        var = jnp.sum((n * factor) ** 2) if factor.ndim == 1 else jnp.sum((factor.T @ n) ** 2)
        return _bridge_prob(self.offset - n @ x, self.offset - n @ y, var, h)


@_checks.pytree_dataclass
class Box(Exit):
    """Exit when any coordinate leaves ``[lower, upper]`` (±inf allowed)."""

    lower: jax.Array = dataclasses.field(metadata=dict(vector=True))
    upper: jax.Array = dataclasses.field(metadata=dict(vector=True))

    def __post_init__(self):
        _checks.coerce_fields(self)
        if isinstance(self.lower, jax.Array) and isinstance(self.upper, jax.Array) and \
                self.lower.shape != self.upper.shape and min(self.lower.size,
                                                             self.upper.size) == 1:
            lo, up = jnp.broadcast_arrays(self.lower, self.upper)
            object.__setattr__(self, "lower", lo)
            object.__setattr__(self, "upper", up)
        self.check()

    @property
    def dim(self):
        return int(np.shape(self.lower)[0])

    def check(self):
        if isinstance(self.lower, jax.core.Tracer) or isinstance(self.upper, jax.core.Tracer):
            return
        _checks.real("lower", self.lower, finite=False)
        _checks.real("upper", self.upper, finite=False)
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
        var = factor_var(factor)
        p_up = _bridge_prob(up - x, up - y, var, h)
        p_lo = _bridge_prob(x - lo, y - lo, var, h)
        # Faces crossed independently to first order (exact for diagonal noise, one face).
        return 1.0 - jnp.prod((1.0 - p_up) * (1.0 - p_lo))


class _Centered(Exit):
    """A region around a ``center`` vector (its dimension is the region's)."""

    @property
    def dim(self):
        return int(np.shape(self.center)[0])

    def _check_center(self):
        if np.ndim(self.center) != 1:
            raise ValueError(f"center must be a vector, got shape {np.shape(self.center)}")
        _checks.real("center", self.center)

    def _offset(self, theta):
        return theta - self.center.astype(theta.dtype)


@_checks.pytree_dataclass
class Ellipsoid(_Centered):
    """Exit when ``½ (θ - center)ᵀ A (θ - center) > level`` (a quadratic basin Ω)."""

    center: jax.Array = dataclasses.field(metadata=dict(vector=True))
    matrix: jax.Array = dataclasses.field()
    level: jax.Array = dataclasses.field()

    def check(self):
        self._check_center()
        d = self.dim
        _checks.shape("matrix", self.matrix, (d, d), " to match center")
        _checks.symmetric_pd("matrix", self.matrix)
        _checks.scalar("level", self.level)
        _checks.real("level", self.level, positive=True)

    def outside(self, theta):
        y = self._offset(theta)
        return 0.5 * y @ (self.matrix.astype(theta.dtype) @ y) > self.level


@_checks.pytree_dataclass
class Ball(_Centered):
    """Exit when ``‖θ − center‖ > radius``: leaving a Euclidean ball around a minimum
    (the first exit time of a neighbourhood, as Nguyen et al., NeurIPS 2019, measure it
    for networks). Grid monitoring (no bridge). For a pytree run build it with ``ball``,
    which takes the centre as a parameter pytree."""

    center: jax.Array = dataclasses.field(metadata=dict(vector=True))
    radius: jax.Array = dataclasses.field()

    def check(self):
        self._check_center()
        _checks.scalar("radius", self.radius)
        _checks.real("radius", self.radius, positive=True)

    def outside(self, theta):
        y = self._offset(theta)
        return y @ y > jnp.square(self.radius.astype(theta.dtype))


def ball(center, radius):
    """``Ball`` around ``center``, a vector or a parameter pytree (flattened in the order
    the engine flattens ``theta0``, ``sdesim.pytrees``)."""
    from . import pytrees

    if not pytrees.is_vector_like(center):
        center = pytrees.layout(center)[0]
    return Ball(center, radius)


@_checks.pytree_dataclass
class LevelSet(Exit):
    """Exit when ``fn(θ) > level`` (a sub-level set of any function, e.g. the loss).

    ``fn`` is a pytree child, not static metadata: a landscape's parameters (a
    ``Quadratic``'s Hessian) stay traced, so sweeping them reuses the compiled program
    (a plain function is a static leaf either way)."""

    fn: Callable
    level: jax.Array = 0.0
    dim: int | None = dataclasses.field(default=None, metadata=dict(static=True))

    def check(self):
        if not callable(self.fn):
            raise TypeError(f"fn must be a function theta -> scalar, got "
                            f"{type(self.fn).__name__}")
        _checks.scalar("level", self.level)
        _checks.real("level", self.level)

    def outside(self, theta):
        return self.fn(theta) > self.level


@_checks.pytree_dataclass
class Predicate(Exit):
    """Any ``θ -> bool`` (True = the path has exited). Grid monitoring only."""

    config_name = None  # a Python function: not offered in configs
    fn: Callable = dataclasses.field(metadata=dict(static=True))
    dim: int | None = dataclasses.field(default=None, metadata=dict(static=True))

    def check(self):
        if not callable(self.fn):
            raise TypeError(f"fn must be a function theta -> bool, got "
                            f"{type(self.fn).__name__}")

    def outside(self, theta):
        out = jnp.asarray(self.fn(theta), bool)
        if out.size != 1:
            raise ValueError(f"exit must return one bool per point, got shape {out.shape}")
        return out.reshape(())


def as_exit(exit):
    """Coerce a user's exit (an exit object or a callable predicate) and check it."""
    if isinstance(exit, Exit):
        exit.check()
        return exit
    if callable(exit):
        return Predicate(exit)
    raise TypeError(f"exit must be an exit from sdesim.exits or a callable theta -> bool, "
                    f"got {type(exit).__name__}")
