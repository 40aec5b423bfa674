"""Rare escapes by adaptive multilevel splitting (``sd.escape_ams``) against closed forms
and direct simulation, with the wall time of each; and the peer a researcher would reach
for (a textbook NumPy AMS, one replica at a time) on the 1-D problem.

    python benchmarks/rare_events.py            # -> figures/rare_events.png + .json
    python benchmarks/rare_events.py --quick    # fewer points (a smoke run)
    python benchmarks/rare_events.py --only double_well --betas 5 30 --direct-max 0

Sections (``--only`` picks some):

* ``double_well``: overdamped Langevin in the 1-D double well ``(θ² − 1)²``, ΔU/T = 4…40,
  exit at the saddle; exact MFPT (F4).
* ``styblinski_tang``: Gaussian SGD with the exact minibatch covariance ``Cov_x[∇ℓ]/B``
  (population form, state-dependent) in the local valley of the 10-D data-shifted
  Styblinski–Tang function, lr = 0.06, batch size B = 4…22 (log E τ from 2 to ~45); F7's
  exact 1-D MFPT per coordinate over d = 10 (``sd.theory.reference``).
* ``underdamped``: underdamped Langevin (M = 1, γ = 2) in the double well, exit at
  x = 0.6 (past the barrier region, so recrossings count as the theory counts them);
  Kramers F10 with the Mel'nikov–Meshkov factor (F12).
* ``peer``: ``P(reach x = 0 before x = −0.9 | x = −0.8)`` of the same Euler chain at
  ΔU/T = 10 (``sd.rare.splitting_probability``) against a textbook NumPy AMS (k = 1, one
  replica at a time, trajectories stored, bulk normals per replica segment); cost for the
  same relative error = wall time × relative variance. (pyTAMS 1.0.0, the package-index
  splitting code, was installed and read: it estimates ``P(reach B before a fixed
  end_time)`` — its trajectories are not absorbed in A — through a forward-model class, a
  TOML input and a trajectory database, so it cannot estimate this problem's
  ``P(B before A)``; the textbook AMS is the peer.)

Direct simulation runs where it finishes (``--direct-max``); beyond that its cost is
extrapolated from its measured lane-steps per second, and the ratio to AMS's measured wall
time is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sdesim as sd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DW = sd.landscapes.DoubleWell(barrier=1.0)


def _row(x, ref, model, loss, th0, ex, dt, args, key, direct_ok, direct_paths, t_max_ref):
    """One point: AMS always, direct simulation when ``direct_ok``."""
    t0 = time.perf_counter()
    r = sd.escape_ams(model, loss, th0, ex, dt=dt, key=key, n_replicas=args.replicas,
                      n_runs=args.runs)
    ams_s = time.perf_counter() - t0
    lo, hi = r.mean_time_ci()
    row = dict(x=x, reference=ref, ams=r.mean_time(), ams_ci95=[lo, hi], ams_p=r.p,
               ams_wall_s=ams_s, ams_lane_steps=r.cost, ams_iterations=r.iterations.tolist(),
               ams_failed=r.failed, ams_diverged=r.diverged)
    if direct_ok:
        t0 = time.perf_counter()
        d = sd.escape(model, loss, th0, ex, n_paths=direct_paths, dt=dt,
                      t_max=t_max_ref, key=jax.random.fold_in(key, 7), progress=False)
        wall = time.perf_counter() - t0
        row.update(direct=d.mean_time(), direct_ci95=list(d.mean_time_ci()),
                   direct_wall_s=wall, direct_lane_steps=d.info.executed_steps,
                   direct_censored=d.n_censored, direct_steps_per_s=d.info.executed_steps / wall)
    return row, r


def _extrapolate(rows, paths, dt):
    """Direct cost where it did not run: lane-steps for ``paths`` paths of mean length
    E τ/dt at the engine's measured rate (the last direct point of the section)."""
    rate = None
    for row in rows:
        rate = row.get("direct_steps_per_s", rate)
        if rate and "direct" not in row:
            row["direct_extrapolated_s"] = paths * row["reference"] / dt / rate
        if rate:
            est = row.get("direct_wall_s", row.get("direct_extrapolated_s"))
            row["cost_ratio_direct_over_ams"] = est / row["ams_wall_s"]


def _print(name, row):
    lo, hi = row["ams_ci95"]
    ref = row["reference"]
    msg = (f"{name} x={row['x']:>5}: ref {ref:.4g}  AMS {row['ams']:.4g} [{lo:.4g}, {hi:.4g}] "
           f"(ratio {row['ams'] / ref:.3f} [{lo / ref:.3f}, {hi / ref:.3f}], "
           f"{row['ams_wall_s']:.1f} s)")
    if "direct" in row:
        msg += f"  direct {row['direct']:.4g} ({row['direct_wall_s']:.1f} s)"
    if "cost_ratio_direct_over_ams" in row:
        msg += f"  direct/AMS cost {row['cost_ratio_direct_over_ams']:.3g}"
    print(msg, flush=True)


