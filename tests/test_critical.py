"""Critical points (sdesim.critical) on the Müller–Brown potential, against the published
coordinates and energies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import critical as cr

MB = sd.landscapes.MullerBrown()
X64 = jnp.result_type(float) == jnp.float64
# published to 3 decimals in coordinates and 2 in energy (e.g. Müller & Brown 1979 and the
# string-method literature): minima A, B, C and the saddles A–C and C–B
MINIMA = [((-0.558, 1.442), -146.70), ((0.623, 0.028), -108.17), ((-0.050, 0.467), -80.77)]
SADDLES = [((-0.822, 0.624), -40.66), ((0.212, 0.293), -72.25)]
GRAD_TOL = 1e-8 if X64 else 2e-3  # float32: the gradient of energies ~100 to ~1e-5 relative


def test_minima_of_muller_brown():
    for (xy, e) in MINIMA:
        m = cr.minimize(MB, np.asarray(xy) + 0.05)
        np.testing.assert_allclose(np.asarray(m), xy, atol=6e-4)
        assert abs(float(MB(m)) - e) < 6e-3
        assert cr.morse_index(MB, m) == 0 and cr.grad_norm(MB, m) < GRAD_TOL


def test_string_method_finds_both_saddles():
    mins = [cr.minimize(MB, xy) for xy, _ in MINIMA]
    for (a, b), ((xy, e)) in zip(((0, 2), (2, 1)), SADDLES, strict=True):
        p = cr.string_path(MB, mins[a], mins[b], n_images=32, dt=1e-4, steps=5000)
        assert p.saddle is not None, (a, b)
        np.testing.assert_allclose(p.saddle, xy, atol=6e-4)
        assert abs(float(MB(p.saddle)) - e) < 6e-3
        assert cr.morse_index(MB, p.saddle) == 1 and cr.grad_norm(MB, p.saddle) < GRAD_TOL
        assert p.evaluations == 32 * 5000 and p.barrier > 0
        assert np.all(np.isfinite(p.energies))


def test_gentlest_ascent_from_a_minimum_alone():
    m_b = cr.minimize(MB, (0.6, 0.0))
    s = cr.saddle_from_minimum(MB, m_b, dt=1e-4, steps=20_000)
    np.testing.assert_allclose(np.asarray(s), SADDLES[1][0], atol=6e-4)
    m_c = cr.minimize(MB, (0.0, 0.5))
    s = cr.saddle_from_minimum(MB, m_c, dt=1e-4, steps=20_000)
    np.testing.assert_allclose(np.asarray(s), SADDLES[0][0], atol=6e-4)


def test_styblinski_tang_critical_points_from_generic_starts():
    # 2-D Styblinski–Tang: every coordinate at a root of the 1-D derivative; the minimum
    # found from a generic start and the saddle from it agree with root-finding values
    st = sd.landscapes.StyblinskiTang(2, 1.0, 0.0)
    th_local, _ = st.basin("local")
    m = cr.minimize(st, np.asarray(th_local) + np.array([0.3, -0.2]))
    np.testing.assert_allclose(np.asarray(m), np.asarray(th_local), atol=1e-3)
    s = cr.saddle_from_minimum(st, m, dt=1e-3, steps=20_000)
    assert cr.morse_index(st, s) == 1
    g = jax.grad(st)(s)
    assert float(jnp.linalg.norm(g)) < (1e-8 if X64 else 1e-3)


def test_errors():
    with pytest.raises(ValueError, match="shape"):
        cr.newton(MB, np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="index"):
        cr.minimize(lambda x: -jnp.sum(x**2) + 0.0 * x[0], np.array([0.0, 0.0]))


def test_predict_langevin_matches_the_closed_forms():
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, _ = dw.basin("left")
    p = sd.theory.predict(sd.models.Langevin(0.1), dw, th0)
    # Eyring–Kramers in 1-D is Kramers' formula: U''(min) = 8, U''(saddle) = −4
    ref = sd.theory.kramers_time(1.0, 8.0, -4.0, 0.1)
    rtol = 1e-9 if X64 else 1e-4
    np.testing.assert_allclose(p.mean_time, ref, rtol=rtol)
    assert len(p.saddles) == 1 and abs(p.barrier - 1.0) < 1e-5
    # SGD with isotropic noise σ² is Langevin at T = ησ²/2
    q = sd.theory.predict(sd.models.SGD(0.05, sd.noise.isotropic(4.0)), dw, th0)
    np.testing.assert_allclose(q.mean_time, ref, rtol=rtol)
    assert q.temperature == pytest.approx(0.1)
    # SGD with Hessian noise: Xie et al.'s formula with H_ae = U''(min)
    r = sd.theory.predict(sd.models.SGD(0.1, sd.noise.hessian(2.0)), dw, th0)
    np.testing.assert_allclose(r.mean_time, sd.theory.sgd_escape_time(1.0, 8.0, 0.1, 2.0),
                               rtol=rtol)
    # Momentum with Hessian noise: F16 along the escape direction, with its dynamics
    mom = sd.theory.predict(sd.models.Momentum(0.1, 0.9, sd.noise.hessian(2.0)), dw, th0)
    np.testing.assert_allclose(
        mom.mean_time, sd.theory.momentum_escape_time(1.0, 8.0, -4.0, 0.1, 2.0, beta1=0.9),
        rtol=rtol)
    assert mom.dynamics["mass"] == pytest.approx(1.0, rel=1e-5)  # M = η/(1−β₁)
    # Underdamped: Kramers–Langer, in 1-D the rate F10
    und = sd.theory.predict(sd.models.Underdamped(2.0, 1.5, 0.1), dw, th0)
    np.testing.assert_allclose(
        und.mean_time, 1 / sd.theory.kramers_underdamped_rate(1.0, 8.0, -4.0, 2.0, 1.5, 0.1),
        rtol=rtol)
    assert "Langer" in und.formula
    # Adam with Hessian noise (F17): the exponent 2ΔL·sqrt(B)/(η·sqrt(H)) of
    # escape_exponent, prefactor 2π/λ_be with M = η·sqrt(v̂)/(1−β₁), γM = sqrt(v̂), v̂ = H/B
    adam = sd.theory.predict(sd.models.Adam(0.1, sd.noise.hessian(2.0), eps=1e-12), dw, th0)
    expo = sd.theory.escape_exponent("adam", 1.0, 8.0, 0.1, 2.0)
    gm = np.sqrt(8.0 / 2.0)
    m = 0.1 * gm / 0.1
    lam = (np.sqrt(gm**2 + 4 * m * 4.0) - gm) / (2 * m)
    np.testing.assert_allclose(adam.mean_time, 2 * np.pi / lam * np.exp(expo), rtol=rtol)
    assert adam.temperature == pytest.approx(1.0 / expo, rel=1e-6)
    # Adai (F18): the SGD exponent; in 1-D v̂/mean(v̂) = 1, so β₁ = 1 − β₀
    adai = sd.theory.predict(sd.models.Adai(0.1, sd.noise.hessian(2.0), beta0=0.1), dw, th0)
    np.testing.assert_allclose(
        adai.mean_time, sd.theory.momentum_escape_time(1.0, 8.0, -4.0, 0.1, 2.0, beta1=0.9),
        rtol=rtol)
    # beyond the float range: mean_time is inf, its logarithm still exact
    cold = sd.theory.predict(sd.models.Langevin(1e-3), dw, th0)
    assert cold.mean_time == np.inf
    np.testing.assert_allclose(cold.log_mean_time, np.log(2 * np.pi / np.sqrt(32.0)) + 1e3,
                               rtol=1e-6)
    none = sd.theory.predict(sd.models.SGD(0.1, sd.noise.lowrank(np.ones(1), np.ones((1, 1)))),
                             dw, th0)
    assert none.mean_time is None and "no closed form" in none.reason


def test_predict_underdamped_in_two_dimensions_is_langer():
    """A separable 2-D well: Langer's prefactor carries sqrt(det H_a/|det H_s|)."""
    loss = lambda x: (x[0] ** 2 - 1.0) ** 2 + 1.5 * x[1] ** 2 * (1 + 0.5 * x[0] ** 2)  # noqa
    p = sd.theory.predict(sd.models.Underdamped(1.0, 2.0, 0.05), loss, np.array([-0.9, 0.1]))
    # transverse curvatures 3·1.5 = 4.5 at the minima, 3 at the saddle
    lam = np.sqrt(1.0 + 4.0) - 1.0  # sqrt(γ²/4 + |λ₋|/M) − γ/2, λ₋ = −4
    ref = 2 * np.pi / lam * np.sqrt(4.0 * 3.0 / (8.0 * 4.5)) * np.exp(1.0 / 0.05)
    np.testing.assert_allclose(p.mean_time, ref, rtol=1e-9 if X64 else 2e-4)


