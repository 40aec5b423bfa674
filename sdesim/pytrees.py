"""Parameters as pytrees: a network's parameters go in, one flat vector runs.

``escape``, ``simulate``, ``escape_algorithm`` and ``escape_ams`` accept ``theta0`` as any
pytree of real arrays (a dict, a tuple, the array part of an Equinox module from
``eqx.partition``, Flax variables). The boundary flattens it once
(``jax.flatten_util.ravel_pytree``'s order: leaves in tree order, each raveled in C
order, cast to the run's float dtype) and the engine runs on the flat vector ``θ`` of
length ``d = Σ leaf sizes``. Every function the user gives takes the *pytree*: the loss
``loss(params)``, a per-sample loss ``per_sample(params, example)`` (a model's minibatch
noise or an algorithm's minibatch gradients), an exit given as a callable or a
``LevelSet``'s ``fn``, and a splitting score; each is wrapped as ``f(unravel(θ))``, so a
pytree run is bit for bit the run of the hand-flattened problem. Geometric exits
(``Halfspace``, ``Box``, ``Ellipsoid``, ``Ball``) act on the flat vector; ``exits.ball``
takes its centre as a pytree. ``Unravel`` turns flat vectors (and stacks of them, e.g.
``simulate``'s trajectories) back into pytrees.

The wrappers are frozen dataclasses whose equality is that of the wrapped function and
the tree's structure, shapes and dtypes: a second run with the same loss function and
parameter layout reuses the compiled program.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Unravel:
    """Flat vector(s) -> the parameter pytree (hashable: structure, shapes, dtypes).

    ``unravel(theta)`` with ``theta`` of shape ``(..., d)`` returns the pytree whose leaves
    have shape ``(..., *leaf_shape)``; leaves are cast back to their own dtypes."""

    treedef: object
    shapes: tuple
    dtypes: tuple

    @property
    def size(self):
        return sum(math.prod(s) for s in self.shapes)

    def __call__(self, theta):
        theta = jnp.asarray(theta)
        lead = theta.shape[:-1]
        leaves, i = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes, strict=True):
            n = math.prod(shape)
            leaf = theta[..., i:i + n].reshape(*lead, *shape)
            leaves.append(leaf if jnp.dtype(dtype) == leaf.dtype or not jnp.issubdtype(
                dtype, jnp.floating) else leaf.astype(dtype))
            i += n
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def ravel(self, tree, dtype=None):
        """The flat vector of ``tree`` (same structure), in this layout's order."""
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        if treedef != self.treedef:
            raise ValueError(f"the pytree's structure {treedef} differs from the "
                             f"parameters' {self.treedef}")
        for leaf, shape in zip(leaves, self.shapes, strict=True):
            if tuple(np.shape(leaf)) != shape:
                raise ValueError(f"a leaf of shape {np.shape(leaf)} where the parameters "
                                 f"have shape {shape}")
        dtype = dtype or jnp.result_type(float)
        return jnp.concatenate([jnp.ravel(jnp.asarray(x, dtype)) for x in leaves]) \
            if leaves else jnp.zeros((0,), dtype)


def layout(theta0):
    """``(flat theta0, Unravel)`` of a parameter pytree; raises naming a bad leaf."""
    leaves, treedef = jax.tree_util.tree_flatten(theta0)
    if not leaves:
        raise ValueError("theta0 holds no arrays (an empty pytree)")
    shapes, dtypes = [], []
    for path, leaf in jax.tree_util.tree_flatten_with_path(theta0)[0]:
        name = jax.tree_util.keystr(path) or "theta0"
        a = np.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
        if not hasattr(a, "dtype") or a.dtype.kind not in "fiu":
            what = type(leaf).__name__ + (f" of dtype {a.dtype}" if hasattr(a, "dtype") else "")
            raise TypeError(f"theta0{name} must be an array of real numbers, got {what} "
                            f"(pass the array part of a module: eqx.partition(model, "
                            f"eqx.is_inexact_array))")
        shapes.append(tuple(a.shape))
        dtypes.append(np.dtype(a.dtype) if a.dtype.kind == "f" else np.dtype(
            jnp.result_type(float)))
    un = Unravel(treedef, tuple(shapes), tuple(dtypes))
    return un.ravel(theta0), un


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class OnParams:
    """``fn(unravel(θ), *rest)``: a user's function of the parameter pytree as a function
    of the flat vector (a loss, a per-sample loss, an exit predicate, a score). A
    landscape-like ``fn`` keeps its optional methods visible (``per_sample``)."""

    fn: Callable  # a pytree child: a landscape's or module's arrays stay traced
    unravel: Unravel = dataclasses.field(metadata=dict(static=True))

    def __call__(self, theta, *rest):
        return self.fn(self.unravel(theta), *rest)

    @property
    def per_sample(self):
        ps = getattr(self.fn, "per_sample", None)
        return None if ps is None else OnParams(ps, self.unravel)


def wrap_model(model, unravel):
    """The model with every per-sample loss it holds (a minibatch noise's, an algorithm's)
    taking the flat vector."""
    from .noise import Minibatch

    def fix(node):
        if isinstance(node, Minibatch) and node.per_sample is not None:
            return dataclasses.replace(node, per_sample=OnParams(node.per_sample, unravel))
        return node

    model = jax.tree_util.tree_map(fix, model, is_leaf=lambda x: isinstance(x, Minibatch))
    if getattr(model, "per_sample", None) is not None and dataclasses.is_dataclass(model):
        model = dataclasses.replace(model, per_sample=OnParams(model.per_sample, unravel))
    return model


def wrap_exit(exit, unravel):
    """A callable exit or a ``LevelSet`` takes the pytree; geometric exits the vector."""
    from . import exits as _exits

    if exit is None:
        return None
    if isinstance(exit, _exits.LevelSet):
        return dataclasses.replace(exit, fn=OnParams(exit.fn, unravel))
    if isinstance(exit, _exits.Predicate):
        return dataclasses.replace(exit, fn=OnParams(exit.fn, unravel))
    if not isinstance(exit, _exits.Exit) and callable(exit):
        return _exits.Predicate(OnParams(exit, unravel))
    return exit


def flatten_problem(model, loss, theta0, exit=None):
    """``(model, loss, theta0, exit, unravel)`` on the flat vector; ``unravel`` is None
    (and nothing is changed) when ``theta0`` is already a vector or a scalar array."""
    if is_vector_like(theta0):
        return model, loss, theta0, exit, None
    flat, un = layout(theta0)
    loss = OnParams(loss, un) if callable(loss) else loss
    return wrap_model(model, un), loss, flat, wrap_exit(exit, un), un


def is_vector_like(theta0):
    """A plain array, list or number (the engine's own checks judge its shape)."""
    if isinstance(theta0, jax.Array | np.ndarray | int | float | np.number):
        return True
    if isinstance(theta0, list | tuple) and all(
            isinstance(x, int | float | np.number) for x in theta0):
        return True  # a Python list/tuple of numbers: a vector, as before
    return False
