"""The kinds of splitting score for a model with a velocity, side by side: the
look-ahead and energy kinds of ``sd.rare.PhaseScore`` and the position alone
(``phase_score=False``), in the regime between them (damping ratio ``γ/2ω`` from ½ to 1,
where ``phase_score`` now picks the look-ahead; until 2026-12-05 the energy).

    python benchmarks/phase_score_kinds.py --barrier 6 --friction 4    # γ/2ω = 0.71
    python benchmarks/phase_score_kinds.py --case sharpness            # 10-D, ΔL/T = 40

``--case well`` (default): underdamped Langevin in the 1-D double well (``M = 1``,
curvature ``ω² = 8`` at the minimum, ``dt = 0.01``), with direct simulation where it
finishes (ΔU/T <= 8). ``--case sharpness``: ``escape_rate_vs_sharpness.py --method ams``'s
Momentum at sharpness ``--k`` (10-D Styblinski–Tang, ΔL/T = 40 at k = 1, γ/2ω = 0.71).
Prints, per score and key, the estimate, its 95% interval, the spread of the runs' p̂
(max/min) and the trial paths capped at t_max (docs: rare events)."""
import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd
from sdesim import rare


def well_case(args):
    well = sd.landscapes.DoubleWell(barrier=1.0)
    th0, exit = well.basin("left")
    return sd.models.Underdamped(1.0, args.friction, 1 / args.barrier), well, th0, exit, 0.01


def sharpness_case(args):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import escape_rate_vs_sharpness as e

    st = sd.landscapes.StyblinskiTang(e.DIM, args.k, e.DATA_STD)
    th0, exit = st.basin("local")
    model = e.optimizers(e.make_noise("local", st, 5.0), e.lr_ams(5.0))["momentum"]
    return model, st, th0, exit, e.DT_K["momentum"] / args.k


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=["well", "sharpness"], default="well")
    ap.add_argument("--barrier", type=float, default=6.0, help="ΔU/T (--case well)")
    ap.add_argument("--friction", type=float, default=4.0,
                    help="γ (--case well; ω = sqrt 8 = 2.83)")
    ap.add_argument("--k", type=float, default=1.0, help="sharpness (--case sharpness)")
    ap.add_argument("--replicas", type=int, default=None,
                    help="default 200 (well), 1000 (sharpness)")
    ap.add_argument("--runs", type=int, default=None, help="default 8 (well), 12 (sharpness)")
    ap.add_argument("--keys", type=int, nargs="+", default=None,
                    help="default 2 3 (well), 100 (sharpness)")
    args = ap.parse_args(argv)
    well = args.case == "well"
    reps = args.replicas or (200 if well else 1000)
    runs = args.runs or (8 if well else 12)
    keys = args.keys or ([2, 3] if well else [100])
    model, loss, th0, exit, dt = (well_case if well else sharpness_case)(args)
    x0 = jnp.asarray(th0, jnp.result_type(float))
    chosen = rare.phase_score(model, loss, x0, rare.default_score(exit, x0), dt)
    # phase_score's linearization along e, the score's unit gradient: γ and ω = sqrt(λ/M)
    m, g = rare.inertia(model, loss, x0, dt)
    w = np.asarray(rare._unit_gradient(chosen.score, x0)) ** 2
    gamma, omega = float(w @ g), np.sqrt(float(chosen.lam) / float(w @ m))
    print(f"γ/2ω = {gamma / (2 * omega):.2f}: phase_score picks {chosen.kind!r} "
          f"(τ = {float(chosen.tau):.3g})")
    base = (chosen.score, chosen.loss, chosen.s0, chosen.l0, chosen.mass, chosen.lam)
    # the look-ahead's τ: phase_score's, or 2/γ (r₊ = γ/2 below critical damping)
    tau = float(chosen.tau) if chosen.kind == "look-ahead" else 2 / gamma
    scores = {"look-ahead": dict(score=rare.PhaseScore(*base, jnp.asarray(tau), "look-ahead")),
              "energy": dict(score=rare.PhaseScore(*base, jnp.asarray(0.0), "energy")),
              "position": dict(phase_score=False)}
    if well and args.barrier <= 8:
        t = time.perf_counter()
        d = sd.escape(model, loss, th0, exit, n_paths=2000, dt=dt, t_max=1e6,
                      key=jax.random.key(1), progress=False)
        lo, hi = d.mean_time_ci()
        print(f"direct (2 000 paths): {d.mean_time():.4g} [{lo:.4g}, {hi:.4g}], "
              f"{d.n_censored} censored, {time.perf_counter() - t:.0f} s")
    for name, kw in scores.items():
        for k in keys:
            t = time.perf_counter()
            r = sd.escape_ams(model, loss, th0, exit, dt=dt, key=jax.random.key(k),
                              n_replicas=reps, n_runs=runs, **kw)
            pr = np.asarray(r.p_runs)
            lo, hi = r.mean_time_ci()
            print(f"{name:10s} key {k}: {r.mean_time():.4g} [{lo:.4g}, {hi:.4g}], runs' p̂ "
                  f"spread {pr.max() / max(pr.min(), 1e-300):.3g}x, {r.failed} capped, "
                  f"{time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