def test_predict_finds_the_saddles_that_bound_each_basin():
    # Müller–Brown: minimum B is bounded by the C–B saddle only, A by the A–C saddle, C by
    # both (their rates add); gentlest ascent from B also reaches the A–C saddle, which
    # does not bound B's basin and must not count
    cases = {(0.6, 0.0): [SADDLES[1]], (-0.5, 1.4): [SADDLES[0]], (0.0, 0.5): SADDLES}
    for start, expect in cases.items():
        p = sd.theory.predict(sd.models.Langevin(4.0), MB, np.asarray(start))
        got = sorted(tuple(np.round(s.point, 3)) for s in p.saddles)
        assert got == sorted(xy for xy, _ in expect), (start, got)
        inv = sum(1.0 / sd.theory.eyring_kramers_time(s.barrier, p.hessian_min, s.hessian,
                                                       4.0) for s in p.saddles)
        np.testing.assert_allclose(p.mean_time, 1.0 / inv, rtol=1e-9)
        e_min = float(MB(jnp.asarray(p.minimum, jnp.result_type(float))))
        for (_xy, e), s in zip(sorted(expect), sorted(p.saddles, key=lambda s: tuple(s.point)),
                               strict=True):
            assert abs(s.barrier - (e - e_min)) < 1e-2
    with pytest.raises(ValueError, match="index-1"):
        sd.theory.predict(sd.models.Langevin(4.0), MB, np.array([0.6, 0.0]),
                          saddles=[np.array([0.62, 0.03])])  # a minimum, not a saddle


