"""Real data and a real model, nothing downloaded: a small Equinox MLP on scikit-learn's
handwritten digits (1 797 images of 8×8 pixels, shipped inside scikit-learn) or on a
synthetic teacher–student set, trained to a minimum with optax, saved and loaded.

``Problem`` is what the escape functions and ``sdesim.diagnostics`` take: the parameter
pytree at the minimum, ``loss(params)`` on the training set, ``per_sample(params,
example)`` (one example = one row of ``data``: features then label) and ``data``.

    prob = sd.networks.digits_problem(hidden=(32,), key=jax.random.key(0))
    params = sd.networks.train(prob, sd.optim.sgd(0.1), steps=3000, batch_size=32, key=...)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _checks


def digits(*, n_classes: int = 10):
    """scikit-learn's digits: ``(X, y)`` with ``X`` of shape (N, 64) scaled to [0, 1]
    (float32) and integer labels ``y`` (N,), the first ``n_classes`` classes."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - a dependency of the test extra
        raise ImportError("sdesim.networks.digits needs scikit-learn (pip install "
                          "scikit-learn); its digits ship inside the package") from err
    n_classes = _checks.integer("n_classes", n_classes, minimum=2)
    if n_classes > 10:
        raise ValueError(f"the digits have 10 classes, got n_classes={n_classes}")
    x, y = load_digits(n_class=n_classes, return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int32)


def teacher_student(n: int = 1000, d_in: int = 10, hidden: int = 4, *, noise: float = 0.1,
                    seed: int = 0):
    """A synthetic regression set: inputs ``x ~ N(0, I)``, targets from a random
    one-hidden-layer tanh teacher plus Gaussian label noise of standard deviation
    ``noise``. Returns ``(X (n, d_in), y (n,))`` (float32)."""
    n = _checks.integer("n", n, minimum=2)
    d_in = _checks.integer("d_in", d_in, minimum=1)
    hidden = _checks.integer("hidden", hidden, minimum=1)
    _checks.real("noise", noise, nonnegative=True)
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(d_in, hidden)) / np.sqrt(d_in)
    w2 = rng.normal(size=hidden) / np.sqrt(hidden)
    x = rng.normal(size=(n, d_in))
    y = np.tanh(x @ w1) @ w2 + noise * rng.normal(size=n)
    return x.astype(np.float32), y.astype(np.float32)


class Problem(eqx.Module):
    """A network learning problem: ``params`` (the trainable arrays, a pytree), ``static``
    (the rest of the Equinox module), ``data`` (rows: features then the label) and the
    per-example loss; ``loss(params)`` is its mean over ``data``. An Equinox module: its
    bound methods (``problem.loss``, ``problem.per_sample``) are pytrees whose arrays
    (the data) are traced, so a run with other data reuses the compiled program."""

    params: object
    static: object
    data: jax.Array
    n_features: int = eqx.field(static=True)
    kind: str = eqx.field(static=True)  # "classification" or "regression"

    def model(self, params=None):
        return eqx.combine(self.params if params is None else params, self.static)

    def per_sample(self, params, example):
        """The loss of one example (a row of ``data``)."""
        net = eqx.combine(params, self.static)
        x, label = example[:self.n_features], example[self.n_features]
        out = net(x)
        if self.kind == "classification":
            logp = jax.nn.log_softmax(out)
            return -jnp.take(logp, label.astype(jnp.int32))
        return 0.5 * (out[0] - label) ** 2

    def loss(self, params, data=None):
        """Mean loss over ``data`` (default: the training set)."""
        rows = jnp.asarray(self.data if data is None else data)
        return jnp.mean(jax.vmap(self.per_sample, in_axes=(None, 0))(params, rows))

    def accuracy(self, params, data=None):
        rows = jnp.asarray(self.data if data is None else data)
        net = eqx.combine(params, self.static)
        out = jax.vmap(net)(rows[:, :self.n_features])
        pred = jnp.argmax(out, -1).astype(jnp.int32)
        return float(jnp.mean(pred == rows[:, self.n_features].astype(jnp.int32)))

    @property
    def n_params(self):
        return int(sum(x.size for x in jax.tree_util.tree_leaves(self.params)))

    def replace(self, params):
        return eqx.tree_at(lambda p: p.params, self, params)


def mlp_problem(x, y, *, hidden=(32,), kind: str = "classification", key) -> Problem:
    """An Equinox MLP (tanh hidden layers) on features ``x`` (N, p) and labels ``y``:
    ``classification`` (integer labels, cross-entropy, one output per class) or
    ``regression`` (squared error, one output)."""
    if kind not in ("classification", "regression"):
        raise ValueError(f"kind must be 'classification' or 'regression', got {kind!r}")
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be (N, p) and y (N,), got {x.shape} and {y.shape}")
    hidden = tuple(_checks.integer("hidden", h, minimum=1) for h in hidden)
    n_out = int(y.max()) + 1 if kind == "classification" else 1
    key = _checks.prng_key("key", key)
    keys = jax.random.split(key, len(hidden) + 1)
    sizes = (x.shape[1], *hidden, n_out)
    layers = []
    for i, k in enumerate(keys):
        layers.append(eqx.nn.Linear(sizes[i], sizes[i + 1], key=k))
        if i < len(hidden):
            layers.append(eqx.nn.Lambda(jnp.tanh))
    net = eqx.nn.Sequential(layers)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    data = np.concatenate([x, y[:, None].astype(np.float32)], axis=1)
    return Problem(params, static, jnp.asarray(data, jnp.result_type(float)), x.shape[1],
                   kind)


def digits_problem(*, hidden=(32,), n_classes: int = 10, key) -> Problem:
    """The digits (``digits``) with an MLP classifier (``mlp_problem``)."""
    x, y = digits(n_classes=n_classes)
    return mlp_problem(x, y, hidden=hidden, kind="classification", key=key)


def train(problem: Problem, optimizer: optax.GradientTransformation, *, steps: int,
          batch_size: int | None = None, key=None, params=None):
    """``steps`` optimizer steps from ``params`` (default ``problem.params``) on minibatches
    of ``batch_size`` rows (drawn without replacement within a batch; None = full batch).
    Returns the trained parameters (a pytree like ``problem.params``)."""
    steps = _checks.integer("steps", steps, minimum=1)
    n = problem.data.shape[0]
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size, minimum=1)
        if batch_size > n:
            raise ValueError(f"batch_size must be <= {n}, got {batch_size}")
    key = jax.random.key(0) if key is None else _checks.prng_key("key", key)
    p0 = problem.params if params is None else params
    return _train(problem, optimizer, p0, jnp.asarray(problem.data), steps, batch_size, key)


@eqx.filter_jit
def _train(problem, optimizer, params, data, steps, batch_size, key):
    n = data.shape[0]

    def step(carry, k):
        p, s = carry
        rows = data if batch_size is None else data[jax.random.choice(
            k, n, (batch_size,), replace=False)]
        g = jax.grad(lambda q: problem.loss(q, rows))(p)
        upd, s = optimizer.update(g, s, p)
        return (optax.apply_updates(p, upd), s), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)),
                                  jax.random.split(key, steps))
    return params


def save(path, params):
    """Write a parameter pytree (``eqx.tree_serialise_leaves``)."""
    eqx.tree_serialise_leaves(path, params)


def load(path, like):
    """Read parameters saved by ``save`` into the structure of ``like``."""
    return eqx.tree_deserialise_leaves(path, like)


__all__ = ["Problem", "digits", "digits_problem", "load", "mlp_problem", "save",
           "teacher_student", "train"]
