"""SDE models of optimizers (SPEC §3). Data + pure functions; the engine does the looping.

A model is a frozen dataclass registered as a pytree: its numeric hyperparameters
(temperature, learning rate, mass, ...) are leaves, so they are *traced* and a sweep over
them compiles once; structural options are static fields. Every model provides

- ``init(theta0) -> state`` and ``position(state) -> θ``;
- ``noise_shape(d)`` and ``sample_noise(key, shape, dtype)``: the standard noise the engine
  draws per step (counter-based per path, see ``sdesim.engine``);
- ``step(state, t, h, loss, z) -> (state, factor)``: one Euler–Maruyama (or splitting) step
  of size ``h`` from SDE time ``t`` with standard noise ``z``. ``factor`` is the
  position-noise factor ``B`` (``Cov(Δθ) = B Bᵀ h``) used by the Brownian-bridge exit
  correction, or ``None`` where the position is not a diffusion (phase-space models);
- ``check(d)``: host-side validation (ValueError naming the argument);
- ``lr``: the learning rate (SDE time per iteration) or ``None``.

Gaussian models also expose ``vector_field(loss)`` for diffrax (``sdesim.simulate``).
All SDEs are in Itô form; time is SDE time (``t = k·η`` for an optimizer, SPEC §1).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from . import noise as _noise


def _coerce(obj, *names):
    """Python numbers given to a constructor -> arrays (traced under jit, so no recompile
    per value). Leave anything else alone: JAX rebuilds pytrees with placeholder leaves."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, int | float | np.ndarray | np.generic) and not isinstance(v, bool):
            object.__setattr__(obj, name, jnp.asarray(v, dtype=jnp.result_type(float)))


def _grad(loss, theta):
    return jax.grad(loss)(theta)


class _Gaussian:
    """Mixin: standard normal noise, one draw per coordinate per step."""

    noise_kind = "gaussian"

    def noise_shape(self, d):
        return (d,)

    def sample_noise(self, key, shape, dtype):
        return jax.random.normal(key, shape, dtype)


class _Overdamped:
    """Mixin: the state is θ itself."""

    def init(self, theta0):
        return theta0

    def position(self, state):
        return state

    def to_vector(self, state):
        return state

    def from_vector(self, y, d):
        return y


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Langevin(_Gaussian, _Overdamped):
    """Overdamped Langevin ``dθ = -∇L(θ) dt + sqrt(2T) dW`` (Itô; the Kramers reference).

    Args:
      temperature: ``T >= 0``.
    """

    temperature: jax.Array

    lr = None
    additive = True

    def __post_init__(self):
        _coerce(self, "temperature")

    def check(self, d):
        _checks.real("temperature", self.temperature, nonnegative=True)

    def step(self, state, t, h, loss, z):
        sig = jnp.sqrt(2 * jnp.asarray(self.temperature, state.dtype))
        new = state - _grad(loss, state) * h + sig * jnp.sqrt(h) * z
        return new, jnp.broadcast_to(sig, state.shape)

    def vector_field(self, loss):
        def drift(t, y, args):
            return -_grad(loss, y)

        def diffusion(t, y, args):
            sig = jnp.sqrt(2 * jnp.asarray(self.temperature, y.dtype))
            return sig * jnp.eye(y.shape[0], dtype=y.dtype)

        return drift, diffusion


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SGD(_Gaussian, _Overdamped):
    """Gaussian SGD diffusion ``dθ = -∇L(θ) dt + sqrt(η C(θ)) dW`` [Xie2021; Zhou eq. 4].

    One iteration is ``η`` time units; ``C`` comes from a covariance model of
    ``sdesim.noise`` (``isotropic``, ``fixed``, ``hessian(B)``, ``minibatch(data, B)``).
    Near a minimum with ``hessian(B)`` noise, ``D = ηH/(2B)``.

    Args:
      lr: learning rate ``η > 0``.
      noise: covariance model of the per-iteration gradient noise.
    """

    lr: jax.Array
    noise: object

    additive = False

    def __post_init__(self):
        _coerce(self, "lr")

    def check(self, d):
        _checks.real("lr", self.lr, positive=True)
        if not hasattr(self.noise, "factor"):
            raise TypeError(f"noise must be a covariance model from sdesim.noise (isotropic, "
                            f"fixed, hessian, minibatch), got {type(self.noise).__name__}")
        self.noise.check(d)

    def _factor(self, theta, loss):
        return jnp.sqrt(jnp.asarray(self.lr, theta.dtype)) * self.noise.factor(theta, loss)

    def step(self, state, t, h, loss, z):
        f = self._factor(state, loss)
        new = state - _grad(loss, state) * h + jnp.sqrt(h) * _noise.apply_factor(f, z)
        return new, f

    def vector_field(self, loss):
        def drift(t, y, args):
            return -_grad(loss, y)

        def diffusion(t, y, args):
            f = self._factor(y, loss)
            return jnp.diag(f) if f.ndim == 1 else f

        return drift, diffusion


