"""Trajectory mode: Ornstein–Uhlenbeck moments (diffrax and engine backends agree with the
closed form), and path i of simulate(method='engine') is path i of escape."""

import jax
import numpy as np
import pytest

import sdesim as sd


@pytest.mark.parametrize("method", ["diffrax", "engine"])
def test_ou_moments(method):
    # dθ = -kθ dt + sqrt(2T) dW from θ0 = 1: mean e^{-kt}, var (T/k)(1 - e^{-2kt}).
    # 4000 paths: the mean's SE is sqrt(var/4000) ≈ 0.011·sqrt(var); we allow 4 SE. The
    # variance's relative SE is sqrt(2/4000) = 2.2%: we allow 4 SE = 9% (+ O(dt) = 1%).
    k, temp = 2.0, 0.5
    loss = sd.landscapes.Quadratic(np.array([k]))
    tr = sd.simulate(sd.models.Langevin(temp), loss, np.array([1.0]), n_paths=4000, dt=0.01,
                     t_max=1.0, key=jax.random.key(0), save_every=10, method=method)
    assert tr.paths.shape == (4000, 11, 1) and tr.ts.shape == (11,)
    t = tr.ts[[2, 5, 10]]
    mean = np.exp(-k * t)
    var = temp / k * (1 - np.exp(-2 * k * t))
    got = tr.paths[:, [2, 5, 10], 0]
    assert np.all(np.abs(got.mean(0) - mean) < 4 * np.sqrt(var / 4000))
    np.testing.assert_allclose(got.var(0), var, rtol=0.10)


def test_engine_trajectory_is_the_escape_path():
    dw = sd.landscapes.DoubleWell()
    th0, ex = dw.basin("left")
    m = sd.models.Langevin(0.3)
    key = jax.random.key(4)
    res = sd.escape(m, dw, th0, ex, n_paths=20, dt=0.01, t_max=5.0, key=key, bridge=False,
                    progress=False)
    tr = sd.simulate(m, dw, th0, n_paths=20, dt=0.01, t_max=5.0, key=key, method="engine")
    first = np.argmax(tr.paths[:, 1:, 0] > 0.0, axis=1) + 1
    crossed = np.any(tr.paths[:, 1:, 0] > 0.0, axis=1)
    np.testing.assert_array_equal(crossed, res.escaped)
    np.testing.assert_allclose(tr.ts[first[crossed]], res.times[res.escaped], rtol=1e-6)


def test_underdamped_and_sgd_trajectories_run():
    loss = sd.landscapes.Quadratic(np.array([1.0, 3.0]))
    for m in (sd.models.Underdamped(1.0, 1.0, 0.2), sd.models.SGD(0.1, sd.noise.hessian(4))):
        tr = sd.simulate(m, loss, np.array([0.5, -0.5]), n_paths=8, dt=0.01, t_max=0.5,
                         key=jax.random.key(0))
        assert tr.paths.shape == (8, 51, 2) and np.all(np.isfinite(tr.paths))
    assert tr.velocities is None


def test_diffrax_simulate_compiles_once_for_a_temperature_sweep(count_compiles):
    # The model's parameters are traced (the program is module-level and keyed on shapes,
    # the solver, dt and the classes): a second temperature reuses the program; a positive
    # control (another path count, a new shape) compiles.
    dw = sd.landscapes.DoubleWell()
    th0, _ = dw.basin("left")
    kw = dict(n_paths=4, dt=0.01, t_max=0.2, key=jax.random.key(0), method="diffrax")
    sd.simulate(sd.models.Langevin(0.3), dw, th0, **kw)
    with count_compiles() as c:
        sd.simulate(sd.models.Langevin(0.5), dw, th0, **kw)
        sd.simulate(sd.models.Langevin(0.7), sd.landscapes.DoubleWell(barrier=2.0), th0, **kw)
    assert c.n == 0
    with count_compiles() as c:
        sd.simulate(sd.models.Langevin(0.5), dw, th0, **dict(kw, n_paths=5))
    assert c.n > 0
