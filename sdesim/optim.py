"""The discrete optimizers the SDEs model, and a model that runs them in the
escape engine.

Optimizers are optax ``GradientTransformation``s built with ``optax.inject_hyperparams``:
usable on any pytree of parameters, jittable, composable with ``optax.chain``, and their
numbers live in the optimizer state (``opt.init(p).hyperparams["learning_rate"]``,
``["beta1"]``, …: the function's argument names, ``lr`` under optax's name
``learning_rate``), so a new value is new data, not a new program. ``sgd``, both momentum
styles and ``adam`` do optax's arithmetic (bit for bit: tests/test_optim.py); ``adai`` and
``adal`` are ours (the published update rules, held to a NumPy transcription there).

Where an update uses ``1 − β`` the state also holds ``one_minus_<β>``, computed from the
given number in float64 on the host: in float32, ``1 − float32(β)`` is not
``float32(1 − β)`` (β = 0.9: 0.10000002 vs 0.1), and optax with constant hyperparameters —
whose results these optimizers keep — uses the latter. Set ``state.hyperparams["beta1"]``
alone and the stale complement no longer matches it, so the update uses ``1 − β₁`` in the
run's dtype instead.

``Algorithm`` wraps an optimizer and a gradient source — real minibatches of a data set
(sampling with replacement, indices counter-based per path) or injected Gaussian / SαS
noise — into an engine model: one step is one iteration, ``dt = lr`` SDE time units
(t = k·lr), so ``sd.escape(Algorithm(...), ..., dt=lr)`` (or ``escape_algorithm``) reports
escape times in SDE time next to the SDE models and ``iterations = times / lr``. The
learning rate has one source, the optimizer: ``escape_algorithm`` and ``Algorithm`` read
it and refuse a second, different ``lr``.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _checks
from . import noise as _noise
from . import pytrees as _pytrees
from .engine import escape
from .model import Model

# ---------------------------------------------------------------------------------------
# Building blocks (optax's arithmetic, with injectable numbers)
# ---------------------------------------------------------------------------------------


def _complement(b, one_minus_b):
    """``1 − b`` as an update uses it: ``one_minus_b`` (rounded once, on the host, from the
    exact value) while it matches ``b`` to rounding; else ``1 − b`` in ``b``'s dtype (none
    given, or ``b`` changed in the state without it)."""
    if one_minus_b is None:
        return 1 - b
    if not isinstance(b, jax.Array):  # Python / NumPy numbers: fixed when built
        return one_minus_b
    dtype = jnp.result_type(b, float)
    exact = 1 - b
    c = jnp.asarray(one_minus_b, dtype)
    return jnp.where(jnp.abs(exact - c) <= 2 * jnp.finfo(dtype).eps, c, exact)


def _host_complement(x):
    """``1 − x`` in float64 for a number known now (None for a JAX array: traced or
    injected, its complement is taken in its own dtype)."""
    return None if isinstance(x, jax.Array) else _number(1.0 - np.asarray(x, np.float64))


def _debias(moment, decay, count):
    """optax's bias correction ``m / (1 − decayᵗ)``."""
    # lax.pow takes the integer count as it is (jnp's ``**`` does the same, but refuses
    # float ** int under strict dtype promotion)
    correction = 1 - jax.lax.pow(jnp.asarray(decay), jnp.asarray(count))
    return jax.tree_util.tree_map(lambda t: t / correction.astype(t.dtype), moment)


