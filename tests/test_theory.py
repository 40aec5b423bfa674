"""Tests of sdesim.theory: the closed forms are checked against independent quadratures,
exact solutions and their own asymptotic limits. Every tolerance says why it is what it is."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special

import sdesim.theory as th

# Quartic double well: minima at +-1, saddle at 0, barrier 1/4,
# U'' = 2 at the minima, -1 at the saddle, U''' = 6x, U'''' = 6  ->  kappa = 3/2.
QUARTIC_BARRIER, QUARTIC_KA, QUARTIC_KB, QUARTIC_KAPPA = 0.25, 2.0, -1.0, 1.5


def quartic(x):
    return x**4 / 4 - x**2 / 2


def quartic_grad(x):
    return x**3 - x


# Cubic: minimum at 0, saddle at 1, barrier 1/6, U'' = 1 - 2x, U''' = -2 (a skewed saddle).
def cubic(x):
    return x**2 / 2 - x**3 / 3


def tilted(x):
    return x**4 / 4 - x**2 / 2 + 0.1 * x


def nested_quad_mfpt(u, x0, c, temperature, split):
    """F4 by scipy.quad of scipy.quad, exponent written as U(y) - U(z) so nothing overflows.
    `split` is the well bottom, where the inner integrand peaks."""

    def inner(y):
        f = lambda z: math.exp((u(y) - u(z)) / temperature)
        left = integrate.quad(f, -np.inf, min(split, y), epsabs=0, epsrel=1e-12)[0]
        right = integrate.quad(f, split, y, epsabs=0, epsrel=1e-12)[0] if y > split else 0
        return left + right

    return integrate.quad(inner, x0, c, epsabs=0, epsrel=1e-11, limit=200)[0] / temperature


# ---------------------------------------------------------------------------------------
# mfpt_1d (F4, F5)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "u, x0, c, temperature, split",
    [
        (quartic, -1.0, 1.0, 0.05, -1.0),  # barrier/T = 5, absorbing in the other well
        (quartic, -1.5, 0.3, 0.1, -1.0),  # start up the wall, absorb just past the saddle
        (tilted, -1.0, 0.8, 0.08, -1.04668),  # asymmetric
    ],
)
def test_mfpt_1d_matches_nested_quad(u, x0, c, temperature, split):
    ref = nested_quad_mfpt(u, x0, c, temperature, split)
    # Both sides are ~1e-10 accurate (quad epsrel 1e-11/1e-12; the panel rule is spectral);
    # 1e-8 leaves room for rounding and is still 4 orders tighter than the 1e-4 required.
    assert th.mfpt_1d(u, x0, c, temperature) == pytest.approx(ref, rel=1e-8)


def test_mfpt_1d_array_start_points_and_grid_convergence():
    x0 = np.array([[-3.0, -1.0], [0.0, 1.0]])
    tau = th.mfpt_1d(quartic, x0, 1.0, 0.05)
    assert tau.shape == (2, 2) and tau.dtype == np.float64
    assert tau[1, 1] == 0.0  # starting on the absorbing point
    # Each entry equals the scalar call (start points become panel edges: no interpolation).
    for idx in np.ndindex(x0.shape):
        assert tau[idx] == pytest.approx(th.mfpt_1d(quartic, x0[idx], 1.0, 0.05), rel=1e-10)
    # 16x more panels changes nothing beyond rounding: the default grid is converged.
    fine = th.mfpt_1d(quartic, x0, 1.0, 0.05, n_grid=1600)
    np.testing.assert_allclose(th.mfpt_1d(quartic, x0, 1.0, 0.05, n_grid=100), fine, rtol=1e-10)


def test_mfpt_1d_start_high_on_the_wall_is_descent_plus_escape():
    # From x0 = -3 (U/T = 315 above the well) the extra time over tau(-1) is the
    # descent, ~ int dy/|U'| = 0.82 at small T; an O(1) number next to tau ~ 730 that a
    # truncation measured from the well bottom (not from x0) would get grossly wrong.
    t3, t1 = th.mfpt_1d(quartic, np.array([-3.0, -1.0]), 1.0, 0.05)
    descent = integrate.quad(lambda y: 1 / abs(quartic_grad(y)), -3.0, -1.1)[0]
    # Noise shortens/lengthens the approach to the bottom: only O(1) agreement is expected.
    assert 0.5 * descent < t3 - t1 < 2.0 * descent


def test_mfpt_1d_mirror_exit_to_the_left():
    left = th.mfpt_1d(tilted, 1.0, -0.5, 0.1)  # exit to the left, confined at +inf
    mirrored = th.mfpt_1d(lambda x: tilted(-x), -1.0, 0.5, 0.1)
    explicit = th.mfpt_1d(tilted, 1.0, -0.5, 0.1, lower=np.inf)
    assert left == pytest.approx(mirrored, rel=1e-12)  # the same computation, mirrored
    assert explicit == pytest.approx(left, rel=1e-12)
    # Symmetric well: both directions agree (panels differ: rounding-level agreement).
    assert th.mfpt_1d(quartic, 1.0, -1.0, 0.05) == pytest.approx(
        th.mfpt_1d(quartic, -1.0, 1.0, 0.05), rel=1e-10)


def test_mfpt_1d_kramers_with_kappa_is_second_order():
    """tau_exact / (tau_K (1 + kappa T)) - 1 = O(T^2): halving T quarters the residual."""
    temps = [0.01, 0.005]
    resid = [
        th.mfpt_1d(quartic, -1.0, 1.0, t)
        / th.kramers_time(QUARTIC_BARRIER, QUARTIC_KA, QUARTIC_KB, t, kappa=QUARTIC_KAPPA)
        - 1
        for t in temps
    ]
    # Measured residual/T^2 ~ 7.5; the ratio of residuals is 4 up to the O(T^3) term
    # (~5% at these T); 3.5..4.5 rejects a first-order residual (ratio 2).
    assert 3.5 < resid[0] / resid[1] < 4.5
    assert abs(resid[1]) < 10 * temps[1] ** 2


@pytest.mark.parametrize(
    "u, x0, c, barrier, ka, kb, kappa",
    [
        (quartic, -1.0, 1.0, 0.25, 2.0, -1.0, 1.5),
        (cubic, 0.0, 2.0, 1 / 6, 1.0, -1.0, 5 / 3),  # kappa = 5*4/24 + 5*4/24
    ],
)
def test_kramers_kappa_by_richardson_extrapolation(u, x0, c, barrier, ka, kb, kappa):
    # f(T) = (tau_exact/tau_K - 1)/T = kappa + O(T); 2 f(T/2) - f(T) = kappa + O(T^2).
    f = [(th.mfpt_1d(u, x0, c, t) / th.kramers_time(barrier, ka, kb, t) - 1) / t
         for t in (0.01, 0.005)]
    # Measured: 1.4964 (quartic), 1.657 (cubic): the O(T^2) remainder is < 1%; 2% is safe.
    assert 2 * f[1] - f[0] == pytest.approx(kappa, rel=0.02)


def test_kramers_kappa_values():
    assert th.kramers_kappa(2.0, 6.0, 6.0, -1.0, 0.0, 6.0) == pytest.approx(1.5, abs=1e-15)
    assert th.kramers_kappa(1.0, -2.0, 0.0, -1.0, -2.0, 0.0) == pytest.approx(5 / 3, rel=1e-15)


def test_kramers_saddle_absorption_with_skew_term():
    # Cubic: absorbing exactly at the skewed saddle b = 1. The half-Gaussian saddle
    # integral has an O(sqrt T) term; with it the residual is O(T^1.5).
    t = 0.005
    exact = th.mfpt_1d(cubic, 0.0, 1.0, t)
    with_skew = th.kramers_from_potential(cubic, 0.0, 1.0, t, where="saddle")
    plain_half = th.kramers_time(1 / 6, 1.0, -1.0, t, kappa=5 / 3, where="saddle")
    assert plain_half == pytest.approx(0.5 * th.kramers_time(1 / 6, 1.0, -1.0, t, kappa=5 / 3))
    # Measured residual/T^1.5 ~ 3.2 -> 1.1e-3; without the skew term it is 4% (0.53 sqrt T).
    assert abs(exact / with_skew - 1) < 2e-3
    assert abs(exact / plain_half - 1) > 0.03


def test_mfpt_1d_stable_at_large_barrier():
    t = QUARTIC_BARRIER / 40  # barrier/T = 40
    tau = th.mfpt_1d(quartic, -1.0, 1.0, t)
    assert np.isfinite(tau)
    log_kramers = 40 + math.log(2 * math.pi / math.sqrt(QUARTIC_KA * abs(QUARTIC_KB)))
    # log tau - log tau_K = log(1 + kappa T + ...) ~ 0.01: well within 1% of log tau ~ 41.5.
    assert math.log(tau) == pytest.approx(log_kramers, rel=0.01)
    # With the kappa correction the relative residual is O(T^2) ~ 3e-4 (7.5 T^2).
    assert tau == pytest.approx(
        th.kramers_time(QUARTIC_BARRIER, QUARTIC_KA, QUARTIC_KB, t, kappa=QUARTIC_KAPPA),
        rel=1e-3)
    # barrier/T = 1000: tau ~ e^1000 overflows float64 (inf, no warning), log tau does not.
    t = QUARTIC_BARRIER / 1000
    log_tau = th.mfpt_1d(quartic, -1.0, 1.0, t, log=True)
    assert log_tau == pytest.approx(1000 + math.log(2 * math.pi / math.sqrt(2)) + 1.5 * t,
                                    abs=1e-5)  # the O(T^2) remainder is ~5e-7
    assert th.mfpt_1d(quartic, -1.0, 1.0, t) == np.inf


def test_absorbing_lower_boundary():
    x0 = np.linspace(-1.5, 1.0, 6)
    refl = th.mfpt_1d(quartic, x0, 1.0, 0.05, lower=-1.5)
    absb = th.mfpt_1d(quartic, x0, 1.0, 0.05, lower=-1.5, lower_bc="absorbing")
    assert absb[0] == 0.0 and absb[-1] == 0.0 and refl[-1] == 0.0
    assert np.all(absb[1:-1] < refl[1:-1]) and np.all(absb[1:-1] > 0)
    # A lower end far up the wall (U/T = 315 at -3) is never reached: absorbing ==
    # reflecting == no boundary, to within e^-300-ish corrections (rounding-level here).
    far = [th.mfpt_1d(quartic, -1.0, 1.0, 0.05, lower=-3.0, lower_bc=bc)
           for bc in ("reflecting", "absorbing")]
    free = th.mfpt_1d(quartic, -1.0, 1.0, 0.05)
    assert far == pytest.approx([free, free], rel=1e-9)


def test_absorbing_both_ends_matches_independent_formula():
    # tau_abs(x) = tau_refl(x) - tau_refl(L) (S(c) - S(x)) / (S(c) - S(L)): a different
    # (cancellation-prone, fine at this moderate barrier) route to F5.
    t, lo, c = 0.1, -1.3, 0.5
    x = np.array([-1.0, -0.2, 0.3])
    refl = th.mfpt_1d(quartic, np.append(x, lo), c, t, lower=lo)
    scale = lambda a, b: integrate.quad(lambda y: math.exp(quartic(y) / t), a, b,
                                        epsabs=0, epsrel=1e-12)[0]
    ref = refl[:-1] - refl[-1] * np.array([scale(xi, c) for xi in x]) / scale(lo, c)
    absb = th.mfpt_1d(quartic, x, c, t, lower=lo, lower_bc="absorbing")
    # Cancellation costs at most a factor refl/absb ~ 10 of the 1e-12 accuracy: 1e-8 safe.
    np.testing.assert_allclose(absb, ref, rtol=1e-8)


# ---------------------------------------------------------------------------------------
# mfpt_1d_ito (F7)
# ---------------------------------------------------------------------------------------


def test_ito_equals_langevin_for_constant_variance():
    t = 0.07
    x0 = np.array([-1.2, -1.0, 0.0, 0.9])
    ito = th.mfpt_1d_ito(lambda x: -quartic_grad(x), lambda x: 2 * t + 0 * x, x0, 1.0)
    # Same formula through log s = int 2mu/v (spectral) instead of U/T: rounding-level.
    np.testing.assert_allclose(ito, th.mfpt_1d(quartic, x0, 1.0, t), rtol=1e-9)
    absorbing = dict(lower=-1.5, lower_bc="absorbing")
    np.testing.assert_allclose(
        th.mfpt_1d_ito(lambda x: -quartic_grad(x), lambda x: 2 * t + 0 * x, x0, 1.0,
                       **absorbing),
        th.mfpt_1d(quartic, x0, 1.0, t, **absorbing), rtol=1e-9)
    # Exit to the left (mirror map: the drift changes sign, the variance does not).
    np.testing.assert_allclose(
        th.mfpt_1d_ito(lambda x: -quartic_grad(x) - 0.1, lambda x: 2 * t + 0 * x, 1.0, -0.5),
        th.mfpt_1d(tilted, 1.0, -0.5, t), rtol=1e-9)


def test_ito_brownian_motion_exact():
    v, c = 0.7, 2.0
    x = np.array([0.0, 0.3, 1.0, 1.9, 2.0])
    zero, const = (lambda y: 0 * y), (lambda y: v + 0 * y)
    # Exact polynomials: the quadrature is exact up to rounding.
    np.testing.assert_allclose(th.mfpt_1d_ito(zero, const, x, c, 0.0),
                               (c**2 - x**2) / v, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(th.mfpt_1d_ito(zero, const, x, c, 0.0, lower_bc="absorbing"),
                               x * (c - x) / v, rtol=1e-12, atol=1e-13)


def test_ito_state_dependent_variance_exact():
    # dX = sigma X dW (no drift, v = sigma^2 x^2) on (l, c): s = 1, m = 2/(sigma^2 x^2).
    # Reflecting at l: tau = (2/sigma^2) [(c - x)/l - ln(c/x)]. Both absorbing (Green's
    # function with S(x) = x): tau = (2/sigma^2) [(c-x) P + (x-l) Q]/(c-l) with
    # P = ln(x/l) + l/x - 1, Q = c/x - 1 - ln(c/x).
    sigma, lo, c = 0.8, 0.5, 3.0
    x = np.array([0.6, 1.0, 2.0, 2.9])
    zero, var = (lambda y: 0 * y), (lambda y: (sigma * y) ** 2)
    refl = 2 / sigma**2 * ((c - x) / lo - np.log(c / x))
    p, q = np.log(x / lo) + lo / x - 1, c / x - 1 - np.log(c / x)
    absb = 2 / sigma**2 * ((c - x) * p + (x - lo) * q) / (c - lo)
    # Smooth rational integrands: spectral accuracy, rounding-level agreement.
    np.testing.assert_allclose(th.mfpt_1d_ito(zero, var, x, c, lo), refl, rtol=1e-10)
    np.testing.assert_allclose(th.mfpt_1d_ito(zero, var, x, c, lo, lower_bc="absorbing"),
                               absb, rtol=1e-10)


def test_ito_variance_must_be_positive():
    with pytest.raises(ValueError, match=r"variance must be > 0.*variance\("):
        th.mfpt_1d_ito(lambda x: -x, lambda x: x, 0.5, 1.0, lower=-1.0)


# ---------------------------------------------------------------------------------------
# Potentials given as JAX or scalar functions
# ---------------------------------------------------------------------------------------


def test_potential_conventions():
    jnp = pytest.importorskip("jax.numpy")
    ref = th.mfpt_1d(quartic, -1.0, 1.0, 0.05)
    landscape = lambda theta: jnp.sum(theta**4 / 4 - theta**2 / 2)  # theta of shape (1,)
    indexed = lambda theta: theta[0] ** 4 / 4 - theta[0] ** 2 / 2
    scalar_python = lambda x: math.pow(x, 4) / 4 - x * x / 2  # math: neither numpy nor JAX
    for u in (landscape, indexed, lambda x: jnp.asarray(x) ** 4 / 4 - x**2 / 2, scalar_python):
        # Evaluated in float64 (JAX under enable_x64): agreement to rounding.
        assert th.mfpt_1d(u, -1.0, 1.0, 0.05) == pytest.approx(ref, rel=1e-10)


# ---------------------------------------------------------------------------------------
# Kramers and Eyring–Kramers
# ---------------------------------------------------------------------------------------


def test_kramers_time_values():
    tau = th.kramers_time(0.25, 2.0, -1.0, 0.05)
    assert tau == pytest.approx(2 * math.pi / math.sqrt(2) * math.exp(5), rel=1e-14)
    assert th.kramers_time(0.25, 2.0, -1.0, 0.05, kappa=1.5) == pytest.approx(tau * 1.075)
    assert th.kramers_time(0.25, 2.0, -1.0, 0.05, where="saddle") == pytest.approx(tau / 2)


def test_kramers_from_potential_uses_exact_derivatives_for_polynomials():
    # 9-point differences are exact for degree <= 8: the only error is rounding.
    for where in ("beyond", "saddle"):
        got = th.kramers_from_potential(quartic, -1.0, 0.0, 0.02, where=where)
        want = th.kramers_time(0.25, 2.0, -1.0, 0.02, kappa=1.5, where=where)
        assert got == pytest.approx(want, rel=1e-8)
    plain = th.kramers_from_potential(quartic, 1.0, 0.0, 0.02, correction=False)
    assert plain == pytest.approx(th.kramers_time(0.25, 2.0, -1.0, 0.02), rel=1e-8)
    # Escape to the left from a mirrored skewed well gives the same time.
    mirrored = th.kramers_from_potential(lambda x: cubic(-x), 0.0, -1.0, 0.01, where="saddle")
    assert mirrored == pytest.approx(
        th.kramers_from_potential(cubic, 0.0, 1.0, 0.01, where="saddle"), rel=1e-8)


def test_eyring_kramers_reduces_to_kramers():
    t, barrier, ka, kb = 0.05, 0.25, 2.0, -1.0
    tau_k = th.kramers_time(barrier, ka, kb, t)
    assert th.eyring_kramers_time(barrier, [[ka]], [[kb]], t) == pytest.approx(tau_k, rel=1e-13)
    # Separable U(x) + k y^2/2: the transverse factor sqrt(k/k) cancels ...
    assert th.eyring_kramers_time(barrier, np.diag([ka, 3.0]), np.diag([kb, 3.0]), t) == \
        pytest.approx(tau_k, rel=1e-13)
    # ... and with curvature k_a at the minimum, k_b at the saddle it is sqrt(k_b/k_a).
    got = th.eyring_kramers_time(barrier, np.diag([ka, 4.0, 1.0]), np.diag([kb, 1.0, 1.0]), t)
    assert got == pytest.approx(tau_k * math.sqrt(1.0 / 4.0), rel=1e-13)
    # Invariant under a rotation of coordinates (only eigenvalues enter).
    c, s = math.cos(0.3), math.sin(0.3)
    q = np.array([[c, -s], [s, c]])
    rot = th.eyring_kramers_time(barrier, q @ np.diag([ka, 4.0]) @ q.T,
                                 q @ np.diag([kb, 1.0]) @ q.T, t)
    assert rot == pytest.approx(tau_k * 0.5, rel=1e-12)


@pytest.mark.parametrize(
    "h_a, h_b, name",
    [
        (np.diag([1.0, -1.0]), np.diag([-1.0, 1.0]), "hess_min"),  # not positive definite
        (np.diag([1.0, 1.0]), np.diag([-1.0, -1.0]), "hess_saddle"),  # index 2
        (np.diag([1.0, 1.0]), np.diag([1.0, 1.0]), "hess_saddle"),  # a minimum
        (np.diag([1.0, 1.0]), np.diag([-1.0]), "hess_saddle"),  # shape mismatch
        (np.array([[1.0, 0.5], [0.0, 1.0]]), np.diag([-1.0, 1.0]), "hess_min"),  # asymmetric
    ],
)
def test_eyring_kramers_rejects_bad_hessians(h_a, h_b, name):
    with pytest.raises(ValueError, match=name):
        th.eyring_kramers_time(0.25, h_a, h_b, 0.05)


# ---------------------------------------------------------------------------------------
# Underdamped: F10, F11, F12
# ---------------------------------------------------------------------------------------


def test_underdamped_smoluchowski_limit():
    barrier, ka, kb, mass, t = 0.25, 2.0, -1.0, 2.0, 0.05
    tau_k = th.kramers_time(barrier, ka, kb, t)  # unit mobility
    omega_b2 = abs(kb) / mass
    for gamma in (10.0, 100.0, 1e8):
        k = th.kramers_underdamped_rate(barrier, ka, kb, mass, gamma, t)
        # Overdamped with mobility 1/(gamma M): k -> 1/(gamma M tau_K). Exactly,
        # lambda_b = (omega_b^2/gamma)(1 - x + 2x^2 - 5x^3 + ...), x = omega_b^2/gamma^2
        # (Catalan numbers): the next term bounds the tolerance, plus 1e-14 for rounding.
        x = omega_b2 / gamma**2
        assert k * gamma * mass * tau_k - 1 == pytest.approx(-x + 2 * x**2,
                                                               abs=6 * x**3 + 1e-14)
    # gamma = 1e8: the naive sqrt(g^2/4 + w^2) - g/2 would lose all digits; ours is exact.
    k = th.kramers_underdamped_rate(barrier, ka, kb, mass, 1e8, t)
    assert k * 1e8 * mass * tau_k == pytest.approx(1.0, rel=1e-14)


def test_underdamped_f10_value():
    # omega_a = 1, omega_b = sqrt(1/2), gamma = 1: lambda_b = sqrt(1/4 + 1/2) - 1/2.
    k = th.kramers_underdamped_rate(0.25, 2.0, -1.0, 2.0, 1.0, 0.05)
    lam = math.sqrt(0.75) - 0.5
    assert k == pytest.approx(lam / math.sqrt(0.5) / (2 * math.pi) * math.exp(-5), rel=1e-14)


def test_melnikov_meshkov_limits_and_monotonicity():
    delta = np.logspace(-3, 3, 25)
    a = th.melnikov_meshkov_A(delta)
    assert a.shape == delta.shape
    # Strictly increasing until A rounds to 1.0 (1 - A ~ e^{-Delta/4} < 1e-16 past ~140).
    below = a < 1
    assert np.all(np.diff(a[below]) > 0) and np.all(np.diff(a) >= 0)
    assert np.all(a > 0) and np.all(a <= 1) and a[0] < 1e-3 and a[-1] == 1.0
    # Small Delta: A = Delta exp(zeta(1/2) sqrt(Delta/pi) + ...) (our expansion of F12: the
    # log Delta term integrates to 1, the constant int ln(y^2+1/4)/(y^2+1/4) = 0, and the
    # scaling y = t/sqrt(Delta) gives the zeta(1/2) term). The next term is O(Delta):
    # tolerance 0.1 * Delta.
    for d in (1e-3, 1e-2):
        want = d * math.exp(special.zeta(0.5) * math.sqrt(d / math.pi))
        assert th.melnikov_meshkov_A(d) == pytest.approx(want, rel=0.1 * d)
    assert th.melnikov_meshkov_A(1e-3) / 1e-3 == pytest.approx(1.0, abs=0.03)  # A ~ Delta
    # Large Delta: 1 - A ~ (2/sqrt(pi Delta)) e^{-Delta/4} (Laplace at y = 0); relative
    # corrections O(2/Delta): 10% at Delta = 40, 4% at 100.
    for d, rel in ((40.0, 0.1), (100.0, 0.04)):
        got = 1 - th.melnikov_meshkov_A(d)
        assert got == pytest.approx(2 * math.exp(-d / 4) / math.sqrt(math.pi * d), rel=rel)
    assert th.melnikov_meshkov_A(1e3) == 1.0 and th.melnikov_meshkov_A(np.inf) == 1.0


def test_melnikov_meshkov_against_full_line_quadrature():
    # The definition as written (full line, one quad call); ours splits the half line.
    for d in (1e-3, 0.1, 1.0, 10.0):
        f = lambda y, d=d: math.log(-math.expm1(-d * (y * y + 0.25))) / (y * y + 0.25)
        log_a = integrate.quad(f, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13,
                               limit=1000)[0] / (2 * math.pi)
        # Both quads are converged to ~1e-12.
        assert th.melnikov_meshkov_A(d) == pytest.approx(math.exp(log_a), rel=1e-9)


def test_turnover_rate_between_weak_and_moderate_friction():
    barrier, ka, kb, mass, t = 0.25, 2.0, -1.0, 2.0, 0.05
    action = th.barrier_action(quartic, -1.0, 0.0, mass)
    omega_b = math.sqrt(abs(kb) / mass)
    for gamma in (1e-5, 1e-4):
        k = th.kramers_underdamped_rate(barrier, ka, kb, mass, gamma, t, action=action)
        weak = th.weak_friction_rate(barrier, ka, mass, gamma, t, action)
        d = gamma * action / t
        lam_over_omega = 1 - gamma / (2 * omega_b)
        # k/k_F11 = (A/Delta)(lambda_b/omega_b): both factors known to O(Delta), O(gamma^2).
        assert k / weak == pytest.approx(
            math.exp(special.zeta(0.5) * math.sqrt(d / math.pi)) * lam_over_omega,
            rel=max(0.1 * d, 1e-6))
    # Strong friction: A(Delta) = 1 - O(e^{-Delta/4}), Delta = 377 at gamma = 10.
    k = th.kramers_underdamped_rate(barrier, ka, kb, mass, 10.0, t, action=action)
    assert k == pytest.approx(th.kramers_underdamped_rate(barrier, ka, kb, mass, 10.0, t),
                              rel=1e-12)
    # The turnover: the rate rises with friction, peaks, then falls.
    gammas = np.logspace(-4, 2, 13)
    rates = [th.kramers_underdamped_rate(barrier, ka, kb, mass, g, t, action=action)
             for g in gammas]
    peak = int(np.argmax(rates))
    assert 0 < peak < len(gammas) - 1
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)


def test_barrier_action_closed_forms():
    # Quartic: S = 2 int_0^sqrt2 sqrt(2M(x^2/2 - x^4/4)) dx = 4 sqrt(M) / 3.
    for mass, side in ((2.0, -1.0), (0.5, 1.0)):
        assert th.barrier_action(quartic, side, 0.0, mass) == pytest.approx(
            4 * math.sqrt(mass) / 3, rel=1e-12)  # spectral rule, exact turning point
    # Cubic: turning point -1/2, S = 2 sqrt(M/3) int (1-x) sqrt(1+2x) dx = 6 sqrt(M) / 5.
    assert th.barrier_action(cubic, 0.0, 1.0, 3.0) == pytest.approx(1.2 * math.sqrt(3),
                                                                     rel=1e-12)


def test_barrier_action_against_direct_quadrature():
    mass = 1.5
    mins = np.sort(np.roots([1.0, 0.0, -1.0, 0.1]).real)  # U' = x^3 - x + 0.1 of `tilted`
    a, b = mins[0], mins[1]
    u_b = tilted(b)
    x1 = optimize.brentq(lambda x: tilted(x) - u_b, a - 3.0, a)
    direct = 2 * integrate.quad(lambda x: math.sqrt(max(2 * mass * (u_b - tilted(x)), 0.0)),
                                x1, b, epsabs=0, epsrel=1e-12)[0]
    # quad handles the sqrt endpoint to ~1e-10; ours is spectral after x = x1 + L t^2.
    assert th.barrier_action(tilted, a, b, mass) == pytest.approx(direct, rel=1e-8)


# ---------------------------------------------------------------------------------------
# SGD diffusion (F14)
# ---------------------------------------------------------------------------------------


def test_sgd_exponent_values():
    # 2 B dL / (eta H_a): linear in B/eta and in 1/H_a with slope 2 dL.
    assert th.sgd_escape_exponent(0.5, 2.0, 0.1, 8) == pytest.approx(2 * 8 * 0.5 / (0.1 * 2))
    assert th.sgd_escape_time(0.5, 2.0, 0.1, 8) == pytest.approx(math.pi * math.exp(40))
    assert th.sgd_escape_exponent(0.5, 2.0, 0.1, 8, hess_saddle=-4.0, s=0.5) == \
        pytest.approx(2 * 8 * 0.5 / 0.1 * (0.25 + 0.125))


def test_sgd_escape_time_against_ito_quadrature():
    """Piecewise-quadratic well with D = eta |L''| / (2B) exactly (piecewise constant)."""
    h_a, h_b, barrier = 1.0, -2.0, 1.0
    b = math.sqrt(3.0)
    x_s = 2 * b / 3  # C^1 junction of h_a x^2/2 and barrier + h_b (x-b)^2/2
    s = (h_a * x_s**2 / 2) / barrier  # Xie's path parameter: here 2/3
    lr, batch = 0.1, 2.4  # exponent (2B dL/eta)(s/H_a + (1-s)/|H_b|) = 40
    grad = lambda x: np.where(x < x_s, h_a * x, h_b * (x - b))
    var = lambda x: lr * np.where(x < x_s, h_a, abs(h_b)) / batch
    c = b + 8 * math.sqrt(lr / (2 * batch))  # 8 saddle widths past b: "beyond"
    exact = th.mfpt_1d_ito(lambda x: -grad(x), var, 0.0, c, breakpoints=[x_s])
    est = th.sgd_escape_time(barrier, h_a, lr, batch, hess_saddle=h_b, s=s)
    assert th.sgd_escape_exponent(barrier, h_a, lr, batch, hess_saddle=h_b, s=s) == \
        pytest.approx(40.0)
    # kappa = 0 for quadratic pieces; what remains is the saddle Gaussian cut at x_s,
    # 4 widths from b (tail 3e-5): 1e-4.
    assert exact == pytest.approx(est, rel=1e-4)


# ---------------------------------------------------------------------------------------
# Lévy (F20)
# ---------------------------------------------------------------------------------------


def test_levy_constant():
    assert th.levy_constant(1.0) == pytest.approx(1 / math.pi, rel=1e-15)  # Cauchy
    alpha = np.array([0.5, 1.5, 1.9])
    # Samorodnitsky–Taqqu tail constant: P(S > u) ~ (1-a)/(2 Gamma(2-a) cos(pi a/2)) u^-a
    # must equal c_a/a (reflection formula; an independent expression).
    st = (1 - alpha) / (2 * special.gamma(2 - alpha) * np.cos(np.pi * alpha / 2))
    np.testing.assert_allclose(th.levy_constant(alpha) / alpha, st, rtol=1e-13)


def test_levy_exit_time_values():
    # alpha = 1, eps = 0.1, a = b = 1: 1 / ((1/pi) * 0.1 * 2) = 5 pi.
    assert th.levy_exit_time(1.0, 0.1, 1.0, 1.0) == pytest.approx(5 * math.pi, rel=1e-14)
    alpha, eps, a, b = 1.5, 0.05, 1.0, 2.0
    c = math.gamma(2.5) * math.sin(0.75 * math.pi) / math.pi
    want = alpha / (c * eps**alpha * (a**-alpha + b**-alpha))
    assert th.levy_exit_time(alpha, eps, a, b) == pytest.approx(want, rel=1e-14)
    # One-sided: b = inf drops that side's jump rate.
    assert th.levy_exit_time(alpha, eps, a, np.inf) == pytest.approx(
        alpha / (c * eps**alpha * a**-alpha), rel=1e-14)
    # Polynomial in eps: halving eps multiplies the time by 2^alpha. Broadcasts.
    times = th.levy_exit_time(alpha, np.array([0.1, 0.05]), a, b)
    assert times.shape == (2,) and times[1] / times[0] == pytest.approx(2**alpha)


# ---------------------------------------------------------------------------------------
# Bad input: ValueError naming the argument
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, 0.0), "temperature"),
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, -0.1), "temperature"),
        (lambda: th.mfpt_1d(quartic, np.array([-1.0, 2.0]), 1.0, 0.1), "x0"),
        (lambda: th.mfpt_1d(quartic, -2.0, 1.0, 0.1, lower=-1.0), "x0"),
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, 0.1, lower_bc="absorbing"), "lower"),
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, 0.1, lower_bc="sticky"), "lower_bc"),
        (lambda: th.mfpt_1d(quartic, -1.0, np.nan, 0.1), "c"),
        (lambda: th.mfpt_1d(lambda x: x, 0.0, 1.0, 0.1), "potential"),  # not confining
        (lambda: th.mfpt_1d(lambda x: 0 * x, 0.0, 1.0, 0.1), "potential"),  # flat
        (lambda: th.kramers_time(-0.1, 2.0, -1.0, 0.1), "barrier"),
        (lambda: th.kramers_time(0.25, -2.0, -1.0, 0.1), "curvature_min"),
        (lambda: th.kramers_time(0.25, 2.0, 1.0, 0.1), "curvature_saddle"),
        (lambda: th.kramers_time(0.25, 2.0, -1.0, 0.1, where="top"), "where"),
        (lambda: th.kramers_kappa(2.0, 6.0, 6.0, 1.0, 0.0, 6.0), "d2b"),
        (lambda: th.kramers_from_potential(quartic, 0.0, -1.0, 0.1), "minimum"),
        (lambda: th.eyring_kramers_time(0.25, [[2.0]], [[-1.0]], 0.0), "temperature"),
        (lambda: th.kramers_underdamped_rate(0.25, 2.0, -1.0, 0.0, 1.0, 0.1), "mass"),
        (lambda: th.kramers_underdamped_rate(0.25, 2.0, -1.0, 1.0, -1.0, 0.1), "friction"),
        (lambda: th.kramers_underdamped_rate(0.25, 2.0, -1.0, 1.0, 1.0, 0.1, action=-1),
         "action"),
        (lambda: th.melnikov_meshkov_A(0.0), "delta"),
        (lambda: th.weak_friction_rate(0.25, 2.0, 1.0, 1.0, 0.1, 0.0), "action"),
        (lambda: th.barrier_action(quartic, -1.0, -1.0, 1.0), "saddle"),
        (lambda: th.barrier_action(quartic, -1.0, 0.0, 0.0), "mass"),
        (lambda: th.sgd_escape_time(0.5, 2.0, 0.0, 8), "lr"),
        (lambda: th.sgd_escape_time(0.5, 2.0, 0.1, -8), "batch_size"),
        (lambda: th.sgd_escape_time(0.5, -2.0, 0.1, 8), "hess_min"),
        (lambda: th.sgd_escape_time(0.5, 2.0, 0.1, 8, s=0.5), "hess_saddle"),
        (lambda: th.levy_exit_time(2.0, 0.1, 1.0, 1.0), "alpha"),
        (lambda: th.levy_exit_time(0.0, 0.1, 1.0, 1.0), "alpha"),
        (lambda: th.levy_exit_time(1.5, 0.0, 1.0, 1.0), "eps"),
        (lambda: th.levy_exit_time(1.5, 0.1, -1.0, 1.0), "a"),
        (lambda: th.levy_exit_time(1.5, 0.1, 1.0, 0.0), "b"),
        (lambda: th.levy_constant(2.5), "alpha"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_bad_input_raises_type_error_for_non_numbers():
    # sdesim._checks.real's rule: not a number -> TypeError naming the argument
    for bad in (None, "1.5", True, 1 + 2j):
        with pytest.raises(TypeError, match=r"^temperature must be a real number"):
            th.kramers_time(0.25, 2.0, -1.0, bad)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, 0.1, n_grid=2), "n_grid"),
        (lambda: th.mfpt_1d(quartic, -1.0, 1.0, 0.1, n_grid=8.0), "n_grid"),
        (lambda: th.sgd_escape_time(0.5, 2.0, 0.1, 8, hess_saddle=-1.0, s=1.5), "s"),
        (lambda: th.optimizer_dynamics("rmsprop", 0.1, 1.0), "optimizer"),
        (lambda: th.optimizer_dynamics("sgd", 0.1, -1.0), "noise_var"),
        (lambda: th.optimizer_dynamics("momentum", 0.1, 1.0, beta1=1.0), "beta1"),
        (lambda: th.adam_levy_preconditioner(0.3, -1e-8), "epsilon"),
        (lambda: th.momentum_escape_time(0.5, 2.0, 1.0, 0.1, 8), "hess_saddle"),
    ],
)
def test_more_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_public_names_survive_the_package_split():
    # sdesim.theory's __all__ when it was one module (before issue 13), plus `reference`
    names = ["adam_levy_preconditioner", "barrier_action", "escape_exponent",
             "eyring_kramers_time", "kramers_from_potential", "kramers_kappa", "kramers_time",
             "kramers_underdamped_rate", "levy_constant", "levy_escaping_measure",
             "levy_exit_time", "levy_exit_time_nd", "levy_jump_rate", "levy_sgd_vs_adam",
             "melnikov_meshkov_A", "mfpt_1d", "mfpt_1d_ito", "momentum_escape_time",
             "optimizer_dynamics", "sgd_escape_exponent", "sgd_escape_time",
             "weak_friction_rate"]
    # names are added freely (later: mfpt_grid, GridMFPT), never removed or renamed
    assert set(names) | {"Reference", "reference", "Prediction", "predict", "mfpt_grid",
                         "GridMFPT"} <= set(th.__all__)
    assert len(th.__all__) == len(set(th.__all__))
    assert all(callable(getattr(th, n)) for n in th.__all__)


# ---------------------------------------------------------------------------------------
# reference(model, loss, theta0, exit): the closed form of a run. Its numbers must equal
# what `sdesim run` printed before it existed (cli._reference at commit fcd299e, which read
# the config dicts): each expected value below is that recipe, called directly.
# ---------------------------------------------------------------------------------------

_X64 = bool(__import__("jax").config.jax_enable_x64)


def _st_cli_recipe(model, one, valley):
    """cli._reference's F7 computation (variance = (sqrt(η)·B)² of the 1-D landscape)."""
    import jax
    import jax.numpy as jnp

    cp = one.critical_points()
    drift = lambda x: -np.asarray(jax.vmap(jax.grad(lambda t: one(t[None])))(
        jnp.asarray(x)), float)
    variance = lambda x: np.asarray(jax.vmap(lambda t: (jnp.sqrt(jnp.asarray(
        model.lr, t.dtype)) * model.noise.factor(t[None], one))[0] ** 2)(jnp.asarray(x)), float)
    return th.mfpt_1d_ito(drift, variance, cp[f"{valley}_min"], cp["saddle"],
                          lower=np.inf if valley == "local" else -np.inf)


