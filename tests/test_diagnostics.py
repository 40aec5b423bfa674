"""Sharpness and noise diagnostics (sdesim.diagnostics) against exact answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import diagnostics as dg


def _quadratic(d, top, seed=0):
    """½ θᵀAθ with A = Q diag(λ) Qᵀ: known top eigenvalues ``top``, the rest in [0, 3]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = np.concatenate([top, rng.uniform(0, 3, d - len(top))])
    a = (q * lam) @ q.T
    a = 0.5 * (a + a.T)
    aj = jnp.asarray(a, jnp.result_type(float))
    return (lambda th: 0.5 * th @ (aj @ th)), a, np.sort(lam)[::-1]


def test_lanczos_top_eigenvalues_of_a_200_parameter_quadratic():
    loss, a, lam = _quadratic(200, [10.0, 8.0, 6.0])
    e = dg.hessian_eigs(loss, np.zeros(200), k=3)
    # float32 Lanczos with full reorthogonalization: the separated extremes to ~1e-5
    np.testing.assert_allclose(e.values, lam[:3], rtol=1e-4)
    v = e.vectors[0]
    np.testing.assert_allclose(abs(v @ a @ v), lam[0], rtol=1e-4)


def test_hessian_eigs_of_a_pytree_are_those_of_the_flat_vector():
    loss, _, lam = _quadratic(100, [5.0, 4.0])
    un = sd.pytrees.layout({"a": jnp.zeros(60), "b": jnp.zeros((4, 10))})[1]
    e = dg.hessian_eigs(lambda p: loss(un.ravel(p)), un(jnp.zeros(100)), k=2)
    np.testing.assert_allclose(e.values, lam[:2], rtol=1e-4)
    assert e.vector(0)["b"].shape == (4, 10)
    small = dg.hessian_eigs(lambda th: jnp.sum(jnp.arange(1.0, 4.0) * th**2), np.ones(3), k=3)
    np.testing.assert_allclose(small.values, [6.0, 4.0, 2.0], rtol=1e-6)  # dense path


def test_hutchinson_trace():
    loss, a, _ = _quadratic(80, [10.0])
    est, se = dg.hessian_trace(loss, np.zeros(80), n_samples=400, key=jax.random.key(1))
    # Rademacher probes: Var = 2 Σ_{i≠j} A_ij²; 4 standard errors (fixed key) plus float32
    # rounding of the products (1e-5 relative)
    assert abs(est - np.trace(a)) < 4 * se + 1e-5 * abs(np.trace(a))
    assert se > 0


@pytest.mark.parametrize("n", [30, 400])  # Gram (N < d) and covariance (N > d) branches
def test_noise_eigs_match_the_dense_covariance(n):
    rng = np.random.default_rng(n)
    d = 50
    x = (rng.normal(size=(n, d)) * np.linspace(0.1, 2.0, d)).astype(np.float32)

    def per_sample(th, xi):  # ∇ = θ − x: the gradient noise covariance is Cov(x)/B
        return 0.5 * jnp.sum((th - xi) ** 2)

    e = dg.noise_eigs(per_sample, np.zeros(d), x, batch_size=4.0, k=4)
    c = np.cov(x.astype(np.float64).T, bias=True) / 4.0
    ref = np.sort(np.linalg.eigvalsh(c))[::-1][:4]
    np.testing.assert_allclose(e.values, ref, rtol=2e-4)
    v = e.vectors[0]
    np.testing.assert_allclose(v @ c @ v, ref[0], rtol=2e-4)


def test_alpha_estimator_on_stable_samples():
    # K = 2·10⁵ samples, K₁ = 447: sd(α̂) ≈ α²·sqrt(π²/6·(1/α² + 1/2)/K₂)/ln K₁ ≈ 0.02 at
    # α = 1.5; the tolerance 0.1 is ~5 sd (fixed key)
    for alpha in (1.2, 1.5, 1.8):
        s = np.asarray(sd.noise.sas(jax.random.key(7), alpha, (200_000,), jnp.float32))
        assert abs(dg.alpha_estimate(s) - alpha) < 0.1, alpha
    g = np.random.default_rng(0).normal(size=200_000)
    assert abs(dg.alpha_estimate(g) - 2.0) < 0.1


def test_tail_index_of_minibatch_noise():
    # per-sample gradients = the rows themselves; a minibatch mean of SαS rows is SαS with
    # the same α, so the measured index is near the rows' α (finite population and 4 000
    # noise entries: a wide tolerance); Gaussian rows give α near 2
    def per_sample(th, xi):
        return th @ xi

    heavy = np.asarray(sd.noise.sas(jax.random.key(3), 1.5, (5000, 20), jnp.float32))
    t = dg.tail_index(per_sample, np.zeros(20), heavy, batch_size=50, n_batches=200,
                      key=jax.random.key(0))
    assert 1.2 < t.alpha < 1.8 and t.ci[0] <= t.alpha <= t.ci[1]
    gauss = np.random.default_rng(1).normal(size=(5000, 20)).astype(np.float32)
    tg = dg.tail_index(per_sample, np.zeros(20), gauss, batch_size=50, n_batches=200)
    assert tg.alpha > 1.85
    with pytest.raises(ValueError, match="batch_size"):
        dg.tail_index(per_sample, np.zeros(20), gauss[:10], batch_size=10)