def test_path_coordinate_is_a_splitting_score_for_any_landscape():
    # the arc length along the string between the two minima of a 2-D double well,
    # measured from the saddle: −1 at the left minimum, 0 at the saddle, +1 at the right
    dw = sd.landscapes.DoubleWell(barrier=1.0, dim=2)
    a, b = cr.minimize(dw, [-1.0, 0.1]), cr.minimize(dw, [1.0, 0.1])
    path = cr.string_path(dw, a, b, n_images=16, dt=1e-3, steps=2000)
    pc = cr.path_coordinate(path)
    np.testing.assert_allclose([float(pc(a)), float(pc(b))], [-1.0, 1.0], atol=1e-4)
    assert abs(float(pc(jnp.asarray(path.saddle, a.dtype)))) < 1e-4
    assert float(pc(jnp.array([-0.5, 0.3], a.dtype))) == pytest.approx(-0.5, abs=1e-4)
    # as the score and the exit of the splitting method: the same escape time as the
    # half-space exit with its default score (both cross x = 0), within the intervals
    th0, ex = dw.basin("left")
    kw = dict(dt=0.01, key=jax.random.key(0), n_replicas=50, n_runs=4)
    model = sd.models.Langevin(0.25)
    r1 = sd.escape_ams(model, dw, th0, ex, **kw)
    r2 = sd.escape_ams(model, dw, th0, sd.exits.LevelSet(pc, 0.0), score=pc, **kw)
    lo1, hi1 = r1.mean_time_ci()
    lo2, hi2 = r2.mean_time_ci()
    assert lo1 < hi2 and lo2 < hi1, (r1.mean_time_ci(), r2.mean_time_ci())
    # an exit with no score of its own (a predicate): escape_ams finds the path itself
    # (critical.escape_path: minimum, saddle, the other minimum, the string) and scores
    # by it; the same escape time again
    r3 = sd.escape_ams(model, dw, th0, lambda th: th[0] > 0, **kw)
    lo3, hi3 = r3.mean_time_ci()
    assert lo1 < hi3 and lo3 < hi1, (r1.mean_time_ci(), r3.mean_time_ci())
    ep = cr.escape_path(dw, th0)
    np.testing.assert_allclose(ep.saddle, [0.0, 0.0], atol=1e-4)