def test_reference_styblinski_tang_poses_the_cli_problem(monkeypatch):
    # F7 itself is checked in the slow tests below (its first call compiles ~1.6k small
    # XLA programs, ~25 s on 2 busy cores); here: which 1-D problem reference() poses
    import importlib

    import jax.numpy as jnp

    import sdesim as sd

    # the module (sdesim.theory.predict, where reference lives), not the function of the
    # same name that sdesim.theory exports (theory.predict(model, loss, theta0))
    predict = importlib.import_module("sdesim.theory.predict")
    calls = []
    monkeypatch.setattr(predict, "mfpt_1d_ito",
                        lambda *a, **kw: calls.append((a, kw)) or 100.0)
    loss = sd.landscapes.StyblinskiTang(4, 1.0, 1.0)
    one = sd.landscapes.StyblinskiTang(1, 1.0, 1.0)
    cp = one.critical_points()
    model = sd.models.SGD(0.06, sd.noise.minibatch(None, 4.0))
    (t_loc, e_loc), (t_glob, _) = loss.basin("local"), loss.basin("global")
    for valley, lower, t0, ex in (("local", np.inf, t_loc, e_loc),
                                  ("local", np.inf, None, e_loc),
                                  ("global", -np.inf, jnp.asarray(t_glob), None)):
        calls.clear()
        ref = th.reference(model, loss, t0, ex)
        (drift, variance, x0, c), kw = calls[0]
        assert (x0, c, kw) == (cp[f"{valley}_min"], cp["saddle"], {"lower": lower})
        assert ref.mean_time == 100.0 / 4 and ref.details == {"tau_1d": 100.0}
    # one coordinate: drift -L_1'(x) (data_std 1: 2x³ - 10x + 2.5), variance ηC(x)/B
    # (float32 outside mfpt_1d_ito's float64 context: rtol 1e-5)
    x = np.array([-2.5, 0.0, 2.5])
    cov = np.asarray(one.grad_cov(jnp.asarray(x)), float)
    assert np.allclose(variance(x), 0.06 * cov / 4.0, rtol=1e-5)
    assert np.allclose(drift(x), -(2 * x**3 - 10 * x + 2.5), rtol=1e-5)
    calls.clear()
    th.reference(sd.models.Langevin(2.0), loss, *loss.basin("local"))
    assert np.array_equal(calls[0][0][1](x), np.full(3, 4.0))