def _scale_by_adam(b1, b2, eps, one_minus_b1=None, one_minus_b2=None):
    """``optax.scale_by_adam(b1, b2, eps)`` (``eps_root = 0``), its arithmetic unchanged,
    with the complements ``1 − b`` injectable (see the module doc)."""

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        del params
        c1, c2 = _complement(b1, one_minus_b1), _complement(b2, one_minus_b2)
        tm = jax.tree_util.tree_map
        mu = tm(lambda g, t: c1 * g + b1 * t, updates, state.mu)
        nu = tm(lambda g, t: c2 * (g**2) + b2 * t, updates, state.nu)
        count = optax.safe_increment(state.count)
        direction = tm(lambda m, v: m / (jnp.sqrt(v) + eps), _debias(mu, b1, count),
                       _debias(nu, b2, count))
        return direction, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def _ema(decay, one_minus_decay=None):
    """``optax.ema(decay, debias=False)``, its arithmetic unchanged, with the complement
    injectable."""

    def init(params):
        return optax.EmaState(count=jnp.zeros([], jnp.int32),
                              ema=jax.tree_util.tree_map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        c = _complement(decay, one_minus_decay)
        new = jax.tree_util.tree_map(lambda g, t: c * g + decay * t, updates, state.ema)
        return new, optax.EmaState(count=optax.safe_increment(state.count), ema=new)

    return optax.GradientTransformation(init, update)


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
    """Adai's direction ``m/(1 − Πβ₁)`` (the official code): ``v ← β₂v +
    (1−β₂)g²``, ``v̂ = v/(1−β₂ᵗ)``, ``v̄ = mean(v̂)`` over *all* parameters of the pytree,
    ``β₁ = clip(1 − β₀v̂/v̄, 0, 1−ϵ)`` per element, ``m ← β₁m + (1−β₁)g``.

    Guard: where ``v̄ = 0`` (every gradient so far exactly zero) the ratio ``v̂/v̄`` is taken
    as 1 (its value when all ``v̂`` are equal), so ``β₁ = 1 − β₀`` and the step is zero
    instead of NaN. The numbers may be arrays, e.g. under
    ``optax.inject_hyperparams(scale_by_adai)``.
    """
    return _scale_by_adai(beta0, beta2, eps, _host_complement(beta2), _host_complement(eps))


def _scale_by_adai(beta0, beta2, eps, one_minus_beta2=None, one_minus_eps=None):

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdaiState(jnp.zeros([], jnp.int32), zeros, zeros,
                         jax.tree_util.tree_map(jnp.ones_like, params))

    def update(updates, state, params=None):
        del params
        c2, top = _complement(beta2, one_minus_beta2), _complement(eps, one_minus_eps)
        count = state.count + 1
        tm = jax.tree_util.tree_map
        v = tm(lambda v, g: beta2 * v + c2 * g * g, state.exp_avg_sq, updates)
        vhat = tm(lambda v: v / (1 - beta2 ** count.astype(v.dtype)), v)
        vbar = _tree_mean(vhat)
        ok = vbar > 0
        safe = jnp.where(ok, vbar, 1)

        def beta1_of(vh):
            ratio = jnp.where(ok, vh / safe.astype(vh.dtype), 1)
            return jnp.clip(1 - beta0 * ratio, 0, top)

        beta1 = tm(beta1_of, vhat)
        m = tm(lambda m, b, g: b * m + (1 - b) * g, state.exp_avg, beta1, updates)
        prod = tm(lambda p, b: p * b, state.beta1_prod, beta1)
        direction = tm(lambda m, p: m / (1 - p), m, prod)
        return direction, AdaiState(count, m, v, prod)

    return optax.GradientTransformation(init, update)


def l1_scale():
    """AdaL's gradient transform ``ĝ = ‖g‖₁·g``, ``‖g‖₁`` over all parameters."""

    def scale(updates, params=None):
        del params
        norm = sum(jnp.sum(jnp.abs(g)) for g in jax.tree_util.tree_leaves(updates))
        return jax.tree_util.tree_map(lambda g: norm.astype(g.dtype) * g, updates)

    return optax.stateless(scale)


# ---------------------------------------------------------------------------------------
# The optimizers: a recipe (name + settings that shape the program) and its numbers
# ---------------------------------------------------------------------------------------


def _sgd(learning_rate):
    return optax.sgd(learning_rate)


def _momentum(learning_rate, beta1, one_minus_beta1=None, style="pytorch"):
    if style == "pytorch":
        return optax.sgd(learning_rate, momentum=beta1)
    return optax.chain(_ema(beta1, one_minus_beta1), optax.scale_by_learning_rate(learning_rate))


def _adam(learning_rate, beta1, beta2, eps, one_minus_beta1=None, one_minus_beta2=None):
    return optax.chain(_scale_by_adam(beta1, beta2, eps, one_minus_beta1, one_minus_beta2),
                       optax.scale_by_learning_rate(learning_rate))


def _adai(learning_rate, beta0, beta2, eps, weight_decay, one_minus_beta2=None,
          one_minus_eps=None, weight_decay_mode="none"):
    parts = []
    if weight_decay_mode == "l2":
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(_scale_by_adai(beta0, beta2, eps, one_minus_beta2, one_minus_eps))
    if weight_decay_mode == "decoupled":
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)