def test_critical_points_above_the_dense_limit_use_hessian_vector_products(monkeypatch):
    """d = 1 200 > DENSE_MAX: a rotated double well in y₀ with stiff quadratic directions;
    minimum, softest mode, gentlest-ascent saddle, its index and Newton's refinement come
    from Lanczos/GMRES/L-BFGS (jax.hessian would be called otherwise: it is made to fail)."""
    d = 1200
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = np.concatenate([[0.0], rng.uniform(2.0, 6.0, d - 1)])
    qj = jnp.asarray(q, jnp.result_type(float))
    lj = jnp.asarray(lam, jnp.result_type(float))

    def loss(x):
        y = qj.T @ x
        return (y[0] ** 2 - 1.0) ** 2 + 0.5 * jnp.sum(lj * y**2)

    def no_dense(*a, **k):
        raise AssertionError("a dense Hessian was formed")

    monkeypatch.setattr(cr.jax, "hessian", no_dense)
    x0 = q[:, 0] * -0.7 + 0.05 * q[:, 1]
    x_min = np.asarray(cr.minimize(loss, x0))
    np.testing.assert_allclose(x_min, -q[:, 0], atol=2e-4)
    vals, vecs = cr.lowest_modes(loss, x_min, 1)
    # the softest curvature: the smallest λ (y₀'s is 8 at the minima), to Lanczos accuracy
    np.testing.assert_allclose(vals[0], lam[1:].min(), rtol=1e-3)
    s = np.asarray(cr.saddle_from_minimum(loss, x_min, q[:, 0], dt=0.02, steps=2000))
    np.testing.assert_allclose(s, 0.0, atol=2e-4)
    assert cr.morse_index(loss, s) == 1 and cr.morse_index(loss, x_min) == 0


@pytest.mark.parametrize("d", [2, 20])
def test_path_coordinate_is_the_arc_length_of_the_nearest_point(d):
    # against a brute-force NumPy projection on every segment, in both of its code paths
    # (coordinate by coordinate up to d = 16, reductions above); tolerance: rounding of
    # arc lengths of size ~3 (d = 2) to ~10 (d = 20), relative. Points from a fixed seed
    # are never equidistant from two segments to within rounding here (checked below);
    # NaN in, NaN out (never a finite score, never +inf).
    rng = np.random.default_rng(0)
    images = np.cumsum(rng.normal(size=(12, d)), axis=0)
    pc = cr.path_coordinate(images, at_saddle=False)
    pts = images[:-1] + rng.uniform(size=(200, 1, 1)) * (images[1:] - images[:-1]) \
        + 0.3 * rng.normal(size=(200, 11, d))
    pts = pts.reshape(-1, d)[:300]
    a, ab = images[:-1], np.diff(images, axis=0)
    # the first segment goes on before the first image (t < 0 there)
    lo = np.where(np.arange(len(ab)) == 0, -np.inf, 0.0)
    t = np.clip(np.einsum("pid,id->pi", pts[:, None] - a, ab) / np.sum(ab**2, 1), lo, 1)
    dist = np.sum((a + t[..., None] * ab - pts[:, None]) ** 2, axis=2)
    order = np.sort(dist, axis=1)
    clear = order[:, 1] - order[:, 0] > 1e-3 * (1 + order[:, 0])
    i = np.argmin(dist, axis=1)
    start = np.concatenate([[0.0], np.cumsum(np.linalg.norm(ab, axis=1))[:-1]])
    want = start[i] + t[np.arange(len(i)), i] * np.linalg.norm(ab, axis=1)[i]
    got = np.asarray(jax.vmap(pc)(jnp.asarray(pts, jnp.result_type(float))))
    tol = 1e-13 if X64 else 2e-6  # a few ulps of the arc lengths (measured 1e-7 / 4e-16)
    assert clear.sum() > 250
    err = np.abs(got[clear] - want[clear]) / (1 + np.abs(want[clear]))
    assert err.max() < tol, err.max()
    assert np.isnan(float(pc(jnp.full(d, jnp.nan))))
    # behind the first image, on the line of the first segment: negative arc length
    behind = images[0] - 0.5 * ab[0]
    assert float(pc(jnp.asarray(behind, jnp.result_type(float)))) == pytest.approx(
        -0.5 * np.linalg.norm(ab[0]), rel=1e-5)


