"""SDE models of optimizers: each equation written once, as data + ``terms``.

A model subclasses ``sdesim.model.Model`` (the contract: read its module docstring to write
a new one): its numeric hyperparameters (temperature, learning rate, mass, ...) are pytree
leaves, so they are *traced* and a sweep over them compiles once; structural options
(``scheme``) are static fields. ``terms(state, t, h, loss)`` states the equation — drift
and noise (``Diffusion``) or mass, friction, force and noise (``Inertial``) — and the
integrator named by ``integrator`` (``sdesim.integrators``) takes the step. Values are
checked when a model is built (ValueError/TypeError naming the argument); shapes when it
meets ``theta0`` (``check(d)``).

All SDEs are in Itô form; time is SDE time (``t = k·η`` for an optimizer). The equations,
their derivations and effective temperatures: docs/concepts/mathematics.md ("Models").
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from . import noise as _noise
from .model import Diffusion, Inertial, Model, Overdamped

_static = dict(static=True)


def _grad(loss, theta):
    return jax.grad(loss)(theta)


def _check_noise_model(noise, d=None, what="noise"):
    if not isinstance(noise, _noise.CovarianceModel):
        raise TypeError(f"{what} must be a covariance model from sdesim.noise (isotropic, "
                        f"fixed, hessian, minibatch), got {type(noise).__name__}")
    if d is not None:
        noise.check(d)


@_checks.pytree_dataclass
class Langevin(Overdamped):
    """Overdamped Langevin ``dθ = -∇L(θ) dt + sqrt(2T) dW`` (Itô; the Kramers reference).

    Args:
      temperature: ``T >= 0`` (a scalar).
    """

    temperature: jax.Array

    diffusive_position = True
    additive = True

    def _validate(self):
        _checks.scalar("temperature", self.temperature)
        _checks.real("temperature", self.temperature, nonnegative=True)

    def terms(self, state, t, h, loss):
        sig = jnp.sqrt(2 * jnp.asarray(self.temperature, state.dtype))
        return Diffusion(-_grad(loss, state), scale=sig)


@_checks.pytree_dataclass
class SGD(Overdamped):
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

    diffusive_position = True

    def _validate(self):
        _checks.scalar("lr", self.lr)
        _checks.real("lr", self.lr, positive=True)
        _check_noise_model(self.noise)

    def check(self, d):
        super().check(d)
        self.noise.check(d)

    def noise_factor(self, theta, loss):
        """``sqrt(η)·B(θ)``: the factor of the position noise (``Cov(Δθ) = η C h``)."""
        return jnp.sqrt(jnp.asarray(self.lr, theta.dtype)) * self.noise.factor(theta, loss)

    _factor = noise_factor  # the name tests and scripts used before

    def terms(self, state, t, h, loss):
        return Diffusion(-_grad(loss, state), factor=self.noise_factor(state, loss))


class PhaseState(NamedTuple):
    """State of a phase-space (momentum) model: position and velocity."""

    theta: jax.Array
    velocity: jax.Array


_UNDERDAMPED_SCHEMES = {"semi-implicit": "semi-implicit", "euler": "phase-euler"}


@_checks.pytree_dataclass
class Underdamped(Model):
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
    scheme: str = dataclasses.field(default="semi-implicit", metadata=_static)

    additive = True

    def _validate(self):
        for name in ("mass", "friction", "temperature"):
            _checks.scalar(name, getattr(self, name))
        _checks.real("mass", self.mass, positive=True)
        _checks.real("friction", self.friction, positive=True)
        _checks.real("temperature", self.temperature, nonnegative=True)
        _checks.choice("scheme", self.scheme, tuple(_UNDERDAMPED_SCHEMES))
        if self.velocity0 is not None:
            _checks.real("velocity0", self.velocity0)

    def check(self, d):
        super().check(d)
        if self.velocity0 is not None:
            _checks.shape("velocity0", self.velocity0, (d,), " to match theta0")

    @property
    def integrator(self):
        return _UNDERDAMPED_SCHEMES[self.scheme]

    def init(self, theta0):
        v0 = (jnp.zeros_like(theta0) if self.velocity0 is None
              else jnp.asarray(self.velocity0, theta0.dtype))
        return PhaseState(theta0, v0)

    def position(self, state):
        return state.theta

    def velocity(self, state):
        return state.velocity

    def _coeffs(self, dtype):
        m = jnp.asarray(self.mass, dtype)
        g = jnp.asarray(self.friction, dtype)
        return m, g, jnp.sqrt(2 * g * jnp.asarray(self.temperature, dtype) / m)

    def terms(self, state, t, h, loss):
        """The velocity's equation ``dv = (−γv − ∇L/M) dt + sqrt(2γT/M) dW``."""
        th, v = state.theta, state.velocity
        m, g, sig = self._coeffs(th.dtype)
        return Diffusion(-g * v - _grad(loss, th) / m, scale=sig)

    def linearization(self, lam, h):
        """The step's linear map on ``(θ, v)`` for a mode of curvature ``lam``."""
        m, g = float(self.mass), float(self.friction)
        w2 = lam / m
        if self.scheme == "semi-implicit":
            return np.array([[1 - h * h * w2, h * (1 - g * h)], [-h * w2, 1 - g * h]])
        return np.array([[1.0, h], [-h * w2, 1 - g * h]])

    @property
    def has_vector_field(self):
        return True

    def to_vector(self, state):
        return jnp.concatenate([state.theta, state.velocity])

    def from_vector(self, y, d):
        return PhaseState(y[..., :d], y[..., d:])

    def vector_field(self, loss):
        """``(drift, diffusion)`` on ``y = [θ, v]`` for diffrax, from ``terms``."""

        def split(y):
            d = y.shape[0] // 2
            return PhaseState(y[:d], y[d:])

        def drift(t, y, args):
            st = split(y)
            return jnp.concatenate([st.velocity, self.terms(st, t, None, loss).drift])

        def diffusion(t, y, args):
            d = y.shape[0] // 2
            sig = self.terms(split(y), t, None, loss).scale
            return jnp.concatenate([jnp.zeros((d, d), y.dtype),
                                    sig * jnp.eye(d, dtype=y.dtype)])

        return drift, diffusion