def double_well(args):
    betas = args.betas or ([4, 8, 20, 30] if args.quick else [4, 6, 8, 10, 15, 20, 25, 30, 35,
                                                               40])
    th0, ex = DW.basin("left")
    rows = []
    for b in betas:
        temp = 1.0 / b
        exact = float(sd.theory.mfpt_1d(DW.well, -1.0, 0.0, temp))
        row, _ = _row(b, exact, sd.models.Langevin(temp), DW, th0, ex, args.dt, args,
                      jax.random.key(int(b)), b <= args.direct_max, args.direct_paths,
                      50 * exact)
        rows.append(row)
        _extrapolate(rows, args.direct_paths, args.dt)
        _print("double_well", row)
    return dict(rows=rows, x="ΔU/T", reference="exact MFPT (F4)", dt=args.dt)


def styblinski_tang(args):
    st = sd.landscapes.StyblinskiTang(dim=10, sharpness=1.0, data_std=1.0)
    th0, ex = st.basin("local")
    sizes = [4, 8, 14] if args.quick else [4, 5, 6, 8, 10, 12, 14, 18, 22]
    dt = 0.001
    rows = []
    for b in sizes:
        model = sd.models.SGD(0.06, sd.noise.minibatch(None, b))
        ref = sd.theory.reference(model, st, th0, ex).mean_time
        row, _ = _row(b, ref, model, st, th0, ex, dt, args, jax.random.key(1000 + b),
                      ref < 300, args.direct_paths, 50 * ref)
        row["log_reference"] = math.log(ref)
        rows.append(row)
        _extrapolate(rows, args.direct_paths, dt)
        _print("styblinski_tang", row)
    return dict(rows=rows, x="batch size B", reference="F7 τ_1D/10", dt=dt, lr=0.06, dim=10)


def underdamped(args):
    ex = sd.exits.Halfspace([1.0], 0.6)
    th0, _ = DW.basin("left")
    action = sd.theory.barrier_action(lambda x: (x**2 - 1) ** 2, -1.0, 0.0, 1.0)
    betas = [4, 8, 20] if args.quick else [4, 6, 8, 12, 16, 20, 25, 30]
    rows = []
    for b in betas:
        temp = 1.0 / b
        k = sd.theory.kramers_underdamped_rate(1.0, 8.0, -4.0, 1.0, 2.0, temp, action=action)
        model = sd.models.Underdamped(mass=1.0, friction=2.0, temperature=temp)
        row, _ = _row(b, 1.0 / k, model, DW, th0, ex, args.dt, args,
                      jax.random.key(2000 + b), b <= args.direct_max, args.direct_paths,
                      50 / k)
        rows.append(row)
        _extrapolate(rows, args.direct_paths, args.dt)
        _print("underdamped", row)
    return dict(rows=rows, x="ΔU/T", reference="Kramers F10 × Mel'nikov–Meshkov A (F12)",
                dt=args.dt)


def _numpy_ams(n, temp, dt, x0, a, b, rng):
    """Textbook AMS (Cérou & Guyader 2007) for ``P(reach b before a | x0)`` of the Euler
    chain ``x ← x − U'(x)dt + sqrt(2T dt) ξ``: k = 1, one replica at a time in Python,
    each replica's trajectory stored to clone from its first point above the level."""
    sig = math.sqrt(2 * temp * dt)

    def run(path):  # extend a stored path until it is <= a or >= b
        x = path[-1]
        while True:
            for z in rng.standard_normal(256):
                x = x - 4 * x * (x * x - 1) * dt + sig * z
                path.append(x)
                if x <= a or x >= b:
                    return path

    paths = [run([x0]) for _ in range(n)]
    maxima = np.array([max(p) for p in paths])
    p_hat = 1.0
    while True:
        i = int(np.argmin(maxima))
        z = maxima[i]
        if z >= b:
            break
        alive = np.flatnonzero(maxima > z)
        if alive.size == 0:
            return 0.0
        p_hat *= 1 - 1 / n
        j = int(alive[rng.integers(alive.size)])
        src = paths[j]
        cut = next(t for t, x in enumerate(src) if x > z)
        paths[i] = run(src[:cut + 1])
        maxima[i] = max(paths[i])
    return p_hat * np.mean(maxima >= b)