def test_path_coordinate_exit_never_fires_spuriously_inside_the_engine():
    # Müller–Brown's basin B with its path-coordinate exit (Committed), heavy-ball
    # momentum at T = ηC/2 = 0.05 against a barrier of 35.9 (ΔL/T ≈ 700): no path can
    # escape in one time unit. The coordinate once compared ``dist == min(dist)`` and XLA
    # rounded the two differently inside the engine's fused step: no segment matched,
    # the coordinate was +inf and 43 of these 64 paths "escaped" (the splitting counted
    # such replicas as successes). Both the direct engine and the splitting kernel.
    loss = sd.landscapes.MullerBrown()
    th0, ex = loss.basin("B")
    model = sd.models.Momentum(0.1, 0.9, sd.noise.isotropic(1.0))
    r = sd.escape(model, loss, th0, ex, n_paths=64, dt=1.8e-4, t_max=1.0,
                  key=jax.random.key(1), progress=False)
    assert r.n_escaped == 0 and r.n_diverged == 0, r.times
    # the splitting kernel (escape_ams's lanes): 64 lanes from the minimum, no levels
    from sdesim import rare

    runner = rare._Runner(model, loss, ex, rare.default_score(ex, th0), 1.8e-4, 2, True,
                          100, jax.random.key(3))
    init = jax.vmap(lambda _: model.init(jnp.asarray(th0)))(jnp.arange(64))
    status = runner.run(init, np.zeros(64, np.int64), rare._keys(jax.random.key(4), 0,
                                                                 np.arange(64)),
                        np.inf, -np.inf, 64)[3]
    assert np.all(status == rare.CAPPED), np.bincount(status)


def _double_well(th):
    return (th[0] ** 2 - 1.0) ** 2