# ---------------------------------------------------------------------------------------
# Phase-space (momentum) SDEs of optimizers [Adai §3, §5, App. H]
# ---------------------------------------------------------------------------------------


class AdaptiveState(NamedTuple):
    """Phase-space state with a second-moment EMA ``v2`` (Adam, Adai)."""

    theta: jax.Array
    velocity: jax.Array
    v2: jax.Array


_PHASE_SCHEMES = ("exponential", "euler")


class _Phase(Model):
    """Shared by Momentum, Adam and Adai: ``M dv = −Γ v dt − ∇L dt + noise``, ``dθ = v dt``
    (``Inertial`` terms), integrated by ``scheme`` (``sdesim.integrators.exponential`` or
    ``.euler``). The noise force is Gaussian ``sqrt(ηC) dW`` (``alpha=None``) or, with
    ``alpha`` in (0, 2], the SαS force ``ε Σ dL_t`` with ``ε = η^{(α−1)/α}`` and
    ``Σ = (C/2)^{1/2}`` (α = 2 is the same Gaussian force, since S ~ N(0, 2)
    then). The position is C¹: no Brownian bridge either way.

    Accuracy needs ``γh ≲ 1``: the position moves with the end-of-step velocity, so in the
    strongly overdamped regime (``γh ≫ 1``) the displacement noise is mis-scaled (stable,
    but wrong); choose ``dt`` below ``η/(1−β₁)``."""

    @property
    def noise_kind(self):
        return "gaussian" if self.alpha is None else "levy"

    @property
    def integrator(self):
        return self.scheme

    def _validate(self):
        _checks.scalar("lr", self.lr)
        _checks.real("lr", self.lr, positive=True)
        _check_noise_model(self.noise)
        _checks.choice("scheme", self.scheme, _PHASE_SCHEMES)
        if self.alpha is not None:
            _checks.scalar("alpha", self.alpha)
            _checks.alpha("alpha", self.alpha)

    def check(self, d):
        super().check(d)
        self.noise.check(d)

    def position(self, state):
        return state.theta

    def velocity(self, state):
        return state.velocity

    def _noise_terms(self, theta, loss):
        """``(scale, factor, sqrt(η)B)`` of the noise force: Gaussian ``sqrt(η) B z``;
        SαS ``η^{(α−1)/α} (B/sqrt 2) S``."""
        lr = jnp.asarray(self.lr, theta.dtype)
        b = self.noise.factor(theta, loss)
        f = jnp.sqrt(lr) * b
        if self.alpha is None:
            return None, f, f
        a = jnp.asarray(self.alpha, theta.dtype)
        eps = lr ** ((a - 1) / a)
        return eps, b / jnp.sqrt(jnp.asarray(2.0, theta.dtype)), f


