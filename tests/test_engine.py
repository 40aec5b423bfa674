"""Engine: reproducibility, lanes, censoring, non-finite exits, recompilation, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd

DW = sd.landscapes.DoubleWell(barrier=1.0)
TH0, EXIT = DW.basin("left")


def run(n, key=0, lanes=None, temp=0.3, **kw):
    kw.setdefault("dt", 0.01)
    kw.setdefault("t_max", 1e4)
    return sd.escape(sd.models.Langevin(temp), DW, TH0, EXIT, n_paths=n,
                     key=jax.random.key(key), lanes=lanes, progress=False, **kw)


def test_same_key_same_result_and_new_key_differs():
    a, b, c = run(300), run(300), run(300, key=1)
    np.testing.assert_array_equal(a.times, b.times)
    assert not np.array_equal(a.times, c.times)


def test_prefix_property_and_lane_count_do_not_change_paths():
    # Path i's noise depends only on (key, i, step): a 300-path run is the first 300 paths
    # of a 1000-path run, whatever the pool width (with or without compaction).
    small = run(300)
    big = run(1000)
    narrow = run(1000, lanes=16)
    wide = run(1000, lanes=1000)
    np.testing.assert_array_equal(small.times, big.times[:300])
    np.testing.assert_array_equal(big.times, narrow.times)
    np.testing.assert_array_equal(big.times, wide.times)


@pytest.mark.parametrize("model", [sd.models.SGD(1.0, sd.noise.hessian(2.0, floor=4.0)),
                                   sd.models.Momentum(1.0, 0.9, sd.noise.hessian(0.5,
                                                                                 floor=4.0))])
def test_lanes_minor_pages_do_not_change_paths(model, monkeypatch):
    # With 2-20 numbers per lane a page keeps the lanes as the minor axis of the state
    # (engine._lane_axis); the paths must be those of the lanes-first layout, whatever the
    # pool width (3-D Styblinski-Tang, box exit with the bridge, one and two state leaves).
    from sdesim import engine

    st = sd.landscapes.StyblinskiTang(3, 1.0, 1.0)
    th0, ex = st.basin("local")

    def go(**kw):
        return sd.escape(model, st, th0, ex, n_paths=200, dt=0.002, t_max=20.0,
                         key=jax.random.key(4), progress=False, **kw)

    minor = go()
    assert engine._lane_axis(engine.jax.vmap(model.init)(jnp.zeros((2, 3)))) == -1
    assert 0 < int(minor.escaped.sum()) < 200  # some escape, some are censored
    np.testing.assert_array_equal(minor.times, go(lanes=7).times)
    monkeypatch.setattr(engine, "_lane_axis", lambda state: 0)
    np.testing.assert_array_equal(minor.times, go(lanes=64).times)


def test_accelerator_settings_do_not_change_paths(monkeypatch):
    # On accelerators the engine unrolls the page loop 8 steps per iteration and does not
    # compact narrow pools (_page_unroll, _next_width); neither may change a path. Forced
    # here on CPU: per-path exit steps equal the default run's, for a Gaussian model with
    # the bridge and for a phase-space model.
    from sdesim import engine

    base = run(400)
    under = sd.escape(sd.models.Underdamped(1.0, 2.0, 0.3), DW, TH0, EXIT, n_paths=200, dt=0.01,
                      t_max=1e3, key=jax.random.key(3), progress=False)
    monkeypatch.setattr(engine, "_page_unroll", lambda platform: 8)
    monkeypatch.setattr(engine, "_next_width",
                        lambda width, d=1, platform="cpu": 0)
    accel = run(400)
    under_accel = sd.escape(sd.models.Underdamped(1.0, 2.0, 0.3), DW, TH0, EXIT, n_paths=200,
                            dt=0.01, t_max=1e3, key=jax.random.key(3), progress=False)
    assert accel.info.widths == [accel.info.widths[0]] * len(accel.info.widths)
    np.testing.assert_array_equal(base.steps, accel.steps)
    np.testing.assert_array_equal(base.status, accel.status)
    np.testing.assert_array_equal(under.steps, under_accel.steps)


def test_blocks_of_paths_with_first_path_equal_one_run():
    # first_path shifts a run along the stream: blocks [0, 400) + [400, 1000) = one run.
    whole = run(1000)
    parts = [run(400), run(600, first_path=400)]
    np.testing.assert_array_equal(np.concatenate([p.times for p in parts]), whole.times)
    with pytest.raises(ValueError, match="first_path"):
        run(10, first_path=-1)


def test_raw_uint32_key_is_accepted_and_equivalent():
    a = run(50)
    b = sd.escape(sd.models.Langevin(0.3), DW, TH0, EXIT, n_paths=50, dt=0.01, t_max=1e4,
                  key=jax.random.PRNGKey(0), progress=False)
    np.testing.assert_array_equal(a.times, b.times)


def test_censoring_and_interval_with_no_exits():
    r = run(64, temp=0.02, t_max=1.0)  # ΔU/T = 50: nothing escapes in one time unit
    assert not r.escaped.any() and np.all(np.isinf(r.times))
    assert np.all(r.steps == 100)
    lo, hi = r.rate_ci()
    assert lo == 0.0 and 0 < hi < np.inf
    assert r.mean_time() == np.inf


def test_escape_times_lie_on_grid_and_within_t_max():
    r = run(200, t_max=30.0)
    t = r.times[r.escaped]
    assert t.size > 0 and np.all(t <= 30.0 + 1e-9)
    np.testing.assert_allclose(t / 0.01, np.round(t / 0.01), atol=1e-6)
    assert 0 < r.escaped_fraction < 1


def test_diverged_paths_are_not_escapes():
    # An unbounded loss with a huge step overflows within a few steps; the exit region
    # (the whole line) contains every finite point and cannot place ±inf outside. Every
    # path must end *diverged*: not an escape, no escape time, a warning that says so, and
    # a rate estimate that counts no escape (0, with a finite upper bound).
    loss = lambda th: -jnp.sum(th**4)
    with pytest.warns(sd.DivergenceWarning, match="40 of 40 paths diverged"):
        r = sd.escape(sd.models.Langevin(1.0), loss, jnp.array([0.5]),
                      sd.exits.Box([-np.inf], [np.inf]), n_paths=40, dt=1.0, t_max=1e3,
                      key=jax.random.key(0), progress=False)
    assert r.n_diverged == 40 and not r.escaped.any() and r.diverged.all()
    assert np.all(np.isnan(r.times)) and np.all(r.status == 3)
    assert r.rate() == 0.0 and np.isfinite(r.rate_ci()[1]) and r.mean_time() == np.inf


def sweep_point(temp, barrier, dt, t_max, key):
    lw = sd.landscapes.DoubleWell(barrier=barrier, tilt=0.1 * barrier)
    th0, ex = lw.basin("left")
    # n_paths == lanes == 32: no compaction, so one pool width in every call
    return sd.escape(sd.models.Langevin(temp), lw, th0, ex, n_paths=32, dt=dt, t_max=t_max,
                     key=jax.random.key(key), lanes=32, progress=False)


def test_sweep_over_hyperparameters_compiles_once(count_compiles):
    # Temperature, landscape parameters (barrier, tilt), theta0, the exit offset, dt,
    # t_max and the key are all traced: after one warm-up call nothing compiles again.
    sweep_point(0.3, 1.0, 0.01, 50.0, 0)
    with count_compiles() as c:
        results = [sweep_point(t, b, dt, tm, k) for t, b, dt, tm, k in
                   [(0.4, 0.8, 0.02, 60.0, 1), (0.5, 1.2, 0.005, 40.0, 2)]]
    assert c.n == 0, f"{c.n} compilations in a sweep that should reuse one program"
    assert results[0].rate() != results[1].rate()  # the sweep really changed something


def test_quadratic_level_set_basin_sweeps_over_the_hessian(count_compiles):
    # Quadratic.basin on a diagonal Hessian exits through a LevelSet of the landscape
    # itself; its Hessian must stay traced there too (it once was static metadata, and a
    # second Hessian failed the pytree-metadata equality check).
    def point(h):
        q = sd.landscapes.Quadratic(np.array([h, 2 * h]))
        th0, ex = q.basin(1.0)
        return sd.escape(sd.models.Langevin(0.3), q, th0, ex, n_paths=64, dt=0.01,
                         t_max=100.0, key=jax.random.key(0), lanes=32, progress=False)

    point(1.0)
    with count_compiles() as c:
        a, b = point(2.0), point(4.0)
    assert c.n == 0
    assert b.mean_time() < a.mean_time()  # sharper and narrower basin: out sooner


def test_compile_counter_detects_a_recompile(count_compiles):
    # The counter above can fail: a new pool width is a new program.
    sweep_point(0.3, 1.0, 0.01, 50.0, 0)
    with count_compiles() as c:
        sd.escape(sd.models.Langevin(0.3), DW, TH0, EXIT, n_paths=24, dt=0.01, t_max=5.0,
                  key=jax.random.key(0), lanes=24, progress=False)
    assert c.n > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(dt=-0.1), "dt"),
    (dict(dt=0.0), "dt"),
    (dict(t_max=float("nan")), "t_max"),
    (dict(n_paths=0), "n_paths"),
    (dict(theta0=np.zeros(2)), "dimension"),
    (dict(theta0=np.zeros((1, 1))), "theta0"),
    (dict(exit=sd.exits.Box([0.0, 0.0], [1.0, 1.0])), "dimension"),
])
def test_bad_input_raises_before_compiling(kwargs, match):
    traces = []

    def loss(th):
        traces.append(1)
        return DW(th)

    args = dict(model=sd.models.Langevin(0.3), loss=loss, theta0=TH0, exit=EXIT, n_paths=10,
                dt=0.01, t_max=1.0, key=jax.random.key(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sd.escape(args.pop("model"), args.pop("loss"), args.pop("theta0"), args.pop("exit"),
                  **args)
    assert len(traces) <= 1  # at most the shape check (jax.eval_shape), never a compile


def test_bad_model_is_refused_at_construction():
    with pytest.raises(ValueError, match="temperature must be >= 0, got -1.0"):
        sd.models.Langevin(-1.0)


def test_bad_types_raise_typeerror():
    with pytest.raises(TypeError, match="n_paths"):
        sd.escape(sd.models.Langevin(0.3), DW, TH0, EXIT, n_paths=2.5, dt=0.01, t_max=1.0,
                  key=jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        sd.escape(sd.models.Langevin(0.3), DW, TH0, EXIT, n_paths=2, dt=0.01, t_max=1.0,
                  key=3)
    with pytest.raises(TypeError, match="exit"):
        sd.escape(sd.models.Langevin(0.3), DW, TH0, "left", n_paths=2, dt=0.01, t_max=1.0,
                  key=jax.random.key(0))


def test_alpha_outside_range_raises():
    for a in (0.0, -1.0, 2.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            sd.noise.sas(jax.random.key(0), a, (3,))


def test_iterations_reported_for_models_with_lr():
    loss = sd.landscapes.Quadratic(np.array([1.0, 2.0]))
    th0, ex = loss.basin(0.5)
    r = sd.escape(sd.models.SGD(0.1, sd.noise.isotropic(1.0)), loss, th0, ex, n_paths=50,
                  dt=0.01, t_max=100.0, key=jax.random.key(0), progress=False)
    assert r.lr == pytest.approx(0.1)
    np.testing.assert_allclose(r.iterations[r.escaped], r.times[r.escaped] / 0.1)


def test_models_with_the_same_layout_do_not_share_a_program():
    # JAX 0.10 treedefs of two registered dataclasses with the same field layout compare
    # equal even when the classes differ (Adam vs Adai): with identical leaves, a jit cache
    # keyed on the treedef would run Adam's program for Adai. The engine keys on the class
    # names too (whatever the registration); run Adam first, then Adai with the very same
    # leaves: results must differ.
    noise = sd.noise.isotropic(20.0)
    adam = sd.models.Adam(0.05, noise, beta1=0.1, beta2=0.99, eps=1e-3)
    adai = sd.models.Adai(0.05, noise, beta0=0.1, beta2=0.99, eps=1e-3)
    assert sd.engine._signature(adam) != sd.engine._signature(adai)
    kw = dict(n_paths=64, dt=0.01, t_max=50.0, key=jax.random.key(0), lanes=64,
              progress=False)
    r_adam = sd.escape(adam, DW, TH0, EXIT, **kw)
    r_adai = sd.escape(adai, DW, TH0, EXIT, **kw)
    assert not np.array_equal(r_adam.times, r_adai.times)


def test_check_every_tests_the_exit_on_its_grid_only():
    # the same stream with the exit tested every 4th step: path i's exit is the first
    # step k·4 at which its simulated trajectory is outside (simulate(method="engine")
    # gives path i of escape); the bridge is off there, so compare with the grid.
    model = sd.models.Langevin(0.5)
    kw = dict(n_paths=12, dt=0.01, t_max=40.0, key=jax.random.key(5), progress=False)
    r4 = sd.escape(model, DW, TH0, EXIT, check_every=4, **kw)
    r1 = sd.escape(model, DW, TH0, EXIT, bridge=False, **kw)
    assert r4.info.check_every == 4 and r4.n_escaped >= 6
    s4 = np.asarray(r4.steps)[r4.escaped]
    assert np.all(s4 % 4 == 0)
    assert np.all(np.asarray(r4.steps) >= np.asarray(r1.steps))
    tr = sd.simulate(model, DW, TH0, n_paths=12, dt=0.01, t_max=40.0, key=jax.random.key(5),
                     method="engine")
    outside = np.asarray(tr.paths[:, :, 0]) > 0  # the exit: x > 0 (saves every step)
    for i in np.flatnonzero(r4.escaped):
        ks = np.flatnonzero(outside[i, 4::4])
        assert ks.size and (ks[0] + 1) * 4 == r4.steps[i], i
    with pytest.raises(ValueError, match="divide"):
        sd.escape(model, DW, TH0, EXIT, check_every=3, **kw)


def test_pool_width_is_bounded_by_memory(monkeypatch):
    # a lane holds ~2 × 64 × noise_dim numbers of page noise plus a few state copies: with
    # a 64 MB budget, d = 20 000 (float32) allows 64e6 / (4·(2·64·20000 + 4·20000)) = 6
    # lanes; the run goes through with that pool and its results do not depend on it
    monkeypatch.setattr(sd.engine, "_memory_budget", lambda platform: 64 * 10**6)
    d = 20_000
    assert sd.engine.default_lanes(1000, d, "cpu") == 6
    assert sd.engine.default_lanes(1000, 1, "cpu") == 250  # small d: as before
    size = jnp.dtype(jnp.result_type(float)).itemsize  # float64 runs: 3 lanes
    lanes = 64 * 10**6 // (size * (2 * 64 * d + 4 * d))
    quad = sd.landscapes.Quadratic(np.ones(d))
    kw = dict(n_paths=8, dt=0.01, t_max=2.0, key=jax.random.key(0), progress=False)
    ex = sd.exits.Ball(np.zeros(d), 140.5)  # ‖θ‖ → sqrt(d·T) ≈ 141.4: most paths leave
    r = sd.escape(sd.models.Langevin(1.0), quad, np.zeros(d), ex, **kw)
    assert r.info.widths[0] == lanes and 0 < r.n_escaped < 8
    r2 = sd.escape(sd.models.Langevin(1.0), quad, np.zeros(d), ex, lanes=8, **kw)
    np.testing.assert_array_equal(r.times, r2.times)


def test_hessian_noise_that_vanishes_on_the_way_out_is_warned_about():
    """|H|/B dies at the double well's inflection point x = −1/√3 between the minimum and
    the saddle: the continuous SDE cannot cross it, no path escapes; the warning names the
    point and the fix (a floor), and a floor silences it."""
    dw = sd.landscapes.DoubleWell(1.0)
    th0, ex = dw.basin("left")
    kw = dict(n_paths=50, dt=0.01, t_max=50.0, key=jax.random.key(0), progress=False)
    with pytest.warns(sd.NoiseWarning, match=r"near theta = \[-0.577.*floor=") as rec:
        r = sd.escape(sd.models.SGD(0.1, sd.noise.hessian(2.0)), dw, th0, ex, **kw)
    assert len(rec) == 1 and r.escaped.sum() == 0
    at = sd.engine.noise_vanishes(sd.models.SGD(0.1, sd.noise.hessian(2.0)), dw, th0, ex)
    np.testing.assert_allclose(at, [-1 / np.sqrt(3)], atol=1e-3)
    assert sd.engine.noise_vanishes(sd.models.SGD(0.1, sd.noise.hessian(2.0, floor=0.5)),
                                    dw, th0, ex) is None
    assert sd.engine.noise_vanishes(sd.models.SGD(0.1, sd.noise.isotropic(1.0)),
                                    dw, th0, ex) is None
    # a velocity (phase space) or a jump (Lévy) carries a path across: no warning there
    for model in (sd.models.Momentum(0.1, 0.9, sd.noise.hessian(2.0)),
                  sd.models.SGDLevy(0.1, 1.5, sd.noise.hessian(2.0))):
        assert sd.engine.noise_vanishes(model, dw, th0, ex) is None, model


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_lane_fold_in_is_jax_fold_in(impl):
    # the engine's lane-wise fold_in (an unrolled threefry hash for threefry keys) must be
    # jax.random.fold_in bit for bit: it defines every path's random stream
    from sdesim import engine

    data = jnp.array([0, 1, 2, 63, 500, 65535, 2**31 - 1, -1, -7], jnp.int32)
    key = jax.random.key(12345, impl=impl)
    keys = jax.random.split(key, data.shape[0])
    want_one = jax.vmap(jax.random.fold_in, (None, 0))(key, data)
    want_many = jax.vmap(jax.random.fold_in)(keys, data)
    np.testing.assert_array_equal(jax.random.key_data(engine._fold_in(key, data)),
                                  jax.random.key_data(want_one))
    np.testing.assert_array_equal(jax.random.key_data(engine._fold_in(keys, data)),
                                  jax.random.key_data(want_many))