def test_path_exponent_is_the_exponent_of_the_exact_one_dimensional_time():
    """``theory.path_exponent``: Langevin gives ΔL/T; SGD with floored Hessian noise gives
    the closed-form integral ∫ 2|U'|/(η max(|U''|, f)/B) from the minimum to the saddle
    (not F14's frozen-C exponent 2BΔL/(ηH_a)), and it is the exponent of the exact 1-D
    mean first-passage time (``mfpt_1d_ito``): ln τ(2B) − ln τ(B) → Φ(B) as B grows (the
    prefactor is B-independent to leading order)."""
    from scipy import integrate

    path = cr.string_path(_double_well, np.array([-1.0]), np.array([1.0]), n_images=33)
    assert sd.theory.path_exponent(sd.models.Langevin(0.1), _double_well, path) == \
        pytest.approx(10.0, rel=1e-5)  # ΔL = 1 (Langevin: the drift is exactly -U')
    lr, floor = 0.1, 2.0
    u1 = lambda x: 4 * x * (x * x - 1)  # noqa: E731
    u2 = lambda x: 12 * x * x - 4  # noqa: E731
    inflection = -1 / np.sqrt(3)
    kinks = [x for x in np.roots([12, 0, -4 - floor]).tolist() + np.roots([12, 0, -4 + floor])
             .tolist() if -1 < x < 0]
    closed = 2 / lr * integrate.quad(lambda x: abs(u1(x)) / max(abs(u2(x)), floor), -1, 0,
                                     points=kinks + [inflection], epsabs=1e-12)[0]
    for batch in (2.0, 8.0):
        model = sd.models.SGD(lr, sd.noise.hessian(batch, floor))
        phi = sd.theory.path_exponent(model, _double_well, path)
        # 4001-point trapezoid over the kinks of max(|U''|, f): error ~1e-6 relative
        assert phi == pytest.approx(batch * closed, rel=1e-4)
        assert phi / (2 * batch / (lr * 8.0)) == pytest.approx(3.18, abs=0.01)  # vs F14
    gaps = []
    for batch in (4.0, 16.0):
        tau = [sd.theory.mfpt_1d_ito(lambda x: -u1(x), lambda x, b=b: lr * max(abs(u2(x)),
                                     floor) / b, -1.0, 0.0, log=True,
                                     breakpoints=kinks + [inflection], n_grid=800)
               for b in (batch, 2 * batch)]
        phi = sd.theory.path_exponent(sd.models.SGD(lr, sd.noise.hessian(batch, floor)),
                                      _double_well, path)
        gaps.append(abs((tau[1] - tau[0]) / phi - 1))
    # the log-time slope tends to Φ: ln τ(2B) − ln τ(B) − Φ(B) = O(1/B) (the prefactor's
    # B-dependence), relative O(1/B²); measured 1.3e-4 at B = 4 and 9e-6 at B = 16
    assert gaps[1] < gaps[0] < 1e-3
    assert gaps[1] < 1e-4


def _energy_diffusion_exponent(lr, batch, floor):
    """``∫₀^ΔL dE / T_E`` on the double well for Momentum (friction force 1) with the
    floored Hessian noise ``σ² = η max(|U''|, f)/B``: ``T_E = ∮σ²|ṡ| ds / (2∮|ṡ| ds)``
    on the orbit of energy ``E`` (``|ṡ| ∝ sqrt(E − U)``), the light-friction limit of the
    phase-space exponent, by nested quadrature (independent of ``path_exponent``)."""
    from scipy import integrate, optimize

    u = lambda x: (x * x - 1) ** 2  # noqa: E731
    var = lambda x: lr * max(abs(12 * x * x - 4), floor) / batch  # noqa: E731
    kinks = [x for x in np.roots([12, 0, -4 - floor]).tolist()
             + np.roots([12, 0, -4 + floor]).tolist() if -2 < x < 0] + [-1 / np.sqrt(3)]

    def per_energy(e):
        a = optimize.brentq(lambda x: u(x) - e, -2.0, -1.0)
        b = optimize.brentq(lambda x: u(x) - e, -1.0, 0.0)
        w = lambda x: np.sqrt(max(e - u(x), 0.0))  # noqa: E731
        inside = [k for k in kinks if a < k < b]
        num = integrate.quad(w, a, b, limit=200)[0]
        den = integrate.quad(lambda x: var(x) * w(x), a, b, limit=200, points=inside)[0]
        return 2 * num / den

    return integrate.quad(per_energy, 1e-12, 1 - 1e-12, limit=200)[0]


def _ring(th):  # minima (±1, 0), saddles (0, ±1) at ΔL = 1, the unit circle between
    r = jnp.sqrt(th[0] ** 2 + th[1] ** 2)
    return 10 * (r - 1) ** 2 + (th[1] / r) ** 2


def _ring_path():
    phi = np.linspace(0.0, np.pi, 41)
    return np.stack([np.cos(phi), np.sin(phi)], axis=1)