@_checks.pytree_dataclass
class Momentum(_Phase):
    """Heavy-ball momentum ``m_k = β₁ m_{k-1} + β₃ g_k``, ``θ_{k+1} = θ_k − η m_k`` as a
    phase-space SDE [derived; Adai §3]:

    ``dθ = v dt``, ``M dv = −γM v dt − ∇L dt + sqrt(ηC(θ)) dW``, with ``M = η/β₃`` and
    ``γM = (1−β₁)/β₃``; temperature ``T = ηβ₃C/(2(1−β₁))``. ``beta3=None`` is the Adam-style
    ``β₃ = 1−β₁`` (``M = η/(1−β₁)``, ``γM = 1``, ``T = ηC/2`` as SGD); ``beta3=1`` is
    PyTorch's SGD momentum (SGD with learning rate ``η/(1−β₁)``). Itô, SDE time
    (one iteration = η).

    ``scheme="exponential"`` (default) integrates friction and noise exactly over a step
    (``sdesim.integrators.exponential``); ``"euler"`` is plain Euler–Maruyama. The default
    was chosen by measured accuracy at equal cost (tests/test_momentum.py). ``alpha`` in
    (0, 2] drives the force with SαS noise ``ε Σ dL_t`` instead (``ε = η^{(α−1)/α}``,
    ``Σ = (C/2)^{1/2}``; Adam and Adai take it too).
    """

    lr: jax.Array
    beta1: jax.Array
    noise: object
    beta3: jax.Array | None = None
    alpha: jax.Array | None = None
    scheme: str = dataclasses.field(default="exponential", metadata=_static)

    def _validate(self):
        super()._validate()
        _checks.scalar("beta1", self.beta1)
        _checks.unit_interval("beta1", self.beta1)
        if self.beta3 is not None:
            _checks.scalar("beta3", self.beta3)
            _checks.real("beta3", self.beta3, positive=True)

    def mass_friction(self, dtype=None):
        """``(M, γM)`` from the hyperparameters."""
        b1 = jnp.asarray(self.beta1, dtype)
        b3 = 1 - b1 if self.beta3 is None else jnp.asarray(self.beta3, dtype)
        lr = jnp.asarray(self.lr, dtype)
        return lr / b3, (1 - b1) / b3

    def init(self, theta0):
        return PhaseState(theta0, jnp.zeros_like(theta0))

    def terms(self, state, t, h, loss):
        th = state.theta
        m, fric = self.mass_friction(th.dtype)
        scale, factor, _ = self._noise_terms(th, loss)
        return Inertial(-_grad(loss, th), m, fric, scale, factor)

    def linearization(self, lam, h):
        """The step's linear map on ``(θ, v)`` for a mode of curvature ``lam``."""
        m, fric = (float(x) for x in self.mass_friction(jnp.float32))
        g, w2 = fric / m, lam / m
        if self.scheme == "euler":
            return np.array([[1.0, h], [-h * w2, 1 - g * h]])
        e = np.exp(-g * h)
        gain = -np.expm1(-g * h) / g
        return np.array([[1 - h * gain * w2, h * e], [-gain * w2, e]])


class _AdaptiveMoment:
    """Shared by Adam and Adai: the second-moment EMA ``dv2 = r₂(g² − v2) dt`` with
    ``r₂ = (1−β₂)/η`` and ``g² = (∇L)² + diag(C)`` (the mean squared stochastic gradient),
    integrated exactly over a step with g² frozen; bias correction
    ``v̂ = v2/(1 − e^{−r₂ t})`` evaluated at the end of the step, so the first step gives
    ``v̂ = g²`` exactly (no 0/0 at t = 0)."""

    def init(self, theta0):
        z = jnp.zeros_like(theta0)
        return AdaptiveState(theta0, z, z)

    def memory_time(self):
        return float(self.lr) / (1.0 - float(self.beta2))  # 1/r₂

    def mass_of(self, state):
        """The mass ``M_i`` the state carries (``v̂`` read as ``v2``: the bias correction
        is within ``e^{−5}`` after ``escape_ams``'s warm-up, and Adai's mass, a function of
        ``v̂_i/mean(v̂)``, does not see it)."""
        return self._mass_friction(state.v2)[0]

    def _vhat(self, v2, g, factor, t, h):
        dtype = v2.dtype
        lr = jnp.asarray(self.lr, dtype)
        r2 = (1 - jnp.asarray(self.beta2, dtype)) / lr
        g2 = g**2 + _noise.factor_var(factor) / lr  # factor carries sqrt(η): C = B Bᵀ/η
        v2_new = g2 + (v2 - g2) * jnp.exp(-r2 * h)
        vhat = v2_new / -jnp.expm1(-r2 * (t + h))
        return v2_new, vhat

    def terms(self, state, t, h, loss):
        th, v, v2 = state
        g = _grad(loss, th)
        scale, factor, f = self._noise_terms(th, loss)
        v2_new, vhat = self._vhat(v2, g, f, t, h)
        m, fric = self._mass_friction(vhat)
        return Inertial(-g, m, fric, scale, factor, aux=AdaptiveState(th, v, v2_new))


