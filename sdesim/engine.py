"""The escape-time engine: ``escape`` and ``simulate``.

Design, the part every model relies on:

* **Counter-based noise per path.** Path ``i``'s noise for its steps ``[bK, (b+1)K)`` is
  drawn from ``fold_in(fold_in(key, i), b)`` with a fixed page length ``K = NOISE_PAGE``.
  It is a pure function of ``(key, i, step)``: a path's result does not depend on the lane
  it ran in, the lane count, the chunking, the number of devices or ``n_paths`` (the first
  1 000 paths of a 10 000-path run are a 1 000-path run). Standard normals (and the
  page's one bridge uniform) use both 32-bit halves of each threefry hash
  (``_page_noise``); the Brownian-bridge test takes one uniform per page (``_run_page``).
* **Lanes refilled as paths exit.** ``W`` lanes step in lock-step, one page (``K`` steps)
  per loop iteration; at the end of a page every lane whose path exited or reached
  ``t_max`` records its result and takes the next path index. When the queue is empty
  and at most half the lanes (a quarter, for pools under 128 lanes) are still busy, the
  busy lanes are compacted into a pool that wide (a new compiled width, cached), so the
  cost of the slow tail shrinks with the live paths instead of staying at the full width
  (on accelerators only wide pools: ``_next_width``; the page loop is unrolled there:
  ``_page_unroll``).
* **Devices and processes.** Each local device runs its own pool on a contiguous block of
  path indices (``shard_map``, no communication inside the run); each process of a
  ``jax.distributed`` cluster runs a contiguous block of the paths and the results are
  all-gathered at the end. Since a path's noise depends only on its global index, the
  results per path are those of one device.
* **Progress** is reported between jitted chunks of pages (the host loop that also
  compacts), each grown to ~0.5 s, not by callbacks from inside the loop.
* **Traced hyperparameters.** Every numeric leaf of the model, the loss (a landscape
  pytree), the exit, θ₀, ``dt`` and ``t_max`` is a traced argument of one jitted
  function: a sweep over any of them compiles once per lane width.
* **Memory** O(W·K·d) for the pool and its noise page plus O(n_paths) for the results;
  nothing grows with ``t_max`` (benchmarks/scaling.py measures it).

Exit times are reported at the end of the step in which the exit was detected (on the
grid, or by the Brownian-bridge test inside the step), in SDE time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time as _time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks
from . import exits as _exits
from . import pytrees as _pytrees
from .model import Model
from .stats import EscapeResult

NOISE_PAGE = 64  # steps per noise page; part of the definition of the random stream
MIN_WIDTH = 16  # the pool is not compacted below this many lanes

# status codes of a path
PENDING, ESCAPED, CENSORED, DIVERGED = 0, 1, 2, 3
NONFINITE = DIVERGED  # the former name


class _Pool(NamedTuple):
    """One device's lanes and results (stacked with a leading device axis outside jit)."""

    path: jax.Array  # (W,) path index (in this block) in each lane; >= limit = idle
    page: jax.Array  # (W,) pages already done by the lane's path
    state: object  # model state, leading axis W
    next_path: jax.Array  # () next path index to hand out
    limit: jax.Array  # () number of paths in this block
    first: jax.Array  # () global index (in the key's stream) of the block's path 0
    steps: jax.Array  # (size,) steps to exit (or to t_max if censored)
    status: jax.Array  # (size,) int8 status code


def _float_dtype():
    return jnp.result_type(float)


def _arrayify(tree):
    """Python scalars inside the user's objects -> arrays, so jit traces them."""

    def conv(x):
        if isinstance(x, bool | np.bool_):
            return x
        if isinstance(x, float | np.floating):
            return jnp.asarray(x, _float_dtype())
        if isinstance(x, np.ndarray):
            return jnp.asarray(x)
        return x

    return jax.tree_util.tree_map(conv, tree)


def _is_model(model):
    from .model import Model

    return isinstance(model, Model)


def _representable(name, value, dtype, *, allow_zero=False):
    """``value`` (host float64) survives conversion to the run's float dtype."""
    info = jnp.finfo(dtype)
    v = np.asarray(value, np.float64)
    if np.any(np.abs(v) > float(info.max)):
        raise ValueError(f"{name} = {value!r} overflows {jnp.dtype(dtype).name} (largest "
                         f"finite {float(info.max):.3g}); rescale it or run with "
                         f"JAX_ENABLE_X64=1")
    nz = v[v != 0]
    if (not allow_zero or nz.size) and np.any(np.abs(nz) < float(info.tiny)):
        raise ValueError(f"{name} = {value!r} underflows {jnp.dtype(dtype).name} (smallest "
                         f"normal {float(info.tiny):.3g}); rescale it or run with "
                         f"JAX_ENABLE_X64=1")


def n_steps(t_max, dt):
    """Steps of size ``dt`` that fit in ``t_max`` (``t_max/dt`` rounded down, but a ratio
    within 1e-9 of an integer counts as that integer): every recorded time ``≤ t_max``."""
    x = float(t_max) / float(dt)
    r = round(x)
    return int(r) if abs(x - r) <= 1e-9 * max(1.0, x) else math.floor(x)