def _adal(learning_rate, beta1, beta2, eps, one_minus_beta1=None, one_minus_beta2=None,
          decay=False):
    # decay: the paper's lr/sqrt(t), t = 1, 2, … (the inner scale's count starts at 0);
    # learning_rate stays the injected base rate.
    step = ((lambda count: learning_rate * jax.lax.rsqrt(
        jnp.asarray(count).astype(jnp.result_type(float)) + 1.0)) if decay else learning_rate)
    return optax.chain(l1_scale(),
                       _scale_by_adam(beta1, beta2, eps, one_minus_beta1, one_minus_beta2),
                       optax.scale_by_learning_rate(step))


_FACTORIES = {"sgd": _sgd, "momentum": _momentum, "adam": _adam, "adai": _adai,
              "adal": _adal}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One of this module's optimizers without its numbers: its name and the settings
    that shape the program (momentum ``style``, AdaL's ``decay``, Adai's weight-decay
    mode). Hashable, so ``Algorithm`` keeps it as static data while the numbers
    (``Algorithm.lr``, ``Algorithm.hyperparams``) are traced: a sweep over any of them
    reuses one compiled program.

    ``recipe(**numbers)`` is the optax transformation (``optax.inject_hyperparams``);
    ``recipe.update`` takes every number from the state it is given.
    """

    name: str
    settings: tuple = ()

    def __call__(self, **numbers):
        factory = optax.inject_hyperparams(_FACTORIES[self.name])
        return factory(**dict(self.settings), **numbers)

    def init(self, params, **numbers):
        return self(**numbers).init(params)

    def update(self, updates, state, params=None):
        return self(**state.hyperparams).update(updates, state, params)


# transformation.update -> (Recipe, numbers as given): how Algorithm and escape_algorithm
# recognise this module's optimizers (a weak map: it holds no transformation alive)
_ORIGINS = weakref.WeakKeyDictionary()


def _number(x):
    """A hyperparameter as the state will hold it: a float (or float64 array) when known
    now, as is when traced."""
    if isinstance(x, jax.core.Tracer):
        return x
    arr = np.asarray(x, np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _build(name, numbers, complements=(), **settings):
    numbers = {k: _number(v) for k, v in numbers.items()}
    for k in complements:
        c = _host_complement(numbers[k])
        numbers[f"one_minus_{k}"] = 1 - numbers[k] if c is None else c
    recipe = Recipe(name, tuple(sorted(settings.items())))
    tx = recipe(**numbers)
    _ORIGINS[tx.update] = (recipe, numbers)
    return tx


def _holds_field(state, name):
    """Whether an optax state (nested tuples, lists, dicts, NamedTuples) has a
    NamedTuple with a field ``name`` anywhere in it."""
    if name in getattr(state, "_fields", ()):
        return True
    if isinstance(state, dict):
        state = list(state.values())
    return isinstance(state, tuple | list) and any(_holds_field(x, name) for x in state)


def _origin(optimizer):
    """(Recipe, numbers) of one of this module's optimizers, else None."""
    try:
        return _ORIGINS.get(getattr(optimizer, "update", None))
    except TypeError:  # not weak-referenceable: not ours
        return None


def sgd(lr):
    """Plain SGD ``θ ← θ − η g`` (``optax.sgd``). Injected: ``learning_rate``."""
    _checks.real("lr", lr, positive=True)
    return _build("sgd", dict(learning_rate=lr))


