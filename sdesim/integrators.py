"""Integrators: how one step of a model's equation is taken (the model says what it is).

Each integrator is a pure function ``integrator(model, state, t, h, loss, z) ->
(state, factor)``: it asks the model for its terms at ``(state, t)`` (``sdesim.model``),
advances the state by ``h`` with the driving noise ``z`` (standard normal, or SαS of
index ``model.alpha``), and returns the position-noise factor ``B`` (``Cov(Δθ) = BBᵀh``)
where the Brownian-bridge exit test applies, else None. A model names its integrator in
``model.integrator``; ``INTEGRATORS`` maps the names. Adding an integrator is one
function here plus its name in ``INTEGRATORS`` (and a test).

The increment of the driving process over a step is ``h^{1/2} z`` (Gaussian) or
``h^{1/α} S`` (α-stable; docs/concepts/mathematics.md, "Conventions").
"""

from __future__ import annotations

import jax.numpy as jnp

from .model import Diffusion, Inertial, apply_factor, noise_force, position_factor


def _h_power(model, h, dtype):
    """``h^{1/α}`` for a Lévy-driven model, ``sqrt(h)`` for a Gaussian one."""
    if model.noise_kind == "levy":
        return h ** (1 / jnp.asarray(model.alpha, dtype))
    return jnp.sqrt(h)


def _increment(tm, hp, z):
    """``s·h^{1/α}·(B z)``: the noise displacement of one Euler–Maruyama step."""
    if tm.factor is None:
        return tm.scale * hp * z
    bz = apply_factor(tm.factor, z)
    return hp * bz if tm.scale is None else tm.scale * hp * bz


def _em(x, tm, h, hp, z):
    """``x + f h + ξ``, or ``x + Q⁻¹(f h + ξ)`` with a preconditioner ``Q``."""
    if tm.precond is None:
        return x + tm.drift * h + _increment(tm, hp, z)
    return x + (tm.drift * h + _increment(tm, hp, z)) / tm.precond


def _with_theta(tm, state, theta):
    """The new state: ``θ`` itself, or the model's auxiliary state with ``θ`` set."""
    if tm.aux is None:
        return theta if not hasattr(state, "_replace") else state._replace(theta=theta)
    return tm.aux._replace(theta=theta)


def euler_maruyama(model, state, t, h, loss, z):
    """Euler–Maruyama for an overdamped :class:`Diffusion` in ``θ``:
    ``θ ← θ + f h + s·h^{1/α}·B z`` (Gaussian: ``α = 2``, ``h^{1/2}``), or with a
    preconditioner ``θ ← θ + Q⁻¹(f h + s·h^{1/α}·B z)``. Auxiliary state (moments) comes
    from the terms, already advanced over the step."""
    theta = model.position(state)
    tm = model.terms(state, t, h, loss)
    new = _em(theta, tm, h, _h_power(model, h, theta.dtype), z)
    factor = None
    if model.diffusive_position and model.noise_kind == "gaussian" and tm.precond is None:
        factor = position_factor(tm, theta.shape)
    return _with_theta(tm, state, new), factor


def _phase_velocity_em(model, state, t, h, loss, z):
    th, v = state.theta, state.velocity
    tm = model.terms(state, t, h, loss)
    if not isinstance(tm, Diffusion):
        raise TypeError(f"{type(model).__name__}: this integrator needs Diffusion terms on "
                        f"the velocity")
    return th, v, _em(v, tm, h, _h_power(model, h, v.dtype), z)


def semi_implicit(model, state, t, h, loss, z):
    """Semi-implicit Euler–Maruyama on phase space: the velocity first
    (``v ← v + a h + s·sqrt(h)·z``, terms a :class:`Diffusion` in ``v``), then the position
    with the new velocity (``θ ← θ + v_new h``) — symplectic Euler for the Hamiltonian part,
    so the energy of an oscillation does not drift at O(h) per period."""
    th, _, v_new = _phase_velocity_em(model, state, t, h, loss, z)
    return state._replace(theta=th + v_new * h, velocity=v_new), None


def phase_euler(model, state, t, h, loss, z):
    """Explicit Euler–Maruyama on phase space: ``v`` as ``semi_implicit``, ``θ ← θ + v h``
    with the old velocity."""
    th, v, v_new = _phase_velocity_em(model, state, t, h, loss, z)
    return state._replace(theta=th + v * h, velocity=v_new), None


def _inertial(model, state, t, h, loss, z):
    """Inertial terms and what both phase-space schemes derive from them:
    ``(terms, θ, v, M, γ = Γ/M, α (2 for Gaussian), noise force s·B z)``."""
    tm = model.terms(state, t, h, loss)
    if not isinstance(tm, Inertial):
        raise TypeError(f"{type(model).__name__}: this integrator needs Inertial terms")
    th, v = state.theta, state.velocity
    a = 2.0 if model.noise_kind != "levy" else jnp.asarray(model.alpha, th.dtype)
    return tm, th, v, tm.mass, tm.friction / tm.mass, a, noise_force(tm.scale, tm.factor, z)


def _new_phase_state(tm, state, theta, v):
    base = state if tm.aux is None else tm.aux
    return base._replace(theta=theta, velocity=v)


def exponential(model, state, t, h, loss, z):
    """Exponential (Ornstein–Uhlenbeck) scheme for :class:`Inertial` terms,
    ``M dv = −Γ v dt + F dt + s·B dL``: the velocity's linear part (friction, force frozen
    over the step, noise) is integrated exactly — ``v ← e^{−γh} v + ((1 − e^{−γh})/γ)·F/M +
    ((1 − e^{−αγh})/(αγ))^{1/α}·s·B S/M`` with ``γ = Γ/M`` (Gaussian: ``α = 2``, the
    variance ``(1 − e^{−2γh})/(2γ)``) — then ``θ ← θ + v_new h``. Stable for any ``γh``;
    accurate for ``γh ≲ 1`` (the position moves with the end-of-step velocity)."""
    tm, th, v, m, gam, a, nz = _inertial(model, state, t, h, loss, z)
    e = jnp.exp(-gam * h)
    drift_gain = -jnp.expm1(-gam * h) / gam  # (1 - e^{-γh})/γ, → h as γ → 0
    noise_sd = (-jnp.expm1(-a * gam * h) / (a * gam)) ** (1 / a)  # → h^{1/α}
    v_new = e * v + drift_gain * (tm.force / m) + noise_sd * nz / m
    return _new_phase_state(tm, state, th + v_new * h, v_new), None


def euler(model, state, t, h, loss, z):
    """Explicit Euler–Maruyama for :class:`Inertial` terms: ``v ← v + (−γ v + F/M) h +
    h^{1/α}·s·B S/M``, ``θ ← θ + v h`` with the old velocity."""
    tm, th, v, m, gam, a, nz = _inertial(model, state, t, h, loss, z)
    v_new = v + (-gam * v + tm.force / m) * h + h ** (1 / a) * nz / m
    return _new_phase_state(tm, state, th + v * h, v_new), None


def discrete(model, state, t, h, loss, z):
    """A discrete algorithm (an optimizer's update, AdaL): ``model.update`` is the step."""
    return model.update(state, t, h, loss, z), None


INTEGRATORS = {
    "euler-maruyama": euler_maruyama,
    "semi-implicit": semi_implicit,
    "phase-euler": phase_euler,
    "exponential": exponential,
    "euler": euler,
    "discrete": discrete,
}
