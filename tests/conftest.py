import os

# Two host devices would change nothing in results (per-path streams), but keep tests on
# one deterministic CPU device unless a test asks for more in a subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
