"""``sd.theory.least_action`` against simulation on a bent double well.

``L = (x² − 1)² + (k/2)(y − a x²)²`` (k = 50, a = 0.5: the valley bends, so a push across
it, in the stiff and — with Hessian noise — noisy direction, is a push along it), Momentum
``(0.1, 0.9, noise.hessian(B, 1))`` or SGD ``(0.1, noise.hessian(B, 1))`` from the minimum
(−1, a) to ``x > 0.5``. The noise's covariance is ∝ 1/B, so ``Φ = B·φ`` and ``d ln τ / dB
→ φ``: the free least action's φ against the path-restricted one (``path_exponent``), and
the simulated slopes. Momentum: direct simulation (1 000 paths, dt 0.01); SGD, whose
exponent is larger: splitting (``escape_ams``, 200 replicas × 8 runs, dt 0.002, split on
x), where direct simulation stops at B ≈ 2.

    python benchmarks/least_action_check.py [--betas 2 3 4 5 6] [--paths 1000]
    python benchmarks/least_action_check.py --model SGD [--betas 2 4 6 8 10]
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
    ap.add_argument("--model", choices=("Momentum", "SGD"), default="Momentum")
    ap.add_argument("--betas", type=float, nargs="+", default=None,
                    help="batch sizes B (default: 2 3 4 5 6 Momentum, 2 4 6 8 10 SGD)")
    ap.add_argument("--paths", type=int, default=1000, help="direct paths (Momentum)")
    ap.add_argument("--replicas", type=int, default=200, help="AMS replicas per run (SGD)")
    ap.add_argument("--runs", type=int, default=8, help="AMS runs (SGD)")
    ap.add_argument("--out", default=None, help="JSON to write")
    args = ap.parse_args(argv)
    k, a = 50.0, 0.5

    def loss(t):
        return (t[0] ** 2 - 1) ** 2 + 0.5 * k * (t[1] - a * t[0] ** 2) ** 2

    def make(b):
        if args.model == "SGD":
            return sd.models.SGD(0.1, sd.noise.hessian(b, 1.0))
        return sd.models.Momentum(0.1, 0.9, sd.noise.hessian(b, 1.0))

    betas = args.betas or ([2.0, 4.0, 6.0, 8.0, 10.0] if args.model == "SGD"
                           else [2.0, 3.0, 4.0, 5.0, 6.0])
    path = critical.string_path(loss, np.array([-1.0, a]), np.array([1.0, a]), n_images=33)
    unit = make(1.0)
    t0 = time.perf_counter()
    free = sd.theory.least_action(unit, loss, path)
    restricted = sd.theory.path_exponent(unit, loss, path)
    print(f"φ: free least action {free.action:.4f} (converged {free.converged}, "
          f"{time.perf_counter() - t0:.0f} s), path-restricted {restricted:.4f}", flush=True)
    exit = sd.exits.Halfspace(jnp.array([1.0, 0.0]), jnp.array(0.5))
    rows = []
    for b in betas:
        t0 = time.perf_counter()
        if args.model == "SGD":
            res = sd.rare.escape_ams(make(b), loss, jnp.array([-1.0, a]), exit, dt=0.002,
                                     key=jax.random.key(2), n_replicas=args.replicas,
                                     n_runs=args.runs)
            # the runs' spread of p̂ (delta method; a heavy right tail makes it optimistic)
            se_log = float(np.std(res.p_runs, ddof=1) / np.mean(res.p_runs)
                           / np.sqrt(args.runs))
            count = f"{args.runs} runs, p̂ spread {res.p_runs.max() / res.p_runs.min():.3g}×"
        else:
            res = sd.escape(make(b), loss, jnp.array([-1.0, a]), exit, n_paths=args.paths,
                            dt=0.01, t_max=1e6, key=jax.random.key(1), progress=False)
            se_log = res.cv() / np.sqrt(res.n_escaped)
            count = f"{res.n_escaped}/{args.paths} escaped"
        lo, hi = res.mean_time_ci()
        rows.append(dict(B=b, mean=res.mean_time(), ci=[lo, hi], se_log=se_log,
                         seconds=time.perf_counter() - t0))
        print(f"B {b:g}: τ {res.mean_time():.4g} [{lo:.4g}, {hi:.4g}] ({count}, "
              f"{rows[-1]['seconds']:.0f} s)", flush=True)
    for r0, r1 in zip(rows, rows[1:], strict=False):
        s = (np.log(r1["mean"]) - np.log(r0["mean"])) / (r1["B"] - r0["B"])
        se = np.hypot(r0["se_log"], r1["se_log"]) / (r1["B"] - r0["B"])
        print(f"d ln τ/dB from {r0['B']:g} to {r1['B']:g}: {s:.3f} ± {se:.3f} "
              f"(free φ {free.action:.3f}, path-restricted {restricted:.3f})")
    if len(rows) > 2:
        b, y = np.array([r["B"] for r in rows]), np.log([r["mean"] for r in rows])
        print(f"least squares over B {b.min():g}–{b.max():g}: {np.polyfit(b, y, 1)[0]:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(model=args.model,
                           machine=f"{platform.machine()}, {jax.default_backend()}",
                           phi_free=free.action, phi_restricted=restricted, rows=rows), f,
                      indent=1)


if __name__ == "__main__":
    main()