class _Anisotropic(sd.models.Momentum):
    """A phase-space model with mass (1, 4), friction force 1 and noise-force variance
    0.2 = 2ΓT per coordinate: one temperature T = 0.1."""

    def terms(self, state, t, h, loss):
        th = state.theta
        one = jnp.ones(2, th.dtype)
        return sd.model.Inertial(-jax.grad(loss)(th), jnp.array([1.0, 4.0], th.dtype), one,
                                 None, jnp.sqrt(jnp.asarray(0.2, th.dtype)) * one)


def test_path_exponent_of_phase_space_models_between_its_two_limits():
    """The phase-space exponent is the least action of the path-restricted (position,
    velocity) dynamics. Three checks that can fail, each against a value computed another
    way: (1) where fluctuation–dissipation holds (``Underdamped``, constant T; Adam and
    Adai with isotropic noise) it is ΔL/T at any friction; (2) heavy friction (Momentum,
    mass η/(1−β₁) = 0.002 against friction force 1 and curvature ≤ 8: m·k/Γ² ≤ 0.016)
    gives the overdamped SGD exponent; (3) light
    friction gives the energy-diffusion integral ∫dE/T_E, approached as the friction goes
    (error ∝ friction/mass = (1−β₁)/η). Tolerances: the action's step error (~1e-4) plus
    the limit's own correction (1e-3 for (2); the measured 2.0% at β₁ = 0.99, 1.1% at
    0.995 for (3), bounded by 3% and 1.6%)."""
    path = cr.string_path(_double_well, np.array([-1.0]), np.array([1.0]), n_images=33)
    for friction in (0.5, 5.0):
        phi = sd.theory.path_exponent(sd.models.Underdamped(1.0, friction, 0.1), _double_well,
                                      path)
        assert phi == pytest.approx(10.0, rel=3e-4)
    # Adam and Adai with isotropic noise C = c: the EMA settled at the minimum (v̂ = c)
    # makes T constant, ηc/(2(sqrt c + ϵ)) and ηc/2 (an EMA left at 0 would not)
    phi = sd.theory.path_exponent(sd.models.Adam(0.1, sd.noise.isotropic(4.0)), _double_well,
                                  path)
    assert phi == pytest.approx(2 * (2.0 + 1e-8) / 0.4, rel=3e-4)
    phi = sd.theory.path_exponent(sd.models.Adai(0.1, sd.noise.isotropic(1.0)), _double_well,
                                  path)
    assert phi == pytest.approx(20.0, rel=3e-4)
    # ema="instant": v̂ = U'² + c along the way; heavy friction (η = 1e-3: m/Γ = 0.01) gives
    # the overdamped ∫ 2(sqrt(U'² + c) + ϵ)|U'|/(ηc) dx (1180.8, frozen: 1000); measured 7e-5
    from scipy import integrate

    u1 = lambda x: 4 * x * (x * x - 1)  # noqa: E731
    want = integrate.quad(lambda x: 2 * (np.sqrt(u1(x) ** 2 + 4.0) + 1e-8) * abs(u1(x))
                          / (1e-3 * 4.0), -1.0, 0.0, epsabs=1e-12)[0]
    phi = sd.theory.path_exponent(sd.models.Adam(1e-3, sd.noise.isotropic(4.0)), _double_well,
                                  path, ema="instant")
    assert phi == pytest.approx(want, rel=1e-3)
    # a curved path (the unit circle, the minimum-energy path of the ring below) with an
    # anisotropic mass (1, 4) at one temperature T = 0.1: ΔL/T = 10 needs the restricted
    # equation's (τᵀMτ')ṡ² (without it: 12.76)
    assert sd.theory.path_exponent(_Anisotropic(0.1, 0.9, sd.noise.isotropic(1.0)), _ring,
                                   _ring_path()) == pytest.approx(10.0, rel=3e-4)
    batch, floor = 2.0, 2.0
    for lr in (1e-3, 1e-6):  # 1e-6: m·k/Γ² = 1.6e-5 (steps held to sqrt(m/k)/2)
        sgd = sd.theory.path_exponent(sd.models.SGD(lr, sd.noise.hessian(batch, floor)),
                                      _double_well, path)
        heavy = sd.theory.path_exponent(
            sd.models.Momentum(lr, 0.5, sd.noise.hessian(batch, floor)), _double_well, path)
        assert heavy == pytest.approx(sgd, rel=1e-3)
    lr = 0.1
    limit = _energy_diffusion_exponent(lr, batch, floor)  # 5.465 (F16's ΔL/T: 5.0)
    errors = []
    for beta1, tol in ((0.99, 0.03), (0.995, 0.016)):
        phi = sd.theory.path_exponent(
            sd.models.Momentum(lr, beta1, sd.noise.hessian(batch, floor)), _double_well, path)
        assert limit < phi < limit * (1 + tol)  # from above: more friction, less averaging
        errors.append(phi / limit - 1)
    assert errors[1] < 0.7 * errors[0]  # halving the friction roughly halves the gap