def momentum(lr, beta1=0.9, style="pytorch"):
    """Heavy ball ``m ← β₁m + β₃g``, ``θ ← θ − ηm``, built from optax.

    ``style="pytorch"``: ``β₃ = 1`` (``optax.sgd(lr, momentum=β₁)``); ``style="adam"``:
    ``β₃ = 1 − β₁`` (an exponential moving average of the gradient, ``optax.ema``).
    The SDE of either is ``sdesim.models.Momentum(lr, beta1, noise, beta3=...)``.
    Injected: ``learning_rate``, ``beta1`` (and ``one_minus_beta1`` for ``"adam"``).
    """
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    if style not in ("pytorch", "adam"):
        raise ValueError(f"style must be 'pytorch' (beta3 = 1) or 'adam' (beta3 = 1 - beta1), "
                         f"got {style!r}")
    return _build("momentum", dict(learning_rate=lr, beta1=beta1),
                  ("beta1",) if style == "adam" else (), style=style)


def adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (``optax.adam``'s arithmetic: ``m̂/(sqrt(v̂) + ϵ)``, the convention of
    ``models.Adam``). Injected: ``learning_rate``, ``beta1``, ``beta2``, ``eps`` (and the
    complements of the betas)."""
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, nonnegative=True)
    return _build("adam", dict(learning_rate=lr, beta1=beta1, beta2=beta2, eps=eps),
                  ("beta1", "beta2"))


def adai(lr, beta0=0.1, beta2=0.99, eps=1e-3, weight_decay=0.0, decoupled=False):
    """Adai [Xie et al. 2022], exactly as the official code (and its defaults).

    ``weight_decay``: L2 (added to the gradient before the moments) or, with
    ``decoupled=True``, AdamW-style ``θ ← θ − η·wd·θ``. Injected: ``learning_rate``,
    ``beta0``, ``beta2``, ``eps``, ``weight_decay`` (and the complements of ``beta2`` and
    ``eps``); whether there is weight decay at all (0 or not) and ``decoupled`` shape the
    program.
    """
    _checks.real("lr", lr, positive=True)
    _checks.real("beta0", beta0, positive=True)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    _checks.real("weight_decay", weight_decay, nonnegative=True)
    none = not isinstance(weight_decay, jax.core.Tracer) and not np.any(weight_decay)
    mode = "none" if none else ("decoupled" if decoupled else "l2")
    return _build("adai", dict(learning_rate=lr, beta0=beta0, beta2=beta2, eps=eps,
                               weight_decay=weight_decay), ("beta2", "eps"),
                  weight_decay_mode=mode)


def adal(lr, beta1=0.9, beta2=0.999, eps=1e-8, decay=False):
    """AdaL [Zhang, Algorithm 1]: Adam on ``ĝ = ‖g‖₁·g``.

    Step ``m̂/(sqrt(v̂) + ϵ)`` times ``lr`` (``decay=False``) or the paper's
    ``lr/sqrt(t)`` (``decay=True``, ``t = 1, 2, …``). The paper typesets the update as
    ``(v̂^{-1/2} + ϵ)·m̂``; we read it as Adam's ``m̂/(v̂^{1/2} + ϵ)`` — the paper says AdaL
    differs from Adam only in ``ĝ`` and adds no parameter. Injected: ``learning_rate``
    (with ``decay=True`` the base rate ``lr``, not the decayed step), ``beta1``, ``beta2``,
    ``eps`` (and the complements of the betas).
    """
    _checks.real("lr", lr, positive=True)
    _checks.unit_interval("beta1", beta1)
    _checks.unit_interval("beta2", beta2)
    _checks.real("eps", eps, nonnegative=True)
    return _build("adal", dict(learning_rate=lr, beta1=beta1, beta2=beta2, eps=eps),
                  ("beta1", "beta2"), decay=bool(decay))


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "adam": adam, "adai": adai, "adal": adal}


# ---------------------------------------------------------------------------------------
# One learning rate
# ---------------------------------------------------------------------------------------

_INJECT_STATES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _is_inject_state(x):
    return isinstance(x, _INJECT_STATES)


def _injected_states(state):
    """Every ``optax.inject_hyperparams`` state inside an optimizer state (in chains,
    masks, nested injections)."""
    out = []
    for x in jax.tree_util.tree_leaves(state, is_leaf=_is_inject_state):
        if _is_inject_state(x):
            out += [x, *_injected_states(x.inner_state)]
    return out


def _set_learning_rate(state, lr):
    """``state`` with every injected ``learning_rate`` set to ``lr`` (in its dtype)."""

    def fix(x):
        if not _is_inject_state(x):
            return x
        x = x._replace(inner_state=_set_learning_rate(x.inner_state, lr))
        old = x.hyperparams.get("learning_rate")
        if old is None:
            return x
        dtype = jnp.result_type(old)
        new = jnp.asarray(lr, dtype) if jnp.issubdtype(dtype, jnp.floating) else lr
        return x._replace(hyperparams={**x.hyperparams, "learning_rate": new})

    return jax.tree_util.tree_map(fix, state, is_leaf=_is_inject_state)


def _check_transformation(optimizer):
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax GradientTransformation, got "
                        f"{type(optimizer).__name__}")


def learning_rate_of(optimizer, params=None):
    """The learning rate an optimizer holds, or None where it holds none that can be read.

    This module's optimizers: their ``lr`` (for ``adal(decay=True)`` the base rate of
    ``lr/sqrt(t)``). Any other optax transformation: the ``learning_rate`` of the
    ``optax.inject_hyperparams`` states in ``optimizer.init(params)`` (default params: a
    1-vector; a scheduled learning rate is read at step 0). Several different ones raise
    ``ValueError``: an algorithm has one learning rate, its SDE time per iteration.
    """
    origin = _origin(optimizer)
    if origin is not None:
        return origin[1]["learning_rate"]
    if params is None:
        params = jnp.zeros((1,), jnp.result_type(float))
    try:
        state = optimizer.init(params)
    except Exception:  # a transformation we cannot probe holds no lr we can read
        return None
    rates = {float(np.asarray(s.hyperparams["learning_rate"]).ravel()[0])
             for s in _injected_states(state)
             if "learning_rate" in s.hyperparams and np.size(s.hyperparams["learning_rate"]) == 1}
    if len(rates) > 1:
        raise ValueError(f"optimizer holds several learning rates {sorted(rates)}; an "
                         f"algorithm has one (its SDE time per iteration)")
    return rates.pop() if rates else None


def _scalar(name, value):
    if np.ndim(value) != 0:
        raise TypeError(f"{name} must be a single number (SDE time per iteration), got an "
                        f"array of shape {np.shape(value)}")


def _one_learning_rate(optimizer, lr, params=None):
    """The algorithm's one learning rate: the optimizer's, which ``lr`` (if given) must
    equal (to 1e-6 relative, float32 rounding); ``lr`` where the optimizer holds none."""
    _check_transformation(optimizer)
    if lr is not None:
        _checks.real("lr", lr, positive=True)
        _scalar("lr", lr)
    found = learning_rate_of(optimizer, params)
    if found is None:
        if lr is None:
            raise TypeError(
                f"lr is required: the optimizer ({type(optimizer).__name__}) holds no "
                f"learning rate to read (build it with sdesim.optim or "
                f"optax.inject_hyperparams, or give lr=, the SDE time per iteration)")
        return lr
    if isinstance(found, jax.core.Tracer) or isinstance(lr, jax.core.Tracer):
        return found if lr is None else lr  # under a user's trace: nothing to compare
    _checks.real("the optimizer's learning_rate", found, positive=True)
    _scalar("the optimizer's learning_rate", found)
    if lr is not None and not math.isclose(float(np.asarray(lr)), float(np.asarray(found)),
                                           rel_tol=1e-6):
        raise ValueError(
            f"two learning rates: lr={float(np.asarray(lr)):.8g} but the optimizer's "
            f"learning_rate is {float(np.asarray(found)):.8g}; an algorithm has one (its "
            f"SDE time per iteration): omit lr (it is read from the optimizer) or give the "
            f"optimizer that rate")
    if lr is not None and _origin(optimizer) is None:
        return lr  # the optimizer's was read back in its state's dtype; lr is exact
    return found


class _FromOptimizer:
    """Default of ``Algorithm.lr``: read the learning rate from the optimizer."""

    def __repr__(self):
        return "<the optimizer's learning_rate>"


_FROM_OPTIMIZER = _FromOptimizer()


# ---------------------------------------------------------------------------------------
# The algorithm as an engine model
# ---------------------------------------------------------------------------------------


class AlgorithmState(NamedTuple):
    theta: jax.Array
    opt_state: optax.OptState


def _as_float_array(x):
    """Python / NumPy numbers -> arrays of the default float dtype; anything else (JAX
    arrays, tracers, None, the placeholders of tree utilities) as is."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.number |
                                                        np.ndarray | list | tuple):
        return x
    return jnp.asarray(x, jnp.result_type(float))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Algorithm(Model):
    """A discrete optimizer with stochastic gradients, as a model for ``sd.escape``.

    One engine step is one iteration; run it with ``dt = lr`` (``escape_algorithm`` does)
    so that escape times are in SDE time (``t = k·lr``) and ``iterations`` counts
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
      ``u = (C/2)^{1/2} S`` of the Lévy models (docs/concepts/mathematics.md).
    - neither: full-batch gradient descent with the exact ``∇L``.

    ``lr`` is read from the optimizer (its injected ``learning_rate``, see
    ``learning_rate_of``); give it only where the optimizer holds none (a plain optax
    transformation: then it is required) or to state it — a different value raises
    ``ValueError``. With one of this module's optimizers, ``optimizer`` becomes its
    ``Recipe`` (static: name and settings) and its numbers become traced leaves — ``lr``
    and ``hyperparams`` (everything else it injects) — which ``init`` puts into the
    optimizer state: a sweep over the learning rate or a β compiles once. Any other
    optax transformation is static as given (a new one compiles a new program); its
    injected ``learning_rate``, if any, is set to ``lr`` at ``init``. ``batch_size`` is
    static; ``data``, ``alpha`` and the noise model's parameters are traced.
    """

    optimizer: optax.GradientTransformation = dataclasses.field(metadata=dict(static=True))
    lr: jax.Array = _FROM_OPTIMIZER
    data: jax.Array | None = None
    batch_size: int | None = dataclasses.field(default=None, metadata=dict(static=True))
    noise: object = None
    alpha: jax.Array | None = None
    # a pytree child, not static: an Equinox bound method (its arrays traced) works too
    per_sample: Callable | None = None
    hyperparams: dict[str, jax.Array] | None = None

    noise_kind = "discrete"
    integrator = "discrete"  # one engine step is one iteration: ``update``

    def __post_init__(self):
        # Runs on user construction and on every unflatten (tree utilities, jit): only
        # an optimizer of this module (never left in place) or the _FROM_OPTIMIZER
        # default (never passed by an unflatten) trigger the lr resolution.
        origin = _origin(self.optimizer)
        if origin is not None:
            recipe, numbers = origin
            if self.hyperparams is not None:
                raise TypeError("hyperparams is filled from the optimizer: give it only "
                                "with a Recipe as optimizer")
            lr = None if self.lr is _FROM_OPTIMIZER or self.lr is None else self.lr
            object.__setattr__(self, "lr", _one_learning_rate(self.optimizer, lr))
            object.__setattr__(self, "optimizer", recipe)
            object.__setattr__(self, "hyperparams", {
                k: v for k, v in numbers.items() if k != "learning_rate"})
        elif self.lr is _FROM_OPTIMIZER:
            if isinstance(self.optimizer, Recipe):
                raise TypeError("lr is required with a Recipe as optimizer")
            object.__setattr__(self, "lr", _one_learning_rate(self.optimizer, None))
        object.__setattr__(self, "lr", _as_float_array(self.lr))
        if isinstance(self.hyperparams, dict):
            object.__setattr__(self, "hyperparams", {
                k: _as_float_array(v) for k, v in self.hyperparams.items()})
        if isinstance(self.data, np.ndarray | list | tuple):
            object.__setattr__(self, "data", jnp.asarray(self.data, jnp.result_type(float)))

    @property
    def source(self):
        if self.data is not None or self.batch_size is not None:
            return "minibatch"
        return "full" if self.noise is None else "injected"

    def check(self, d):
        _checks.real("lr", self.lr, positive=True)
        if isinstance(self.optimizer, Recipe):
            if not isinstance(self.hyperparams, dict):
                raise TypeError("a Recipe as optimizer needs hyperparams= (its numbers "
                                "but the learning rate)")
        else:  # a plain optax transformation: its learning rate, if it holds one, is lr
            _one_learning_rate(self.optimizer, self.lr, jnp.zeros(d, jnp.result_type(float)))
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

    def memory_time(self):
        """``lr/(1 − β₂)`` for this module's adam, adai and adal (their second-moment
        EMA remembers ``1/(1 − β₂)`` iterations); 0 for sgd and momentum; None (unknown)
        for a plain optax optimizer whose state holds a second moment ``nu``, or whose
        ``init`` refuses a 1-element parameter vector."""
        if isinstance(self.optimizer, Recipe):
            b2 = (self.hyperparams or {}).get("beta2")
            return 0.0 if b2 is None else float(self.lr) / (1.0 - float(b2))
        try:  # the state's structure only (eval_shape computes nothing)
            state = jax.eval_shape(self.optimizer.init, jax.ShapeDtypeStruct((1,), jnp.float32))
        except Exception:  # an init that refuses a 1-element vector: unknown, not 0
            return None
        return None if _holds_field(state, "nu") else 0.0

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
        return (self.noise.noise_dim(d),) if self.source == "injected" else (0,)

    def sample_noise(self, key, shape, dtype):
        if self.source == "minibatch":
            return jax.random.randint(key, shape, 0, self.data.shape[0], dtype=jnp.int32)
        if self.alpha is not None:
            return _noise.sas(key, self.alpha, shape, dtype)
        return jax.random.normal(key, shape, dtype)

    def init(self, theta0):
        if isinstance(self.optimizer, Recipe):
            numbers = {**self.hyperparams, "learning_rate": self.lr}
            numbers = {k: jnp.asarray(v, theta0.dtype) for k, v in numbers.items()}
            return AlgorithmState(theta0, self.optimizer.init(theta0, **numbers))
        return AlgorithmState(theta0, _set_learning_rate(self.optimizer.init(theta0), self.lr))

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

    def update(self, state, t, h, loss, z):
        """One iteration (the integrator ``"discrete"``): whatever ``h`` is in SDE time."""
        del t, h
        g = self.gradient(state.theta, loss, z)
        updates, opt_state = self.optimizer.update(g, state.opt_state, state.theta)
        return AlgorithmState(optax.apply_updates(state.theta, updates), opt_state)


