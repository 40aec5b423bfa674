"""The discrete optimizers the SDEs model (SPEC §4), and a model that runs them in the
escape engine.

Optimizers are optax ``GradientTransformation``s: usable on any pytree of parameters,
jittable, composable with ``optax.chain``. ``sgd``, both momentum styles and ``adam`` are
optax's own; ``adai`` and ``adal`` are ours (the published update rules, held to a NumPy
transcription in tests/test_optim.py).

``Algorithm`` wraps an optimizer and a gradient source — real minibatches of a data set
(sampling with replacement, indices counter-based per path) or injected Gaussian / SαS
noise — into an engine model: one step is one iteration, ``dt = lr`` SDE time units
(SPEC §1), so ``sd.escape(Algorithm(...), ..., dt=lr)`` (or ``escape_algorithm``) reports
escape times in SDE time next to the SDE models and ``iterations = times / lr``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _checks
from . import noise as _noise
from .engine import escape

# ---------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------


def sgd(lr):
    """Plain SGD ``θ ← θ − η g`` (optax)."""
    _checks.real("lr", lr, positive=True)
    return optax.sgd(lr)


def momentum(lr, beta1=0.9, style="pytorch"):
    """Heavy ball ``m ← β₁m + β₃g``, ``θ ← θ − ηm`` (SPEC §3.5), built from optax.

    ``style="pytorch"``: ``β₃ = 1`` (``optax.sgd(lr, momentum=β₁)``); ``style="adam"``:
    ``β₃ = 1 − β₁`` (an exponential moving average of the gradient, ``optax.ema``).
    The SDE of either is ``sdesim.models.Momentum(lr, beta1, noise, beta3=...)``.
    """
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    if style == "pytorch":
        return optax.sgd(lr, momentum=beta1)
    if style == "adam":
        return optax.chain(optax.ema(beta1, debias=False), optax.scale_by_learning_rate(lr))
    raise ValueError(f"style must be 'pytorch' (beta3 = 1) or 'adam' (beta3 = 1 - beta1), "
                     f"got {style!r}")


def adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (``optax.adam``: ``m̂/(sqrt(v̂) + ϵ)``, the convention of ``models.Adam``)."""
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, nonnegative=True)
    return optax.adam(lr, b1=beta1, b2=beta2, eps=eps)


class AdaiState(NamedTuple):
    count: jax.Array  # () int32, iterations done
    exp_avg: optax.Updates  # m
    exp_avg_sq: optax.Updates  # v
    beta1_prod: optax.Updates  # running product of the per-element β₁


def _tree_mean(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    size = sum(x.size for x in leaves)
    return sum(jnp.sum(x) for x in leaves) / size


def scale_by_adai(beta0=0.1, beta2=0.99, eps=1e-3):
    """Adai's direction ``m/(1 − Πβ₁)`` (the official code, SPEC §4): ``v ← β₂v +
    (1−β₂)g²``, ``v̂ = v/(1−β₂ᵗ)``, ``v̄ = mean(v̂)`` over *all* parameters of the pytree,
    ``β₁ = clip(1 − β₀v̂/v̄, 0, 1−ϵ)`` per element, ``m ← β₁m + (1−β₁)g``.

    Guard: where ``v̄ = 0`` (every gradient so far exactly zero) the ratio ``v̂/v̄`` is taken
    as 1 (its value when all ``v̂`` are equal), so ``β₁ = 1 − β₀`` and the step is zero
    instead of NaN.
    """

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdaiState(jnp.zeros([], jnp.int32), zeros, zeros,
                         jax.tree_util.tree_map(jnp.ones_like, params))

    def update(updates, state, params=None):
        del params
        count = state.count + 1
        tm = jax.tree_util.tree_map
        v = tm(lambda v, g: beta2 * v + (1 - beta2) * g * g, state.exp_avg_sq, updates)
        vhat = tm(lambda v: v / (1 - beta2 ** count.astype(v.dtype)), v)
        vbar = _tree_mean(vhat)
        ok = vbar > 0
        safe = jnp.where(ok, vbar, 1)

        def beta1_of(vh):
            ratio = jnp.where(ok, vh / safe.astype(vh.dtype), 1)
            return jnp.clip(1 - beta0 * ratio, 0, 1 - eps)

        beta1 = tm(beta1_of, vhat)
        m = tm(lambda m, b, g: b * m + (1 - b) * g, state.exp_avg, beta1, updates)
        prod = tm(lambda p, b: p * b, state.beta1_prod, beta1)
        direction = tm(lambda m, p: m / (1 - p), m, prod)
        return direction, AdaiState(count, m, v, prod)

    return optax.GradientTransformation(init, update)


def adai(lr, beta0=0.1, beta2=0.99, eps=1e-3, weight_decay=0.0, decoupled=False):
    """Adai [Xie et al. 2022], exactly as the official code (SPEC §4; defaults there).

    ``weight_decay``: L2 (added to the gradient before the moments) or, with
    ``decoupled=True``, AdamW-style ``θ ← θ − η·wd·θ``.
    """
    _checks.real("lr", lr, positive=True)
    _checks.real("beta0", beta0, positive=True)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    _checks.real("weight_decay", weight_decay, nonnegative=True)
    parts = []
    if weight_decay and not decoupled:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(scale_by_adai(beta0, beta2, eps))
    if weight_decay and decoupled:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale_by_learning_rate(lr))
    return optax.chain(*parts)


