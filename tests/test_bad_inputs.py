"""No silent wrong answers (issue 12): every bad input through the Python API is a clear
error naming the argument, a warning plus a result that does not count the bad paths, or
a correct result. The command line's cases are in tests/test_cli.py."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdesim as sd

L, M, N, E = sd.landscapes, sd.models, sd.noise, sd.exits
X64 = bool(jax.config.jax_enable_x64)
DW = L.DoubleWell(barrier=1.0)
TH0, EXIT = DW.basin("left")
KEY = jax.random.key(0)


def esc(model=None, loss=DW, theta0=TH0, exit=EXIT, **kw):
    kw = dict(dict(n_paths=16, dt=0.01, t_max=5.0, key=KEY, progress=False), **kw)
    return sd.escape(M.Langevin(0.3) if model is None else model, loss, theta0, exit, **kw)


# -- objects validate themselves at construction ------------------------------------------

@pytest.mark.parametrize("build, exc, name", [
    (lambda: L.DoubleWell(barrier=float("nan")), ValueError, "barrier"),
    (lambda: L.DoubleWell(barrier=-1.0), ValueError, "barrier"),
    (lambda: L.DoubleWell(width=0.0), ValueError, "width"),
    (lambda: L.DoubleWell(dim=3, stiffness=[1.0]), ValueError, "stiffness"),
    (lambda: L.StyblinskiTang(2, sharpness=-1.0), ValueError, "sharpness"),
    (lambda: L.StyblinskiTang(0), ValueError, "dim"),
    (lambda: L.Quadratic([float("nan")]), ValueError, "hessian"),
    (lambda: L.Quadratic([-1.0]), ValueError, "hessian"),
    (lambda: L.Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, "symmetric"),
    (lambda: L.Quadratic([1.0, 2.0], center=[0.0, 0.0, 0.0]), ValueError, "center"),
    (lambda: L.Rastrigin(float("inf")), ValueError, "amplitude"),
    (lambda: M.Langevin([0.1, 0.2]), TypeError, "temperature"),
    (lambda: M.Langevin(-0.1), ValueError, "temperature"),
    (lambda: M.Underdamped(1.0, 1.0, 0.1, velocity0=[float("nan")]), ValueError, "velocity0"),
    (lambda: M.Underdamped(1.0, 1.0, 0.1, scheme="leapfrog"), ValueError, "scheme"),
    (lambda: M.SGD(0.0, N.isotropic(1.0)), ValueError, "lr"),
    (lambda: M.SGD(0.1, "hessian"), TypeError, "noise"),
    (lambda: M.Adam(0.1, N.isotropic(1.0), eps=0.0), ValueError, "eps"),
    (lambda: M.Momentum(0.1, 1.0, N.isotropic(1.0)), ValueError, "beta1"),
    (lambda: M.SGDLevy(0.1, 2.5, 1.0), ValueError, "alpha"),
    (lambda: M.SGDLevy(0.1, 1.5, -1.0), ValueError, "sigma"),
    (lambda: M.AdamLevy(0.1, 1.5, 0.0, epsilon=0.0), ValueError, "eps"),
    (lambda: N.minibatch(np.array([[0.0, 1.0], [np.nan, 1.0]]), 1), ValueError, "data"),
    (lambda: N.hessian(0.0), ValueError, "batch_size"),
    (lambda: N.fixed(np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, "symmetric"),
    (lambda: E.Ellipsoid([0.0, 0.0], np.array([[1.0, 2.0], [0.0, 1.0]]), 1.0), ValueError,
     "symmetric"),
    (lambda: E.Ellipsoid([0.0, 0.0], np.diag([1.0, -1.0]), 1.0), ValueError,
     "positive definite"),
    (lambda: E.Box([0.0], [0.0]), ValueError, "lower < upper"),
    (lambda: E.Halfspace([0.0], 1.0), ValueError, "normal"),
    (lambda: E.LevelSet(DW, float("nan")), ValueError, "level"),
])
def test_construction_refuses_bad_values(build, exc, name):
    with pytest.raises(exc, match=name):
        build()


# -- escape/simulate check the run's inputs -----------------------------------------------

@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(dt=np.array([0.01, 0.02])), TypeError, "dt"),
    (dict(dt=0.0), ValueError, "dt"),
    (dict(dt=-0.01), ValueError, "dt"),
    (dict(dt=float("nan")), ValueError, "dt"),
    (dict(t_max=float("inf")), ValueError, "t_max"),
    (dict(dt=1.0, t_max=0.5), ValueError, "t_max"),
    (dict(theta0=np.array([np.nan])), ValueError, "theta0"),
    (dict(theta0=np.zeros((1, 1))), ValueError, "theta0"),
    (dict(theta0=np.array([0.5])), ValueError, "outside the exit"),
    (dict(loss=L.StyblinskiTang(3)), ValueError, "dimension"),
    (dict(loss=lambda th: jnp.sum(th).astype(jnp.int32)), TypeError, "loss"),
    (dict(loss=lambda th: jnp.sum(th) * 1j), TypeError, "loss"),
    (dict(loss=lambda th: th), ValueError, "loss must return a scalar"),
    (dict(exit=lambda th: jnp.concatenate([th, th]) > 0), ValueError,
     "exit must return one bool"),
    (dict(model=M.SGD(0.1, N.minibatch(None, 2))), TypeError, "grad_cov"),
    (dict(model=M.SGD(0.1, N.minibatch(np.zeros((5, 3)), 2)),
          loss=L.StyblinskiTang(2, data_std=1.0), theta0=np.array([2.7, 2.7]),
          exit=E.Box([0.0, 0.0], [np.inf, np.inf])), ValueError, "data rows have shape"),
    (dict(model=M.SGD(0.1, N.minibatch(np.zeros((5, 2, 2)), 2,
                                       per_sample=lambda th, x: th * x))),
     ValueError, "per_sample"),
])
def test_run_inputs_are_checked(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        esc(**kwargs)


@pytest.mark.skipif(X64, reason="representable in float64")
@pytest.mark.parametrize("kwargs, name", [
    (dict(dt=1e-46), "dt"),
    (dict(theta0=np.array([-1e300]), exit=E.Box([-np.inf], [0.0])), "theta0"),
    (dict(model=M.SGDLevy(0.1, 0.05, 1.0), exit=E.Box([-2.0], [0.0])), "alpha"),
])
def test_values_that_float32_cannot_hold_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        esc(**kwargs)


@pytest.mark.skipif(not X64, reason="float64 only")
def test_tiny_levy_step_scale_runs_under_x64():
    r = esc(model=M.SGDLevy(0.1, 0.05, 1.0), loss=L.Quadratic([1.0]), theta0=np.zeros(1),
            exit=E.Box([-2.0], [2.0]), t_max=0.5)
    assert r.n_paths == 16 and r.n_diverged == 0


# -- divergence is its own outcome --------------------------------------------------------

def test_stiff_transverse_mode_diverges_not_escapes():
    # 2-D double well, transverse stiffness 1000 at dt = 0.01: the explicit step is
    # unstable (dt·λ = 10 > 2). Before: "200/200 escaped". Now: a StabilityWarning before
    # the run naming the largest stable dt (2/1000), the blown-up paths counted as
    # diverged, none as an escape, and a DivergenceWarning saying how many.
    dw2 = L.DoubleWell(barrier=1.0, dim=2, stiffness=1000.0)
    th0, ex = dw2.basin("left")
    with pytest.warns(sd.StabilityWarning, match=r"largest stable step is dt = 0\.002"), \
            pytest.warns(sd.DivergenceWarning, match="paths diverged"):
        r = esc(loss=dw2, theta0=th0, exit=ex, n_paths=32, t_max=20.0)
    assert r.n_diverged > 0 and not np.any(r.escaped & r.diverged)
    assert np.all(np.isnan(r.times[r.diverged]))
    assert r.summary()["n_diverged"] == r.n_diverged


def test_unstable_step_is_warned_before_the_run():
    # Quadratic([100]), dt = 0.05: dt·λ = 5 > 2 (largest stable dt = 0.02).
    q = L.Quadratic([100.0])
    th0, ex = q.basin(0.5)
    with pytest.warns(sd.StabilityWarning, match=r"dt = 0\.02\b"):
        esc(model=M.Langevin(0.01), loss=q, theta0=th0, exit=ex, dt=0.05, t_max=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.StabilityWarning)
        esc(model=M.Langevin(0.01), loss=q, theta0=th0, exit=ex, dt=0.001, t_max=0.1)


def test_phase_space_stability_uses_the_scheme():
    # Underdamped, M = 1, γ = 1, curvature 100 (ω = 10): symplectic Euler is stable for
    # h²ω² < 4 − 2γh, i.e. h < 0.1905; explicit Euler needs γh > h²ω², i.e. h < 0.01.
    q = L.Quadratic([100.0])
    semi = M.Underdamped(1.0, 1.0, 0.1)
    ok, lam, _ = sd.engine.stability(semi, q, np.zeros(1), 0.15)
    assert ok and lam == pytest.approx(100.0, rel=1e-5)
    ok, _, dt_max = sd.engine.stability(semi, q, np.zeros(1), 0.25)
    assert not ok and dt_max == pytest.approx((np.sqrt(1 + 4 * 100) - 1) / 100, rel=1e-6)
    ok, _, dt_max = sd.engine.stability(M.Underdamped(1.0, 1.0, 0.1, scheme="euler"), q,
                                        np.zeros(1), 0.05)
    assert not ok and dt_max == pytest.approx(0.01, rel=1e-6)


def test_nan_gradient_is_a_divergence_not_an_escape():
    # The gradient is NaN past x = -0.5 (sqrt of a negative number); the exit is at x > 0.
    loss = lambda th: DW(th) + jnp.sum(jnp.sqrt(-0.5 - th)) * 0.0
    with pytest.warns(sd.DivergenceWarning):
        r = esc(loss=loss, theta0=np.array([-1.0]), t_max=50.0)
    assert r.n_escaped == 0 and r.n_diverged > 0
    assert r.rate() == 0.0


def test_recorded_times_never_exceed_t_max():
    # t_max = 0.015, dt = 0.01: one step fits; an exit at step 2 (t = 0.02) used to be
    # recorded. Start next to the exit so that most paths leave at once.
    r = esc(model=M.Langevin(5.0), theta0=np.array([-0.01]), t_max=0.015, n_paths=64)
    assert np.all(r.times[r.escaped] <= 0.015) and np.all(r.steps <= 1)
    assert r.n_escaped > 0


def test_simulate_flags_diverged_trajectories():
    loss = lambda th: -jnp.sum(th**4)
    with pytest.warns(sd.DivergenceWarning, match="simulated paths diverged"):
        tr = sd.simulate(M.Langevin(1.0), loss, np.array([0.5]), n_paths=4, dt=1.0,
                         t_max=20.0, key=KEY, method="engine")
    assert tr.diverged.shape == (4,) and tr.diverged.all() and tr.n_diverged == 4
    tr = sd.simulate(M.Langevin(0.3), DW, TH0, n_paths=4, dt=0.01, t_max=0.5, key=KEY,
                     method="engine")
    assert not tr.diverged.any()


def test_hessian_noise_on_a_dense_quadratic_runs():
    # A matrix-Hessian Quadratic is not separable: the dense eigendecomposition path
    # (it used to raise AttributeError from hessian_diag inside the trace).
    q = L.Quadratic(np.array([[2.0, 0.3], [0.3, 1.0]]))
    th0, ex = q.basin(0.6)
    r = esc(model=M.SGD(0.3, N.hessian(1.0)), loss=q, theta0=th0, exit=ex, t_max=20.0)
    assert r.n_escaped > 0 and r.n_diverged == 0


def test_epsilon_is_an_alias_of_eps():
    m = M.AdamLevy(0.1, 1.5, 0.3, epsilon=1e-6)
    assert float(m.eps) == pytest.approx(1e-6) and m.epsilon is m.eps


# -- the promise itself, on random inputs -------------------------------------------------

NAMES = ("temperature", "dt", "t_max", "theta0", "barrier", "width", "tilt", "stiffness",
         "outside the exit", "overflows", "underflows")
finite_or_not = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, -0.0, np.nan, np.inf,
                                                             -np.inf, 1e-46, 1e300]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(temp=finite_or_not, barrier=finite_or_not, tilt=st.floats(-0.3, 0.3),
       dt=finite_or_not, t_max=finite_or_not, x0=finite_or_not)
def test_random_inputs_give_a_named_error_or_honest_counts(temp, barrier, tilt, dt, t_max,
                                                           x0):
    # Either a ValueError/TypeError whose message names the offending argument, or a
    # result whose counts are honest: outcomes disjoint and complete, escape times finite
    # and within t_max, rate finite and non-negative. Shapes are fixed (16 paths, 1-D), so
    # examples share one compiled program per pool width.
    try:
        loss = L.DoubleWell(barrier=barrier, tilt=tilt)
        model = M.Langevin(temp)
        ex = E.Halfspace([1.0], 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = sd.escape(model, loss, np.array([x0]), ex, n_paths=16,
                          dt=dt, t_max=min(t_max, 2.0) if t_max == t_max else t_max,
                          key=KEY, progress=False)
    except (ValueError, TypeError) as err:
        assert any(n in str(err) for n in NAMES), str(err)
        return
    ok = r.escaped.astype(int) + r.diverged.astype(int) + (r.status == 2).astype(int)
    assert np.all(ok == 1)
    t = r.times[r.escaped]
    assert np.all(np.isfinite(t)) and np.all(t <= r.t_max + 1e-12)
    assert np.isfinite(r.rate()) and r.rate() >= 0


def test_remembered_input_shapes_never_hide_a_bad_loss():
    # check_inputs remembers eval_shape results per structure and shapes (a trace is a
    # tenth of a 2 000-path run): a remembered good loss must not let a bad one through,
    # and a landscape of another dimension is traced again.
    from sdesim import engine

    dw, ex = sd.landscapes.DoubleWell(1.0), sd.exits.Halfspace(jnp.ones(1), 0.0)
    args = (jnp.asarray([-1.0]), ex, 8, 0.01, 1.0, jax.random.key(0))
    for _ in range(2):  # the second call is a memo hit
        engine.check_inputs(sd.models.Langevin(0.5), dw, *args)
    with pytest.raises(ValueError, match="loss must return a scalar"):
        engine.check_inputs(sd.models.Langevin(0.5), lambda th: 2 * th, *args)
    f = lambda th: th.sum(axis=0)  # noqa: E731  (its output shape follows the input's)
    assert engine._eval_shape(engine._call, f, jnp.zeros(3)).shape == ()
    assert engine._eval_shape(engine._call, f, jnp.zeros((3, 2))).shape == (2,)
    assert engine._eval_shape(engine._call, f, jnp.zeros(3)).shape == ()