@_checks.pytree_dataclass
class Adam(_AdaptiveMoment, _Phase):
    """Adam as a phase-space SDE [Adai App. H, derived]. Per coordinate
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
    scheme: str = dataclasses.field(default="exponential", metadata=_static)

    def _validate(self):
        super()._validate()
        for name in ("beta1", "beta2", "eps"):
            _checks.scalar(name, getattr(self, name))
        _checks.unit_interval("beta1", self.beta1)
        _checks.unit_interval("beta2", self.beta2)
        _checks.real("eps", self.eps, positive=True)

    def _mass_friction(self, vhat):
        dtype = vhat.dtype
        fric = jnp.sqrt(vhat) + jnp.asarray(self.eps, dtype)
        return jnp.asarray(self.lr, dtype) * fric / (1 - jnp.asarray(self.beta1, dtype)), fric


@_checks.pytree_dataclass
class Adai(_AdaptiveMoment, _Phase):
    """Adai (adaptive inertia) as a phase-space SDE [Adai §5]. Per coordinate
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
    scheme: str = dataclasses.field(default="exponential", metadata=_static)

    def _validate(self):
        super()._validate()
        for name in ("beta0", "beta2", "eps"):
            _checks.scalar(name, getattr(self, name))
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


# ---------------------------------------------------------------------------------------
# Lévy-driven SDEs of SGD and Adam [Zhou et al. 2020, eqs. 4-5] and AdaL
# ---------------------------------------------------------------------------------------


class AdamState(NamedTuple):
    """State of the Lévy Adam/AdaL models: position, first and second moment."""

    theta: jax.Array
    m: jax.Array
    v: jax.Array


class _Levy:
    """Mixin: SαS noise and the noise scale ``Σ`` of the Lévy-driven models.

    ``sigma`` is the per-iteration gradient-noise scale ``Σ`` (one iteration's noise is
    ``u = Σ·S``, ``S`` with i.i.d. SαS(1) coordinates):

    - a number ``σ``: isotropic, ``Σ = σ I``;
    - a vector ``(d,)``: diagonal ``Σ``;
    - a matrix ``(d, d)``: full ``Σ`` (used as given, not as a covariance);
    - a covariance model of ``sdesim.noise`` (``isotropic``, ``fixed``, ``hessian(B)`` for
      a ``Σ`` aligned with the Hessian, ``minibatch``): ``Σ(θ) = (C(θ)/2)^{1/2}``, the
      α = 2 convention, so that at α = 2 the model is exactly the Gaussian one
      with covariance ``C``.

    ``ε = lr^{(α−1)/α}`` and the Lévy increment over a step ``h`` is ``h^{1/α}·S``.
    """

    noise_kind = "levy"

    def _validate_levy(self):
        _checks.scalar("lr", self.lr)
        _checks.real("lr", self.lr, positive=True)
        _checks.scalar("alpha", self.alpha)
        _checks.alpha("alpha", self.alpha)
        s = self.sigma
        if isinstance(s, _noise.CovarianceModel) or isinstance(s, jax.core.Tracer):
            return
        if not isinstance(s, jax.Array | np.ndarray | np.generic | int | float):
            raise TypeError(f"sigma must be a number, a (d,) vector, a (d, d) matrix or a "
                            f"covariance model from sdesim.noise, got {type(s).__name__}")
        nd = np.ndim(s)
        if nd > 2:
            raise ValueError(f"sigma must be a number, a (d,) vector or a (d, d) matrix, "
                             f"got an array of shape {np.shape(s)}")
        _checks.real("sigma", s, nonnegative=nd < 2)

    def check(self, d):
        super().check(d)
        s = self.sigma
        if isinstance(s, _noise.CovarianceModel):
            s.check(d)
        elif np.ndim(s) == 1:
            _checks.shape("sigma", s, (d,), " (diagonal noise scale) to match theta0")
        elif np.ndim(s) == 2:
            _checks.shape("sigma", s, (d, d), " (full noise scale) to match theta0")

    def _sigma(self, theta, loss):
        """``Σ(θ)``: a scalar, a vector (diagonal) or a matrix."""
        s = self.sigma
        if isinstance(s, _noise.CovarianceModel):
            return s.factor(theta, loss) / jnp.sqrt(jnp.asarray(2.0, theta.dtype))
        return jnp.asarray(s, theta.dtype)

    @staticmethod
    def _scale2(sig, shape):
        """``diag(2ΣΣᵀ)``: the second moment per coordinate of ``Σ·S`` at α = 2, used as
        the noise's contribution to Adam's ``v`` for every α (see ``AdamLevy``)."""
        d2 = jnp.sum(sig**2, axis=1) if sig.ndim == 2 else sig**2
        return 2 * jnp.broadcast_to(d2, shape)

    def _eps(self, dtype):
        a = jnp.asarray(self.alpha, dtype)
        return jnp.asarray(self.lr, dtype) ** ((a - 1) / a)