def _aval_key(tree):
    """A hashable key fixing what tracing ``tree`` sees: its structure (the string of the
    treedef names every class, ``_signature``), each array leaf's shape and dtype, each
    Python scalar's type, other leaves themselves. None if a leaf is unhashable."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    parts = []
    for x in leaves:
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            parts.append(("a", tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type",
                                                                              False))))
        elif isinstance(x, bool | int | float | complex):
            parts.append(("s", type(x)))
        else:
            try:
                hash(x)
            except TypeError:
                return None
            parts.append(("o", x))
    return str(treedef), tuple(parts)


_SHAPES: dict = {}  # (call, _aval_key((obj, args))) -> eval_shape result; see _eval_shape


def _eval_shape(call, obj, *args):
    """``jax.eval_shape(lambda *a: call(obj, *a), *args)``, remembered per ``call`` and the
    structure and shapes of ``obj`` and ``args`` (their values cannot change a shape). A
    trace costs 0.3–1.5 ms, a tenth of a 2 000-path run's wall time. Errors are not
    cached; an unhashable leaf turns the memo off."""
    key = _aval_key((obj, args))
    hit = None if key is None else _SHAPES.get((call, key))
    if hit is None:
        hit = jax.eval_shape(lambda *a: call(obj, *a), *args)
        if key is not None:
            if len(_SHAPES) >= 256:
                _SHAPES.clear()
            _SHAPES[(call, key)] = hit
    return hit


def _call(fn, *args):
    return fn(*args)


def _call_outside(exit, theta):
    return exit.outside(theta)


def check_inputs(model, loss, theta0, exit, n_paths, dt, t_max, key):
    """All input checks of ``escape``/``simulate``, on the host, before anything is traced
    or compiled. Returns ``(n_paths, theta0 as an array, exit, key)``; raises
    ValueError/TypeError naming the argument."""
    n_paths = _checks.integer("n_paths", n_paths, minimum=1)
    dtype = _float_dtype()
    _checks.scalar("dt", dt)
    _checks.scalar("t_max", t_max)
    _checks.real("dt", dt, positive=True)
    _checks.real("t_max", t_max, positive=True)
    _representable("dt", dt, dtype)
    _representable("t_max", t_max, dtype)
    if t_max < dt:
        raise ValueError(f"t_max must be >= dt, got t_max={t_max!r} < dt={dt!r}")
    key = _checks.prng_key("key", key)
    if not callable(loss):
        raise TypeError(f"loss must be a callable theta -> scalar, got {type(loss).__name__}")
    th = np.asarray(theta0)
    if th.dtype.kind not in "fiu":
        raise TypeError(f"theta0 must be a real vector, got dtype {th.dtype}")
    if th.ndim != 1 or th.shape[0] < 1:
        raise ValueError(f"theta0 must have shape (d,) with d >= 1, got shape {th.shape} "
                         f"(parameters of other shapes: pass them as a pytree, e.g. a dict "
                         f"of arrays; sdesim.pytrees)")
    if not np.all(np.isfinite(th)):
        raise ValueError(f"theta0 must be finite, got {th}")
    _representable("theta0", th, dtype, allow_zero=True)
    d = th.shape[0]
    if not _is_model(model):
        raise TypeError(f"model must be an sdesim model (a subclass of sdesim.model.Model, "
                        f"e.g. from sdesim.models), got {type(model).__name__}")
    model.check(d)
    model.check_dt(dt)
    if hasattr(loss, "check_dim"):  # a landscape of sdesim.landscapes
        loss.check_dim(d)
    theta0 = jnp.asarray(th, dtype)
    try:
        out = _eval_shape(_call, loss, theta0)
    except Exception as err:
        raise TypeError(f"loss failed on theta0 of shape ({d},): {type(err).__name__}: "
                        f"{err}") from err
    if getattr(out, "shape", None) != ():
        raise ValueError(f"loss must return a scalar for theta of shape ({d},), got shape "
                         f"{getattr(out, 'shape', type(out))}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"loss must return a real floating-point scalar (it is "
                        f"differentiated), got dtype {out.dtype}")
    _check_noise_inputs(model, loss, theta0)
    _check_noise_scale(model, dt, dtype)
    if exit is not None:
        exit = _exits.as_exit(exit)
        edim = exit.dim
        if edim is not None and edim != d:
            raise ValueError(f"exit has dimension {edim} but theta0 has dimension {d}")
        o = _eval_shape(_call_outside, exit, theta0)
        if o.shape != ():
            raise ValueError(f"exit must return one bool per point, got shape {o.shape}")
        if bool(exit.outside(theta0)):
            raise ValueError(f"theta0 = {th} is already outside the exit region: every path "
                             f"would 'escape' at t = dt; start inside the basin")
    return n_paths, theta0, exit, key


def _check_noise_inputs(model, loss, theta0):
    """A minibatch noise needs per-sample gradients that fit θ, or a population form."""
    from .noise import Minibatch, per_sample_of

    for nm in model.covariances():
        if not isinstance(nm, Minibatch):
            continue
        if nm.data is None:
            if not hasattr(loss, "grad_cov"):
                raise TypeError(f"noise.minibatch(None, ...) uses the landscape's population "
                                f"covariance loss.grad_cov, which {type(loss).__name__} does "
                                f"not define: pass data (and per_sample)")
            continue
        fn = per_sample_of(nm.per_sample, loss)
        if nm.per_sample is None and tuple(nm.data.shape[1:]) != tuple(theta0.shape):
            raise ValueError(f"data rows have shape {tuple(nm.data.shape[1:])} but the "
                             f"landscape's per_sample(theta, x) takes x of theta's shape "
                             f"{tuple(theta0.shape)}: pass data with {theta0.shape[0]} "
                             f"features (or your own per_sample)")
        try:
            out = jax.eval_shape(fn, theta0, nm.data[0])
        except Exception as err:
            raise ValueError(f"per_sample(theta, x) failed for theta0 of shape "
                             f"{theta0.shape} and one data row of shape "
                             f"{tuple(nm.data.shape[1:])}: {type(err).__name__}: {err}") from err
        if out.shape != ():
            raise ValueError(f"per_sample(theta, x) must return a scalar, got shape "
                             f"{out.shape} for data rows of shape {tuple(nm.data.shape[1:])} "
                             f"and theta0 of shape {theta0.shape}")


def _check_noise_scale(model, dt, dtype):
    """The α-stable step scale ``dt^{1/α}`` and ``ε = lr^{(α−1)/α}`` are representable."""
    if model.noise_kind != "levy" or isinstance(model.alpha, jax.core.Tracer):
        return
    a = float(np.asarray(model.alpha))
    hp = float(dt) ** (1.0 / a)
    info = jnp.finfo(dtype)
    name = jnp.dtype(dtype).name
    if hp < float(info.tiny) or not np.isfinite(hp) or hp > float(info.max):
        raise ValueError(f"dt**(1/alpha) = {float(dt)!r}**(1/{a:g}) = {hp:.3g} is not "
                         f"representable in {name}: no path would move. Use a larger dt or "
                         f"alpha, or JAX_ENABLE_X64=1")
    if model.lr is not None and not isinstance(model.lr, jax.core.Tracer):
        eps = float(np.asarray(model.lr)) ** ((a - 1) / a)
        if not (float(info.tiny) <= eps <= float(info.max)) or eps * hp < float(info.tiny):
            raise ValueError(f"the noise scale eps*dt**(1/alpha) = lr**((alpha-1)/alpha) * "
                             f"dt**(1/alpha) = {eps:.3g} * {hp:.3g} is not representable in "
                             f"{name}; use JAX_ENABLE_X64=1 or other lr/dt/alpha")


class StabilityWarning(RuntimeWarning):
    """The explicit step is unstable at the start's curvature (``dt`` too large)."""


class NoiseWarning(RuntimeWarning):
    """The noise model vanishes on the way out: the continuous SDE may never escape."""


class DivergenceWarning(RuntimeWarning):
    """Some paths reached a non-finite state (they are not counted as escapes)."""


def _top_curvature(loss, theta0):
    """Largest Hessian eigenvalue of ``loss`` at ``theta0`` (dense for d <= 512, else 60
    power iterations on Hessian-vector products), as a Python float."""
    return float(_top_curvature_jit(loss, jnp.asarray(theta0)))


@eqx.filter_jit
def _top_curvature_jit(loss, theta0):
    """Compiled once per loss (a landscape's parameters are traced): op by op, the dense
    Hessian of a 1-D loss took ~15 ms per ``escape`` call, a quarter of a 2 000-path run
    (benchmarks/throughput.py)."""
    d = theta0.shape[0]
    if d <= 512:
        return jnp.max(jnp.linalg.eigvalsh(jax.hessian(loss)(theta0)))
    hvp = lambda v: jax.jvp(jax.grad(loss), (theta0,), (v,))[1]

    def body(_, v):
        w = hvp(v)
        return w / (jnp.linalg.norm(w) + jnp.finfo(w.dtype).tiny)

    v = jax.lax.fori_loop(0, 60, body, jnp.ones_like(theta0) / jnp.sqrt(d).astype(theta0.dtype))
    return v @ hvp(v)


def _spectral_radius(model, lam, h):
    return float(np.max(np.abs(np.linalg.eigvals(np.atleast_2d(model.linearization(lam,
                                                                                     h))))))


def stability(model, loss, theta0, dt):
    """``(stable, lam_max, dt_max)``: whether the model's explicit step with ``dt`` is stable
    on the largest curvature ``lam_max`` of the loss at ``theta0`` (the step's linear map,
    ``model.linearization``, has spectral radius <= 1), and the largest stable step
    (None when the model states no linearization, e.g. a discrete algorithm)."""
    if model.linearization(1.0, float(dt)) is None or any(
            isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(model)):
        return True, None, None
    lam = _top_curvature(loss, jnp.asarray(theta0))
    if not np.isfinite(lam) or lam <= 0:
        return True, lam, None
    ok = lambda h: _spectral_radius(model, lam, h) <= 1 + 1e-9
    if ok(float(dt)):
        return True, lam, None
    lo, hi = 0.0, float(dt)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return False, lam, lo


@eqx.filter_jit
def _along_ray(noise, loss, theta0, e, ts):
    """Curvature ``eᵀHe`` and noise variance ``|Bᵀe|²`` at ``theta0 + t·e``."""
    def at(t):
        th = theta0 + t * e
        curv = e @ jax.jvp(jax.grad(loss), (th,), (e,))[1]
        b = noise.factor(th, loss)
        be = b * e if b.ndim == 1 else b.T @ e
        return curv, be @ be

    return jax.vmap(at)(ts)


