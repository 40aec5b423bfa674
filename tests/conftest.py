import os

# Two host devices would change nothing in results (per-path streams), but keep tests on
# one deterministic CPU device unless a test asks for more in a subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

# Strict dtype promotion: an accidental float32 + float64 or int + float mix in the package
# is an error in the tests instead of a silent upcast (Python scalars stay weakly typed).
# Tests marked ``standard_promotion`` call third-party code that mixes them on purpose
# (optax's own ``1 - decay**count`` with a Python-float decay and an int32 count).
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True)
def _dtype_promotion(request):
    mode = "standard" if request.node.get_closest_marker("standard_promotion") else "strict"
    with jax.numpy_dtype_promotion(mode):
        yield


class CountCompiles:
    """Counts XLA backend compilations while active (jax.monitoring events)."""

    def __enter__(self):
        self.n = 0

        def listener(event, duration, **kw):
            if event == "/jax/core/compile/backend_compile_duration":
                self.n += 1

        self._listener = listener
        jax.monitoring.register_event_duration_secs_listener(listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


@pytest.fixture
def count_compiles():
    """``with count_compiles() as c: ...; c.n`` = XLA compilations inside the block."""
    return CountCompiles
