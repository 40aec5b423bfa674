"""The model contract (sdesim/model.py): a model written from README's example alone runs in
the engine and equals the built-in model with the same equation, path for path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import _checks
from sdesim.model import Diffusion, Overdamped


@_checks.pytree_dataclass
class NoisyGD(Overdamped):  # README, "Writing a model"
    lr: jax.Array
    variance: jax.Array
    diffusive_position = True

    def _validate(self):
        _checks.real("variance", self.variance, nonnegative=True)

    def terms(self, theta, t, h, loss):
        return Diffusion(-jax.grad(loss)(theta), scale=jnp.sqrt(self.lr * self.variance))


def test_readme_model_equals_langevin_path_for_path():
    # sqrt(lr·variance) = sqrt(1·0.6) and Langevin's sqrt(2T) = sqrt(2·0.3) are the same
    # float32 number, so the two models take identical steps (bridge included).
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    kw = dict(n_paths=64, dt=0.01, t_max=50.0, key=jax.random.key(4), progress=False)
    a = sd.escape(NoisyGD(1.0, 0.6), dw, th0, ex, **kw)
    b = sd.escape(sd.models.Langevin(0.3), dw, th0, ex, **kw)
    assert a.n_escaped > 10
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.status, b.status)
    tr = sd.simulate(NoisyGD(1.0, 0.6), dw, th0, n_paths=2, dt=0.01, t_max=0.1,
                     key=jax.random.key(0))  # diffrax form derived from terms
    assert tr.paths.shape == (2, 11, 1)
    with pytest.raises(ValueError, match="variance"):
        NoisyGD(1.0, -1.0)


def test_engine_refuses_an_object_that_is_not_a_model():
    class Fake:
        pass

    dw = sd.landscapes.DoubleWell()
    th0, ex = dw.basin("left")
    with pytest.raises(TypeError, match="sdesim model"):
        sd.escape(Fake(), dw, th0, ex, n_paths=2, dt=0.01, t_max=1.0, key=jax.random.key(0))


def test_every_builtin_model_names_a_known_integrator():
    from sdesim.integrators import INTEGRATORS

    noise = sd.noise.isotropic(1.0)
    for m in [sd.models.Langevin(0.1), sd.models.SGD(0.1, noise),
              sd.models.Underdamped(1.0, 1.0, 0.1),
              sd.models.Underdamped(1.0, 1.0, 0.1, scheme="euler"),
              sd.models.Momentum(0.1, 0.9, noise), sd.models.Adam(0.1, noise),
              sd.models.Adai(0.1, noise, scheme="euler"), sd.models.SGDLevy(0.1, 1.5, 1.0),
              sd.models.AdamLevy(0.1, 1.5, 1.0), sd.models.AdaL(0.1, 1.5, 1.0)]:
        assert m.integrator in INTEGRATORS, type(m).__name__
        assert m.noise_kind in ("gaussian", "levy", "discrete")
    assert sd.models.Momentum(0.1, 0.9, noise, alpha=1.5).noise_kind == "levy"