def noise_vanishes(model, loss, theta0, exit, n=64):
    """Where the Hessian-shaped noise (no floor) of an overdamped Gaussian model (``SGD``)
    dies on the straight way out: the point
    ``θ₀ + t·e`` (``e`` towards the exit) at which the curvature along ``e`` has changed
    sign and the noise variance along ``e`` fell below 1% of its value at ``θ₀``, or None.
    There ``|H|`` is (nearly) singular along ``e``: in 1-D the continuous SDE cannot cross
    that point at all (an inflection point between the minimum and the saddle)."""
    from . import noise as _noise
    from .rare import _towards_exit

    noise = getattr(model, "noise", None)
    th0 = np.asarray(theta0, float)
    if not isinstance(noise, _noise.Hessian) or float(noise.floor) > 0 or th0.size > 1000:
        return None
    if not (getattr(model, "diffusive_position", False) and model.noise_kind == "gaussian"):
        return None  # jumps (Lévy) and velocities (phase space) carry paths across
    e = _towards_exit(exit, th0)
    if e is None or not np.all(np.isfinite(e)) or not np.any(e):
        return None
    e = e / np.linalg.norm(e)
    dtype = jnp.asarray(theta0).dtype
    th, ej = jnp.asarray(th0, dtype), jnp.asarray(e, dtype)
    t_out = max(1.0, float(np.linalg.norm(th0)))
    for _ in range(30):  # the distance to the exit along e
        if bool(exit.outside(th + t_out * ej)):
            break
        t_out *= 2
    else:
        return None
    lo, hi, var0 = 0.0, t_out, None
    for _ in range(4):  # the first sign change of the curvature, bracketed 64× per round
        ts = jnp.linspace(lo, hi, n + 1, dtype=dtype)
        curv, var = (np.asarray(a, float) for a in _along_ray(noise, loss, th, ej, ts))
        out = np.asarray(jax.vmap(lambda t: exit.outside(th + t * ej))(ts))
        ok = ~out & np.isfinite(var) & np.isfinite(curv)
        if var0 is None:
            if not ok[0] or not curv[0] > 0 or not var[0] > 0:
                return None
            var0 = var[0]
        flip = ok & (curv <= 0)
        if not np.any(flip) or np.argmax(flip) == 0:
            return None
        i = int(np.argmax(flip))
        if var[i] < 1e-2 * var0 or var[i - 1] < 1e-2 * var0:
            return th0 + float(ts[i]) * e
        lo, hi = float(ts[i - 1]), float(ts[i])
    return None


def warn_if_noise_vanishes(model, loss, theta0, exit):
    """Warn (``NoiseWarning``) when ``noise_vanishes`` finds such a point."""
    import warnings

    at = noise_vanishes(model, loss, theta0, exit)
    if at is not None:
        warnings.warn(f"the Hessian-shaped noise of {type(model).__name__} vanishes on the "
                      f"way out near theta = {np.round(at, 4).tolist()} (|H| is singular "
                      f"there, e.g. an inflection point between the minimum and the "
                      f"saddle): the continuous SDE may never cross it and paths may not "
                      f"escape at all; give the noise a floor, noise.hessian(batch_size, "
                      f"floor=...) (in Hessian units, e.g. a tenth of the curvature at the "
                      f"minimum)", NoiseWarning, stacklevel=3)