def l1_scale():
    """AdaL's gradient transform ``ĝ = ‖g‖₁·g``, ``‖g‖₁`` over all parameters."""

    def scale(updates, params=None):
        del params
        norm = sum(jnp.sum(jnp.abs(g)) for g in jax.tree_util.tree_leaves(updates))
        return jax.tree_util.tree_map(lambda g: norm.astype(g.dtype) * g, updates)

    return optax.stateless(scale)


def adal(lr, beta1=0.9, beta2=0.999, eps=1e-8, decay=False):
    """AdaL [Zhang, Algorithm 1]: Adam on ``ĝ = ‖g‖₁·g`` (SPEC §3.8).

    Step ``m̂/(sqrt(v̂) + ϵ)`` times ``lr`` (``decay=False``) or the paper's
    ``lr/sqrt(t)`` (``decay=True``, ``t = 1, 2, …``). The paper typesets the update as
    ``(v̂^{-1/2} + ϵ)·m̂``; we read it as Adam's ``m̂/(v̂^{1/2} + ϵ)`` — the paper says AdaL
    differs from Adam only in ``ĝ`` and adds no parameter.
    """
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, nonnegative=True)
    step = (lambda count: lr * jax.lax.rsqrt(count + 1.0)) if decay else lr
    return optax.chain(l1_scale(), optax.scale_by_adam(beta1, beta2, eps),
                       optax.scale_by_learning_rate(step))


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "adam": adam, "adai": adai, "adal": adal}


# ---------------------------------------------------------------------------------------
# The algorithm as an engine model
# ---------------------------------------------------------------------------------------


