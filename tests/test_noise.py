"""The SαS sampler ``sd.noise.sas`` and the tail-index estimator ``sd.stats.tail_index``.

Reference law: scipy's ``levy_stable(alpha, beta=0, scale=1)`` (default parametrization S1;
for β = 0 its characteristic function is ``exp(-|ω|^α)``, ours). All keys are fixed, so
every test is deterministic; the tolerances are what a correct sampler passes with
probability ≳ 1 − 1e-4 (stated per test), so a failure means a real defect.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import interpolate, stats

import sdesim as sd
from sdesim import theory as th

ALPHAS_KS = (0.7, 1.0, 1.3, 1.7, 1.95, 2.0)


def _stable_cdf(alpha):
    """scipy's levy_stable CDF, fast: exact on a grid in g = (2/π) arctan x (PCHIP between,
    interpolation error < 1e-6 ≪ the KS resolution 1/sqrt(n)), exact beyond the grid."""
    g = np.linspace(-0.999, 0.999, 1201)
    xg = np.tan(0.5 * np.pi * g)
    law = stats.levy_stable(alpha, 0.0)
    f = interpolate.PchipInterpolator(g, law.cdf(xg))

    def cdf(x):
        x = np.asarray(x, float)
        out = f(np.clip(2 / np.pi * np.arctan(x), -0.999, 0.999))
        far = np.abs(x) > xg[-1]
        if far.any():
            out[far] = law.cdf(x[far])
        return out

    return cdf


@pytest.mark.parametrize("alpha, traced", [(a, False) for a in ALPHAS_KS]
                         + [(a, True) for a in (1.0, 1.7, 2.0)])
def test_ks_against_scipy(alpha, traced):
    # 50 000 float32 draws; "Must reach": KS p-value > 1e-3 for every α (a correct sampler
    # fails that with probability 1e-3 per case; the keys are fixed, the p-values are
    # printed in the report). Traced α runs the lax.switch branch (α = 1, 2 exact too).
    key = jax.random.key(100 + int(100 * alpha))
    if traced:
        x = jax.jit(lambda k, a: sd.noise.sas(k, a, (50_000,)))(key, jnp.float32(alpha))
    else:
        x = sd.noise.sas(key, alpha, (50_000,))
    x = np.asarray(x, np.float64)
    assert np.all(np.isfinite(x))
    p = stats.kstest(x, _stable_cdf(alpha)).pvalue
    assert p > 1e-3, f"alpha={alpha}: KS p={p:.2e}"


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5, 2.0])
def test_empirical_characteristic_function(alpha):
    # E cos(ωS) = exp(-|ω|^α); Var cos(ωS) = (1 + φ(2ω))/2 − φ(ω)² exactly, so the error of
    # the mean of n draws has a known σ: 5σ (two-sided p ≈ 6e-7 per point).
    n = 400_000
    x = np.asarray(sd.noise.sas(jax.random.key(7), alpha, (n,)), np.float64)
    for w in (0.25, 0.5, 1.0, 2.0, 4.0):
        phi = math.exp(-(w**alpha))
        var = (1 + math.exp(-((2 * w) ** alpha))) / 2 - phi**2
        ecf = np.mean(np.cos(w * x))
        assert abs(ecf - phi) < 5 * math.sqrt(var / n), (alpha, w, ecf, phi)
        var_sin = (1 - math.exp(-((2 * w) ** alpha))) / 2  # E sin² (E sin = 0)
        assert abs(np.mean(np.sin(w * x))) < 5 * math.sqrt(var_sin / n)


@pytest.mark.parametrize("alpha", [0.7, 1.3, 1.7])
def test_tail_constant(alpha):
    # P(|S| > u) = 2Γ(α) sin(πα/2)/π u^{-α} − Γ(2α) sin(πα)/π u^{-2α} + O(u^{-3α}) (the
    # series of the symmetric stable tail), whose first term is 2 c_α u^{-α}/α with
    # c_α = theory.levy_constant. u is chosen so the next term is < 0.5% of the tail; the
    # count is binomial: 4.5σ.
    n = 2_000_000
    x = np.abs(np.asarray(sd.noise.sas(jax.random.key(11), alpha, (n,)), np.float64))
    c = th.levy_constant(alpha)
    for u in (30.0, 100.0):
        lead = 2 * c / alpha * u**-alpha
        second = -math.gamma(2 * alpha) * math.sin(math.pi * alpha) / math.pi * u ** (-2 * alpha)
        assert abs(second / lead) < 0.05
        p = lead + second
        k = np.sum(x > u)
        assert abs(k - n * p) < 4.5 * math.sqrt(n * p * (1 - p)), (alpha, u, k, n * p)
        # and the leading constant alone, with the series' next term as the model error
        assert k / (n * lead) == pytest.approx(1.0, abs=4.5 / math.sqrt(n * p)
                                              + abs(second / lead))


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.7, 1.0, 1.3, 1.999, 2.0])
def test_never_nonfinite_float32(alpha):
    # "Must reach": zero non-finite values in 10^7 float32 draws (chunks of 2.5·10^6 keep
    # memory low); small α overflows float32 and must be clipped, not inf/NaN.
    f = jax.jit(lambda k: jnp.all(jnp.isfinite(sd.noise.sas(k, alpha, (2_500_000,),
                                                             jnp.float32))))
    key = jax.random.key(3)
    for i in range(4):
        assert bool(f(jax.random.fold_in(key, i))), (alpha, i)


def test_extreme_uniforms_stay_finite():
    # The worst case of CMS is V at ±π/2 (cos V → 0) and W → 0: the open-interval
    # construction keeps them inside; check the extremes of the grid directly.
    for dtype in (jnp.float32,) + ((jnp.float64,) if jax.config.x64_enabled else ()):
        x = sd.noise.sas(jax.random.key(0), 0.3, (10,), dtype)
        assert x.dtype == dtype
        u_lo = sd.noise._open_uniform(jax.random.key(0), (1000,), dtype)
        assert bool(jnp.all((u_lo > 0) & (u_lo < 1)))
        eps = jnp.finfo(dtype).eps
        for u in (0.5 * eps, 1 - 0.5 * eps):
            v = jnp.clip(jnp.pi * (jnp.asarray(u, dtype) - 0.5),
                         -jnp.nextafter(jnp.asarray(np.pi / 2, dtype), 0),
                         jnp.nextafter(jnp.asarray(np.pi / 2, dtype), 0))
            assert float(jnp.cos(v)) > 0
            w = -jnp.log(jnp.asarray(1 - 0.5 * eps, dtype))
            assert float(w) > 0
            for a in (0.05, 0.5, 1.5):
                s = sd.noise._cms(v, w, jnp.asarray(a, dtype))
                assert not bool(jnp.isnan(s)), (a, u)


def test_dtypes_and_shapes():
    x = sd.noise.sas(jax.random.key(0), 1.5, (4, 3))
    assert x.shape == (4, 3) and x.dtype == jnp.result_type(float)
    assert sd.noise.sas(jax.random.key(0), 1.5, (5,), jnp.float32).dtype == jnp.float32
    if jax.config.x64_enabled:
        x64 = sd.noise.sas(jax.random.key(0), 1.5, (5,), jnp.float64)
        assert x64.dtype == jnp.float64
    # α = 1 is exactly tan V: Cauchy quartiles ±1
    c = np.asarray(sd.noise.sas(jax.random.key(1), 1.0, (200_000,)))
    assert np.quantile(np.abs(c), 0.5) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(TypeError, match="dtype"):
        sd.noise.sas(jax.random.key(0), 1.5, (3,), jnp.int32)


def test_alpha_two_traced_is_gaussian():
    # Traced α = 2 is 2 sin(V) sqrt(W) = N(0, 2) exactly (Box–Muller): moments.
    x = np.asarray(jax.jit(lambda k, a: sd.noise.sas(k, a, (400_000,)))(
        jax.random.key(5), jnp.float32(2.0)), np.float64)
    n = x.size
    assert np.mean(x) == pytest.approx(0, abs=5 * math.sqrt(2 / n))
    assert np.var(x) == pytest.approx(2.0, abs=5 * math.sqrt(8 / n))  # Var(X²) = 2·2²
    assert np.mean(x**4) == pytest.approx(12.0, abs=5 * math.sqrt((105 - 9) * 16 / n))


def test_bad_alpha():
    for a in (0.0, -0.5, 2.0001, 3.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            sd.noise.sas(jax.random.key(0), a, (3,))


# ---- tail index --------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8])
def test_tail_index_recovers_alpha(alpha):
    # 10^6 draws, default block sqrt(N) = 1000: standard error in α ≈ α²·0.006 ≤ 0.02, so
    # ±0.05 is ≥ 2.5σ (issue 3's requirement); the fixed keys give errors < 0.01.
    x = np.asarray(sd.noise.sas(jax.random.key(20), alpha, (1_000_000,)))
    assert sd.stats.tail_index(x) == pytest.approx(alpha, abs=0.05)
    # vectors (rows of 4 i.i.d. coordinates): norms, Simsekli et al.'s form
    assert sd.stats.tail_index(x.reshape(-1, 4), axis=1) == pytest.approx(alpha, abs=0.05)


def test_tail_index_inputs():
    x = np.asarray(sd.noise.sas(jax.random.key(21), 1.5, (10_000,)))
    assert 1.3 < sd.stats.tail_index(x, block=50) < 1.7
    assert sd.stats.tail_index(np.random.default_rng(0).normal(size=10_000)) > 1.9
    with pytest.raises(ValueError, match="block"):
        sd.stats.tail_index(x[:3])
    with pytest.raises(ValueError, match="finite"):
        sd.stats.tail_index(np.array([1.0, np.inf, 2.0, 3.0, 4.0]))
