"""Diagnostics of a minimum, for a network as for a landscape: sharpness and noise.

Every function takes the parameters as a vector or any pytree (``sdesim.pytrees``) and the
user's functions of the pytree; nothing forms a dense ``d × d`` matrix unless ``d`` is
small:

- ``hessian_eigs``: the top-``k`` Hessian eigenvalues (and eigenvectors) by Lanczos on
  Hessian-vector products (forward-over-reverse), with full reorthogonalization: ``m``
  products, O(m·d) memory. Exact (dense ``eigh``) for ``d <= 64``.
- ``hessian_trace``: Hutchinson's estimate ``E[vᵀHv]`` over Rademacher vectors, with its
  standard error.
- ``noise_eigs``: the top eigenvalues of the minibatch gradient-noise covariance
  ``C = Cov_x[∇ℓ(θ; x)]/B = GᵀG/(N·B)`` (``G`` the centred per-sample gradients): from the
  smaller of ``G Gᵀ`` and ``GᵀG`` when that is at most 4 096 wide, else Lanczos on
  ``v ↦ Gᵀ(Gv)/(N·B)``; ``C`` itself is never formed.
- ``tail_index``: the tail index ``α`` of minibatch gradient noise as Şimşekli, Sagun and
  Gürbüzbalaban (ICML 2019) measure it: the noise of a minibatch is its mean gradient minus
  the full gradient; the entries of many such noise vectors are treated as samples of one
  symmetric α-stable law and ``α`` comes from the estimator of Mohammadi, Mohammadpour and
  Ogata (2015) (the log-moments of sums of ``K₁`` samples against those of single
  samples); the interval is a percentile bootstrap over the minibatches.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from . import pytrees as _pytrees

DENSE_MAX = 64  # exact Hessian spectrum below this many parameters
GRAM_MAX = 4096  # noise covariance: dense Gram matrix up to this width


def _flat(loss, params):
    """(the function on the flat vector, flat params, unravel or None); extra arguments
    of the function (a per-sample loss's example) pass through."""
    if _pytrees.is_vector_like(params):
        th = jnp.asarray(params, jnp.result_type(float))
        if th.ndim != 1:
            raise ValueError(f"params must be a vector or a pytree, got shape {th.shape}")
        return loss, th, None
    th, un = _pytrees.layout(params)
    return _pytrees.OnParams(loss, un), th, un


def _lanczos(matvec, d, m, key, dtype):
    """``m`` Lanczos steps with full reorthogonalization from a random start. Returns the
    Ritz values (ascending) and Ritz vectors (m, d) of the tridiagonal projection."""
    v0 = jax.random.normal(key, (d,), dtype)
    v0 = v0 / jnp.linalg.norm(v0)

    def body(carry, i):
        basis, v, v_prev, beta = carry
        w = matvec(v) - beta * v_prev
        alpha = w @ v
        w = w - alpha * v
        # full reorthogonalization against every basis vector so far (twice is enough)
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        b = jnp.linalg.norm(w)
        v_next = jnp.where(b > 0, w / jnp.maximum(b, jnp.finfo(dtype).tiny), 0.0)
        basis = basis.at[i + 1].set(jnp.where(i + 1 < m, v_next, basis[i + 1]), mode="drop")
        return (basis, v_next, v, b), (alpha, b)

    basis = jnp.zeros((m, d), dtype).at[0].set(v0)
    (basis, _, _, _), (alphas, betas) = jax.lax.scan(
        body, (basis, v0, jnp.zeros(d, dtype), jnp.zeros((), dtype)), jnp.arange(m))
    t = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    vals, vecs = jnp.linalg.eigh(t)
    return vals, vecs.T @ basis


@eqx.filter_jit
def _hessian_eigs(loss, theta, k, m, key):
    d = theta.shape[0]
    hvp = lambda v: jax.jvp(jax.grad(loss), (theta,), (v,))[1]
    if d <= DENSE_MAX:
        vals, vecs = jnp.linalg.eigh(jax.hessian(loss)(theta))
        vals, vecs = vals[::-1][:k], vecs.T[::-1][:k]
    else:
        vals, vecs = _lanczos(hvp, d, m, key, theta.dtype)
        vals, vecs = vals[::-1][:k], vecs[::-1][:k]
    # the check of convergence: ‖H v − λ v‖ for each returned pair (k more products)
    res = jnp.linalg.norm(jax.vmap(hvp)(vecs) - vals[:, None] * vecs, axis=1)
    return vals, vecs, res


@dataclasses.dataclass(frozen=True)
class Eigs:
    """Top eigenvalues (descending) and their eigenvectors (rows; pytrees of a pytree
    run: ``vector(i)``); ``residuals``: ``‖A v − λ v‖`` of each pair where computed (the
    Hessian's: small against ``|λ|`` means converged; raise ``iters`` otherwise)."""

    values: np.ndarray
    vectors: np.ndarray
    unravel: object = None
    residuals: np.ndarray | None = None

    def vector(self, i):
        v = self.vectors[i]
        return v if self.unravel is None else self.unravel(jnp.asarray(v))


def hessian_eigs(loss: Callable, params, k: int = 1, *, iters: int | None = None,
                 key=None) -> Eigs:
    """Top-``k`` (largest) Hessian eigenvalues of ``loss`` at ``params`` (the sharpness is
    ``values[0]``). ``iters``: Lanczos steps (default ``max(3k + 20, 40)``, at most ``d``):
    the extreme eigenvalues converge first, so a few dozen products suffice for the top
    few of a network; raise it if ``values`` change with it."""
    k = _checks.integer("k", k, minimum=1)
    f, th, un = _flat(loss, params)
    d = th.shape[0]
    if k > d:
        raise ValueError(f"k = {k} exceeds the number of parameters {d}")
    m = min(d, max(3 * k + 20, 40) if iters is None else _checks.integer("iters", iters,
                                                                          minimum=k))
    key = jax.random.key(0) if key is None else _checks.prng_key("key", key)
    vals, vecs, res = _hessian_eigs(f, th, k, m, key)
    return Eigs(np.asarray(vals), np.asarray(vecs), un, np.asarray(res))


@eqx.filter_jit
def _hutchinson(loss, theta, n, key):
    hvp = lambda v: jax.jvp(jax.grad(loss), (theta,), (v,))[1]
    v = jax.random.rademacher(key, (n, theta.shape[0]), theta.dtype)
    return jax.lax.map(lambda x: x @ hvp(x), v, batch_size=min(n, 16))


def hessian_trace(loss: Callable, params, *, n_samples: int = 200, key=None):
    """Hutchinson's estimate of ``tr H`` at ``params``: ``(estimate, standard error)``
    from ``n_samples`` Rademacher probes (one Hessian-vector product each)."""
    n = _checks.integer("n_samples", n_samples, minimum=2)
    f, th, _ = _flat(loss, params)
    key = jax.random.key(0) if key is None else _checks.prng_key("key", key)
    s = np.asarray(_hutchinson(f, th, n, key), np.float64)
    return float(s.mean()), float(s.std(ddof=1) / math.sqrt(n))


def per_sample_grads(per_sample: Callable, params, data, *, chunk: int = 256):
    """``(N, d)`` per-sample gradients ``∇ℓ(θ; x_i)`` (flat, in the engine's order),
    computed ``chunk`` examples at a time."""
    fn, th, _ = _flat(per_sample, params)
    data = jnp.asarray(data)
    if jnp.issubdtype(data.dtype, jnp.floating):  # the examples in the parameters' dtype
        data = data.astype(th.dtype)
    return _per_sample_grads(fn, th, data, chunk)


@eqx.filter_jit
def _per_sample_grads(fn, theta, data, chunk):
    return jax.lax.map(lambda x: jax.grad(fn)(theta, x), data, batch_size=chunk)


def noise_eigs(per_sample: Callable, params, data, *, batch_size: float = 1.0, k: int = 5,
               key=None) -> Eigs:
    """Top-``k`` eigenvalues of the minibatch gradient-noise covariance
    ``C = Cov_x[∇ℓ(θ; x)]/batch_size`` over the rows of ``data`` (population covariance,
    divisor N), with eigenvectors."""
    k = _checks.integer("k", k, minimum=1)
    _checks.real("batch_size", batch_size, positive=True)
    g = per_sample_grads(per_sample, params, data)
    un = _flat(per_sample, params)[2]
    g = np.asarray(g, np.float64)
    n, d = g.shape
    g = g - g.mean(0)
    scale = 1.0 / (n * float(batch_size))
    if min(n, d) <= GRAM_MAX:
        if n <= d:  # C's nonzero spectrum is that of G Gᵀ/(N B); vectors Gᵀu/‖Gᵀu‖
            lam, u = np.linalg.eigh(g @ g.T * scale)
            lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
            vec = (g.T @ u).T
            vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-300)
        else:
            lam, v = np.linalg.eigh(g.T @ g * scale)
            lam, vec = lam[::-1][:k], v[:, ::-1][:, :k].T
        return Eigs(np.maximum(lam, 0.0), vec, un)
    gj = jnp.asarray(g, jnp.result_type(float))
    key = jax.random.key(0) if key is None else _checks.prng_key("key", key)
    vals, vecs = _lanczos(lambda v: gj.T @ (gj @ v) * scale, d, min(d, max(3 * k + 20, 40)),
                          key, gj.dtype)
    return Eigs(np.asarray(vals[::-1][:k]), np.asarray(vecs[::-1][:k]), un)


