"""``sd.theory.least_action`` against direct simulation on a bent double well.

``L = (x² − 1)² + (k/2)(y − a x²)²`` (k = 50, a = 0.5: the valley bends, so a push across
it, in the stiff and — with Hessian noise — noisy direction, is a push along it), Momentum
``(0.1, 0.9, noise.hessian(B, 1))`` from the minimum (−1, a) to ``x > 0.5``. The noise's
covariance is ∝ 1/B, so ``Φ = B·φ`` and ``d ln τ / dB → φ``: the free least action's φ
against the path-restricted one (``path_exponent``), and the simulated slopes.

    python benchmarks/least_action_check.py [--betas 2 3 4 5 6] [--paths 1000]
"""

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd
from sdesim import critical


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--betas", type=float, nargs="+", default=[2.0, 3.0, 4.0, 5.0, 6.0])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--out", default=None, help="JSON to write")
    args = ap.parse_args(argv)
    k, a = 50.0, 0.5

    def loss(t):
        return (t[0] ** 2 - 1) ** 2 + 0.5 * k * (t[1] - a * t[0] ** 2) ** 2

    path = critical.string_path(loss, np.array([-1.0, a]), np.array([1.0, a]), n_images=33)
    unit = sd.models.Momentum(0.1, 0.9, sd.noise.hessian(1.0, 1.0))
    t0 = time.perf_counter()
    free = sd.theory.least_action(unit, loss, path)
    restricted = sd.theory.path_exponent(unit, loss, path)
    print(f"φ: free least action {free.action:.4f} (converged {free.converged}, "
          f"{time.perf_counter() - t0:.0f} s), path-restricted {restricted:.4f}", flush=True)
    exit = sd.exits.Halfspace(jnp.array([1.0, 0.0]), jnp.array(0.5))
    rows = []
    for b in args.betas:
        t0 = time.perf_counter()
        res = sd.escape(sd.models.Momentum(0.1, 0.9, sd.noise.hessian(b, 1.0)), loss,
                        jnp.array([-1.0, a]), exit, n_paths=args.paths, dt=0.01, t_max=1e6,
                        key=jax.random.key(1), progress=False)
        lo, hi = res.mean_time_ci()
        rows.append(dict(B=b, mean=res.mean_time(), ci=[lo, hi], escaped=res.n_escaped,
                         se_log=res.cv() / np.sqrt(res.n_escaped),
                         seconds=time.perf_counter() - t0))
        print(f"B {b:g}: τ {res.mean_time():.4g} [{lo:.4g}, {hi:.4g}] ({res.n_escaped}/"
              f"{args.paths} escaped, {rows[-1]['seconds']:.0f} s)", flush=True)
    for r0, r1 in zip(rows, rows[1:], strict=False):
        s = (np.log(r1["mean"]) - np.log(r0["mean"])) / (r1["B"] - r0["B"])
        se = np.hypot(r0["se_log"], r1["se_log"]) / (r1["B"] - r0["B"])
        print(f"d ln τ/dB from {r0['B']:g} to {r1['B']:g}: {s:.3f} ± {se:.3f} "
              f"(free φ {free.action:.3f}, path-restricted {restricted:.3f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(machine=f"{platform.machine()}, {jax.default_backend()}",
                           phi_free=free.action, phi_restricted=restricted, rows=rows), f,
                      indent=1)


if __name__ == "__main__":
    main()
