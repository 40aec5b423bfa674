"""Lévy-driven SGD/Adam/AdaL (Zhou et al. 2020; SPEC §3.2-3, 3.8) and the F20/F21 oracles.

Simulations use fixed keys (deterministic). Tolerances = statistical interval (escape
times are exponential, CV ≈ 1, so the mean of n has relative σ ≈ 1/sqrt(n)) plus the
stated model error of the small-noise asymptotics, measured with larger runs:
F20 at ε = 0.05, α = 1.5: simulated/F20 = 0.97-0.99 ± 0.008 (16 000 paths each at
dt = 0.005, 0.02, 0.05, 0.1; 0.982 at ε = 0.025, 0.885 at ε = 0.2); F21 at ε = 0.05:
0.99-1.02 ± 0.02 (SGD and Adam, dt = 0.005 and 0.01).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import theory as th

ALPHA = 1.5
# Pool width for the statistical runs: 128 lanes -> widths 128, 32, 16 (three compiles per
# model instead of four; compilation dominates these tests on a 2-core CPU).
LANES = 128


def lr_for(eps, alpha=ALPHA):
    """ε = lr^{(α−1)/α}  ⇔  lr = ε^{α/(α−1)}."""
    return eps ** (alpha / (alpha - 1))


def well_1d(th_):
    return 0.5 * th_[0] ** 2


def f20_ratio(eps, n, key):
    a, b = 1.0, 2.0  # asymmetric interval (−b, a): both F20 terms matter
    r = sd.escape(sd.models.SGDLevy(lr_for(eps), ALPHA, 1.0), well_1d, np.zeros(1),
                  sd.exits.Box([-b], [a]), n_paths=n, dt=0.05, t_max=1e6,
                  key=jax.random.key(key), lanes=LANES, progress=False)
    assert r.escaped.all()
    want = th.levy_exit_time(ALPHA, eps, a, b)
    lo, hi = r.mean_time_ci()
    return r.mean_time() / want, lo / want, hi / want


def test_f20_exit_time_1d():
    # ε = 0.05, 8 000 paths: σ = 1.1%; model error 1-3% (measured, see module docstring):
    # |ratio − 1| < 5% holds with ≥ 2σ margin. The ratio rises towards 1 as ε → 0:
    # ε = 0.2 gives 0.885 ± 2%, > 4σ below the ε = 0.05 value.
    r05, lo05, hi05 = f20_ratio(0.05, 8000, 1)
    assert abs(r05 - 1) < 0.05, (r05, lo05, hi05)
    r2, lo2, hi2 = f20_ratio(0.2, 8000, 2)  # same n_paths: reuses the compiled programs
    assert r2 < r05 and hi2 < 1.0, (r2, r05)


def f21_basin():
    hess = np.array([1.0, 16.0])
    sigma = np.sqrt(hess / 4)  # Hessian-aligned noise Σ = (H/2B)^{1/2}, B = 2
    return hess, sigma, 0.5


@pytest.mark.slow  # 23 s: a statistical check (CI runs slow tests)
def test_f21_sgd_vs_adam_anisotropic():
    # Anisotropic basin ½yᵀHy ≤ 0.5, H = diag(1, 16), Hessian-aligned noise; ε = 0.05.
    # 2 000 paths: σ = 2.2% per mean; model error ≤ 2% (measured): 10% (issue 3) is ≥ 3.5σ.
    hess, sigma, height = f21_basin()
    lr = lr_for(0.05)
    pred = th.levy_sgd_vs_adam(ALPHA, lr, sigma, hess, height)
    exit_ = sd.exits.Ellipsoid(np.zeros(2), np.diag(hess), height)
    loss = sd.landscapes.Quadratic(hess)
    out = {}
    for name, model in [("sgd", sd.models.SGDLevy(lr, ALPHA, sigma)),
                        ("adam", sd.models.AdamLevy(lr, ALPHA, sigma))]:
        r = sd.escape(model, loss, np.zeros(2), exit_, n_paths=2000, dt=0.01, t_max=1e5,
                      key=jax.random.key(3), lanes=LANES, progress=False)
        assert r.escaped.all() and r.n_nonfinite == 0
        out[name] = r.mean_time()
        assert out[name] / pred[f"{name}_time"] == pytest.approx(1.0, abs=0.10), name
        assert r.cv() == pytest.approx(1.0, abs=0.1)  # memoryless, as a Poisson jump exit
    # Zhou's claim, measured: SGD escapes faster here (predicted ratio 4.29)
    ratio = out["adam"] / out["sgd"]
    assert pred["ratio"] > 4
    assert ratio == pytest.approx(pred["ratio"], rel=0.15)  # two 2.2% σ + model error
    assert pred["m_sgd"] > pred["m_adam"]


def test_f21_theory_values():
    # 1-D: F21 is F20 with a = b = sqrt(2h/H)/|A|
    t1 = th.levy_exit_time_nd(1.3, 0.1, 0.7, [2.0], 0.5)
    assert t1 == pytest.approx(th.levy_exit_time(1.3, 0.1, 0.5**0.5 / 0.7, 0.5**0.5 / 0.7),
                                 rel=1e-12)
    # m(W) scales as |A|^α; scalar, vector and matrix A agree
    h = np.array([1.0, 3.0, 9.0])
    m1 = th.levy_escaping_measure(1.5, 1.0, h, 0.5)
    assert th.levy_escaping_measure(1.5, 2.0, h, 0.5) == pytest.approx(2**1.5 * m1)
    assert th.levy_escaping_measure(1.5, np.ones(3), np.diag(h), 0.5) == pytest.approx(m1)
    # sum over axes of (2c/α) r_i^{-α}
    r = np.sqrt(2 * 0.5 / h)
    assert m1 == pytest.approx(np.sum(2 * th.levy_constant(1.5) / 1.5 * r**-1.5))
    # isotropic noise: Adam's A = I/sqrt(2) (ϵ → 0) whatever σ
    res = th.levy_sgd_vs_adam(1.5, 1e-3, 3.0, h, 0.5, epsilon=0.0)
    assert res["m_adam"] == pytest.approx(2**-0.75 * m1)
    assert res["ratio"] == pytest.approx((3.0 * math.sqrt(2)) ** 1.5)
    assert th.levy_jump_rate(1.5, [np.inf], [1.0]) == pytest.approx(th.levy_constant(1.5) / 1.5)


def test_alpha_two_step_is_gaussian_sgd():
    # α = 2: ε = sqrt(lr), h^{1/2}, SαS(1) = N(0, 2): the SGDLevy step with z' = sqrt(2) z
    # is the Gaussian SGD step (covariance C = 2ΣΣᵀ) with z, for every form of Σ.
    lr, h = 0.05, 0.01
    loss = sd.landscapes.Quadratic(np.array([1.0, 3.0]))
    theta = jnp.array([0.3, -0.2])
    z = jnp.array([0.7, -1.1])
    full = np.array([[1.0, 0.3], [0.3, 0.5]])  # symmetric PSD: (2ΣΣᵀ)^{1/2} = sqrt(2)Σ
    cases = [(0.8, sd.noise.isotropic(2 * 0.8**2)),
             (np.array([0.5, 1.5]), sd.noise.fixed(2 * np.array([0.5, 1.5]) ** 2)),
             (full, sd.noise.fixed(2 * full @ full)),
             (sd.noise.hessian(4.0), sd.noise.hessian(4.0))]
    for sigma, cov in cases:
        a, _ = sd.models.SGDLevy(lr, 2.0, sigma).step(theta, 0.0, h, loss, math.sqrt(2) * z)
        b, _ = sd.models.SGD(lr, cov).step(theta, 0.0, h, loss, z)
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)


def test_alpha_two_escape_matches_gaussian_sgd():
    # Same law of escape times: SGDLevy(α = 2) vs Gaussian SGD, grid monitoring for both
    # (no bridge). 2 000 paths each: |log ratio| < 4 sqrt(2/2000) = 0.126 (4σ).
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    lr, sigma = 0.5, 0.8  # D = lr σ² = 0.32, ΔU/D ≈ 3
    kw = dict(n_paths=2000, dt=0.01, t_max=1e5, lanes=LANES, progress=False)
    r1 = sd.escape(sd.models.SGDLevy(lr, 2.0, sigma), dw, th0, ex, key=jax.random.key(4),
                   **kw)
    r2 = sd.escape(sd.models.SGD(lr, sd.noise.isotropic(2 * sigma**2)), dw, th0, ex,
                   key=jax.random.key(5), bridge=False, **kw)
    assert abs(math.log(r1.mean_time() / r2.mean_time())) < 4 * math.sqrt(2 / 2000)


def test_adam_bias_correction_exact_from_zero():
    # Constant gradient, no noise: with the exact-exponential moments and μ, ω at t + h,
    # μm = ∇L and ωv = ∇L² from the very first step (t = 0), so every step moves θ by
    # −h ∇L/(|∇L| + ϵ), whatever r·h.
    g = jnp.array([2.0, -0.5])
    loss = lambda t_: jnp.dot(g, t_)  # noqa: E731
    for lr, h in [(1e-3, 1e-3), (1e-3, 0.05), (0.1, 0.01)]:
        m = sd.models.AdamLevy(lr, 1.5, 0.0, epsilon=1e-8)
        s = m.init(jnp.zeros(2))
        for k in range(5):
            new, f = m.step(s, k * h, h, loss, jnp.zeros(2))
            assert f is None
            np.testing.assert_allclose(new.theta - s.theta, -h * jnp.sign(g), rtol=1e-5)
            s = new


def test_adam_v_tracks_noise_scale():
    # Flat loss: v(t) = diag(2ΣΣᵀ)(1 − e^{−r₂t}) and ω_t v_t = diag(2ΣΣᵀ) (SPEC §3.3 choice).
    sig = np.array([[1.0, 0.5], [0.0, 2.0]])
    lr, h = 0.01, 0.01
    m = sd.models.AdamLevy(lr, 1.5, sig, beta2=0.99)
    s = m.init(jnp.zeros(2))
    for k in range(50):
        s, _ = m.step(s, k * h, h, lambda t_: 0.0 * t_[0], jnp.zeros(2))
    target = 2 * np.sum(sig**2, axis=1)
    r2 = 0.01 / lr
    np.testing.assert_allclose(s.v, target * (1 - np.exp(-r2 * 50 * h)), rtol=1e-5)


def test_adal_step_is_discrete_adal():
    # dt = lr: one AdaL iteration with gradient noise u = Σ z; from m = v = 0 the
    # bias-corrected update is −h ĝ/(|ĝ| + ϵ), ĝ = ‖g‖₁ g, g = ∇L + u.
    loss = sd.landscapes.Quadratic(np.array([1.0, 4.0]))
    lr = 0.01
    sig = np.array([0.3, 0.1])
    theta = jnp.array([0.5, -0.25])
    z = jnp.array([1.2, -0.7])
    m = sd.models.AdaL(lr, 1.7, sig, epsilon=1e-8)
    new, f = m.step(m.init(theta), 0.0, lr, loss, z)
    g = np.array([0.5, -1.0]) + sig * np.asarray(z)
    ghat = np.sum(np.abs(g)) * g
    np.testing.assert_allclose(new.theta, theta - lr * ghat / (np.abs(ghat) + 1e-8),
                               rtol=1e-5)
    np.testing.assert_allclose(new.m, ghat * -np.expm1(-(1 - 0.9)), rtol=1e-5)
    assert f is None
    # 30 steps against a plain numpy AdaL (discrete Adam on ‖g‖₁g with β → e^{−(1−β)}).
    b1, b2 = np.exp(-(1 - 0.9)), np.exp(-(1 - 0.999))
    zs = np.asarray(jax.random.normal(jax.random.key(1), (30, 2)))
    state, x, mm, vv = m.init(theta), np.asarray(theta, float), np.zeros(2), np.zeros(2)
    for k in range(30):
        state, _ = m.step(state, k * lr, lr, loss, jnp.asarray(zs[k], theta.dtype))
        g = np.array([1.0, 4.0]) * x + sig * zs[k]
        gh = np.sum(np.abs(g)) * g
        mm = b1 * mm + (1 - b1) * gh
        vv = b2 * vv + (1 - b2) * gh**2
        x = x - lr * (mm / (1 - b1 ** (k + 1))) / (np.sqrt(vv / (1 - b2 ** (k + 1))) + 1e-8)
    np.testing.assert_allclose(state.theta, x, rtol=1e-4, atol=1e-6)
    # runs in the engine (decaying step; the constant step is the loop above)
    th0, ex = loss.basin(0.5)
    r = sd.escape(sd.models.AdaL(0.05, 1.5, 0.5, decay=True), loss, th0, ex, n_paths=32,
                  lanes=32, dt=0.05, t_max=50.0, key=jax.random.key(6), progress=False)
    assert not np.any(np.isnan(r.times))


def test_heavy_jumps_are_exits_never_nan():
    # α = 0.3, Σ = finfo.max/1e9: a jump of S > ~1e9 overflows to ±inf. The box reports
    # ±inf outside, so such a jump is an escape (status 1) with a finite time, as are the
    # smaller heavy jumps that leave the box; nothing diverges (a NaN or an infinite point
    # the exit cannot place outside would). Float32 and float64 alike. (Adam normalizes
    # the noise by Q ≈ sqrt(2)Σ, so its jumps do not overflow: they leave the box.)
    big = float(jnp.finfo(jnp.result_type(float)).max)
    kw = dict(n_paths=32, lanes=32, dt=0.1, t_max=1e4, key=jax.random.key(8), progress=False)
    r = sd.escape(sd.models.SGDLevy(0.1, 0.3, big / 1e9), well_1d, np.zeros(1),
                  sd.exits.Box([-big / 10], [big / 10]), **kw)
    assert r.escaped.all() and np.all(np.isfinite(r.times))
    assert r.n_diverged == 0 and np.sum(r.status == 1) == 32
    r = sd.escape(sd.models.AdamLevy(0.1, 0.3, 1.0), well_1d, np.zeros(1),
                  sd.exits.Box([-1e6], [1e6]), **kw)
    assert r.escaped.all() and np.all(np.isfinite(r.times))


def test_alpha_sweep_compiles_once(count_compiles):
    # α, lr and Σ are traced leaves: a sweep over them reuses one program.
    loss = sd.landscapes.Quadratic(np.array([1.0, 2.0]))
    th0, ex = loss.basin(0.5)

    def run(a, lr, s):
        return sd.escape(sd.models.SGDLevy(lr, a, s), loss, th0, ex, n_paths=32, lanes=32,
                         dt=0.01, t_max=20.0, key=jax.random.key(9), progress=False)

    run(1.5, 0.01, 0.5)
    with count_compiles() as c:
        for a in (1.0, 1.2, 2.0):
            run(a, 0.02, 0.7)
    assert c.n == 0


@pytest.mark.parametrize("cls", [sd.models.SGDLevy, sd.models.AdamLevy, sd.models.AdaL])
def test_bad_input(cls):
    loss = sd.landscapes.Quadratic(np.array([1.0, 2.0]))
    th0, ex = loss.basin(0.5)

    def run(model):
        sd.escape(model, loss, th0, ex, n_paths=2, dt=0.01, t_max=1.0,
                  key=jax.random.key(0), progress=False)

    for a in (0.0, -1.0, 2.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            run(cls(0.01, a, 0.5))
    for lr in (0.0, -0.1):
        with pytest.raises(ValueError, match="lr"):
            run(cls(lr, 1.5, 0.5))
    for sigma in (np.ones(3), np.ones((2, 3)), np.ones((2, 2, 2)), -1.0, [0.5, -0.1]):
        with pytest.raises(ValueError, match="sigma"):
            run(cls(0.01, 1.5, sigma))
    with pytest.raises(TypeError, match="sigma"):
        run(cls(0.01, 1.5, "big"))
    if cls is not sd.models.SGDLevy:
        with pytest.raises(ValueError, match="beta1"):
            run(cls(0.01, 1.5, 0.5, beta1=1.0))


def test_theory_bad_input():
    with pytest.raises(ValueError, match="scale"):
        th.levy_escaping_measure(1.5, np.ones(3), [1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="hessian"):
        th.levy_escaping_measure(1.5, 1.0, [[1.0, 0.0], [0.0, -1.0]], 0.5)
    with pytest.raises(ValueError, match="height"):
        th.levy_exit_time_nd(1.5, 0.1, 1.0, [1.0], 0.0)
    with pytest.raises(ValueError, match="alpha"):
        th.levy_exit_time_nd(2.0, 0.1, 1.0, [1.0], 0.5)
    with pytest.raises(ValueError, match="sigma"):
        th.levy_sgd_vs_adam(1.5, 0.01, np.ones((2, 3)), [1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="lr"):
        th.levy_sgd_vs_adam(1.5, 0.0, 1.0, [1.0, 2.0], 0.5)
