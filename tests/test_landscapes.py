"""Landscapes: Styblinski–Tang critical points, sharpness scaling, data-shifted closed
forms against per-sample averages, and the other built-ins."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd

ST_1D = {"global_min": -2.903534, "saddle": 0.156731, "local_min": 2.746803}  # SPEC §5


@pytest.mark.parametrize("k", [1.0, 4.0, 0.25])
def test_styblinski_tang_critical_points_scale_with_sharpness(k):
    # 6 decimals: the SPEC's printed precision.
    cp = sd.landscapes.StyblinskiTang(dim=3, sharpness=k).critical_points()
    for name, y in ST_1D.items():
        assert cp[name] == pytest.approx(y / np.sqrt(k), abs=1e-6)


def test_data_shifted_critical_points_are_zeros_of_the_gradient():
    st = sd.landscapes.StyblinskiTang(dim=2, sharpness=2.0, data_std=1.0)
    cp = st.critical_points()
    # float64 central difference of the exact coordinate loss: O(h²) = 1e-8 truncation
    h = 1e-4
    for name in ("global_min", "saddle", "local_min"):
        x = cp[name]
        slope = (st.potential_1d(x + h) - st.potential_1d(x - h)) / (2 * h)
        assert abs(float(slope)) < 1e-6
    g = jax.grad(st)  # and the JAX loss agrees to float32 precision
    assert np.max(np.abs(np.asarray(g(jnp.full(2, cp["saddle"]))))) < 1e-3
    # data noise lowers the barrier (it smooths the quartic): saddle moves, minima move in
    assert cp["local_min"] < ST_1D["local_min"] / np.sqrt(2.0)


def test_data_shifted_closed_forms_match_per_sample_averages():
    # Gauss–Hermite is exact for these polynomials; compare with an average over 400 000
    # per-sample losses: Monte-Carlo relative error ~ 3 sd/sqrt(N) < 1% for these moments.
    st = sd.landscapes.StyblinskiTang(dim=3, sharpness=1.5, data_std=0.8)
    x = np.random.default_rng(0).normal(0, 0.8, (400_000, 3))
    th = jnp.array([2.0, -1.0, 0.3])
    per = jax.vmap(st.per_sample, in_axes=(None, 0))(th, x)
    grads = np.asarray(jax.vmap(jax.grad(st.per_sample), in_axes=(None, 0))(th, x))
    assert float(st(th)) == pytest.approx(float(per.mean()), rel=1e-2)
    np.testing.assert_allclose(np.asarray(jax.grad(st)(th)), grads.mean(0), rtol=2e-2,
                               atol=0.1)
    np.testing.assert_allclose(np.asarray(st.grad_cov(th)), grads.var(0), rtol=2e-2)
    np.testing.assert_allclose(np.asarray(st.hessian_diag(th)),
                               np.diag(np.asarray(jax.hessian(st)(th))), rtol=1e-5)


def test_basin_exit_is_the_saddle():
    st = sd.landscapes.StyblinskiTang(dim=4, sharpness=2.0)
    th0, ex = st.basin("local")
    assert not bool(ex.outside(jnp.asarray(th0)))
    th = th0.copy()
    th[2] = st.critical_points()["saddle"] - 1e-3
    assert bool(ex.outside(jnp.asarray(th)))


def test_double_well_metadata_and_tilt():
    dw = sd.landscapes.DoubleWell(barrier=2.0, width=1.5, tilt=0.3, dim=3, stiffness=[1., 2.])
    cp = dw.critical_points()
    g = jax.grad(dw)
    for name in cp:
        th = jnp.array([cp[name], 0.0, 0.0])
        assert abs(float(g(th)[0])) < 1e-4
    np.testing.assert_allclose(np.asarray(dw.hessian_diag(jnp.array([0.4, 0.1, 0.2]))),
                               np.diag(np.asarray(jax.hessian(dw)(jnp.array([0.4, .1, .2])))),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="tilt"):
        sd.landscapes.DoubleWell(tilt=5.0).critical_points()


def test_quadratic_asymmetric_rastrigin_rosenbrock():
    q = sd.landscapes.Quadratic(np.array([1.0, 4.0]), hessian_neg=np.array([2.0, 1.0]))
    assert float(q(jnp.array([1.0, 1.0]))) == pytest.approx(0.5 + 2.0)
    assert float(q(jnp.array([-1.0, -1.0]))) == pytest.approx(1.0 + 0.5)
    th0, ex = q.basin(1.0)
    assert bool(ex.outside(jnp.array([-1.5, 0.0]))) and not bool(ex.outside(jnp.zeros(2)))
    r = sd.landscapes.Rastrigin()
    assert float(r(jnp.zeros(3))) == 0.0
    np.testing.assert_allclose(np.asarray(r.hessian_diag(jnp.array([0.1, 0.3]))),
                               np.diag(np.asarray(jax.hessian(r)(jnp.array([0.1, 0.3])))),
                               rtol=1e-4)
    rb = sd.landscapes.Rosenbrock()
    assert float(rb(jnp.ones(4))) == 0.0
    assert np.allclose(np.asarray(jax.grad(rb)(jnp.ones(4))), 0.0)
