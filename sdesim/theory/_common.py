"""Shared plumbing of ``sdesim.theory``: argument checks and callables -> numpy functions.

The checks are ``sdesim._checks`` (one rule for the whole package: TypeError for a
non-number, ValueError naming the argument, the value and what is allowed) plus what the
formulas need beyond it: a float64 result, the scalar check and ``negative=``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import numpy as np

from .. import _checks
from .._checks import _fail

_choice = _checks.choice  # one of a few allowed values: ValueError listing them


def _real(name, value, *, positive=False, negative=False, nonnegative=False, finite=True,
          array=False):
    """Check a real number (or, with ``array=True``, an array of them); return float64.

    ``_checks.real`` does the type, NaN, finiteness and sign checks; this adds the
    conversion to float64 (a ``float``, or an array with ``array=True``), the check that a
    scalar argument is one (ValueError), and ``negative`` (curvatures at a saddle).
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number, got {value!r}") from err
    if not array and arr.ndim != 0:
        _fail(name, value, "a scalar")
    _checks.real(name, value, positive=positive, nonnegative=nonnegative, finite=finite)
    if negative and not np.all(arr < 0):
        _fail(name, value, "< 0")
    return arr if array else float(arr)


def _count(name, value, minimum):
    """An integer ``>= minimum``. ValueError also for a non-integer (``_checks.integer``
    raises TypeError there; the theory functions have always raised ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


def _finish(values, scalar):
    """A float for a scalar input, else the float64 array."""
    return float(values.reshape(())) if scalar else values


# ----------------------------------------------------------------------------------------
# Callables -> vectorized float64 numpy functions
# ----------------------------------------------------------------------------------------


def _x64():
    """A context enabling float64 in JAX, or a no-op if JAX was never imported.

    A JAX function can only come from a caller who imported JAX, so a numpy-only user does
    not pay for importing it here.
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(jax.enable_x64(True))
    # a landscape built in float32 is evaluated at float64 points on purpose: its float32
    # parameters promote (also under jax_numpy_dtype_promotion="strict")
    stack.enter_context(jax.numpy_dtype_promotion("standard"))
    return stack


def _vectorize(fn: Callable, name: str = "potential") -> Callable[[np.ndarray], np.ndarray]:
    """Return a float64 numpy function ``x (n,) -> fn(x) (n,)`` built from ``fn``.

    Tried in order, keeping the first that works on a probe array:

    1. ``fn`` is already numpy-vectorized: called on a float64 1-D array it returns an array
       of the same shape.
    2. ``fn`` is a JAX function of a scalar: ``jax.vmap`` over scalars.
    3. ``fn`` is a JAX function of a shape-(1,) array (a 1-D landscape ``theta -> L(theta)``):
       ``jax.vmap`` over shape-(1,) rows.
    4. ``fn`` is a scalar Python function (e.g. using ``math``): a loop over floats.

    Every call runs under ``jax.enable_x64`` so that a JAX function computes in float64:
    ``U/T`` with ``T`` small amplifies float32 rounding in ``U`` into percent-level errors.
    A function that returns a scalar for an array input (e.g. ``jnp.sum(theta**2)``) fails
    the shape check in step 1 and is treated as a function of one point, as intended.
    """
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {fn!r}")
    probe = np.array([0.25, 0.5, 0.75], dtype=np.float64)

    def as_f64(out, n):
        out = np.asarray(out, dtype=np.float64)
        if out.shape != (n,):
            raise ValueError(f"{name} returned shape {out.shape} for {n} points")
        return out

    def numpy_vectorized(x):
        with _x64():
            return as_f64(fn(x), x.shape[0])

    def jax_vmapped(x, rows):
        import jax
        import jax.numpy as jnp

        with _x64():
            xj = jnp.asarray(x, dtype=jnp.float64)
            out = jax.vmap(lambda s: jnp.reshape(fn(s), ()))(xj[:, None] if rows else xj)
            return as_f64(out, x.shape[0])

    def jax_scalar(x):
        return jax_vmapped(x, rows=False)

    def jax_row(x):
        return jax_vmapped(x, rows=True)

    def python_scalar(x):
        with _x64():
            return np.array([float(np.asarray(fn(float(xi))).reshape(())) for xi in x])

    candidates = [numpy_vectorized, jax_scalar, jax_row, python_scalar]

    errors = []
    for cand in candidates:
        try:
            cand(probe)
        except Exception as err:  # each convention fails in its own way; try the next one
            errors.append(f"{cand.__name__}: {type(err).__name__}: {err}")
            continue

        def vectorized(x, _cand=cand):
            x = np.asarray(x, dtype=np.float64)
            flat = x.reshape(-1)
            if flat.size == 0:
                return np.zeros(x.shape)
            return _cand(flat).reshape(x.shape)

        return vectorized
    raise TypeError(f"cannot evaluate {name} on real numbers: " + "; ".join(errors))
