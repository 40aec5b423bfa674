"""The model contract: what a model gives the engine, ``simulate`` and the splitting code.

A model is a frozen dataclass registered as a JAX pytree (numeric hyperparameters are
leaves, so they are traced and a sweep over them compiles once; structural options are
static fields) that subclasses :class:`Model` and states **what the equation is**. How a
step is taken is the job of an integrator in :mod:`sdesim.integrators`, which the model
names (``integrator``, a class attribute or a static field). To write a new optimizer SDE:

1. Choose the state. Overdamped models use ``θ`` itself (the default ``init`` and
   ``position``); others return a ``NamedTuple`` whose first field is ``theta`` and
   override ``init`` (e.g. ``PhaseState(theta0, zeros)``).
2. Choose the driving noise: ``noise_kind = "gaussian"`` (standard normals, one per entry
   of ``noise_shape(d)``), ``"levy"`` (symmetric α-stable draws with index ``alpha``) or
   ``"discrete"`` (the model draws its own, e.g. minibatch indices, in ``sample_noise``).
3. Write the equation once, in ``terms(state, t, h, loss)``, returning the data of one of
   the term types below for the state at SDE time ``t``; ``h`` is the step, used only by
   models with auxiliary state integrated exactly over a step (Adam's moments). Nothing in
   ``terms`` draws noise or advances the position: the integrator does.

   - :class:`Diffusion` — ``dx = f dt + s·B dL``: ``drift`` ``f``, ``scale`` ``s`` (a
     scalar or None), ``factor`` ``B`` (None, a vector = diagonal, or a ``(d, d)``
     matrix), optional ``precond`` ``Q`` (then ``dx = Q⁻¹(f dt + s·B dL)``, a vector) and
     ``aux`` (the auxiliary state already advanced to ``t + h``). For overdamped models
     ``x = θ`` (integrator ``"euler-maruyama"``); for underdamped Langevin ``x = v``, the
     velocity (integrators ``"semi-implicit"``, ``"phase-euler"``).
   - :class:`Inertial` — ``dθ = v dt``, ``M dv = −Γ v dt + F dt + s·B dL`` per coordinate
     (mass ``M``, friction force coefficient ``Γ``, force ``F = −∇L``): the phase-space
     SDEs of Momentum, Adam and Adai (integrators ``"exponential"``, ``"euler"``).
   - discrete models (an optimizer's update, AdaL) instead implement
     ``update(state, t, h, loss, z) -> state`` (integrator ``"discrete"``).

4. ``check(d)``: host-side validation that needs the dimension (shapes); value checks that
   do not need it run at construction (``_validate``), so a bad model never exists.
5. Optional: ``lr`` (SDE time per optimizer iteration, or None), ``check_dt(dt)`` (a fixed
   step), ``diffusive_position`` (True when the position is a Gaussian diffusion, so the
   Brownian-bridge exit test applies), ``linearization(lam, h)`` (the step's linear map on
   a mode of curvature ``lam``, for the stability check before a run),
   ``memory_time()`` (how long the state remembers its start beyond position and
   velocity, e.g. an EMA of squared gradients; ``escape_ams`` warms up for a multiple),
   ``mass_of(state)`` (an ``Inertial`` model whose mass adapts, e.g. Adai's: the mass
   the state carries, which ``sdesim.rare.phase_score(..., state_mass=True)`` puts in
   its kinetic energy).

All SDEs are Itô; time is SDE time (one optimizer iteration is ``lr`` time units).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from .noise import apply_factor


class Diffusion(NamedTuple):
    """``dx = drift dt + scale·factor dL`` (optionally ``Q⁻¹(...)`` with ``precond = Q``)."""

    drift: jax.Array
    scale: jax.Array | None = None
    factor: jax.Array | None = None
    precond: jax.Array | None = None
    aux: Any = None


class Inertial(NamedTuple):
    """``dθ = v dt``, ``M dv = −Γ v dt + force dt + scale·factor dL`` (per coordinate)."""

    force: jax.Array
    mass: jax.Array
    friction: jax.Array
    scale: jax.Array | None = None
    factor: jax.Array | None = None
    aux: Any = None


def noise_force(scale, factor, z):
    """``s·(B z)`` (``s`` or ``B`` may be None): the noise per unit of the driving process."""
    out = z if factor is None else apply_factor(factor, z)
    return out if scale is None else scale * out


def position_factor(terms, shape):
    """The Gaussian position-noise factor ``sB`` (``Cov(Δθ) = sB (sB)ᵀ h``) of overdamped
    terms, for the Brownian-bridge exit test."""
    if terms.factor is None:
        return jnp.broadcast_to(terms.scale, shape)
    return terms.factor if terms.scale is None else terms.scale * terms.factor


class Model:
    """Base class of every model (see the module docstring for the contract)."""

    noise_kind: ClassVar[str] = "gaussian"
    integrator: ClassVar[str] = "euler-maruyama"
    diffusive_position: ClassVar[bool] = False
    additive: ClassVar[bool] = False  # noise independent of the state (diffrax: ShARK)

    def __getattr__(self, name):
        # ``lr`` (SDE time per optimizer iteration) and ``alpha`` (the α of SαS driving
        # noise) are None for models that do not define them (not class attributes: a
        # dataclass would take them as defaults of the subclasses' fields).
        if name in ("lr", "alpha"):
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- construction ------------------------------------------------------------------
    def __post_init__(self):
        # runs only when a user builds the model (``_checks.pytree_dataclass``: JAX's
        # unflattening skips it), so placeholders and masks are never validated
        _checks.coerce_fields(self)
        self._validate()

    def _validate(self):
        """Value checks that do not need the dimension (ValueError naming the argument)."""

    def check(self, d):
        """Checks that need the dimension ``d`` (shapes). Runs ``_validate`` again: a
        model may have been rebuilt by a tree map since it was constructed."""
        self._validate()

    def check_dt(self, dt):
        """Models with a fixed step (one optimizer iteration) refuse another ``dt``."""

    def linearization(self, lam, h):
        """The step's linear map (a small matrix) on a mode of curvature ``lam`` for a step
        ``h``, for the stability check before a run; None: not stated (no check)."""
        return None

    def memory_time(self):
        """SDE time over which the state remembers where it started, beyond position
        and velocity (Adam's and Adai's second-moment EMA: ``η/(1 − β₂)``): 0 when it
        has no such memory, None when unknown. ``escape_ams`` lets the direct run loop
        for ``WARMUP_MEMORIES`` of it before sampling the entrances on Σ."""
        return 0.0

    # -- state -------------------------------------------------------------------------
    def init(self, theta0):
        return theta0

    def position(self, state):
        return state

    def velocity(self, state):
        """The velocity of a phase-space state (``Trajectories.velocity``); None for
        models without one."""
        return None

    # -- noise -------------------------------------------------------------------------
    def noise_shape(self, d):
        """The driving noise of one step: ``d`` numbers, or as many as the model's
        covariance model needs (a low-rank ``B`` of ``d × k``: ``k``)."""
        covs = self.covariances()
        return (covs[0].noise_dim(d),) if len(covs) == 1 else (d,)

    def covariances(self):
        """The gradient-noise covariance models (``sdesim.noise``) among the fields, for
        the input checks of a run (a minibatch noise needs per-sample gradients)."""
        import dataclasses

        from .noise import CovarianceModel

        return tuple(v for v in (getattr(self, f.name) for f in dataclasses.fields(self))
                     if isinstance(v, CovarianceModel))

    def sample_noise(self, key, shape, dtype):
        """The driving noise of one page when the engine does not draw it itself."""
        if self.noise_kind == "levy":
            from .noise import sas

            return sas(key, self.alpha, shape, dtype)
        return jax.random.normal(key, shape, dtype)

    # -- the equation ------------------------------------------------------------------
    def terms(self, state, t, h, loss):
        raise NotImplementedError(f"{type(self).__name__} must define terms() (or update()"
                                  f" for a discrete model)")

    def step(self, state, t, h, loss, z):
        """One step of size ``h`` from ``t`` with driving noise ``z``: the model's
        integrator applied to its terms. Returns ``(state, factor)``, ``factor`` the
        position-noise factor for the bridge test (None where it does not apply)."""
        from .integrators import INTEGRATORS

        return INTEGRATORS[self.integrator](self, state, t, h, loss, z)

    # -- diffrax form ------------------------------------------------------------------
    @property
    def has_vector_field(self):
        """A Gaussian SDE with a closed ``(drift, diffusion)`` on a flat vector."""
        return False

    def to_vector(self, state):
        return state

    def from_vector(self, y, d):
        return y


class Overdamped(Model):
    """A model whose state is ``θ`` and whose terms are a :class:`Diffusion` in ``θ``
    without auxiliary state: its diffrax form is derived from ``terms``."""

    @property
    def has_vector_field(self):
        return self.noise_kind == "gaussian"

    def linearization(self, lam, h):
        """``θ ← θ − h·lam·θ`` on a mode of curvature ``lam`` (drift ``−∇L``)."""
        return np.array([[1.0 - h * lam]])

    def vector_field(self, loss):
        """``(drift, diffusion)`` for ``diffrax`` (``MultiTerm(ODETerm, ControlTerm)``),
        from the same ``terms`` the engine integrates."""

        def drift(t, y, args):
            return self.terms(y, t, None, loss).drift

        def diffusion(t, y, args):
            tm = self.terms(y, t, None, loss)
            if tm.factor is None:
                return tm.scale * jnp.eye(y.shape[0], dtype=y.dtype)
            f = tm.factor if tm.scale is None else tm.scale * tm.factor
            return jnp.diag(f) if f.ndim == 1 else f

        return drift, diffusion