@pytest.mark.slow
def test_reference_styblinski_tang_sgd_is_the_cli_number():
    import sdesim as sd

    # the built-in default experiment (`sdesim run`): 10-D, SGD lr 0.06, minibatch B = 4
    loss = sd.landscapes.StyblinskiTang(10, 1.0, 1.0)
    model = sd.models.SGD(0.06, sd.noise.minibatch(None, 4.0))
    theta0, exit = loss.basin("local")
    ref = th.reference(model, loss, theta0, exit)
    tau1 = _st_cli_recipe(model, sd.landscapes.StyblinskiTang(1, 1.0, 1.0), "local")
    assert ref.details["tau_1d"] == float(tau1)
    assert ref.mean_time == float(tau1) / 10
    assert ref.formula.startswith("F7")
    assert set(ref.as_dict()) == {"formula", "tau_1d", "mean_time", "assumptions"}
    # what `sdesim run` printed at fcd299e (float32: lr is rounded to float32 in the model)
    # 1e-12: the quadrature is deterministic; only JAX's last bits may move across CPUs
    assert ref.mean_time == pytest.approx(9.534888102275627 if _X64 else 9.53488947939492,
                                          rel=1e-12)


@pytest.mark.slow
def test_reference_styblinski_tang_other_noises_are_the_cli_numbers():
    import jax.numpy as jnp

    import sdesim as sd

    loss = sd.landscapes.StyblinskiTang(3, 1.0, 1.0)
    theta0, exit = loss.basin("local")
    # minibatch_fixed: the exact minibatch covariance at the start held fixed (B = 5):
    # variance lr * C_11 per coordinate (cli._reference at fcd299e, hard-coded there)
    cov = np.asarray(loss.grad_cov(jnp.asarray(theta0)), float) / 5.0
    model = sd.models.SGD(0.06, sd.noise.fixed(cov))
    ref = th.reference(model, loss, theta0, exit)
    assert ref.mean_time == pytest.approx(0.7250980666809194 if _X64 else 0.7250979294503296,
                                          rel=1e-12)
    # Langevin in the global valley (theta0=None: the start of the basin `exit` belongs to)
    loss = sd.landscapes.StyblinskiTang(3, 1.0, 0.0)
    ref = th.reference(sd.models.Langevin(2.5), loss, None, loss.basin("global")[1])
    assert ref.mean_time == pytest.approx(312774.3946678839, rel=1e-12)
    # Hessian noise with a floor, lr 0.5, B = 1
    loss = sd.landscapes.StyblinskiTang(3, 1.0, 1.0)
    model = sd.models.SGD(0.5, sd.noise.hessian(1.0, 0.5))
    ref = th.reference(model, loss, *loss.basin("local"))
    assert ref.details["tau_1d"] == float(_st_cli_recipe(
        model, sd.landscapes.StyblinskiTang(1, 1.0, 1.0), "local"))
    assert ref.mean_time == pytest.approx(13275.718953414034, rel=1e-12)