@dataclasses.dataclass(frozen=True)
class TailIndex:
    """``alpha`` (clipped to (0, 2]) with a bootstrap interval ``ci`` (95%), from
    ``n_samples`` noise entries of ``n_batches`` minibatches; ``raw`` is the unclipped
    estimate (above 2: lighter than any stable law, i.e. Gaussian-like)."""

    alpha: float
    ci: tuple
    raw: float
    n_batches: int
    n_samples: int


def alpha_estimate(x, k1=None):
    """Mohammadi et al.'s estimator of the SαS index from samples ``x`` (flattened):
    with ``K = K₁K₂`` samples and ``Y_i`` the sums of consecutive blocks of ``K₁``,
    ``1/α̂ = (mean log|Y| − mean log|X|)/log K₁``. ``k1`` defaults to ``⌊√K⌋``, as
    Şimşekli et al. use it. Returns the unclipped ``α̂``."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x) & (x != 0)]
    k = x.size
    k1 = int(math.isqrt(k)) if k1 is None else int(k1)
    if k1 < 2 or k < 4:
        raise ValueError(f"need at least 4 nonzero samples, got {k}")
    k2 = k // k1
    x = x[:k1 * k2]
    y = x.reshape(k2, k1).sum(1)
    inv = (np.mean(np.log(np.abs(y))) - np.mean(np.log(np.abs(x)))) / math.log(k1)
    return 1.0 / inv if inv > 0 else math.inf


def tail_index(per_sample: Callable, params, data, *, batch_size: int, n_batches: int = 200,
               key=None, n_boot: int = 200) -> TailIndex:
    """Tail index ``α`` of minibatch gradient noise at ``params`` (Şimşekli et al. 2019):
    ``n_batches`` minibatches of ``batch_size`` rows of ``data`` drawn without replacement
    within a batch; each gives the noise vector ``mean_batch ∇ℓ − mean_all ∇ℓ``; all
    entries go to ``alpha_estimate``. The interval resamples the minibatches.

    As in the paper the entries of all coordinates are pooled: where the coordinates'
    noise scales differ by orders of magnitude (a network's parameters), the pooled sample
    is a scale mixture and heavier-tailed than any one coordinate, so ``α`` is lower than
    each coordinate's (benchmarks/network_escape.py finds α ≈ 1.0 on an MLP)."""
    b = _checks.integer("batch_size", batch_size, minimum=1)
    m = _checks.integer("n_batches", n_batches, minimum=2)
    g = np.asarray(per_sample_grads(per_sample, params, data), np.float64)
    n = g.shape[0]
    if b >= n:
        raise ValueError(f"batch_size must be below the number of samples ({n}), got {b}")
    key = jax.random.key(0) if key is None else _checks.prng_key("key", key)
    seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
    rng = np.random.default_rng(seed)
    full = g.mean(0)
    idx = np.stack([rng.choice(n, b, replace=False) for _ in range(m)])
    noise = g[idx].mean(1) - full  # (m, d)
    raw = alpha_estimate(noise)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, m, m)
        boots.append(min(alpha_estimate(noise[pick]), 2.0))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return TailIndex(float(min(raw, 2.0)), (float(lo), float(hi)), float(raw), m,
                     int(noise.size))
