"""Host-side argument checks: raise before anything is traced or compiled.

Every check names the argument, the value it got and what is allowed (STYLE.md §6).
Values that are JAX tracers (a model built inside a user's jit) are let through: they
cannot be inspected, and the engine never builds models under a trace itself.
"""

from __future__ import annotations

import dataclasses
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


def _show(value):
    """A value as the user wrote it: arrays as (nested) lists of Python numbers."""
    if isinstance(value, jax.Array | np.ndarray | np.generic) and \
            not isinstance(value, jax.core.Tracer):
        try:
            return repr(np.asarray(value).tolist())
        except Exception:  # e.g. a typed PRNG key
            return repr(value)
    return repr(value)


def _fail(name, value, allowed, exc=ValueError):
    raise exc(f"{name} must be {allowed}, got {_show(value)}")


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


def choice(name, value, allowed):
    """One of a few allowed values (strings): ValueError listing them."""
    if value not in allowed:
        _fail(name, value, "one of " + ", ".join(repr(a) for a in allowed))
    return value


def scalar(name, value):
    """A single number, not an array: TypeError naming the argument."""
    if not isinstance(value, jax.core.Tracer) and np.ndim(value) != 0:
        _fail(name, f"an array of shape {np.shape(value)}", "a single number (a scalar)",
              TypeError)
    return value


def symmetric_pd(name, value, *, semi=False):
    """A symmetric positive (semi-)definite matrix (host check, float64)."""
    arr = _concrete(value)
    if arr is None:
        return value
    real(name, value)
    m = arr.astype(np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        _fail(name, f"an array of shape {m.shape}", "a square matrix")
    scale = max(1.0, float(np.abs(m).max()))
    if not np.allclose(m, m.T, rtol=0, atol=1e-6 * scale):
        raise ValueError(f"{name} must be symmetric, got {value!r} (only a symmetric "
                         f"matrix defines a quadratic form unambiguously)")
    lam = np.linalg.eigvalsh(m).min()
    if lam < -1e-8 * scale if semi else lam <= 0:
        what = "positive semi-definite" if semi else "positive definite"
        raise ValueError(f"{name} must be {what}, got smallest eigenvalue {lam:.6g}")
    return value


# ---------------------------------------------------------------------------------------
# Construction: one coercion rule and one pytree registration for every object
# ---------------------------------------------------------------------------------------


def coerce_fields(obj):
    """Python numbers, lists and numpy arrays given to a constructor -> float arrays of
    the default dtype (traced under jit: a sweep over them compiles once). Static fields,
    booleans, strings, JAX arrays, callables and other objects are left alone. A field
    with ``metadata=dict(vector=True)`` turns a scalar into a 1-vector."""
    import jax.numpy as jnp

    for f in dataclasses.fields(obj):
        if f.metadata.get("static", False):
            continue
        v = getattr(obj, f.name)
        if isinstance(v, bool | np.bool_) or v is None:
            continue
        if isinstance(v, int | float | list | tuple | np.ndarray | np.generic):
            try:
                arr = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{f.name} must be a number or an array of numbers, got "
                                f"{v!r}") from err
            if f.metadata.get("vector", False) and arr.ndim == 0:
                arr = arr[None]
            object.__setattr__(obj, f.name, jnp.asarray(arr, dtype=jnp.result_type(float)))


def pytree_dataclass(cls):
    """Freeze ``cls`` as a dataclass and register it as a pytree: fields are children
    except those with ``metadata=dict(static=True)``. Unflattening (inside jit, vmap,
    equinox filters) rebuilds the object *without* calling ``__post_init__``, so
    construction-time coercion and validation run only on objects a user builds."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))

    def flatten_with_keys(obj):
        return ([(jax.tree_util.GetAttrKey(n), getattr(obj, n)) for n in data],
                tuple(getattr(obj, n) for n in meta))

    def flatten(obj):
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for n, v in zip(data, children, strict=True):
            object.__setattr__(obj, n, v)
        for n, v in zip(meta, aux, strict=True):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls
