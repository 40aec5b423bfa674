"""A network experiment's problem, for ``[landscape] target = "digits_mlp.py:make"``
(examples/digits_mlp.toml): an MLP on scikit-learn's 1 797 handwritten digits, trained to
a minimum by SGD or Adam, and the loss on a fixed evaluation set (every 7th example) that
the exit watches.

A target factory returns the problem as a dict (or an object with these attributes):
``loss(params)``, ``params`` (the start: any pytree), and optionally ``per_sample(params,
example)`` with ``data`` (one example per row: minibatch gradients and minibatch noise),
``eval_loss(params)`` (watched by an [exit] level_set) and ``exit``. Its keyword arguments
come from the config's [landscape.args] table.
"""

import jax

import sdesim as sd


def make(hidden=32, optimizer="sgd", lr=0.5, steps=4000, batch_size=32, seed=0):
    prob = sd.networks.digits_problem(hidden=(hidden,), key=jax.random.key(seed))
    opt = {"sgd": sd.optim.sgd, "adam": sd.optim.adam}[optimizer](lr)
    params = sd.networks.train(prob, opt, steps=steps, batch_size=batch_size,
                               key=jax.random.key(seed + 1))
    held_out = prob.data[::7]
    return dict(loss=prob.loss, params=params, per_sample=prob.per_sample, data=prob.data,
                eval_loss=lambda p: prob.loss(p, held_out))