def peer(args):
    temp, dt, x0, a, b = 0.1, args.dt, -0.8, -0.9, 0.0
    n_np, runs_np = (50, 4) if args.quick else (100, 16)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    p_np = np.array([_numpy_ams(n_np, temp, dt, x0, a, b, rng) for _ in range(runs_np)])
    np_s = time.perf_counter() - t0
    model = sd.models.Langevin(temp)
    ex = sd.exits.Halfspace([1.0], b)
    kw = dict(level_a=a, dt=dt, score=lambda th: th[0], n_replicas=args.replicas,
              n_runs=args.runs)
    sd.rare.splitting_probability(model, DW, np.array([x0]), ex, key=jax.random.key(0),
                                  **kw)  # compile
    t0 = time.perf_counter()
    p_sd, _ = sd.rare.splitting_probability(model, DW, np.array([x0]), ex,
                                            key=jax.random.key(1), **kw)
    sd_s = time.perf_counter() - t0
    rel_var = lambda p: float(np.var(p, ddof=1) / np.mean(p) ** 2 / p.size)
    out = dict(temp=temp, barrier_over_t=1 / temp, dt=dt, start=x0, level_a=a, exit=b,
               numpy=dict(p=float(p_np.mean()), runs=runs_np, replicas=n_np, k=1,
                          wall_s=np_s, rel_se=math.sqrt(rel_var(p_np))),
               sdesim=dict(p=float(p_sd.mean()), runs=args.runs, replicas=args.replicas,
                           k=args.replicas // 4, wall_s=sd_s, rel_se=math.sqrt(rel_var(p_sd)),
                           note="warm (compiled once before timing)"))
    out["cost_ratio_numpy_over_sdesim"] = (np_s * rel_var(p_np)) / (sd_s * rel_var(p_sd))
    print(f"peer ΔU/T=10: NumPy AMS p = {out['numpy']['p']:.4g} ± "
          f"{out['numpy']['rel_se']:.2%} in {np_s:.1f} s; sdesim p = {out['sdesim']['p']:.4g} "
          f"± {out['sdesim']['rel_se']:.2%} in {sd_s:.1f} s; cost ratio at equal relative "
          f"error {out['cost_ratio_numpy_over_sdesim']:.3g}", flush=True)
    return out


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    secs = [s for s in ("double_well", "styblinski_tang", "underdamped") if s in out]
    fig, axes = plt.subplots(2, max(1, len(secs)), figsize=(4.6 * max(1, len(secs)), 7.5),
                             squeeze=False)
    titles = {"double_well": "1-D double well, overdamped Langevin",
              "styblinski_tang": "10-D Styblinski–Tang, SGD (minibatch noise)",
              "underdamped": "1-D double well, underdamped (M=1, γ=2)"}
    for j, s in enumerate(secs):
        rows, ax, axc = out[s]["rows"], axes[0, j], axes[1, j]
        x = np.array([r["x"] for r in rows], float)
        ref = np.array([r["reference"] for r in rows])
        ams = np.array([r["ams"] for r in rows])
        ci = np.array([r["ams_ci95"] for r in rows]).T
        ax.semilogy(x, ref, "k-", label=out[s]["reference"])
        ax.errorbar(x, ams, yerr=[ams - ci[0], ci[1] - ams], fmt="o", ms=4, capsize=3,
                    label="AMS (95% interval)")
        dr = [r for r in rows if "direct" in r]
        if dr:
            ax.semilogy([r["x"] for r in dr], [r["direct"] for r in dr], "s", mfc="none",
                        ms=8, label="direct simulation")
        ax.set(xlabel=out[s]["x"], ylabel="mean escape time", title=titles[s])
        ax.legend(fontsize=7)
        axc.semilogy(x, [r["ams_wall_s"] for r in rows], "o-", label="AMS, measured")
        if dr:
            axc.semilogy([r["x"] for r in dr], [r["direct_wall_s"] for r in dr], "s-",
                         label="direct, measured")
        ext = [r for r in rows if "direct_extrapolated_s" in r]
        if ext:
            axc.semilogy([r["x"] for r in ext], [r["direct_extrapolated_s"] for r in ext],
                         "s--", mfc="none", label="direct, extrapolated")
        axc.set(xlabel=out[s]["x"], ylabel="wall time (s, 2 CPU cores)")
        axc.legend(fontsize=7)
    fig.suptitle(f"Rare escapes by adaptive multilevel splitting ({args_line(out)})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def args_line(out):
    return f"{out['replicas']} replicas × {out['runs']} runs, k = n/4"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*",
                    choices=["double_well", "styblinski_tang", "underdamped", "peer"])
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--replicas", type=int, default=1500)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--direct-paths", type=int, default=1000)
    ap.add_argument("--direct-max", type=float, default=8.0,
                    help="largest ΔU/T simulated directly (1-D sections)")
    ap.add_argument("--betas", type=float, nargs="*", help="ΔU/T values of double_well")
    ap.add_argument("--json", default=str(ROOT / "figures" / "rare_events.json"))
    ap.add_argument("--png", default=str(ROOT / "figures" / "rare_events.png"))
    args = ap.parse_args()
    if args.betas:
        args.betas = [int(b) if float(b).is_integer() else b for b in args.betas]
    secs = args.only or ["double_well", "styblinski_tang", "underdamped", "peer"]
    out = dict(replicas=args.replicas, runs=args.runs, direct_paths=args.direct_paths,
               machine=f"{platform.node()} {platform.processor()} cpus={os.cpu_count()}",
               jax=jax.__version__, command="python benchmarks/rare_events.py "
               + " ".join(os.sys.argv[1:]))
    t0 = time.perf_counter()
    for s in secs:
        out[s] = globals()[s](args)
    out["total_wall_s"] = time.perf_counter() - t0
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    if any(s in out for s in ("double_well", "styblinski_tang", "underdamped")):
        plot(out, args.png)
    print(f"wrote {args.json} and {args.png} ({out['total_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