def test_path_exponent_errors_and_a_vanishing_noise():
    path = cr.string_path(_double_well, np.array([-1.0]), np.array([1.0]), n_images=33)
    with pytest.warns(RuntimeWarning, match="does not settle"):  # |U''| → 0, no floor
        sd.theory.path_exponent(sd.models.SGD(0.1, sd.noise.hessian(1.0)), _double_well, path)
    with pytest.raises(TypeError, match="Gaussian"):
        sd.theory.path_exponent(sd.models.SGDLevy(0.1, 1.8, 0.1), _double_well, path)
    with pytest.raises(TypeError, match="Gaussian"):
        sd.theory.path_exponent(sd.models.Momentum(0.1, 0.9, sd.noise.hessian(1.0),
                                                   alpha=1.8), _double_well, path)
    with pytest.raises(ValueError, match="vanishes"):  # no noise: no finite action
        sd.theory.path_exponent(sd.models.Underdamped(1.0, 1.0, 0.0), _double_well, path)
    # Hessian noise without a floor vanishes at the inflection point, but an inertial path
    # coasts through it: the exponent is finite, the floor → 0 limit (measured: 3.256478
    # with floors 0 and 1e-4 on 4 001 points, 3.256477 on 16 001)
    no_floor = sd.theory.path_exponent(sd.models.Momentum(0.1, 0.9, sd.noise.hessian(1.0)),
                                       _double_well, path)
    assert no_floor == pytest.approx(sd.theory.path_exponent(
        sd.models.Momentum(0.1, 0.9, sd.noise.hessian(1.0, 1e-4)), _double_well, path),
        rel=1e-5)
    with pytest.raises(ValueError, match="not a minimum"):
        sd.theory.path_exponent(sd.models.Momentum(0.1, 0.9, sd.noise.hessian(1.0, 2.0)),
                                _double_well, np.linspace(-0.8, 0.5, 20)[:, None])
    with pytest.raises(ValueError, match="closed well"):  # over the higher of two maxima:
        # behind the minimum the loss tops out below it and falls away
        sd.theory.path_exponent(sd.models.Underdamped(1.0, 1.0, 0.1),
                                lambda th: 0.3 * th[0] - jnp.cos(th[0]),
                                np.linspace(-np.arcsin(0.3), 4.0, 50)[:, None])
    with pytest.raises(ValueError, match="shape"):
        sd.theory.path_exponent(sd.models.Langevin(0.1), _double_well, np.zeros(3))
    with pytest.raises(ValueError, match="ema"):
        sd.theory.path_exponent(sd.models.Langevin(0.1), _double_well, path, ema="slow")
    with pytest.raises(ValueError, match="not finite"):  # never a silent NaN exponent
        sd.theory.path_exponent(sd.models.Langevin(0.1), lambda th: jnp.log(th[0] + 0.5),
                                path)
    with pytest.raises(ValueError, match="uphill"):
        sd.theory.path_exponent(sd.models.Langevin(0.1), _double_well,
                                np.array([[0.0], [-1.0]]))
