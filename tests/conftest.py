import os

# Two host devices would change nothing in results (per-path streams), but keep tests on
# one deterministic CPU device unless a test asks for more in a subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


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