@_checks.pytree_dataclass
class SGDLevy(_Levy, Overdamped):
    """Lévy-driven SGD ``dθ = −∇L(θ) dt + ε Σ(θ) dL_t`` [Zhou et al. 2020, eq. 4].

    ``L_t`` has i.i.d. SαS coordinates (``E e^{iωL_1} = e^{−|ω|^α}``), ``ε = lr^{(α−1)/α}``;
    Euler–Maruyama ``θ ← θ − ∇L h + ε Σ h^{1/α} S`` (so a step ``h = lr`` is one SGD
    iteration with gradient noise ``Σ S``). At α = 2 it is the Gaussian ``SGD`` with
    covariance ``C = 2ΣΣᵀ``. Exits are monitored on the grid (no Brownian bridge for
    jumps). A jump that overflows to ``±inf`` is an escape when the exit test reports the
    infinite point outside the region (it does for a box, a half-space across the jump's
    direction, a ball), else a divergence (``sdesim.stats``).

    Args:
      lr: learning rate ``η > 0`` (one iteration = ``η`` time units).
      alpha: stability index in (0, 2] (traced: a sweep over α compiles once).
      sigma: noise scale ``Σ`` — number, ``(d,)``, ``(d, d)`` or a covariance model of
        ``sdesim.noise`` (see ``_Levy``).
    """

    lr: jax.Array
    alpha: jax.Array
    sigma: object

    def _validate(self):
        self._validate_levy()

    def terms(self, state, t, h, loss):
        return Diffusion(-_grad(loss, state), scale=self._eps(state.dtype),
                         factor=self._sigma(state, loss))