class PhaseState(NamedTuple):
    """State of a phase-space (momentum) model: position and velocity."""

    theta: jax.Array
    velocity: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Underdamped(_Gaussian):
    """Underdamped Langevin ``dθ = v dt``, ``M dv = -γM v dt - ∇L dt + sqrt(2γMT) dW``.

    ``friction`` γ is a rate (1/time). Discretization (``scheme``):
    ``"semi-implicit"`` (default: velocity first, then position with the new velocity —
    symplectic Euler for the Hamiltonian part, which keeps the energy of the oscillation
    in the well from drifting at O(h) per period as plain Euler does) or ``"euler"``
    (Euler–Maruyama). The position is C¹ in time, so exits are monitored on the grid.

    Args:
      mass: ``M > 0``; friction: ``γ > 0``; temperature: ``T >= 0``;
      velocity0: initial velocity (default 0).
    """

    mass: jax.Array
    friction: jax.Array
    temperature: jax.Array
    velocity0: jax.Array | None = None
    scheme: str = dataclasses.field(default="semi-implicit", metadata=dict(static=True))

    lr = None
    additive = True

    def __post_init__(self):
        _coerce(self, "mass", "friction", "temperature")
        if isinstance(self.velocity0, list | tuple | np.ndarray):
            object.__setattr__(self, "velocity0", jnp.asarray(self.velocity0, float))

    def check(self, d):
        _checks.real("mass", self.mass, positive=True)
        _checks.real("friction", self.friction, positive=True)
        _checks.real("temperature", self.temperature, nonnegative=True)
        if self.scheme not in ("semi-implicit", "euler"):
            raise ValueError(f"scheme must be 'semi-implicit' or 'euler', got {self.scheme!r}")
        if self.velocity0 is not None:
            _checks.shape("velocity0", self.velocity0, (d,), " to match theta0")

    def init(self, theta0):
        v0 = (jnp.zeros_like(theta0) if self.velocity0 is None
              else jnp.asarray(self.velocity0, theta0.dtype))
        return PhaseState(theta0, v0)

    def position(self, state):
        return state.theta

    def _coeffs(self, dtype):
        m = jnp.asarray(self.mass, dtype)
        g = jnp.asarray(self.friction, dtype)
        return m, g, jnp.sqrt(2 * g * jnp.asarray(self.temperature, dtype) / m)

    def step(self, state, t, h, loss, z):
        th, v = state
        m, g, sig = self._coeffs(th.dtype)
        v_new = v + (-g * v - _grad(loss, th) / m) * h + sig * jnp.sqrt(h) * z
        th_new = th + (v_new if self.scheme == "semi-implicit" else v) * h
        return PhaseState(th_new, v_new), None

    def to_vector(self, state):
        return jnp.concatenate([state.theta, state.velocity])

    def from_vector(self, y, d):
        return PhaseState(y[..., :d], y[..., d:])

    def vector_field(self, loss):
        def drift(t, y, args):
            d = y.shape[0] // 2
            th, v = y[:d], y[d:]
            m, g, _ = self._coeffs(y.dtype)
            return jnp.concatenate([v, -g * v - _grad(loss, th) / m])

        def diffusion(t, y, args):
            d = y.shape[0] // 2
            _, _, sig = self._coeffs(y.dtype)
            return jnp.concatenate([jnp.zeros((d, d), y.dtype),
                                    sig * jnp.eye(d, dtype=y.dtype)])

        return drift, diffusion
