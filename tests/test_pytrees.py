"""Parameters as pytrees (sdesim.pytrees): the boundary flattens once, the run is the run
of the hand-flattened problem bit for bit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import pytrees

# a two-leaf parameter tree: a 1-D double well in w[0] (barrier 1 at w[0] = 0), a stiff
# quadratic in the other coordinates
PARAMS0 = {"w": jnp.array([-1.0, 0.2]), "b": jnp.array(0.1)}


def loss_tree(p):
    x = p["w"][0]
    return (x**2 - 1) ** 2 + 2.0 * p["w"][1] ** 2 + 3.0 * p["b"] ** 2


FLAT0, UNRAVEL = pytrees.layout(PARAMS0)


def loss_flat(theta):
    return loss_tree(UNRAVEL(theta))


def test_layout_round_trip_and_order():
    # ravel_pytree's order: leaves in tree order (dict keys sorted: b, w), C order
    np.testing.assert_array_equal(np.asarray(FLAT0), np.asarray([0.1, -1.0, 0.2], FLAT0.dtype))
    back = UNRAVEL(FLAT0)
    assert back["w"].shape == (2,) and back["b"].shape == ()
    np.testing.assert_array_equal(np.asarray(jax.flatten_util.ravel_pytree(PARAMS0)[0]),
                                  np.asarray(FLAT0))
    stack = UNRAVEL(jnp.stack([FLAT0, 2 * FLAT0]))
    assert stack["w"].shape == (2, 2) and stack["b"].shape == (2,)


def test_escape_on_a_pytree_is_the_flat_run_bit_for_bit():
    kw = dict(n_paths=64, dt=0.01, t_max=200.0, key=jax.random.key(3), progress=False)
    model = sd.models.Langevin(0.3)
    ex_tree = sd.exits.ball({"w": jnp.array([-1.0, 0.0]), "b": jnp.array(0.0)}, 1.0)
    ex_flat = sd.exits.Ball(np.array([0.0, -1.0, 0.0]), 1.0)
    r_tree = sd.escape(model, loss_tree, PARAMS0, ex_tree, **kw)
    r_flat = sd.escape(model, loss_flat, FLAT0, ex_flat, **kw)
    assert r_tree.n_escaped > 10  # the comparison is not vacuous
    np.testing.assert_array_equal(r_tree.times, r_flat.times)
    np.testing.assert_array_equal(r_tree.escaped, r_flat.escaped)
    # a callable exit takes the pytree too
    r_call = sd.escape(model, loss_tree, PARAMS0, lambda p: p["w"][0] > 0, **kw)
    r_callf = sd.escape(model, loss_flat, FLAT0, lambda th: th[1] > 0, **kw)
    np.testing.assert_array_equal(r_call.times, r_callf.times)


def test_algorithm_with_a_per_sample_loss_of_the_pytree():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 2)).astype(np.float32)

    def per_sample(p, x):  # the loss of one example: a shifted double well
        return ((p["w"][0] - x[0]) ** 2 - 1) ** 2 + 2.0 * (p["w"][1] - x[1]) ** 2 \
            + 3.0 * p["b"] ** 2

    def per_sample_flat(theta, x):
        return per_sample(UNRAVEL(theta), x)

    kw = dict(n_iters=2000, n_paths=32, key=jax.random.key(1), data=data, batch_size=2,
              progress=False)
    opt = sd.optim.sgd(0.05)
    r_tree = sd.escape_algorithm(opt, loss_tree, PARAMS0, lambda p: p["w"][0] > 0,
                                 per_sample=per_sample, **kw)
    r_flat = sd.escape_algorithm(opt, loss_flat, FLAT0, lambda th: th[1] > 0,
                                 per_sample=per_sample_flat, **kw)
    assert r_tree.n_escaped > 3
    np.testing.assert_array_equal(r_tree.times, r_flat.times)


def test_minibatch_noise_sde_on_a_pytree():
    data = np.linspace(-0.5, 0.5, 8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)

    def per_sample(p, x):
        return ((p["w"][0] - x[0]) ** 2 - 1) ** 2 + 2.0 * (p["w"][1] - x[1]) ** 2 \
            + 3.0 * p["b"] ** 2

    model = sd.models.SGD(0.2, sd.noise.minibatch(data, 2.0, per_sample=per_sample))
    model_flat = sd.models.SGD(0.2, sd.noise.minibatch(
        data, 2.0, per_sample=lambda th, x: per_sample(UNRAVEL(th), x)))
    kw = dict(n_paths=16, dt=0.01, t_max=20.0, key=jax.random.key(2), progress=False)
    r = sd.escape(model, loss_tree, PARAMS0, lambda p: p["w"][0] > 0, **kw)
    rf = sd.escape(model_flat, loss_flat, FLAT0, lambda th: th[1] > 0, **kw)
    np.testing.assert_array_equal(r.times, rf.times)


def test_simulate_returns_pytrees_when_asked():
    model = sd.models.Langevin(0.2)
    kw = dict(n_paths=3, dt=0.01, t_max=0.5, key=jax.random.key(0), method="engine")
    tr = sd.simulate(model, loss_tree, PARAMS0, **kw)
    tf = sd.simulate(model, loss_flat, FLAT0, **kw)
    np.testing.assert_array_equal(tr.paths, tf.paths)
    p = tr.params()
    assert p["w"].shape == (3, 51, 2) and p["b"].shape == (3, 51)
    np.testing.assert_array_equal(np.asarray(p["w"][:, :, 0]), tr.paths[:, :, 1])
    assert tf.params() is tf.paths


def test_equinox_module_parameters():
    mlp = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0))
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    x = jnp.linspace(-1, 1, 8)[:, None] * jnp.ones((1, 2))
    y = jnp.sin(x[:, 0])

    def loss(p):
        net = eqx.combine(p, static)
        return jnp.mean((jax.vmap(net)(x)[:, 0] - y) ** 2)

    r = sd.escape(sd.models.Langevin(0.01), loss, params,
                  sd.exits.ball(params, 0.05), n_paths=8, dt=0.001, t_max=2.0,
                  key=jax.random.key(0), progress=False)
    assert r.n_paths == 8 and r.n_escaped > 0  # a 0.05 ball is left quickly at T = 0.01
    d = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert pytrees.layout(params)[0].shape == (d,)


def test_ams_on_a_pytree_is_the_flat_run():
    kw = dict(dt=0.01, key=jax.random.key(4), n_replicas=20, n_runs=2, levels=(-0.9, -0.5),
              n_direct=40)
    model = sd.models.Langevin(0.25)
    ex_tree = sd.exits.ball({"w": jnp.array([-1.0, 0.0]), "b": jnp.array(0.0)}, 1.0)
    ex_flat = sd.exits.Ball(np.array([0.0, -1.0, 0.0]), 1.0)

    def score_tree(p):
        return p["w"][0]

    a = sd.rare.escape_ams(model, loss_tree, PARAMS0, ex_tree, score=score_tree, **kw)
    b = sd.rare.escape_ams(model, loss_flat, FLAT0, ex_flat, score=lambda th: th[1], **kw)
    np.testing.assert_array_equal(a.p_runs, b.p_runs)


def test_bad_leaves_are_named():
    with pytest.raises(TypeError, match=r"theta0\['name'\]"):
        sd.escape(sd.models.Langevin(0.1), loss_tree, {"w": PARAMS0["w"], "name": "x"},
                  lambda p: False, n_paths=2, dt=0.1, t_max=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="empty"):
        pytrees.layout({})
    with pytest.raises(ValueError, match="structure"):
        UNRAVEL.ravel({"w": PARAMS0["w"]})