def test_reference_double_well_is_the_cli_number():
    import jax.numpy as jnp

    import sdesim as sd

    loss = sd.landscapes.DoubleWell(1.0, 1.0)  # examples/kramers_double_well.toml
    model = sd.models.Langevin(0.25)
    cp = loss.critical_points()
    well = lambda x: np.asarray(loss.well(np.asarray(x, float)), float)
    expected = th.mfpt_1d(well, float(cp["left_min"]), cp["saddle"], 0.25)
    ref = th.reference(model, loss, *loss.basin("left"))
    assert ref.mean_time == float(expected) == pytest.approx(33.94574428767982, rel=1e-12)
    assert ref.formula == "F4 exact 1-D MFPT" and ref.details == {}
    # a float32 copy of the basin's start is the start; exit None: that start's basin
    theta0, _ = loss.basin("left")
    assert th.reference(model, loss, jnp.asarray(theta0, jnp.float32)) == ref
    # right side, tilted, exit 0.25 past the saddle: c = saddle - past (the CLI's c); the
    # exit's offset holds it in the default float dtype (rounded to float32 without x64)
    loss = sd.landscapes.DoubleWell(1.0, 1.0, 0.25)
    cp = loss.critical_points()
    theta0, exit = loss.basin("right", 0.25)
    ref = th.reference(sd.models.Langevin(0.5), loss, theta0, exit)
    if _X64:
        well = lambda x: np.asarray(loss.well(np.asarray(x, float)), float)
        expected = th.mfpt_1d(well, float(cp["right_min"]), cp["saddle"] + 0.25 * -1, 0.5)
        assert ref.mean_time == float(expected)
    assert ref.mean_time == pytest.approx(4.589175959267052, rel=1e-12 if _X64 else 1e-7)
    assert th.reference(sd.models.Langevin(0.5), loss, None, exit) == ref  # side from exit


