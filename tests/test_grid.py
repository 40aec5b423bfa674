"""sd.theory.mfpt_grid: the exact mean exit time of overdamped Langevin from the backward
equation on a grid, and predict(..., exit=, box=) that reports it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd


def test_grid_1d_matches_the_exact_quadrature():
    # F4 (mfpt_1d) is exact; the grid's error is second order inside and first order at
    # the exit's boundary (|τ'| h / τ ~ 1e-3 here): 3e-3 covers both
    dw = sd.landscapes.DoubleWell(1.0)
    th0, ex = dw.basin("left")
    for T in (0.5, 0.2):
        g = sd.theory.mfpt_grid(dw, T, th0, ex, [-3.0], [0.5])
        exact = sd.theory.mfpt_1d(lambda x: dw(x[None]), float(th0[0]), 0.0, T)
        assert g.mean_time == pytest.approx(exact, rel=3e-3)
        assert g.rel_error < 3e-3 and g.n == 4000


def test_grid_2d_separable_equals_the_1d_time():
    # L = (x² − 1)² + 2y²: the y-motion never reaches the exit x > 0.5, so the exit time
    # is the 1-D one exactly; the exit lies past the saddle, where τ is flat, so the
    # staircase boundary costs little: 1% (the grid's own estimate is 0.1-0.5%)
    def loss(th):
        return (th[0] ** 2 - 1.0) ** 2 + 2.0 * th[1] ** 2

    exit = sd.exits.Halfspace(jnp.array([1.0, 0.0]), 0.5)
    g = sd.theory.mfpt_grid(loss, 0.25, np.array([-1.0, 0.0]), exit, [-2.5, -2.0],
                            [1.0, 2.0], n=300)
    exact = sd.theory.mfpt_1d(lambda x: (x[0] ** 2 - 1.0) ** 2, -1.0, 0.5, 0.25)
    assert g.mean_time == pytest.approx(exact, rel=1e-2)
    assert g.field.shape == (300, 300) and g.cells < 300 * 300


def test_grid_matches_simulation_where_eyring_kramers_does_not():
    # the rotated anisotropic double well of benchmarks/theory_vs_simulation.py at
    # ΔL/T = 4: direct simulation, 2 000 paths (95% interval ±4.5%), dt small enough for a
    # ≤ 2% bias; the grid's value must lie in the interval widened by that 2%
    c, s = float(np.cos(0.6)), float(np.sin(0.6))

    def loss(th):
        u = c * th[0] + s * th[1]
        v = -s * th[0] + c * th[1]
        return (u**2 - 1.0) ** 2 + (1.0 + 0.5 * u**2) * v**2

    start = jnp.asarray([-c, -s], jnp.result_type(float))
    exit = sd.exits.Halfspace(jnp.asarray([c, s], jnp.result_type(float)), 0.5)  # u > 0.5
    T = 0.25
    g = sd.theory.mfpt_grid(loss, T, start, exit, [-2.5, -2.5], [2.5, 2.5], n=300)
    res = sd.escape(sd.models.Langevin(T), loss, start, exit, n_paths=2000, dt=2e-3,
                    t_max=5e3, key=jax.random.key(0), progress=False)
    lo, hi = res.mean_time_ci()
    assert lo / 1.02 <= g.mean_time <= hi * 1.02, (g.mean_time, lo, hi)
    # Eyring–Kramers (asymptotic in ΔL/T) is 11% short here, outside the interval
    ek = sd.theory.predict(sd.models.Langevin(T), loss, start).mean_time
    assert ek < lo / 1.02 and g.mean_time / ek > 1.08


def test_predict_reports_the_exact_time_and_refuses_what_it_cannot_solve():
    def loss(th):
        return (th[0] ** 2 - 1.0) ** 2 + 2.0 * th[1] ** 2

    exit = sd.exits.Halfspace(jnp.array([1.0, 0.0]), 0.5)
    box = ([-2.5, -2.0], [1.0, 2.0])
    p = sd.theory.predict(sd.models.Langevin(0.25), loss, np.array([-1.0, 0.0]),
                          exit=exit, box=box, grid_n=200)
    exact = sd.theory.mfpt_1d(lambda x: (x[0] ** 2 - 1.0) ** 2, -1.0, 0.5, 0.25)
    assert p.exact_mean_time == pytest.approx(exact, rel=2e-2)
    assert p.formula.startswith("F8") and p.mean_time != p.exact_mean_time
    # isotropic SGD: the same dynamics at T = lr σ²/2
    sgd = sd.models.SGD(0.5, sd.noise.isotropic(1.0))
    assert sd.theory.predict(sgd, loss, np.array([-1.0, 0.0]), exit=exit, box=box,
                             grid_n=200).exact_mean_time == pytest.approx(exact, rel=2e-2)
    assert sd.theory.predict(sd.models.Langevin(0.25), loss,
                             np.array([-1.0, 0.0])).exact is None
    with pytest.raises(ValueError, match="exit and box"):
        sd.theory.predict(sd.models.Langevin(0.25), loss, np.array([-1.0, 0.0]), exit=exit)
    with pytest.raises(ValueError, match="reversible isotropic"):
        sd.theory.predict(sd.models.SGD(0.1, sd.noise.hessian(4)), loss,
                          np.array([-1.0, 0.0]), exit=exit, box=box)


def test_grid_refuses_bad_inputs():
    dw = sd.landscapes.DoubleWell(1.0)
    th0, ex = dw.basin("left")
    with pytest.raises(ValueError, match="1, 2 or 3"):
        sd.theory.mfpt_grid(lambda th: jnp.sum(th**2), 0.1, np.zeros(4),
                            sd.exits.Ball(np.zeros(4), 1.0), -2.0, 2.0)
    with pytest.raises(ValueError, match="not inside the box"):
        sd.theory.mfpt_grid(dw, 0.2, th0, ex, [0.0], [1.0])
    with pytest.raises(ValueError, match="finite lower < upper"):
        sd.theory.mfpt_grid(dw, 0.2, th0, ex, [1.0], [-3.0])
    with pytest.raises(ValueError, match="temperature"):
        sd.theory.mfpt_grid(dw, -0.2, th0, ex, [-3.0], [0.5])
    with pytest.raises(ValueError, match="no path can leave"):
        sd.theory.mfpt_grid(dw, 0.2, th0, ex, [-3.0], [-0.5])


def test_basin_exit_is_past_the_saddle_and_gives_the_transition_time():
    # (x² − 1)² + 2y² from near the left minimum: one saddle (0, 0), the other minimum
    # (1, 0), the path along y = 0: the exit is x > 0.8 (commit 0.8), and the exact mean
    # time to it (grid) is the 1-D time to 0.8 (1%: the grid's staircase boundary)
    def loss(th):
        return (th[0] ** 2 - 1.0) ** 2 + 2.0 * th[1] ** 2

    x_min, exit = sd.critical.basin_exit(loss, np.array([-0.9, 0.1]))
    np.testing.assert_allclose(x_min, [-1.0, 0.0], atol=1e-5)
    assert not exit.outside(jnp.asarray([0.78, 0.0], jnp.result_type(float)))
    assert exit.outside(jnp.asarray([0.82, 0.0], jnp.result_type(float)))
    assert len(exit.fn.coords) == 1
    g = sd.theory.mfpt_grid(loss, 0.25, x_min, exit, [-2.5, -2.0], [1.5, 2.0], n=300)
    exact = sd.theory.mfpt_1d(lambda x: (x[0] ** 2 - 1.0) ** 2, -1.0, 0.8, 0.25)
    assert g.mean_time == pytest.approx(exact, rel=1e-2)
    with pytest.raises(ValueError, match="commit"):
        sd.critical.basin_exit(loss, np.array([-0.9, 0.1]), commit=1.0)


@pytest.mark.slow
def test_muller_brown_basin_comes_from_the_tools(tmp_path):
    # B is bounded by one saddle (B–C), C by two (B–C and A–C): found, not given
    mb = sd.landscapes.MullerBrown()
    for name, n_saddles in (("B", 1), ("C", 2)):
        theta0, exit = mb.basin(name)
        np.testing.assert_allclose(theta0, mb.MINIMA[name], atol=2e-3)
        assert len(exit.fn.coords) == n_saddles
        assert not exit.outside(jnp.asarray(theta0, jnp.result_type(float)))
    # and a config needs no [exit]
    from sdesim import cli

    cfg = tmp_path / "mb.toml"
    cfg.write_text('[landscape]\nname = "muller_brown"\nminimum = "B"\n[model]\n'
                   'name = "langevin"\ntemperature = 10.0\n[run]\nn_paths = 8\n'
                   'dt = 1e-5\nt_max = 0.01\n')
    assert cli.main(["run", str(cfg), "--check"]) == 0
