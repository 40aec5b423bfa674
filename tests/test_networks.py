"""Real data and a real model (sdesim.networks): digits, teacher–student, an MLP trained
to a minimum, escape from it with real minibatches."""

import jax
import numpy as np

import sdesim as sd
from sdesim import networks as nw


def test_digits_ship_with_scikit_learn():
    x, y = nw.digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.min() >= 0 and x.max() <= 1 and set(np.unique(y)) == set(range(10))
    x3, y3 = nw.digits(n_classes=3)
    assert set(np.unique(y3)) == {0, 1, 2} and x3.shape[0] < 600


def test_teacher_student_is_deterministic():
    a = nw.teacher_student(100, 5, 3, seed=1)
    b = nw.teacher_student(100, 5, 3, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (100, 5) and a[1].shape == (100,)


def test_train_save_load_and_escape_with_real_minibatches(tmp_path):
    prob = nw.digits_problem(hidden=(8,), n_classes=3, key=jax.random.key(0))
    loss0 = float(prob.loss(prob.params))
    params = nw.train(prob, sd.optim.sgd(0.5), steps=400, batch_size=32,
                      key=jax.random.key(1))
    assert float(prob.loss(params)) < 0.2 * loss0
    assert prob.accuracy(params) > 0.95  # three digit classes are easy
    nw.save(tmp_path / "p.eqx", params)
    back = nw.load(tmp_path / "p.eqx", prob.params)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(back),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # escape from a ball around the minimum: SGD with real minibatches, on the pytree
    r = sd.escape_algorithm(sd.optim.sgd(0.5), prob.loss, params, sd.exits.ball(params, 0.5),
                            data=prob.data, batch_size=8, per_sample=prob.per_sample,
                            n_iters=300, n_paths=8, key=jax.random.key(2), progress=False)
    assert r.n_paths == 8 and np.all(r.times[r.escaped] > 0)
    # the sharpness tools on the same network
    e = sd.diagnostics.hessian_eigs(prob.loss, params, k=2)
    assert e.values[0] >= e.values[1] > 0