@pytest.mark.parametrize("name", ["sgd_levy", "adam_levy"])
@pytest.mark.parametrize(
    "sigma, hess, height",
    [
        ("hessian", [1.0, 4.0], 0.5),          # examples/zhou_sgd_vs_adam.toml, B = 2
        ("floor", [1.0, 4.0], 0.5),            # Hessian noise with floor 2, B = 2
        ("isotropic", [1.0, 4.0], 0.5),        # variance 0.5
        ([0.5, 0.25], [1.0, 16.0], 0.5),       # sigma as a vector
        (0.5, [2.0, 0.5], 0.25),               # sigma as a number
    ],
)
def test_reference_levy_quadratic_is_the_cli_number(name, sigma, hess, height):
    import sdesim as sd

    # numbers exact in float32, so the model's float32 copies are the config's numbers
    h = np.asarray(hess)
    if sigma == "hessian":
        noise, sig = sd.noise.hessian(2.0), np.sqrt(np.maximum(h, 0.0) / 2.0 / 2)
    elif sigma == "floor":
        noise, sig = sd.noise.hessian(2.0, 2.0), np.sqrt(np.maximum(h, 2.0) / 2.0 / 2)
    elif sigma == "isotropic":
        noise, sig = sd.noise.isotropic(0.5), np.full(h.shape, np.sqrt(0.5 / 2))
    else:
        noise = sig = np.asarray(sigma, float)
        sig = np.broadcast_to(sig, h.shape)
    cls = {"sgd_levy": sd.models.SGDLevy, "adam_levy": sd.models.AdamLevy}[name]
    kw = {"epsilon": 1e-3} if name == "adam_levy" else {}
    model = cls(0.01, 1.5, noise, **kw)
    loss = sd.landscapes.Quadratic(h)
    theta0 = np.zeros(2)
    ref = th.reference(model, loss, theta0, sd.exits.Ellipsoid(theta0, np.diag(h), height))
    pred = th.levy_sgd_vs_adam(float(model.alpha), float(model.lr), sig, h, height,
                               epsilon=float(getattr(model, "epsilon", 1e-8)))
    assert ref.mean_time == float(pred["sgd_time" if name == "sgd_levy" else "adam_time"])
    assert ref.formula.startswith("F21")
    assert th.reference(model, loss, None, loss.basin(height)[1]) == ref  # LevelSet basin