def warn_if_unstable(model, loss, theta0, dt):
    """Warn (``StabilityWarning``) when ``stability`` finds the step unstable."""
    import warnings

    stable, lam, dt_max = stability(model, loss, theta0, dt)
    if not stable:
        warnings.warn(f"dt = {float(dt):g} makes the explicit step of {type(model).__name__} "
                      f"unstable at theta0: the loss's largest curvature there is "
                      f"{lam:.4g} and the largest stable step is dt = {dt_max:.4g}. Paths "
                      f"will oscillate with growing amplitude and leave by numerical "
                      f"instability, not by escape: use dt well below {dt_max:.4g}",
                      StabilityWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------
# The jitted core
# ---------------------------------------------------------------------------------------


def _page_noise(model, key, path, page, d, dtype, bridge):
    """Noise for one path's page: (K, *noise_shape) model noise and one bridge uniform.

    Standard-normal models with a threefry key (the default) take their normals and the
    bridge uniform from the *words* of one threefry2x32 stream: word ``j`` of the page is
    half ``j % 2`` of the hash of counter ``j // 2`` (float64: one 64-bit word per hash).
    JAX's own samplers spend one 20-round hash per 32-bit number (``bits1 ^ bits2``); this
    uses both halves. Normals come first, so they do not depend on ``bridge``; the bridge
    takes one uniform per page (``_run_page``), one extra word per 64 steps."""
    k = jax.random.fold_in(jax.random.fold_in(key, path), page)
    shape = (NOISE_PAGE, *model.noise_shape(d))
    if _engine_normals(model, key):
        n_z = math.prod(shape)
        w = _words(k, n_z + (1 if bridge else 0), dtype)
        z = _normal_from_bits(w[:n_z], dtype).reshape(shape)
        return z, (_unit_from_bits(w[n_z], dtype) if bridge else None)
    kz, ku = jax.random.split(k)
    z = model.sample_noise(kz, shape, dtype)
    u = jax.random.uniform(ku, (), dtype) if bridge else None
    return z, u


def _engine_normals(model, key):
    """Does the engine draw this model's noise itself (standard normal, threefry key)?"""
    return model.noise_kind == "gaussian" and str(jax.random.key_impl(key)) == "threefry2x32"


def _words(k, n, dtype):
    """``n`` random words (uint32 for float32, uint64 for float64) from key ``k``."""
    w = _lane_words(jax.random.key_data(k)[None], n, dtype)
    return w[:, 0]


def _rotl(x, r):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), bit for bit ``jax.extend.random.threefry2x32_p``,
    written unrolled in jnp: XLA fuses it with the normals' inversion into one loop, where
    the primitive's CPU lowering is a rolled 5-iteration while loop whose intermediate
    arrays go through memory (benchmarks/throughput.py --noise compares both)."""
    rot = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in rot[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ _rotl(x2, r)
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _lane_words(key_data, n, dtype):
    """``(n, W)`` random words, column ``i`` from the raw threefry key ``key_data[i]``
    ((W, 2) uint32): word ``j`` is half ``j % 2`` of the hash of counter ``j // 2``
    (float64: one 64-bit word per hash). Lanes are the minor axis, so a page's noise
    comes out in the (step, lane) order the page loop scans over, without a transpose."""
    k1, k2 = key_data[:, 0][None], key_data[:, 1][None]
    wide = jnp.dtype(dtype).itemsize == 8
    n_hash = n if wide else -(-n // 2)
    count = jnp.broadcast_to(jnp.arange(n_hash, dtype=jnp.uint32)[:, None],
                             (n_hash, key_data.shape[0]))
    b1, b2 = _threefry2x32(k1, k2, jnp.zeros_like(count), count)
    if wide:
        return (b1.astype(jnp.uint64) << 32) | b2.astype(jnp.uint64)
    return jnp.stack([b1, b2], axis=1).reshape(2 * n_hash, -1)[:n]


def _fold_in(keys, data):
    """``jax.random.fold_in`` lane by lane (``keys`` one key or ``(W,)`` keys, ``data``
    ``(W,)`` integers), bit for bit. Threefry keys take the unrolled ``_threefry2x32``:
    the primitive's CPU lowering is a rolled while loop of ~40 small kernels, paid twice
    per page (path key, page key), which on a pool of 31 lanes cost more than the page's
    64 steps. ``fold_in(k, x)`` is the hash of the counter pair ``(0, uint32(x))`` under
    ``k``."""
    data = jnp.asarray(data)
    if str(jax.random.key_impl(keys)) != "threefry2x32":
        return jax.vmap(jax.random.fold_in, (None if keys.ndim == 0 else 0, 0))(keys, data)
    kd = jax.random.key_data(keys)
    x = data.astype(jnp.uint32)
    b1, b2 = _threefry2x32(kd[..., 0], kd[..., 1], jnp.zeros_like(x), x)
    # the barrier keeps XLA from fusing this hash into every use of the key (it would
    # recompute it per random word of the page)
    out = jax.lax.optimization_barrier(jnp.stack([b1, b2], axis=-1))
    return jax.random.wrap_key_data(out, impl="threefry2x32")


def _lanes_noise(model, keys, pages, d, dtype, bridge):
    """The page noise of ``W`` lanes at once: lane ``i`` draws page ``pages[i]`` of the
    path whose key is ``keys[i]`` (``fold_in(key, path)``). Returns ``z`` of shape
    ``(K, *noise_shape, W)``, lanes last (the page loop moves them to the front one step
    at a time, inside the step's fused loop: a transpose of the whole page cost two extra
    passes over it), and the bridge uniforms ``(W,)`` (None without the bridge); the same
    numbers as ``_page_noise`` lane by lane."""
    k = _fold_in(keys, pages)
    shape = (NOISE_PAGE, *model.noise_shape(d))
    if not _engine_normals(model, k):
        kz, ku = jax.vmap(jax.random.split, out_axes=1)(k)
        z = jax.vmap(lambda kk: model.sample_noise(kk, shape, dtype))(kz)
        u = jax.vmap(lambda kk: jax.random.uniform(kk, (), dtype))(ku) if bridge else None
        return jnp.moveaxis(z, 0, -1), u
    n_z = math.prod(shape)
    w = _lane_words(jax.random.key_data(k), n_z + (1 if bridge else 0), dtype)
    z = _normal_from_bits(w[:n_z], dtype).reshape(*shape, -1)
    return z, (_unit_from_bits(w[n_z], dtype) if bridge else None)


def _unit_from_bits(w, dtype):
    """Uniform on [0, 1) from the top mantissa bits (as jax.random.uniform does)."""
    info = jnp.finfo(dtype)
    nbits = 8 * jnp.dtype(dtype).itemsize
    one = jnp.asarray(1.0, dtype).view(w.dtype)
    f = jax.lax.bitcast_convert_type((w >> (nbits - info.nmant)) | one, dtype)
    return f - jnp.asarray(1.0, dtype)


def _normal_from_bits(w, dtype):
    """Standard normal by inversion, ``sqrt 2 · erfinv(u)``, u uniform on (-1, 1) (as
    jax.random.normal does)."""
    u = _unit_from_bits(w, dtype) * 2 - 1
    u = jnp.maximum(u, jnp.nextafter(jnp.asarray(-1, dtype), jnp.asarray(1, dtype)))
    return jnp.asarray(math.sqrt(2), dtype) * jax.lax.erf_inv(u)


def step_and_test(model, loss, exit, state, surv, uj, t, dt, z, bridge, check=None):
    """One step of one lane and its exit test (the engine's and the splitting kernel's).

    Returns ``(new state, new position, surv, gone, bad)``. Outcomes: a point the exit
    reports outside is an escape, even an infinite one (an α-stable jump that overflowed
    to ±inf left a box or ball); a NaN, or an infinite point the exit cannot place
    outside, is a divergence (``bad``), never an escape. With ``bridge`` the Brownian
    bridge's survival ``surv`` is multiplied by ``1 − cross_prob`` and the step is an exit
    once it falls below the page's uniform ``uj`` (see ``_run_page``). ``check``: a
    traced bool shared by all lanes (not batched): the exit is evaluated only where it is
    true (``lax.cond``, so a skipped test costs nothing); None = every step."""
    new, factor = model.step(state, t, dt, loss, z)
    x, y = model.position(state), model.position(new)
    if check is None:
        gone = exit.outside(y)
    else:
        gone = jax.lax.cond(check, exit.outside, lambda _: jnp.asarray(False), y)
    bad = jnp.any(jnp.isnan(y)) | (jnp.any(jnp.isinf(y)) & ~gone)
    if bridge and factor is not None:
        surv = surv * (1 - exit.cross_prob(x, y, factor, dt))
        gone = gone | (surv < uj)
    return new, y, surv, gone, bad


def _run_page(model, loss, exit, key, pool, dt, d, bridge, unroll, every=1):
    """Advance every lane by one page of K steps. Returns (state, mark): ``mark`` is the
    offset of the first exit in the page (``-1 - offset`` if non-finite), else K.
    Lane path ``p`` is global path ``pool.first + p`` of the random stream.

    Brownian-bridge exits: a step that stays inside crossed the boundary with probability
    ``p_j`` (``exit.cross_prob``), independently given the grid path. Instead of a uniform
    per step (exit at the first ``j`` with ``u_j < p_j``) each lane draws one uniform ``U``
    per page and exits at the first ``j`` with ``S_j = prod_{i<=j} (1 - p_i) < U``: the
    same law (``P(no exit by j) = S_j`` either way, and a fresh ``U`` per page is exact
    because the survival factors of later pages start again from 1 given survival), at one
    random word per page instead of one per step.

    ``every`` > 1 (a divisor of K): the exit is tested only after steps ``k·every`` of the
    path (pages start at multiples of K, so the same offsets in every lane); the bridge
    is then off (the caller's business)."""
    dtype = dt.dtype
    width = pool.path.shape[0]
    use_bridge = bridge and hasattr(exit, "cross_prob")
    keys = _fold_in(key, pool.first + pool.path)
    z, u = _lanes_noise(model, keys, pool.page, d, dtype, use_bridge)  # z: (K, ..., W)
    u = u if use_bridge else jnp.zeros((width,), dtype)
    step0 = pool.page * NOISE_PAGE
    ax = _lane_axis(pool.state)

    def body(carry, xs):
        state, surv, mark = carry
        j, zj = xs
        t = (step0 + j).astype(dtype) * dt
        check = None if every == 1 else (j + 1) % every == 0

        def lane_step(state, surv, uj, t, zj):
            new, _, surv, gone, bad = step_and_test(model, loss, exit, state, surv, uj, t,
                                                    dt, zj, use_bridge, check)
            return new, surv, gone | bad, bad

        new, surv_new, out, bad = jax.vmap(lane_step, (ax, 0, 0, 0, -1), (ax, 0, 0, 0))(
            state, surv, u, t, zj)
        # mark: NOISE_PAGE until the first exit, then its offset j (-1 - j if the state
        # was non-finite). Exits past n_max are dropped in _finish_page. Lanes that already
        # exited keep stepping (their state is discarded at the page end); freezing them
        # would cost a select per state leaf per step.
        if use_bridge:
            # one carry for the survival and the first exit (XLA CPU runs each carried
            # array's update as its own kernel, ~0.1 µs each per step): ``surv`` >= 0
            # while the lane is in, then ``_GONE - j`` (``_BAD - j`` if non-finite).
            code = jnp.where(bad, _BAD - j, _GONE - j).astype(dtype)
            return (new, jnp.where(surv < 0, surv, jnp.where(out, code, surv_new)),
                    mark), None
        hit = (mark == NOISE_PAGE) & out
        return (new, surv, jnp.where(hit, jnp.where(bad, -1 - j, j), mark)), None

    state = pool.state
    if ax == -1:
        state = jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, -1), state)
    init = (state, jnp.ones((width,), dtype), jnp.full((width,), NOISE_PAGE, jnp.int32))
    (state, surv, mark), _ = jax.lax.scan(
        body, init, (jnp.arange(NOISE_PAGE, dtype=jnp.int32), z), unroll=unroll)
    if ax == -1:
        state = jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, -1, 0), state)
    if use_bridge:
        s = surv.astype(jnp.int32)  # exact: the codes are small integers
        mark = jnp.where(surv < 0, jnp.where(s > _BAD, _GONE - s, s - _BAD - 1), NOISE_PAGE)
    return state, mark


