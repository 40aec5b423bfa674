"""Host-side argument checks: raise before anything is traced or compiled.

Every check names the argument, the value it got and what is allowed (STYLE.md §6).
Values that are JAX tracers (a model built inside a user's jit) are let through: they
cannot be inspected, and the engine never builds models under a trace itself.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np


def _concrete(value):
    """Return `value` as a numpy array, or None if it is traced (cannot be checked)."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value)
    except Exception as err:  # e.g. a string or an object
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}") from err


def _fail(name, value, allowed, exc=ValueError):
    raise exc(f"{name} must be {allowed}, got {value!r}")


def real(name, value, *, positive=False, nonnegative=False, finite=True, lo=None, hi=None,
         lo_open=False, hi_open=False):
    """Check a real scalar (or array of reals, elementwise). Returns the value unchanged."""
    if isinstance(value, bool | np.bool_):
        _fail(name, value, "a real number", TypeError)
    arr = _concrete(value)
    if arr is None:
        return value
    if arr.dtype.kind not in "fiu":
        _fail(name, value, "a real number", TypeError)
    arr = arr.astype(np.float64)
    if np.any(np.isnan(arr)):
        _fail(name, value, "a number (not NaN)")
    if finite and not np.all(np.isfinite(arr)):
        _fail(name, value, "finite")
    if positive and not np.all(arr > 0):
        _fail(name, value, "> 0")
    if nonnegative and not np.all(arr >= 0):
        _fail(name, value, ">= 0")
    if lo is not None and not np.all(arr > lo if lo_open else arr >= lo):
        _fail(name, value, f"{'>' if lo_open else '>='} {lo}")
    if hi is not None and not np.all(arr < hi if hi_open else arr <= hi):
        _fail(name, value, f"{'<' if hi_open else '<='} {hi}")
    return value


def integer(name, value, *, minimum=None):
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        _fail(name, value, "an integer", TypeError)
    if minimum is not None and value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


def unit_interval(name, value, *, closed_right=False):
    """beta-like hyperparameters: in [0, 1) (or [0, 1])."""
    return real(name, value, lo=0.0, hi=1.0, hi_open=not closed_right)


def alpha(name, value):
    """Stability index of an SαS law: (0, 2]."""
    return real(name, value, lo=0.0, lo_open=True, hi=2.0)


def prng_key(name, key):
    """Accept a typed key (jax.random.key) or a raw uint32[2] key (jax.random.PRNGKey)."""
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            _fail(name, f"key array of shape {key.shape}", "a single PRNG key (shape ())")
        return key
    arr = _concrete(key)
    if arr is None:
        return key
    if arr.dtype != np.uint32 or arr.shape != (2,):
        _fail(name, key, "a PRNG key from jax.random.key(seed) or jax.random.PRNGKey(seed)",
              TypeError)
    return jax.random.wrap_key_data(key)


def shape(name, value, expected, what=""):
    got = tuple(np.shape(value))
    if got != tuple(expected):
        _fail(name, f"an array of shape {got}", f"of shape {tuple(expected)}{what}")
    return value