@_checks.pytree_dataclass
class AdamLevy(_Levy, Model):
    """Lévy-driven Adam [Zhou et al. 2020, eq. 5]:

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
    position by preconditioned Euler–Maruyama with the new moments and the bias corrections
    evaluated at ``t + h`` (``μ_{t+h} = −1/expm1(−r₁(t+h))``). This is Adam's update
    order, it never evaluates ``μ_0 = ∞`` (``m_0 = 0``), and the bias correction is then
    exact: from ``m = v = 0`` under a constant gradient ``μ_{t+h} m = ∇L`` and
    ``ω_{t+h} v = g²`` at every step. With ``h = η`` a step is discrete Adam with
    ``β → e^{−(1−β)}`` (0.905 for 0.9).

    Args:
      lr: ``η > 0``; alpha: in (0, 2]; sigma: as for ``SGDLevy``;
      beta1, beta2: Adam's β in [0, 1) (defaults 0.9, 0.999); eps: Adam's ϵ >= 0
        (default 1e-8; ``epsilon=`` is the same argument under its former name). ϵ = 0
        needs a noise scale with no zero entry (else ``Q = 0`` at a minimum).
    """

    lr: jax.Array
    alpha: jax.Array
    sigma: object
    beta1: jax.Array = 0.9
    beta2: jax.Array = 0.999
    eps: jax.Array = 1e-8
    epsilon: dataclasses.InitVar[jax.Array | None] = None

    def __post_init__(self, epsilon=None):
        if epsilon is not None:
            object.__setattr__(self, "eps", epsilon)
        super().__post_init__()

    def _validate(self):
        self._validate_levy()
        for name in ("beta1", "beta2", "eps"):
            _checks.scalar(name, getattr(self, name))
        _checks.unit_interval("beta1", self.beta1)
        _checks.unit_interval("beta2", self.beta2)
        _checks.real("eps", self.eps, nonnegative=True)
        s = self.sigma
        if (not isinstance(s, _noise.CovarianceModel | jax.core.Tracer)
                and not isinstance(self.eps, jax.core.Tracer) and float(self.eps) == 0):
            diag = np.abs(np.asarray(s, float))
            diag = diag.sum(axis=1) if diag.ndim == 2 else diag
            if np.any(diag == 0):
                raise ValueError("eps = 0 with a noise scale sigma that is zero in some "
                                 "coordinate: Adam's preconditioner sqrt(v) + eps is then 0 "
                                 "at the minimum (0/0); give eps > 0")

    def init(self, theta0):
        z = jnp.zeros_like(theta0)
        return AdamState(theta0, z, z)

    def position(self, state):
        return state.theta

    def memory_time(self):
        return float(self.lr) / (1.0 - float(self.beta2))  # 1/r₂

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
        q = jnp.sqrt(om * v) + jnp.asarray(self.eps, m.dtype)
        return m, v, mu * m, q

    def terms(self, state, t, h, loss):
        th = state.theta
        g = _grad(loss, th)
        sig = self._sigma(th, loss)
        m, v, mhat, q = self._moments(state, t, h, g, g * g + self._scale2(sig, th.shape))
        return Diffusion(-mhat, scale=self._eps(th.dtype), factor=sig, precond=q,
                         aux=AdamState(th, m, v))


AdamLevy.epsilon = property(lambda self: self.eps, doc="Adam's ϵ (the former name of eps)")


@_checks.pytree_dataclass
class AdaL(AdamLevy):
    """AdaL [Zhang] as a Lévy model: Adam on the transformed gradient
    ``ĝ = ‖g‖₁ g``, ``g = ∇L + u`` with one SαS gradient noise ``u = Σ S`` per step.

    A *model*, not a diffusion limit: near a minimum ``‖g‖₁ ≈ ‖u‖₁`` is itself noise, so
    there is no faithful drift/diffusion split; its step is a discrete update
    (integrator ``"discrete"``). Each step draws ``u``, feeds ``ĝ`` and ``ĝ²`` to ``m``
    and ``v`` (same exact-exponential moment update and bias corrections as ``AdamLevy``)
    and moves ``θ ← θ − s_k μ m/Q · h``: the noise reaches θ only through ``m``. Intended
    step: ``dt = lr`` (one AdaL iteration per step; it is then discrete AdaL with
    ``β → e^{−(1−β)}``). For another ``h`` the per-step noise is ``Σ S (η/h)^{1−1/α}``,
    which keeps the *linear* part consistent with the Lévy SDE.

    Args: as ``AdamLevy``, plus ``decay`` (static bool): step multiplier
    ``s_k = 1/sqrt(k)``, ``k = (t+h)/η`` the iteration (the paper's ``α/sqrt(t)``);
    default False (constant step).
    """

    decay: bool = dataclasses.field(default=False, metadata=_static)

    integrator = "discrete"
    config_name = "adal"

    def terms(self, state, t, h, loss):
        raise NotImplementedError("AdaL has no drift/diffusion split: see update()")

    def update(self, state, t, h, loss, z):
        th = state.theta
        dt = th.dtype
        a = jnp.asarray(self.alpha, dt)
        lr = jnp.asarray(self.lr, dt)
        u = (lr / h) ** (1 - 1 / a) * _noise.apply_factor(self._sigma(th, loss), z)
        g = _grad(loss, th) + u
        ghat = jnp.sum(jnp.abs(g)) * g
        m, v, mhat, q = self._moments(state, t, h, ghat, ghat * ghat)
        mult = jax.lax.rsqrt(jnp.maximum((t + h) / lr, 1)) if self.decay else 1
        return AdamState(th - mult * mhat / q * h, m, v)


AdaL.epsilon = AdamLevy.epsilon
