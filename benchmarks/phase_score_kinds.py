"""The energy and look-ahead kinds of ``sd.rare.PhaseScore`` side by side, on underdamped
Langevin in the 1-D double well (``M = 1``, curvature ``ω² = 8`` at the minimum), against
direct simulation where it finishes (ΔU/T <= 8).

    python benchmarks/phase_score_kinds.py --barrier 6 --friction 4    # γ/2ω = 0.71

Prints, per kind and key, the mean escape time, its 95% interval and the spread of the
runs' p̂ (max/min). ``phase_score`` picks the look-ahead from ``γ/2ω >= ½`` on; the energy
kind is built by hand here to compare (docs: rare events)."""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd
from sdesim import rare


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--barrier", type=float, default=6.0, help="ΔU/T")
    ap.add_argument("--friction", type=float, default=4.0, help="γ (ω = sqrt 8 = 2.83)")
    ap.add_argument("--replicas", type=int, default=200)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--keys", type=int, nargs="+", default=[2, 3])
    args = ap.parse_args(argv)
    well = sd.landscapes.DoubleWell(barrier=1.0)
    th0, exit = well.basin("left")
    model = sd.models.Underdamped(1.0, args.friction, 1 / args.barrier)
    dt = 0.01
    x0 = jnp.asarray(th0, jnp.result_type(float))
    chosen = rare.phase_score(model, well, x0, rare.default_score(exit, x0), dt)
    print(f"γ/2ω = {args.friction / (2 * np.sqrt(8.0)):.2f}: phase_score picks "
          f"{chosen.kind!r} (τ = {float(chosen.tau):.3g})")
    scores = {"look-ahead": chosen if chosen.kind == "look-ahead" else None,
              "energy": rare.PhaseScore(chosen.score, chosen.loss, chosen.s0, chosen.l0,
                                        chosen.mass, chosen.lam, jnp.asarray(0.0),
                                        "energy")}
    if scores["look-ahead"] is None:  # the same with τ = 2/γ (r₊ = γ/2)
        scores["look-ahead"] = rare.PhaseScore(
            chosen.score, chosen.loss, chosen.s0, chosen.l0, chosen.mass, chosen.lam,
            jnp.asarray(2 / args.friction), "look-ahead")
    if args.barrier <= 8:
        t = time.perf_counter()
        d = sd.escape(model, well, th0, exit, n_paths=2000, dt=dt, t_max=1e6,
                      key=jax.random.key(1), progress=False)
        lo, hi = d.mean_time_ci()
        print(f"direct (2 000 paths): {d.mean_time():.4g} [{lo:.4g}, {hi:.4g}], "
              f"{d.n_censored} censored, {time.perf_counter() - t:.0f} s")
    for name, score in scores.items():
        for k in args.keys:
            t = time.perf_counter()
            r = sd.escape_ams(model, well, th0, exit, dt=dt, key=jax.random.key(k),
                              n_replicas=args.replicas, n_runs=args.runs, score=score)
            pr = np.asarray(r.p_runs)
            lo, hi = r.mean_time_ci()
            print(f"{name:10s} key {k}: {r.mean_time():.4g} [{lo:.4g}, {hi:.4g}], runs' p̂ "
                  f"spread {pr.max() / max(pr.min(), 1e-300):.3g}x, "
                  f"{time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