_GONE, _BAD = -1, -1 - 2 * NOISE_PAGE  # the survival carry's exit codes (see _run_page)


def _lane_axis(state):
    """Where a page keeps the lanes in each state leaf: last (-1, the minor axis, as in the
    noise) when the largest leaf holds 2 to 20 numbers per lane, else first (0). The
    arithmetic of a step then runs along the lanes instead of along a short d; results
    are bit for bit the same. ``python benchmarks/throughput.py --layout 1 2 6 10 20 24 50
    --repeats 3`` (SGD with Hessian noise on d-dim Styblinski–Tang, box exit with bridge,
    2 000 paths, lanes-first ÷ lanes-last wall time on this 2-core CPU; each setting in its
    own block, so noisier than an interleaved comparison): 1.10, 1.28, 1.19, 1.28, 1.02,
    1.21, 0.92. The 2–20 rule came from timing the two engine versions alternately in one
    process (ad hoc, not kept): d = 2–20 1.05–1.6× faster lanes-last (10-D 1.6×, also for
    Momentum); the 1-D double well, d = 24, 32, 50, 200 and a 2 410-parameter network 3–13%
    slower. The two disagree at d = 1 and 24; the rule is left as it is."""
    per_lane = max((math.prod(x.shape[1:]) for x in jax.tree_util.tree_leaves(state)),
                   default=1)
    return -1 if 2 <= per_lane <= 20 else 0


def _finish_page(pool, state, mark, state0, n_max):
    """Record finished paths and refill their lanes with the next path indices."""
    step0 = pool.page * NOISE_PAGE
    active = pool.path < pool.limit
    nonfinite = mark < 0
    done_at = jnp.where(nonfinite, -1 - mark, mark)
    exited = (done_at < NOISE_PAGE) & (step0 + done_at < n_max)
    censored = ~exited & (step0 + NOISE_PAGE >= n_max)
    fin = active & (exited | censored)
    idx = jnp.where(fin, pool.path, pool.steps.shape[0])
    steps = pool.steps.at[idx].set(jnp.where(exited, step0 + done_at + 1, n_max), mode="drop")
    code = jnp.where(exited, jnp.where(nonfinite, DIVERGED, ESCAPED), CENSORED)
    status = pool.status.at[idx].set(code.astype(jnp.int8), mode="drop")
    rank = jnp.cumsum(fin, dtype=jnp.int32) - 1
    path = jnp.where(fin, jnp.minimum(pool.next_path + rank, pool.limit), pool.path)
    next_path = jnp.minimum(pool.next_path + jnp.sum(fin, dtype=jnp.int32), pool.limit)
    page = jnp.where(fin, 0, pool.page + 1)
    state = jax.tree_util.tree_map(
        lambda s, s0: jnp.where(fin.reshape((-1,) + (1,) * (s.ndim - 1)), s0, s), state, state0)
    return pool._replace(path=path, page=page, state=state, next_path=next_path, steps=steps,
                         status=status)


def _signature(tree):
    """Static cache key naming every node class of ``tree``. JAX 0.10 compares the
    treedefs of two registered dataclasses with the same layout as *equal* even when
    their classes differ (Adam vs Adai), so a jit cache keyed on the treedef alone would
    run one model's program for the other; the string of the treedef names the classes."""
    return str(jax.tree_util.tree_structure(tree))


def _busy(pool):
    return jnp.sum(pool.path < pool.limit, dtype=jnp.int32)


def _advance_one(params, pool, max_pages, d, bridge, shrink_at, unroll, every=1):
    """One device's pool: run pages until its paths are done, ``max_pages`` pages ran, or
    (queue empty and at most ``shrink_at`` lanes busy). Returns the pool and
    ``[pages run, busy lanes, escaped so far]``."""
    model, loss, exit, theta0, dt, n_max, key = params
    width = pool.path.shape[0]
    state0 = jax.vmap(lambda _: model.init(theta0))(jnp.arange(width))

    def cond(c):
        pool, n = c
        busy = _busy(pool)
        drained = (pool.next_path >= pool.limit) & (busy <= shrink_at)
        return (busy > 0) & (n < max_pages) & ~drained

    def body(c):
        pool, n = c
        state, mark = _run_page(model, loss, exit, key, pool, dt, d, bridge, unroll, every)
        return _finish_page(pool, state, mark, state0, n_max), n + 1

    pool, n = jax.lax.while_loop(cond, body, (pool, jnp.asarray(0, jnp.int32)))
    counts = jnp.stack([n, _busy(pool), jnp.sum(pool.status == ESCAPED, dtype=jnp.int32)])
    return pool, counts


def _compact_one(pool, new_width):
    """Move the busy lanes to the front and keep ``new_width`` lanes."""
    order = jnp.argsort(pool.path >= pool.limit, stable=True)[:new_width]
    take = lambda x: x[order]
    return pool._replace(path=take(pool.path), page=take(pool.page),
                         state=jax.tree_util.tree_map(take, pool.state))


_AXIS = "paths"


def _per_device(fn, mesh, replicated, pool):
    """``fn(replicated, pool)`` on every device of ``mesh`` at once (shard_map, no
    communication): ``pool`` leaves carry a leading device axis, each device runs its own
    pool; ``replicated`` (a pytree whose array leaves are the same on every device) is
    broadcast. Outputs get the device axis back."""
    leaves, treedef = jax.tree_util.tree_flatten(replicated)
    is_arr = [isinstance(x, jax.Array) for x in leaves]
    dyn = [x for x, a in zip(leaves, is_arr, strict=True) if a]

    def local(dyn, pool):
        pool = jax.tree_util.tree_map(lambda x: x[0], pool)
        it = iter(dyn)
        rep = treedef.unflatten([next(it) if a else x for x, a in zip(leaves, is_arr, strict=True)])
        out = fn(rep, pool)
        return jax.tree_util.tree_map(lambda x: x[None], out)

    spec = jax.sharding.PartitionSpec
    return jax.shard_map(local, mesh=mesh, in_specs=(spec(), spec(_AXIS)),
                         out_specs=spec(_AXIS), check_vma=False)(dyn, pool)


@eqx.filter_jit(donate="all-except-first")
def _advance(params, pool, max_pages, *, mesh, d, bridge, shrink_at, unroll, signature,
             every=1):
    """All devices' pools advanced at once. One compiled program per (width, devices,
    static settings); ``signature`` (unused in the body) keeps models apart. The pool is
    donated: its result arrays are updated in place, not copied."""
    return _per_device(lambda r, p: _advance_one(r[0], p, r[1], d, bridge, shrink_at, unroll,
                                                 every),
                       mesh, (params, max_pages), pool)


@eqx.filter_jit(donate="all")
def _compact(pool, *, mesh, new_width):
    return _per_device(lambda _, p: _compact_one(p, new_width), mesh, None, pool)


def _initial_pool(state, limits, firsts, size, width):
    """Stacked pools, one per device, as host (NumPy) arrays: device ``j`` owns paths
    ``firsts[j] + [0, limits[j])`` of the stream; ``size`` = max(limits) = length of each
    device's result arrays; ``state`` is one lane's initial state (``model.init(θ₀)``), the
    same in every lane. Built on the host and sent in one ``device_put``: building it
    with jnp cost 1.3 ms a run (eager dispatches)."""
    n_dev = len(limits)
    lane = np.arange(width, dtype=np.int32)
    path = np.stack([np.minimum(lane, lim) for lim in limits]).astype(np.int32)
    state = jax.tree_util.tree_map(
        lambda s: np.broadcast_to(np.asarray(s), (n_dev, width, *np.shape(s))), state)
    return _Pool(path, np.zeros((n_dev, width), np.int32), state,
                 np.minimum(width, limits).astype(np.int32), np.asarray(limits, np.int32),
                 np.asarray(firsts, np.int32), np.zeros((n_dev, size), np.int32),
                 np.zeros((n_dev, size), np.int8))


