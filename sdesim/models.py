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


# ---------------------------------------------------------------------------------------
# Phase-space (momentum) SDEs of optimizers [Adai §3, §5, App. H; SPEC §3 items 5-7]
# ---------------------------------------------------------------------------------------


class AdaptiveState(NamedTuple):
    """Phase-space state with a second-moment EMA ``v2`` (Adam, Adai)."""

    theta: jax.Array
    velocity: jax.Array
    v2: jax.Array


def _phase_step(scheme, th, v, g, m, fric, noise_z, h, alpha=None):
    """One step of ``M dv = -Γ v dt - ∇L dt + B dL`` (per coordinate M, Γ), ``dθ = v dt``.

    ``noise_z`` is the force noise per unit of the driving process: ``B z`` with ``z``
    standard normal (Gaussian, ``alpha=None``) or ``B S`` with ``S`` SαS (``alpha``).
    Schemes: ``"exponential"``: the velocity's linear part (friction + force + noise,
    force frozen over the step) is integrated exactly — an Ornstein–Uhlenbeck step whose
    noise ``∫₀ʰ e^{−γ(h−s)} dL_s`` has scale ``((1 − e^{−αγh})/(αγ))^{1/α}`` (``α = 2``:
    the Gaussian ``sqrt((1 − e^{−2γh})/(2γ))``) — then ``θ += v_new h``; stable for any
    ``γh`` (the friction of Momentum/Adam/Adai is ``(1−β₁)/η``, stiff when ``h``
    approaches ``η/(1−β₁)``). ``"euler"``: explicit Euler–Maruyama for v (noise scale
    ``h^{1/α}``), ``θ += v h`` with the old v.
    Accuracy needs ``γh ≲ 1``: the position moves with the end-of-step velocity, so in the
    strongly overdamped regime (``γh ≫ 1``) the displacement noise is mis-scaled (stable,
    but wrong); choose ``dt`` below ``η/(1−β₁)``.
    """
    gam = fric / m
    a = 2.0 if alpha is None else alpha
    if scheme == "euler":
        v_new = v + (-gam * v - g / m) * h + h ** (1 / a) * noise_z / m
        return th + v * h, v_new
    e = jnp.exp(-gam * h)
    drift_gain = -jnp.expm1(-gam * h) / gam  # (1 - e^{-γh})/γ, → h as γ → 0
    noise_sd = (-jnp.expm1(-a * gam * h) / (a * gam)) ** (1 / a)  # → h^{1/α}
    v_new = e * v + drift_gain * (-g / m) + noise_sd * noise_z / m
    return th + v_new * h, v_new


_SCHEMES = ("exponential", "euler")


def _check_phase_common(self, d):
    _checks.real("lr", self.lr, positive=True)
    if not hasattr(self.noise, "factor"):
        raise TypeError(f"noise must be a covariance model from sdesim.noise, got "
                        f"{type(self.noise).__name__}")
    self.noise.check(d)
    if self.scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {self.scheme!r}")
    if self.alpha is not None:
        _checks.alpha("alpha", self.alpha)


class _PhaseNoise:
    """Mixin for the phase-space models: Gaussian noise force ``sqrt(ηC) dW``
    (``alpha=None``) or, with ``alpha`` in (0, 2], the SαS force ``ε Σ dL_t`` with
    ``ε = η^{(α−1)/α}`` and ``Σ = (C/2)^{1/2}`` (SPEC §1: α = 2 is the same Gaussian
    force, since S ~ N(0, 2) then). Heavy jumps that overflow are exits (engine)."""

    noise_kind = "gaussian"  # the position is C¹: no Brownian bridge either way

    def noise_shape(self, d):
        return (d,)

    def sample_noise(self, key, shape, dtype):
        if self.alpha is None:
            return jax.random.normal(key, shape, dtype)
        return _noise.sas(key, self.alpha, shape, dtype)

    def _alpha(self, dtype):
        return None if self.alpha is None else jnp.asarray(self.alpha, dtype)


