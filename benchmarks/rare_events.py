"""Mean escape time of the 1-D double well against ΔU/T = 4…40: exact MFPT (F4), direct
simulation where it finishes, adaptive multilevel splitting (``sd.escape_ams``)
everywhere, with the wall time and executed lane-steps of each.

    python benchmarks/rare_events.py            # -> figures/rare_events.png + .json
    python benchmarks/rare_events.py --quick    # fewer points (a smoke run)

Direct simulation costs in proportion to E τ ∝ e^{ΔU/T}; its cost where it cannot finish
is extrapolated from the measured cost per unit of simulated time (steps/s of the engine
on this machine), and printed as a ratio to AMS's measured cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sdesim as sd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--replicas", type=int, default=1500)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--direct-paths", type=int, default=1000)
    ap.add_argument("--direct-max", type=float, default=9.0,
                    help="largest ΔU/T simulated directly")
    ap.add_argument("--betas", type=float, nargs="*", help="ΔU/T values (default 4…40)")
    ap.add_argument("--json", default=str(ROOT / "figures" / "rare_events.json"))
    args = ap.parse_args()
    betas = [4, 8, 20, 30] if args.quick else [4, 6, 8, 10, 15, 20, 25, 30, 35, 40]
    betas = [int(b) if float(b).is_integer() else b for b in (args.betas or betas)]
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    rows = []
    steps_per_s = None
    for b in betas:
        temp = 1.0 / b
        exact = float(sd.theory.mfpt_1d(dw.well, -1.0, 0.0, temp))
        model = sd.models.Langevin(temp)
        t0 = time.perf_counter()
        r = sd.escape_ams(model, dw, th0, ex, dt=args.dt, key=jax.random.key(int(b)),
                          n_replicas=args.replicas, n_runs=args.runs)
        ams_s = time.perf_counter() - t0
        lo, hi = r.mean_time_ci()
        row = dict(barrier_over_t=b, exact=exact, ams=r.mean_time(), ams_ci95=[lo, hi],
                   ams_p=r.p, ams_wall_s=ams_s, ams_lane_steps=r.cost,
                   ams_iterations=r.iterations.tolist())
        if b <= args.direct_max:
            t0 = time.perf_counter()
            d = sd.escape(model, dw, th0, ex, n_paths=args.direct_paths, dt=args.dt,
                          t_max=50 * exact, key=jax.random.key(100 + int(b)), progress=False)
            wall = time.perf_counter() - t0
            row.update(direct=d.mean_time(), direct_ci95=list(d.mean_time_ci()),
                       direct_wall_s=wall, direct_lane_steps=d.info.executed_steps)
            steps_per_s = d.info.executed_steps / wall
        if steps_per_s:
            need = args.direct_paths * exact / args.dt  # lane-steps for the same path count
            row["direct_extrapolated_s"] = need / steps_per_s
            row["cost_ratio_direct_over_ams"] = row["direct_extrapolated_s"] / ams_s
        rows.append(row)
        print(f"ΔU/T={b:>3}: F4 {exact:.4g}  AMS {r.mean_time():.4g} [{lo:.4g}, {hi:.4g}] "
              f"(ratio {r.mean_time() / exact:.3f}, {ams_s:.1f} s)"
              + (f"  direct {row['direct']:.4g} ({row['direct_wall_s']:.1f} s)"
                 if "direct" in row else "")
              + (f"  direct/AMS cost ≈ {row['cost_ratio_direct_over_ams']:.3g}"
                 if "cost_ratio_direct_over_ams" in row else ""), flush=True)
    out = dict(rows=rows, dt=args.dt, replicas=args.replicas, runs=args.runs,
               machine=f"{platform.node()} {platform.processor()} cpus={os.cpu_count()}",
               jax=jax.__version__)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    b = np.array([r["barrier_over_t"] for r in rows])
    ex_ = np.array([r["exact"] for r in rows])
    ams = np.array([r["ams"] for r in rows])
    ci = np.array([r["ams_ci95"] for r in rows]).T
    ax[0].semilogy(b, ex_, "k-", label="exact MFPT (F4)")
    ax[0].errorbar(b, ams, yerr=[ams - ci[0], ci[1] - ams], fmt="o", capsize=3,
                   label="AMS (95%)")
    dr = [r for r in rows if "direct" in r]
    if dr:
        ax[0].semilogy([r["barrier_over_t"] for r in dr], [r["direct"] for r in dr], "s",
                       mfc="none", label="direct simulation")
    ax[0].set(xlabel="ΔU/T", ylabel="mean escape time", title="1-D double well")
    ax[0].legend(fontsize=8)
    ax[1].semilogy(b, [r["ams_wall_s"] for r in rows], "o-", label="AMS wall time")
    if dr:
        ax[1].semilogy([r["barrier_over_t"] for r in dr], [r["direct_wall_s"] for r in dr],
                       "s-", label="direct, measured")
    ext = [r for r in rows if "direct_extrapolated_s" in r and "direct" not in r]
    if ext:
        ax[1].semilogy([r["barrier_over_t"] for r in ext],
                       [r["direct_extrapolated_s"] for r in ext], "s--", mfc="none",
                       label="direct, extrapolated")
    ax[1].set(xlabel="ΔU/T", ylabel="seconds (2 CPU cores)", title="cost")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "figures" / "rare_events.png", dpi=120)
    print(f"wrote {args.json} and figures/rare_events.png")


if __name__ == "__main__":
    main()