def test_reference_levy_matches_a_recorded_cli_number():
    import sdesim as sd

    # examples/zhou_sgd_vs_adam.toml with hessian = [1, 4]: `sdesim run` at fcd299e
    h = np.array([1.0, 4.0])
    loss = sd.landscapes.Quadratic(h)
    model = sd.models.SGDLevy(1.25e-4, 1.5, sd.noise.hessian(2.0))
    ref = th.reference(model, loss, np.zeros(2), sd.exits.Ellipsoid(np.zeros(2), np.diag(h),
                                                                    0.5))
    assert ref.mean_time == pytest.approx(70.45915195744016 if _X64 else 70.45915028412516,
                                          rel=1e-12)


def test_reference_is_none_where_no_closed_form_applies():
    import sdesim as sd

    st = sd.landscapes.StyblinskiTang(3, 1.0, 1.0)
    t0, box = st.basin("local")
    sgd = sd.models.SGD(0.06, sd.noise.minibatch(None, 4.0))
    half = sd.exits.Halfspace(np.array([1.0, 0.0, 0.0]), 0.0)
    assert th.reference(sgd, st, t0, half) is None                      # another exit
    assert th.reference(sgd, st, np.full(3, 2.0), box) is None         # another start
    assert th.reference(sd.models.Momentum(0.06, 0.9, sgd.noise), st, t0, box) is None
    assert th.reference(sd.models.SGD(0.06, sd.noise.fixed([1.0, 2.0, 1.0])), st, t0,
                        box) is None                                    # unequal coordinates
    dw = sd.landscapes.DoubleWell(1.0, 1.0)
    assert th.reference(sd.models.Underdamped(1.0, 1.0, 0.25), dw, *dw.basin()) is None
    dw2 = sd.landscapes.DoubleWell(1.0, 1.0, dim=2)
    assert th.reference(sd.models.Langevin(0.25), dw2, *dw2.basin()) is None
    t0, _ = dw.basin("left")
    behind = sd.exits.Halfspace(np.array([1.0]), -1.5)  # the start is already outside
    assert th.reference(sd.models.Langevin(0.25), dw, t0, behind) is None
    h = np.array([1.0, 4.0])
    q = sd.landscapes.Quadratic(h)
    ell = sd.exits.Ellipsoid(np.zeros(2), np.diag(h), 0.5)
    assert th.reference(sd.models.AdaL(0.01, 1.5, 0.5), q, np.zeros(2), ell) is None
    levy = sd.models.SGDLevy(0.01, 1.5, 0.5)
    assert th.reference(levy, q, np.zeros(2), None) is None             # no height
    assert th.reference(levy, q, np.ones(2), ell) is None               # not the centre
    assert th.reference(sd.models.SGDLevy(0.01, 1.5, sd.noise.fixed([1.0, 1.0])), q,
                        np.zeros(2), ell) is None
    qm = sd.landscapes.Quadratic(np.diag(h))                            # full Hessian
    assert th.reference(levy, qm, np.zeros(2), ell) is None
    assert th.reference(sd.models.Langevin(1.0), sd.landscapes.Rastrigin(), np.zeros(2),
                        half) is None