def _force_noise(self, theta, loss, z):
    """Force noise per unit of the driving process and the factor ``sqrt(η)B``:
    Gaussian ``sqrt(η) B z``; SαS ``η^{(α−1)/α} (B/sqrt 2) S``."""
    lr = jnp.asarray(self.lr, theta.dtype)
    b = self.noise.factor(theta, loss)
    f = jnp.sqrt(lr) * b
    if self.alpha is None:
        return _noise.apply_factor(f, z), f
    a = jnp.asarray(self.alpha, theta.dtype)
    eps = lr ** ((a - 1) / a)
    return eps * _noise.apply_factor(b / jnp.sqrt(jnp.asarray(2.0, theta.dtype)), z), f


def _noise_var_diag(factor):
    """diag(C) from its factor B (C = B Bᵀ)."""
    return factor**2 if factor.ndim == 1 else jnp.sum(factor**2, axis=1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Momentum(_PhaseNoise):
    """Heavy-ball momentum ``m_k = β₁ m_{k-1} + β₃ g_k``, ``θ_{k+1} = θ_k − η m_k`` as a
    phase-space SDE [SPEC §3.5, derived; Adai §3]:

    ``dθ = v dt``, ``M dv = −γM v dt − ∇L dt + sqrt(ηC(θ)) dW``, with ``M = η/β₃`` and
    ``γM = (1−β₁)/β₃``; temperature ``T = ηβ₃C/(2(1−β₁))``. ``beta3=None`` is the Adam-style
    ``β₃ = 1−β₁`` (``M = η/(1−β₁)``, ``γM = 1``, ``T = ηC/2`` as SGD); ``beta3=1`` is
    PyTorch's SGD momentum (SGD with learning rate ``η/(1−β₁)``). Itô, SDE time
    (one iteration = η).

    ``scheme="exponential"`` (default) integrates friction and noise exactly over a step
    (see ``_phase_step``); ``"euler"`` is plain Euler–Maruyama. The default was chosen by
    measured accuracy at equal cost (tests/test_momentum.py). ``alpha`` in (0, 2] drives
    the force with SαS noise ``ε Σ dL_t`` instead (``ε = η^{(α−1)/α}``, ``Σ = (C/2)^{1/2}``;
    Adam and Adai take it too).
    """

    lr: jax.Array
    beta1: jax.Array
    noise: object
    beta3: jax.Array | None = None
    alpha: jax.Array | None = None
    scheme: str = dataclasses.field(default="exponential", metadata=dict(static=True))

    additive = False

    def __post_init__(self):
        _coerce(self, "lr", "beta1", "beta3", "alpha")

    def check(self, d):
        _check_phase_common(self, d)
        _checks.unit_interval("beta1", self.beta1)
        if self.beta3 is not None:
            _checks.real("beta3", self.beta3, positive=True)

    def mass_friction(self, dtype=None):
        """``(M, γM)`` from the hyperparameters."""
        b1 = jnp.asarray(self.beta1, dtype)
        b3 = 1 - b1 if self.beta3 is None else jnp.asarray(self.beta3, dtype)
        lr = jnp.asarray(self.lr, dtype)
        return lr / b3, (1 - b1) / b3

    def init(self, theta0):
        return PhaseState(theta0, jnp.zeros_like(theta0))

    def position(self, state):
        return state.theta

    def step(self, state, t, h, loss, z):
        th, v = state
        m, fric = self.mass_friction(th.dtype)
        nz, _ = _force_noise(self, th, loss, z)
        th_new, v_new = _phase_step(self.scheme, th, v, _grad(loss, th), m, fric, nz, h,
                                     self._alpha(th.dtype))
        return PhaseState(th_new, v_new), None


class _AdaptiveMoment:
    """Shared by Adam and Adai: the second-moment EMA ``dv2 = r₂(g² − v2) dt`` with
    ``r₂ = (1−β₂)/η`` and ``g² = (∇L)² + diag(C)`` (the mean squared stochastic gradient),
    integrated exactly over a step with g² frozen; bias correction
    ``v̂ = v2/(1 − e^{−r₂ t})`` evaluated at the end of the step, so the first step gives
    ``v̂ = g²`` exactly (no 0/0 at t = 0)."""

    def init(self, theta0):
        z = jnp.zeros_like(theta0)
        return AdaptiveState(theta0, z, z)

    def position(self, state):
        return state.theta

    def _vhat(self, v2, g, factor, t, h):
        dtype = v2.dtype
        lr = jnp.asarray(self.lr, dtype)
        r2 = (1 - jnp.asarray(self.beta2, dtype)) / lr
        g2 = g**2 + _noise_var_diag(factor) / lr  # factor carries sqrt(η): C = B Bᵀ/η
        v2_new = g2 + (v2 - g2) * jnp.exp(-r2 * h)
        vhat = v2_new / -jnp.expm1(-r2 * (t + h))
        return v2_new, vhat

    def step(self, state, t, h, loss, z):
        th, v, v2 = state
        g = _grad(loss, th)
        nz, factor = _force_noise(self, th, loss, z)
        v2_new, vhat = self._vhat(v2, g, factor, t, h)
        m, fric = self._mass_friction(vhat)
        th_new, v_new = _phase_step(self.scheme, th, v, g, m, fric, nz, h,
                                     self._alpha(th.dtype))
        return AdaptiveState(th_new, v_new, v2_new), None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Adam(_AdaptiveMoment, _PhaseNoise):
    """Adam as a phase-space SDE [Adai App. H; SPEC §3.6, derived]. Per coordinate
    ``M_i = η(sqrt(v̂_i)+ϵ)/(1−β₁)``, friction force ``γ_iM_i = sqrt(v̂_i)+ϵ``, noise force
    ``sqrt(ηC) dW`` as SGD; ``v̂`` from the second-moment EMA (see ``_AdaptiveMoment``).
    Temperature ``T_i = ηC_ii/(2(sqrt(v̂_i)+ϵ))``: near a minimum ``v̂ ≈ diag(H)/B``, so
    ``T_i ≈ η sqrt(H_ii/B)/2`` and log escape time ∝ ``H^{-1/2}`` [Adai Prop. 2].
    """

    lr: jax.Array
    noise: object
    beta1: jax.Array = 0.9
    beta2: jax.Array = 0.999
    eps: jax.Array = 1e-8
    alpha: jax.Array | None = None
    scheme: str = dataclasses.field(default="exponential", metadata=dict(static=True))

    additive = False

    def __post_init__(self):
        _coerce(self, "lr", "beta1", "beta2", "eps", "alpha")

    def check(self, d):
        _check_phase_common(self, d)
        _checks.unit_interval("beta1", self.beta1)
        _checks.unit_interval("beta2", self.beta2)
        _checks.real("eps", self.eps, positive=True)

    def _mass_friction(self, vhat):
        dtype = vhat.dtype
        fric = jnp.sqrt(vhat) + jnp.asarray(self.eps, dtype)
        return jnp.asarray(self.lr, dtype) * fric / (1 - jnp.asarray(self.beta1, dtype)), fric


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Adai(_AdaptiveMoment, _PhaseNoise):
    """Adai (adaptive inertia) as a phase-space SDE [Adai §5; SPEC §3.7]. Per coordinate
    ``β₁,i = clip(1 − β₀ v̂_i / mean(v̂), 0, 1−ϵ)`` (mean over all coordinates), Adam-style
    momentum: ``M_i = η/(1−β₁,i)``, ``γ_iM_i = 1``, noise force ``sqrt(ηC) dW``. So
    ``T = ηC/2`` as SGD and log escape time ∝ ``H^{-1}`` [Adai Prop. 4]. Defaults
    ``β₀ = 0.1``, ``β₂ = 0.99``, ``ϵ = 1e-3`` (official code).
    """

    lr: jax.Array
    noise: object
    beta0: jax.Array = 0.1
    beta2: jax.Array = 0.99
    eps: jax.Array = 1e-3
    alpha: jax.Array | None = None
    scheme: str = dataclasses.field(default="exponential", metadata=dict(static=True))

    additive = False

    def __post_init__(self):
        _coerce(self, "lr", "beta0", "beta2", "eps", "alpha")

    def check(self, d):
        _check_phase_common(self, d)
        _checks.real("beta0", self.beta0, positive=True)
        _checks.unit_interval("beta2", self.beta2)
        _checks.real("eps", self.eps, positive=True, hi=1.0, hi_open=True)

    def inertia(self, vhat):
        """``β₁,i`` from ``v̂`` (guarding mean(v̂) = 0: then every β₁,i = 1 − β₀)."""
        dtype = vhat.dtype
        mean = jnp.mean(vhat)
        ratio = jnp.where(mean > 0, vhat / jnp.where(mean > 0, mean, 1), 1.0)
        return jnp.clip(1 - jnp.asarray(self.beta0, dtype) * ratio, 0.0,
                        1 - jnp.asarray(self.eps, dtype))

    def _mass_friction(self, vhat):
        m = jnp.asarray(self.lr, vhat.dtype) / (1 - self.inertia(vhat))
        return m, jnp.ones_like(m)

# ---- phase-space optimizer models (Momentum, Adam, Adai) end here; Lévy-driven models below ----


# ---------------------------------------------------------------------------------------
# Lévy-driven SDEs of SGD and Adam [Zhou et al. 2020, eqs. 4-5] and AdaL (SPEC §3.2-3, 3.8)
# ---------------------------------------------------------------------------------------


def _coerce_sigma(obj):
    """``sigma`` given as a number, list or numpy array -> a float array (a traced leaf)."""
    v = obj.sigma
    if isinstance(v, int | float | list | tuple | np.ndarray | np.generic) and \
            not isinstance(v, bool):
        object.__setattr__(obj, "sigma", jnp.asarray(np.asarray(v, np.float64),
                                                     dtype=jnp.result_type(float)))


class AdamState(NamedTuple):
    """State of the Lévy Adam/AdaL models: position, first and second moment."""

    theta: jax.Array
    m: jax.Array
    v: jax.Array


class _Levy:
    """Mixin: SαS noise and the noise scale ``Σ`` of the Lévy-driven models.

    ``sigma`` is the per-iteration gradient-noise scale ``Σ`` (one iteration's noise is
    ``u = Σ·S``, ``S`` with i.i.d. SαS(1) coordinates, SPEC §1):

    - a number ``σ``: isotropic, ``Σ = σ I``;
    - a vector ``(d,)``: diagonal ``Σ``;
    - a matrix ``(d, d)``: full ``Σ`` (used as given, not as a covariance);
    - a covariance model of ``sdesim.noise`` (``isotropic``, ``fixed``, ``hessian(B)`` for
      a ``Σ`` aligned with the Hessian, ``minibatch``): ``Σ(θ) = (C(θ)/2)^{1/2}``, the
      α = 2 convention of SPEC §1, so that at α = 2 the model is exactly the Gaussian one
      with covariance ``C``.

    ``ε = lr^{(α−1)/α}`` and the Lévy increment over a step ``h`` is ``h^{1/α}·S``.
    """

    noise_kind = "levy"

    def noise_shape(self, d):
        return (d,)

    def sample_noise(self, key, shape, dtype):
        return _noise.sas(key, self.alpha, shape, dtype)

    def _check_levy(self, d):
        _checks.real("lr", self.lr, positive=True)
        _checks.alpha("alpha", self.alpha)
        s = self.sigma
        if hasattr(s, "factor"):
            s.check(d)
            return
        if isinstance(s, jax.core.Tracer):
            return
        if not isinstance(s, jax.Array | np.ndarray | np.generic | int | float):
            raise TypeError(f"sigma must be a number, a (d,) vector, a (d, d) matrix or a "
                            f"covariance model from sdesim.noise, got {type(s).__name__}")
        nd = np.ndim(s)
        if nd == 0:
            _checks.real("sigma", s, nonnegative=True)
        elif nd == 1:
            _checks.shape("sigma", s, (d,), " (diagonal noise scale) to match theta0")
            _checks.real("sigma", s, nonnegative=True)
        elif nd == 2:
            _checks.shape("sigma", s, (d, d), " (full noise scale) to match theta0")
            _checks.real("sigma", s)
        else:
            raise ValueError(f"sigma must be a number, a ({d},) vector or a ({d}, {d}) "
                             f"matrix, got an array of shape {np.shape(s)}")

    def _sigma(self, theta, loss):
        """``Σ(θ)``: a scalar, a vector (diagonal) or a matrix."""
        s = self.sigma
        if hasattr(s, "factor"):
            return s.factor(theta, loss) / jnp.sqrt(jnp.asarray(2.0, theta.dtype))
        return jnp.asarray(s, theta.dtype)

    @staticmethod
    def _apply(sig, z):
        """``Σ z`` for a scalar, diagonal or full ``Σ``."""
        return sig @ z if sig.ndim == 2 else sig * z

    @staticmethod
    def _scale2(sig, shape):
        """``diag(2ΣΣᵀ)``: the second moment per coordinate of ``Σ·S`` at α = 2, used as
        the noise's contribution to Adam's ``v`` for every α (see ``AdamLevy``)."""
        d2 = jnp.sum(sig**2, axis=1) if sig.ndim == 2 else sig**2
        return 2 * jnp.broadcast_to(d2, shape)

    def _eps(self, dtype):
        a = jnp.asarray(self.alpha, dtype)
        return jnp.asarray(self.lr, dtype) ** ((a - 1) / a)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SGDLevy(_Levy, _Overdamped):
    """Lévy-driven SGD ``dθ = −∇L(θ) dt + ε Σ(θ) dL_t`` [Zhou et al. 2020, eq. 4].

    ``L_t`` has i.i.d. SαS coordinates (``E e^{iωL_1} = e^{−|ω|^α}``), ``ε = lr^{(α−1)/α}``;
    Euler–Maruyama ``θ ← θ − ∇L h + ε Σ h^{1/α} S`` (so a step ``h = lr`` is one SGD
    iteration with gradient noise ``Σ S``). At α = 2 it is the Gaussian ``SGD`` with
    covariance ``C = 2ΣΣᵀ``. Exits are monitored on the grid (no Brownian bridge for
    jumps); a jump that overflows gives a non-finite state, which the engine counts as an
    exit.

    Args:
      lr: learning rate ``η > 0`` (one iteration = ``η`` time units).
      alpha: stability index in (0, 2] (traced: a sweep over α compiles once).
      sigma: noise scale ``Σ`` — number, ``(d,)``, ``(d, d)`` or a covariance model of
        ``sdesim.noise`` (see ``_Levy``).
    """

    lr: jax.Array
    alpha: jax.Array
    sigma: object

    def __post_init__(self):
        _coerce(self, "lr", "alpha")
        _coerce_sigma(self)

    def check(self, d):
        self._check_levy(d)

    def step(self, state, t, h, loss, z):
        a = jnp.asarray(self.alpha, state.dtype)
        jump = self._eps(state.dtype) * h ** (1 / a) * self._apply(self._sigma(state, loss), z)
        return state - _grad(loss, state) * h + jump, None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AdamLevy(_Levy):
    """Lévy-driven Adam [Zhou et al. 2020, eq. 5; SPEC §3.3]:

    ``dθ = −μ_t Q_t^{-1} m dt + ε Q_t^{-1} Σ dL_t``, ``dm = r₁(∇L − m) dt``,
    ``dv = r₂(g² − v) dt``, ``Q_t = diag(sqrt(ω_t v) + ϵ)``, ``μ_t = 1/(1 − e^{−r₁t})``,
    ``ω_t = 1/(1 − e^{−r₂t})``, ``r₁ = (1−β₁)/η``, ``r₂ = (1−β₂)/η``, ``ε = η^{(α−1)/α}``.

    **Noise in v.** ``g² = (∇L)² + diag(2ΣΣᵀ)``: the mean squared stochastic gradient at
    α = 2. For α < 2 the second moment is infinite; we use the same expression, i.e. the
    second moment of the Gaussian with the noise's *scale* (SαS(1) has scale 1 and at
    α = 2 variance 2). Near a minimum ``v → diag(2ΣΣᵀ)``, so
    ``Q ≈ diag(sqrt(2 diag ΣΣᵀ)) + ϵ`` (what ``theory.levy_sgd_vs_adam`` uses).

    **Discretization (and t = 0).** Per step ``h`` from ``t``: the moments first, with the
    exact solution of their linear ODEs for the gradient frozen over the step
    (``m ← m + (∇L − m)(1 − e^{−r₁h})``, likewise ``v``; stable for any ``r h``), then the
    position with the new moments and the bias corrections evaluated at ``t + h``
    (``μ_{t+h} = −1/expm1(−r₁(t+h))``). This is Adam's update order, it never evaluates
    ``μ_0 = ∞`` (``m_0 = 0``), and the bias correction is then exact: from ``m = v = 0``
    under a constant gradient ``μ_{t+h} m = ∇L`` and ``ω_{t+h} v = g²`` at every step.
    With ``h = η`` a step is discrete Adam with ``β → e^{−(1−β)}`` (0.905 for 0.9).

    Args:
      lr: ``η > 0``; alpha: in (0, 2]; sigma: as for ``SGDLevy``;
      beta1, beta2: Adam's β in [0, 1) (defaults 0.9, 0.999); epsilon: Adam's ϵ >= 0
        (default 1e-8).
    """

    lr: jax.Array
    alpha: jax.Array
    sigma: object
    beta1: jax.Array = 0.9
    beta2: jax.Array = 0.999
    epsilon: jax.Array = 1e-8

    def __post_init__(self):
        _coerce(self, "lr", "alpha", "beta1", "beta2", "epsilon")
        _coerce_sigma(self)

    def check(self, d):
        self._check_levy(d)
        _checks.unit_interval("beta1", self.beta1)
        _checks.unit_interval("beta2", self.beta2)
        _checks.real("epsilon", self.epsilon, nonnegative=True)

    def init(self, theta0):
        z = jnp.zeros_like(theta0)
        return AdamState(theta0, z, z)

    def position(self, state):
        return state.theta

    def _rates(self, dtype):
        lr = jnp.asarray(self.lr, dtype)
        return ((1 - jnp.asarray(self.beta1, dtype)) / lr,
                (1 - jnp.asarray(self.beta2, dtype)) / lr)

    def _moments(self, state, t, h, g, g2):
        """Exact-exponential moment update and bias-corrected ``(μ m, Q)`` at ``t + h``."""
        _, m, v = state
        r1, r2 = self._rates(m.dtype)
        m = m - jnp.expm1(-r1 * h) * (g - m)
        v = v - jnp.expm1(-r2 * h) * (g2 - v)
        te = t + h
        mu = -1 / jnp.expm1(-r1 * te)
        om = -1 / jnp.expm1(-r2 * te)
        q = jnp.sqrt(om * v) + jnp.asarray(self.epsilon, m.dtype)
        return m, v, mu * m, q

    def step(self, state, t, h, loss, z):
        th = state.theta
        g = _grad(loss, th)
        sig = self._sigma(th, loss)
        m, v, mhat, q = self._moments(state, t, h, g, g * g + self._scale2(sig, th.shape))
        a = jnp.asarray(self.alpha, th.dtype)
        jump = self._eps(th.dtype) * h ** (1 / a) * self._apply(sig, z)
        return AdamState(th + (-mhat * h + jump) / q, m, v), None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AdaL(AdamLevy):
    """AdaL [Zhang] as a Lévy model (SPEC §3.8): Adam on the transformed gradient
    ``ĝ = ‖g‖₁ g``, ``g = ∇L + u`` with one SαS gradient noise ``u = Σ S`` per step.

    A *model*, not a diffusion limit: near a minimum ``‖g‖₁ ≈ ‖u‖₁`` is itself noise, so
    there is no faithful drift/diffusion split. Each step draws ``u``, feeds ``ĝ`` and
    ``ĝ²`` to ``m`` and ``v`` (same exact-exponential moment update and bias corrections
    as ``AdamLevy``) and moves ``θ ← θ − s_k μ m/Q · h``: the noise reaches θ only
    through ``m``. Intended step: ``dt = lr`` (one AdaL iteration per step; it is then
    discrete AdaL with ``β → e^{−(1−β)}``). For another ``h`` the per-step noise is
    ``Σ S (η/h)^{1−1/α}``, which keeps the *linear* part consistent with the Lévy SDE.

    Args: as ``AdamLevy``, plus ``decay`` (static bool): step multiplier
    ``s_k = 1/sqrt(k)``, ``k = (t+h)/η`` the iteration (the paper's ``α/sqrt(t)``);
    default False (constant step).
    """

    decay: bool = dataclasses.field(default=False, metadata=dict(static=True))

    def step(self, state, t, h, loss, z):
        th = state.theta
        dt = th.dtype
        a = jnp.asarray(self.alpha, dt)
        lr = jnp.asarray(self.lr, dt)
        u = (lr / h) ** (1 - 1 / a) * self._apply(self._sigma(th, loss), z)
        g = _grad(loss, th) + u
        ghat = jnp.sum(jnp.abs(g)) * g
        m, v, mhat, q = self._moments(state, t, h, ghat, ghat * ghat)
        mult = jax.lax.rsqrt(jnp.maximum((t + h) / lr, 1)) if self.decay else 1
        return AdamState(th - mult * mhat / q * h, m, v), None