class AlgorithmState(NamedTuple):
    theta: jax.Array
    opt_state: optax.OptState


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A discrete optimizer with stochastic gradients, as a model for ``sd.escape``.

    One engine step is one iteration; run it with ``dt = lr`` (``escape_algorithm`` does)
    so that escape times are in SDE time (``t = k·lr``, SPEC §1) and ``iterations`` counts
    iterations. The exit is checked after every iteration (no bridge: the path *is*
    discrete).

    Gradient source (exactly one):

    - ``data`` + ``batch_size``: the mean of ``∇ℓ(θ; x)`` over ``batch_size`` samples
      drawn with replacement from ``data`` (first axis = sample). The indices are the
      engine's counter-based per-path noise, so results are reproducible per path.
      ``per_sample(θ, x)`` defaults to ``loss.per_sample`` (e.g. the data-shifted
      Styblinski–Tang).
    - ``noise``: injected noise ``g = ∇L(θ) + u`` with ``Cov u = C(θ)`` from a covariance
      model of ``sdesim.noise`` (Gaussian); with ``alpha`` in (0, 2) the SαS noise
      ``u = (C/2)^{1/2} S`` of the Lévy models (SPEC §1).
    - neither: full-batch gradient descent with the exact ``∇L``.

    ``optimizer`` and ``batch_size`` are static (a new value compiles a new program);
    ``data``, ``lr``, ``alpha`` and the noise model's parameters are traced.
    """

    optimizer: optax.GradientTransformation = dataclasses.field(metadata=dict(static=True))
    lr: jax.Array
    data: jax.Array | None = None
    batch_size: int | None = dataclasses.field(default=None, metadata=dict(static=True))
    noise: object = None
    alpha: jax.Array | None = None
    per_sample: Callable | None = dataclasses.field(default=None, metadata=dict(static=True))

    noise_kind = "discrete"

    def __post_init__(self):
        if isinstance(self.lr, int | float) and not isinstance(self.lr, bool):
            object.__setattr__(self, "lr", jnp.asarray(self.lr, jnp.result_type(float)))
        if isinstance(self.data, np.ndarray | list | tuple):
            object.__setattr__(self, "data", jnp.asarray(self.data, jnp.result_type(float)))

    @property
    def source(self):
        if self.data is not None or self.batch_size is not None:
            return "minibatch"
        return "full" if self.noise is None else "injected"

    def check(self, d):
        if not (hasattr(self.optimizer, "init") and hasattr(self.optimizer, "update")):
            raise TypeError(f"optimizer must be an optax GradientTransformation, got "
                            f"{type(self.optimizer).__name__}")
        _checks.real("lr", self.lr, positive=True)
        if self.source == "minibatch":
            if self.noise is not None or self.alpha is not None:
                raise ValueError("give either data + batch_size (minibatch gradients) or "
                                 "noise/alpha (injected noise), not both")
            if self.data is None:
                raise ValueError("batch_size needs data (the data set to sample from)")
            shape = np.shape(self.data)
            n = shape[0] if len(shape) else 0
            if n < 1:
                raise ValueError(f"data must hold at least one sample (first axis), got "
                                 f"shape {shape}")
            if self.batch_size is None:
                raise ValueError("data needs batch_size (samples per minibatch)")
            b = _checks.integer("batch_size", self.batch_size, minimum=1)
            if b > n:
                raise ValueError(f"batch_size must be <= the number of samples ({n}), "
                                 f"got {b}")
        else:
            if self.alpha is not None:
                _checks.alpha("alpha", self.alpha)
                if self.noise is None:
                    raise ValueError("alpha needs noise= (the covariance model that sets "
                                     "the noise scale (C/2)^(1/2))")
            if self.noise is not None:
                if not hasattr(self.noise, "factor"):
                    raise TypeError(f"noise must be a covariance model from sdesim.noise, "
                                    f"got {type(self.noise).__name__}")
                self.noise.check(d)

    def check_dt(self, dt):
        """One engine step is one iteration: ``dt`` must be ``lr`` (t = k·lr)."""
        lr = float(np.asarray(self.lr))
        if not math.isclose(float(dt), lr, rel_tol=1e-6):
            raise ValueError(f"dt must equal the algorithm's lr ({lr!r}: one step is one "
                             f"iteration, t = k·lr), got dt={dt!r}; sd.escape_algorithm "
                             f"sets it")

    # -- engine protocol ------------------------------------------------------------
    def noise_shape(self, d):
        if self.source == "minibatch":
            return (self.batch_size,)
        return (d,) if self.source == "injected" else (0,)

    def sample_noise(self, key, shape, dtype):
        if self.source == "minibatch":
            return jax.random.randint(key, shape, 0, self.data.shape[0], dtype=jnp.int32)
        if self.alpha is not None:
            return _noise.sas(key, self.alpha, shape, dtype)
        return jax.random.normal(key, shape, dtype)

    def init(self, theta0):
        return AlgorithmState(theta0, self.optimizer.init(theta0))

    def position(self, state):
        return state.theta

    def gradient(self, theta, loss, z):
        """The stochastic gradient of one iteration given the step's noise ``z``."""
        if self.source == "minibatch":
            fn = _noise.per_sample_of(self.per_sample, loss)
            batch = self.data[z]
            return jax.grad(lambda th: jnp.mean(jax.vmap(fn, in_axes=(None, 0))(th, batch)))(
                theta)
        g = jax.grad(loss)(theta)
        if self.source == "full":
            return g
        b = self.noise.factor(theta, loss)
        if self.alpha is not None:
            b = b / jnp.sqrt(jnp.asarray(2.0, theta.dtype))
        return g + _noise.apply_factor(b, z)

    def step(self, state, t, h, loss, z):
        del t, h  # one iteration per step, whatever the step's SDE-time length
        g = self.gradient(state.theta, loss, z)
        updates, opt_state = self.optimizer.update(g, state.opt_state, state.theta)
        return AlgorithmState(optax.apply_updates(state.theta, updates), opt_state), None


def escape_algorithm(optimizer, loss, theta0, exit, *, lr, n_iters, n_paths, key, data=None,
                     batch_size=None, noise=None, alpha=None, per_sample=None, **kwargs):
    """``sd.escape`` for a discrete optimizer: at most ``n_iters`` iterations per path.

    ``optimizer`` is an optax transformation (e.g. ``sdesim.optim.adai(lr)``); ``lr`` is
    its learning rate (SDE time per iteration). Gradient source as ``Algorithm``.
    Returns the ``EscapeResult`` of ``sd.escape``: ``times`` in SDE time
    (``iterations × lr``), ``iterations`` the iteration of exit. Other keyword arguments
    (``lanes``, ``progress``, ``first_path``) go to ``sd.escape``.
    """
    n_iters = _checks.integer("n_iters", n_iters, minimum=1)
    lr = _checks.real("lr", lr, positive=True)
    model = Algorithm(optimizer, lr, data=data, batch_size=batch_size, noise=noise,
                      alpha=alpha, per_sample=per_sample)
    return escape(model, loss, theta0, exit, n_paths=n_paths, dt=lr, t_max=n_iters * lr,
                  key=key, **kwargs)