def escape_algorithm(optimizer, loss, theta0, exit, *, n_iters, n_paths, key, lr=None,
                     data=None, batch_size=None, noise=None, alpha=None, per_sample=None,
                     **kwargs):
    """``sd.escape`` for a discrete optimizer: at most ``n_iters`` iterations per path.

    ``optimizer`` is an optax transformation (e.g. ``sdesim.optim.adai(0.01)``). Its
    learning rate is the SDE time per iteration, read from the optimizer
    (``learning_rate_of``; for ``adal(decay=True)`` the base rate); ``lr`` is needed only
    where the optimizer holds none (a plain optax transformation: ``TypeError`` without
    it) and must otherwise equal the optimizer's (``ValueError`` naming both).
    Gradient source as ``Algorithm``. Returns the ``EscapeResult`` of ``sd.escape``:
    ``times`` in SDE time (``iterations × lr``), ``iterations`` the iteration of exit.
    Other keyword arguments (``lanes``, ``progress``, ``first_path``) go to
    ``sd.escape``. A sweep over the learning rate or any other number of this module's
    optimizers reuses one compiled program.
    """
    n_iters = _checks.integer("n_iters", n_iters, minimum=1)
    try:  # the optimizer's state is built on a zero vector of theta0's flat shape
        probe = jnp.zeros(np.shape(theta0) if _pytrees.is_vector_like(theta0) else
                          _pytrees.layout(theta0)[0].shape, jnp.result_type(float))
    except Exception:  # a malformed theta0 is for escape to report
        probe = None
    lr = _one_learning_rate(optimizer, lr, probe)
    model = Algorithm(optimizer, lr, data=data, batch_size=batch_size, noise=noise,
                      alpha=alpha, per_sample=per_sample)
    lr = float(np.asarray(lr))
    return escape(model, loss, theta0, exit, n_paths=n_paths, dt=lr, t_max=n_iters * lr,
                  key=key, **kwargs)