def _memory_budget(platform):
    """Bytes a pool's per-page arrays may take: an eighth of the device's memory
    (``memory_stats()['bytes_limit']`` on accelerators) or of the machine's RAM (CPU)."""
    try:
        stats = jax.local_devices(backend=platform)[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) // 8
    except Exception:  # no stats on this backend
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def default_lanes(n_paths, d=1, platform=None, noise_dim=None, itemsize=4, state=None):
    """Pool width (per device). ``n_paths/4`` (the queue phase then covers most of the
    work; a wider pool idles in the tail), capped on CPU at ``8192/d`` lanes but at least
    512 (below ~500 lanes the per-step loop overhead dominates; from a few thousand
    lanes XLA spreads a step over the CPU cores: 1.5× on 2 cores at 8192 lanes vs 512,
    benchmarks/scaling.py; the cap keeps the noise page, lanes × 64 × d numbers, near
    2 MB). Accelerators want far more lanes in flight: up to 65 536.

    Memory bounds it too, for large ``d`` (a network's parameters): a lane holds its page
    of noise, ``64 × noise_dim`` numbers (``noise_dim`` = the normals per step, ``d`` by
    default), about twice over while it is drawn, plus four copies of its state
    (``state`` numbers: ``d`` by default; an optimizer's moments count: 3d for Adam); the
    width is cut so that this stays within ``_memory_budget`` (an eighth of the memory),
    down to 1 lane (d = 10⁵ on this 24 GiB machine: 59 lanes, ~3 GiB). Measured
    (``benchmarks/network_throughput.py``): the compiled program of Adam on an MLP takes
    45–60 bytes per lane and parameter from d = 2.4·10³ to 10⁵ (4 copies of the 3d-number
    state: 48), linear in d."""
    platform = platform or jax.default_backend()
    cap = max(512, 8192 // max(int(d), 1)) if platform == "cpu" else 1 << 16
    width = int(min(n_paths, max(MIN_WIDTH, min(cap, n_paths // 4))))
    per_lane = itemsize * (2 * NOISE_PAGE * int(noise_dim or d) + 4 * int(state or d))
    return max(1, min(width, _memory_budget(platform) // per_lane))


def _page_unroll(platform):
    """Steps per loop iteration inside a page (``lax.scan(unroll=)``; results unchanged).
    CPU: 1 (XLA CPU runs unrolled steps slower: 1-D double well 9.3, 8.3, 5.7, 4.9 × 10⁷
    path-steps/s at 1, 2, 4, 8; 10-D Styblinski–Tang 4.6, 4.6, 2.7, 1.6 × 10⁶).
    Accelerators: 8 (a step of a pool of a few thousand lanes is launch-bound there: on an
    H100, 3.9× (1-D) and 5.1× (10-D) the path-steps/s of 1). Both measured at 2 000 paths
    by ``python benchmarks/throughput.py --unroll 1 2 4 8``."""
    return 1 if platform == "cpu" else 8


def _next_width(width, d=1, platform="cpu"):
    """Width after compaction, or 0 for none: a quarter of wide pools (> 512 lanes: few
    compilations), half of mid-size ones (the tail then keeps ~70% of the lanes busy
    instead of ~55%: 9% faster on the 1-D benchmark), a quarter of narrow ones (each width
    is one more compilation, and narrow pools are dominated by the per-step loop overhead
    anyway). On accelerators a step costs about the same whatever the width up to ~10⁵
    numbers (H100, 1-D, figures/scaling_gpu.json: steps/s ÷ utilization ÷ lanes gives
    7.9 µs per executed step at 250 lanes, 7.8 µs at 25 000), so pools are compacted
    only while the new width holds at least 2¹⁷ numbers: fewer compilations, no slower."""
    new = width // 2 if 128 <= width <= 512 else width // 4
    if platform != "cpu" and new * max(int(d), 1) < 1 << 17:
        return 0
    return new if new >= MIN_WIDTH else 0


def _local_devices(devices):
    """``devices`` argument -> list of local devices to spread the paths over."""
    local = jax.local_devices()
    if devices is None:
        return local
    if isinstance(devices, int | np.integer) and not isinstance(devices, bool):
        k = _checks.integer("devices", devices, minimum=1)
        if k > len(local):
            raise ValueError(f"devices={k} but only {len(local)} local devices are visible")
        return local[:k]
    try:
        devs = list(devices)
    except TypeError:
        devs = None
    if not devs or not all(isinstance(x, jax.Device) for x in devs):
        raise TypeError(f"devices must be None, a count >= 1 or a list of jax devices, got "
                        f"{devices!r}")
    return devs


@dataclasses.dataclass
class RunInfo:
    """Bookkeeping of one ``escape`` call (for benchmarks and progress)."""

    wall_time: float = 0.0
    executed_steps: int = 0  # lane-steps computed, busy or not (this process)
    widths: list = dataclasses.field(default_factory=list)
    devices: int = 1  # local devices used
    processes: int = 1  # JAX processes that shared the paths
    chunks: int = 0  # host round trips (one per jitted call)
    check_every: int = 1  # the exit was tested every this many steps (time resolution)


def escape(model: Model, loss: Callable, theta0: ArrayLike, exit: object, *, n_paths: int,
           dt: float, t_max: float, key: jax.Array, lanes: int | None = None,
           bridge: bool = True, progress: bool | Callable | None = None, first_path: int = 0,
           devices: int | list | None = None, distributed: bool | None = None,
           check_every: int = 1) -> EscapeResult:
    """Simulate ``n_paths`` paths from ``theta0`` until they leave the region ``exit``.

    Args:
      model: an SDE from ``sdesim.models``.
      loss: ``θ (d,) -> scalar`` JAX function, or a landscape from ``sdesim.landscapes``
        (a pytree: its parameters are traced, so sweeping them does not recompile).
      theta0: start, shape ``(d,)``; phase-space models start with zero velocity.
      exit: an exit from ``sdesim.exits`` or a callable ``θ -> bool`` (True = exited).
      n_paths: number of independent paths.
      dt: step size in SDE time; t_max: horizon (paths not out by then are censored).
      key: a JAX PRNG key. Path ``i`` uses only ``fold_in(key, i)``-derived noise.
      lanes: pool width per device (default ``default_lanes``); does not change results.
      bridge: Brownian-bridge exit correction for Gaussian noise with half-space/box exits
        (F28). Ignored where it does not apply.
      progress: ``True``/``False``: show a tqdm bar (paths done, escaped so far, time
        left) or not; ``None`` (default): a bar once the run has taken 3 s, if stderr is
        a terminal or this is a notebook (none in logs, pipes, batch jobs); a callable
        ``progress(done, escaped, total)``: called instead of a bar. Updated between the
        jitted chunks of the run (about every 0.5 s); results do not depend on it. In a
        multi-process run each process reports its own block of paths.
      first_path: global index of this run's first path: the run simulates paths
        ``first_path … first_path + n_paths − 1`` of the stream of ``key`` (so blocks of
        paths run separately — resumed runs, several hosts — equal one run of them all).
      devices: local devices to spread the paths over: ``None`` (default) = all of
        ``jax.local_devices()``, an int = the first that many, or a list of devices.
        ``devices=1`` turns it off. Each device runs its own pool on a contiguous block of
        path indices; results do not depend on it.
      distributed: in a multi-process JAX cluster (``jax.distributed.initialize``),
        ``None``/``True`` splits the paths into one contiguous block per process and
        gathers every block to every process (all processes must call ``escape`` with the
        same arguments); ``False``: this process runs all the paths by itself.
      check_every: test the exit only after every ``check_every``-th step (1, 2, 4, …,
        64: a divisor of the 64-step page), for an expensive exit such as a network's
        loss on an evaluation set; exit times are then multiples of ``check_every·dt``
        (the time resolution, ``res.info.check_every``) and the Brownian-bridge test is
        off. Divergence is still checked every step.

    Returns:
      ``EscapeResult`` with ``times`` (SDE time, ``inf`` if censored), ``escaped``,
      ``rate()``, ``rate_ci()``, ``mean_time()``, ``cv()``, ``survival()``,
      ``iterations`` (``times / lr`` where the model has a learning rate) and ``info``.
    """
    model, loss, theta0, exit, _ = _pytrees.flatten_problem(model, loss, theta0, exit)
    n_paths, theta0, exit, key = check_inputs(model, loss, theta0, exit, n_paths, dt, t_max,
                                               key)
    if exit is None:
        raise TypeError("exit is required: an exit from sdesim.exits or a callable")
    if lanes is not None:
        lanes = _checks.integer("lanes", lanes, minimum=1)
    check_every = _checks.integer("check_every", check_every, minimum=1)
    if NOISE_PAGE % check_every:
        raise ValueError(f"check_every must divide the {NOISE_PAGE}-step page (1, 2, 4, 8, "
                         f"16, 32 or 64), got {check_every}")
    n_max = n_steps(t_max, dt)
    if n_max >= 2**31 - NOISE_PAGE:
        raise ValueError(f"t_max/dt must be < 2**31 steps, got {n_max}")
    first_path = _checks.integer("first_path", first_path, minimum=0)
    if first_path + n_paths >= 2**31:
        raise ValueError(f"first_path + n_paths must be < 2**31, got {first_path + n_paths}")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be None, True, False or a callable "
                        f"(done, escaped, total), got {progress!r}")
    devs = _local_devices(devices)
    if distributed not in (None, True, False):
        raise TypeError(f"distributed must be None, True or False, got {distributed!r}")
    n_proc = jax.process_count() if distributed in (None, True) else 1

    dtype = _float_dtype()
    params = _arrayify((model, loss, exit, theta0, jnp.asarray(dt, dtype),
                        jnp.asarray(n_max, jnp.int32), key))
    warn_if_unstable(model, loss, theta0, dt)
    warn_if_noise_vanishes(model, loss, theta0, exit)
    run = dict(params=params, d=theta0.shape[0], lanes=lanes, progress=progress, devs=devs,
               bridge=bool(bridge) and model.noise_kind == "gaussian"
               and model.diffusive_position and check_every == 1, every=check_every)
    t_start = _time.perf_counter()
    if n_proc == 1:
        steps, status, info = _run_block(first_path, n_paths, **run)
    else:
        steps, status, info = _run_distributed(first_path, n_paths, n_proc, run)
    info.wall_time = _time.perf_counter() - t_start
    res = EscapeResult.from_steps(steps, status, dt=float(dt), t_max=float(t_max),
                                  lr=_lr_of(model), info=info)
    if res.n_diverged:
        import warnings

        warnings.warn(f"{res.n_diverged} of {res.n_paths} paths diverged (their state became "
                      f"non-finite): they are not escapes; rate() and mean_time() treat them "
                      f"as censored at the step they diverged (res.diverged marks them). "
                      f"Use a smaller dt, JAX_ENABLE_X64=1, or a noise with finite scale",
                      DivergenceWarning, stacklevel=2)
    return res


def _run_distributed(first_path, n_paths, n_proc, run):
    """This process's contiguous block of path indices, then an all-gather of the
    results (over ``jax.distributed``'s collectives) so every process returns them all."""
    from jax.experimental import multihost_utils

    block = -(-n_paths // n_proc)
    lo = min(jax.process_index() * block, n_paths)
    count = min(block, n_paths - lo)
    steps = np.zeros(block, np.int32)
    status = np.zeros(block, np.int8)
    info = RunInfo()
    if count > 0:
        s, c, info = _run_block(first_path + lo, count, **run)
        steps[:count], status[:count] = s, c
    info.processes = n_proc
    g_steps, g_status = multihost_utils.process_allgather((steps, status))
    counts = [min(block, max(n_paths - p * block, 0)) for p in range(n_proc)]
    take = lambda g: np.concatenate([np.asarray(g)[p, :c] for p, c in enumerate(counts)])
    return take(g_steps), take(g_status), info


def _run_block(first_path, n_paths, *, params, d, lanes, progress, devs, bridge, every=1):
    """Paths ``first_path + [0, n_paths)`` on the local devices ``devs``: one pool per
    device, each on a contiguous sub-block. Returns (steps, status, RunInfo)."""
    n_dev = max(1, min(len(devs), n_paths))
    devs = devs[:n_dev]
    size = -(-n_paths // n_dev)  # paths per device (the last may have fewer)
    limits = [min(size, n_paths - j * size) for j in range(n_dev)]
    firsts = [first_path + j * size for j in range(n_dev)]
    platform = devs[0].platform
    unroll = _page_unroll(platform)
    noise_dim = math.prod(params[0].noise_shape(d))
    itemsize = jnp.dtype(params[4].dtype).itemsize
    state0 = params[0].init(params[3])
    state = sum(math.prod(np.shape(x)) for x in jax.tree_util.tree_leaves(state0))
    width = min(default_lanes(size, d, platform, noise_dim, itemsize, state) if lanes is None
                else lanes, size)
    mesh = jax.sharding.Mesh(np.array(devs), (_AXIS,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(_AXIS))
    pool = jax.device_put(_initial_pool(state0, limits, firsts, size, width), sharding)
    signature = _signature(params)
    info = RunInfo(devices=n_dev, check_every=every)
    bar = None
    t_start = _time.perf_counter()
    pages = 64  # pages per call; grown so one call takes ~0.5 s (chunking never changes results)
    while True:
        shrink_at = _next_width(width, d, platform) or -1
        t0 = _time.perf_counter()
        pool, counts = _advance(params, pool, np.asarray(pages, np.int32), mesh=mesh, d=d,
                                bridge=bridge, shrink_at=shrink_at, unroll=unroll, every=every,
                                signature=signature)
        counts = np.asarray(counts)  # (devices, [pages run, busy, escaped])
        next_path = np.asarray(pool.next_path)
        elapsed = _time.perf_counter() - t0
        info.executed_steps += int(counts[:, 0].sum()) * width * NOISE_PAGE
        info.widths.append(width)
        info.chunks += 1
        busy = int(counts[:, 1].sum())
        done, escaped = int(next_path.sum()) - busy, int(counts[:, 2].sum())
        if callable(progress) and not isinstance(progress, bool):
            progress(done, escaped, n_paths)
        elif bar is None and (progress or (progress is None and busy > 0
                                           and _time.perf_counter() - t_start > 3.0
                                           and _interactive())):
            from tqdm.auto import tqdm
            bar = tqdm(total=n_paths, desc="paths", unit="path", leave=False, mininterval=1.0)
        if bar is not None:  # the count first: update() draws it with this chunk's numbers
            bar.set_postfix(escaped=escaped, refresh=False)
            bar.update(done - bar.n)
        if busy == 0:
            break
        if np.all(next_path >= limits) and np.all(counts[:, 1] <= shrink_at):
            width = _next_width(width, d, platform)
            pool = _compact(pool, mesh=mesh, new_width=width)
        elif counts[:, 0].max() == pages and elapsed < 0.25:
            pages = min(pages * 2, 1 << 16)
    if bar is not None:
        bar.close()
    steps = np.asarray(pool.steps).reshape(-1)
    status = np.asarray(pool.status).reshape(-1)
    keep = np.concatenate([np.arange(lim) + j * size for j, lim in enumerate(limits)])
    return steps[keep].astype(np.int64), status[keep], info


def _interactive():
    """Is stderr a terminal or a notebook (where a default progress bar may be drawn)?"""
    import sys

    if "ipykernel" in sys.modules:  # Jupyter: tqdm.auto draws a widget
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _lr_of(model):
    lr = model.lr
    if lr is None:
        return None
    try:
        return float(lr)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return None


# ---------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """Saved paths of ``simulate``: ``ts`` (n_saves,), ``paths`` (n_paths, n_saves, d)
    (a pytree run: the flat vectors; ``params()`` gives the pytree);
    ``velocities`` likewise for phase-space models (else None); ``diverged`` (n_paths,)
    marks paths whose state became non-finite (their saved values from then on are
    inf/NaN; ``simulate`` warns)."""

    ts: np.ndarray
    paths: np.ndarray
    velocities: np.ndarray | None = None
    diverged: np.ndarray | None = None
    unravel: object = None  # sdesim.pytrees.Unravel of a pytree run, else None

    @property
    def n_diverged(self):
        return 0 if self.diverged is None else int(np.sum(self.diverged))

    def params(self):
        """The saved positions as the parameter pytree of a pytree run: leaves of shape
        ``(n_paths, n_saves, *leaf_shape)`` (a vector run: ``paths`` itself)."""
        return self.paths if self.unravel is None else self.unravel(self.paths)


@eqx.filter_jit
def _simulate_engine(params, n_paths, n_saves, save_every, signature):
    """Fixed-horizon run with the engine's own step and the same noise stream as
    ``escape`` (path i here is path i there)."""
    model, loss, theta0, dt, key = params
    d = theta0.shape[0]
    dtype = dt.dtype
    n_pages = math.ceil((n_saves - 1) * save_every / NOISE_PAGE)

    def one_path(i):
        def page_body(state, b):
            z, _ = _page_noise(model, key, i, b, d, dtype, False)

            def step_body(s, j):
                t = (b * NOISE_PAGE + j).astype(dtype) * dt
                new, _ = model.step(s, t, dt, loss, z[j])
                return new, new

            state, states = jax.lax.scan(step_body, state, jnp.arange(NOISE_PAGE))
            return state, states

        s0 = model.init(theta0)
        _, states = jax.lax.scan(page_body, s0, jnp.arange(n_pages))
        states = jax.tree_util.tree_map(
            lambda x: x.reshape((-1,) + x.shape[2:])[save_every - 1::save_every][:n_saves - 1],
            states)
        return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), s0, states)

    return jax.lax.map(one_path, jnp.arange(n_paths), batch_size=min(n_paths, 256))


def simulate(model: Model, loss: Callable, theta0: ArrayLike, *, n_paths: int, dt: float,
             t_max: float, key: jax.Array, save_every: int = 1, method: str | None = None,
             solver: object = None) -> Trajectories:
    """Fixed-horizon trajectories for plots and moment checks.

    Saves ``θ`` at ``t = 0, save_every·dt, 2·save_every·dt, ... <= t_max``.

    ``method="diffrax"`` (default for Gaussian SDEs with a closed vector field: Langevin,
    SGD, Underdamped): ``diffrax.diffeqsolve`` vmapped over paths with a per-path
    ``UnsafeBrownianPath`` keyed by ``fold_in(key, i)``; solver ``ShARK`` when the noise is
    additive (Langevin, Underdamped), else ``Euler`` (Euler–Maruyama, Itô). The drift and
    diffusion are the model's own ``terms`` (``model.vector_field``). One compiled program
    per shape and solver: a sweep over temperatures or learning rates compiles once.
    ``method="engine"``: the models' own step with the engine's noise stream, so path ``i``
    is exactly path ``i`` of ``escape`` with the same key. Paths whose state becomes
    non-finite are marked in ``diverged`` and counted in a ``DivergenceWarning``.
    """
    model, loss, theta0, _, unravel = _pytrees.flatten_problem(model, loss, theta0)
    n_paths, theta0, _, key = check_inputs(model, loss, theta0, None, n_paths, dt, t_max,
                                            key)
    save_every = _checks.integer("save_every", save_every, minimum=1)
    n_steps_ = n_steps(t_max, dt)
    n_saves = n_steps_ // save_every + 1
    if n_saves < 2:
        raise ValueError(f"t_max must cover at least save_every steps, got t_max={t_max}, "
                         f"dt={dt}, save_every={save_every}")
    if method is None:
        method = "diffrax" if model.has_vector_field else "engine"
    if method not in ("diffrax", "engine"):
        raise ValueError(f"method must be 'diffrax' or 'engine', got {method!r}")
    warn_if_unstable(model, loss, theta0, dt)
    dtype = _float_dtype()
    d = theta0.shape[0]
    ts = np.arange(n_saves) * save_every * float(dt)
    if method == "engine":
        params = _arrayify((model, loss, theta0, jnp.asarray(dt, dtype), key))
        states = _simulate_engine(params, n_paths, n_saves, save_every, _signature(params))
    else:
        if not model.has_vector_field:
            raise ValueError(f"{type(model).__name__} has no diffrax form (a Gaussian SDE "
                             f"with a closed vector field); use method='engine'")
        states = _simulate_diffrax(model, loss, theta0, key, n_paths, float(dt), n_steps_,
                                   save_every, solver)
        states = model.from_vector(states, d)
    pos = np.asarray(model.position(states))
    vel = model.velocity(states)
    vel = None if vel is None else np.asarray(vel)
    bad = np.zeros(n_paths, bool)
    for leaf in jax.tree_util.tree_leaves(states):  # position, velocity, moments
        bad |= ~np.all(np.isfinite(np.asarray(leaf).reshape(n_paths, -1)), axis=1)
    if bad.any():
        import warnings

        warnings.warn(f"{int(bad.sum())} of {n_paths} simulated paths diverged (non-finite "
                      f"state; Trajectories.diverged marks them): use a smaller dt or "
                      f"JAX_ENABLE_X64=1", DivergenceWarning, stacklevel=2)
    return Trajectories(ts, pos, vel, bad, unravel)


def _diffrax_solver(model, solver):
    import diffrax

    if solver is None:  # ShARK needs additive noise (a diffusion independent of the state)
        solver = diffrax.ShARK() if model.additive else diffrax.Euler()
    return solver


def _simulate_diffrax(model, loss, theta0, key, n_paths, dt, n_steps, save_every, solver):

    solver = _diffrax_solver(model, solver)
    params = _arrayify((model, loss, model.to_vector(model.init(theta0)), key))
    return _diffrax_solve(params, n_paths, float(dt), n_steps * float(dt), n_steps,
                          save_every, solver, model.noise_shape(theta0.shape[0])[0],
                          _signature(params))


@eqx.filter_jit
def _diffrax_solve(params, n_paths, dt, t1, n_steps, save_every, solver, m, signature):
    """Module-level and keyed on shapes, the solver, the step and the models' classes:
    every numeric leaf of the model and the landscape (temperature, lr, sharpness) is
    traced, so a sweep over them reuses the program (a jit nested in ``simulate`` compiled
    on every call). ``dt`` and ``t1`` stay Python floats, as diffrax's docs use them: a
    traced ``dt0`` changes diffrax's step grid arithmetic (and so every path)."""
    import diffrax

    model, loss, y0, key = params
    drift, diffusion = model.vector_field(loss)
    needs_area = isinstance(solver, diffrax.ShARK | diffrax.SRA1 | diffrax.SEA)
    levy = diffrax.SpaceTimeLevyArea if needs_area else diffrax.BrownianIncrement
    ts = jnp.arange(0, n_steps + 1, save_every, dtype=y0.dtype) * dt

    def one(i):
        bm = diffrax.UnsafeBrownianPath(shape=(m,), key=jax.random.fold_in(key, i),
                                        levy_area=levy)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, solver, 0.0, t1, dt, y0,
                                  saveat=diffrax.SaveAt(ts=ts), max_steps=n_steps + 1,
                                  adjoint=diffrax.ForwardMode())
        return sol.ys

    return jax.lax.map(one, jnp.arange(n_paths), batch_size=min(n_paths, 256))


_check_common = check_inputs  # former private names (used by older scripts)
_warn_unstable = warn_if_unstable
