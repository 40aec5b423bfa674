"""Escape rate vs sharpness: each discrete optimizer (real minibatches) next to its SDE.

10-D data-shifted Styblinski–Tang (SPEC §5; as in the Adai paper's Appendix E): a data set
of N = 50 000 points x ~ N(0, I), per-sample loss ℓ(θ; x) = f(sqrt(k)θ − x), start at the
local valley's minimum, exit when any coordinate crosses its saddle.

- *Algorithm*: ``sdesim.optim`` (SGD, Adam-style Momentum, Adam, Adai, AdaL) on the mean
  gradient of B = 5 samples drawn with replacement from the data set, one iteration per
  engine step (``sd.escape_algorithm``), exit checked after every iteration.
- *SDE*: its model from ``sdesim.models`` with the noise of Xie et al.'s theory: the exact
  minibatch covariance Cov_x[∇ℓ(θ*; x)]/B at the valley's minimum, held fixed (as in
  ``escape_rate_vs_sharpness.py``, whose settings are reused): SGD, Momentum, Adam, Adai
  (phase space, dt = DT_K/k) and AdaL's model (``models.AdaL`` at α = 2, stepped once per
  iteration, dt = lr, as SPEC §3.8 prescribes). (The state-dependent covariance along the
  path is no usable model here: it is ~7x colder between minimum and saddle, and the exact
  1-D MFPT of that SDE (theory.mfpt_1d_ito) is ~1e12 time units at k = 1.)

Both share the learning rate. For each, escape rate vs k with exact 95% intervals and the
fit of ``benchmarks/escape_rate_vs_sharpness.py``: log(rate/ν(k)) = a − b·k^(−p) with ν the
computed Kramers prefactor (AdaL: Adam's, an approximation: AdaL has no closed form), on
points whose predicted ΔL/T >= 3; a second fit keeps only the metastable points (mean
escape >= 100 iterations). Printed and saved: p of algorithm and SDE per optimizer and the
algorithm/SDE rate ratio at every k. ``--refit`` redoes fits and figure from the JSON.

    python benchmarks/sde_vs_algorithm.py [--paths 150] [--only sgd adam] [--refit]
    -> figures/sde_vs_algorithm.{png,json}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import escape_rate_vs_sharpness as ers  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import optim  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "figures"
DIM, DATA_STD, N_DATA, BATCH, BETA1 = ers.DIM, ers.DATA_STD, 50_000, 5, ers.BETA1
# The SDE side is escape_rate_vs_sharpness.py's setting (learning rates with predicted
# ΔL/T ≈ 10 at k = 1, sharpness grids, steps, horizons); AdaL runs Adam's.
LR = {**ers.LR, "adal": ers.LR["adam"]}
SHARPNESS = {**ers.SHARPNESS, "adal": ers.SHARPNESS["adam"]}
DT_K = ers.DT_K  # SDE step DT_K/k (AdaL model: dt = lr)
T_MAX = {**ers.T_MAX, "adal": ers.T_MAX["adam"]}


def algorithm(name, lr):
    return {"sgd": lambda: optim.sgd(lr),
            "momentum": lambda: optim.momentum(lr, BETA1, style="adam"),
            "adam": lambda: optim.adam(lr, BETA1, 0.999),
            "adai": lambda: optim.adai(lr),
            "adal": lambda: optim.adal(lr, BETA1, 0.999)}[name]()


def sde(name, lr, noise):
    return {"sgd": lambda: sd.models.SGD(lr, noise),
            "momentum": lambda: sd.models.Momentum(lr, BETA1, noise),
            "adam": lambda: sd.models.Adam(lr, noise, beta1=BETA1, beta2=0.999),
            "adai": lambda: sd.models.Adai(lr, noise),
            "adal": lambda: sd.models.AdaL(lr, 2.0, noise, beta1=BETA1, beta2=0.999)}[name]()


def theory_name(name):
    return "adam" if name == "adal" else name


def run(name, kind, k, data, paths, key):
    lr = LR[name]
    st = sd.landscapes.StyblinskiTang(DIM, k, DATA_STD)
    th0, ex = st.basin("local")
    if kind in ("algorithm", "injected"):
        # "injected": the algorithm with the SDE's Gaussian noise in place of minibatches
        source = (dict(data=data, batch_size=BATCH) if kind == "algorithm" else
                  dict(noise=ers.make_noise("local", st, BATCH)))
        return sd.escape_algorithm(algorithm(name, lr), st, th0, ex, lr=lr,
                                   n_iters=int(round(T_MAX[name] / lr)), n_paths=paths,
                                   key=key, progress=False, **source)
    dt = lr if name == "adal" else DT_K[name] / k
    return sd.escape(sde(name, lr, ers.make_noise("local", st, BATCH)), st, th0, ex,
                     n_paths=paths, dt=dt, t_max=T_MAX[name], key=key, progress=False)


MIN_ITERS = 100  # second fit: only metastable points (mean escape >= 100 iterations)


def simulate_points(names, paths, injected=()):
    st0 = sd.landscapes.StyblinskiTang(DIM, 1.0, DATA_STD)
    data = np.asarray(st0.sample_data(jax.random.key(2020), N_DATA))
    points = {}
    for name in names:
        for kind in ("algorithm", "sde") + (("injected",) if name in injected else ()):
            rows = []
            for i, k in enumerate(np.round(SHARPNESS[name], 4).tolist()):
                res = run(name, kind, k, data, paths, jax.random.key(1000 * i + 7))
                lo, hi = res.rate_ci()
                tn = theory_name(name)
                rows.append(dict(k=k, rate=res.rate(), rate_ci95=[lo, hi],
                                 escaped_fraction=res.escaped_fraction,
                                 mean_iterations=res.mean_time() / LR[name],
                                 prefactor=ers.prefactor(tn, k, BATCH, LR[name]),
                                 predicted_exponent=ers.predicted_exponent(tn, k, BATCH,
                                                                           LR[name]),
                                 seconds=res.info.wall_time))
                print(f"{name:8s} {kind:9s} k={k:5.2f} rate={res.rate():.4g} [{lo:.4g}, "
                      f"{hi:.4g}] escaped={res.escaped_fraction:.3f} "
                      f"({res.info.wall_time:.1f} s)", flush=True)
            points[f"{name}/{kind}"] = rows
    return points


def fit_rows(rows, min_iters=0):
    use = [r for r in rows if r["predicted_exponent"] >= ers.E_MIN
           and r["mean_iterations"] >= min_iters]
    if len(use) < 4:
        return None
    col = lambda key: np.array([r[key] for r in use])  # noqa: E731
    fit = ers.fit_exponent(col("k"), col("rate"), col("rate_ci95")[:, 0],
                           col("rate_ci95")[:, 1], col("prefactor"))
    fit["k_fitted"] = col("k").tolist()
    return fit


def analyze(names, points):
    """Fits (all points with predicted ΔL/T >= 3, as for the SDEs; and the metastable
    ones only) and the algorithm/SDE rate ratios."""
    fits = {}
    for name in names:
        for kind in ("algorithm", "sde"):
            rows = points[f"{name}/{kind}"]
            fit = fits[f"{name}/{kind}"] = fit_rows(rows)
            meta = fits[f"{name}/{kind}/metastable"] = fit_rows(rows, MIN_ITERS)
            line = f"{name:8s} {kind:9s} p = {fit['p']:.3f} [{fit['p_ci'][0]:.3f}, " \
                   f"{fit['p_ci'][1]:.3f}]"
            if meta is not None:
                line += (f"; metastable points only (>= {MIN_ITERS} iterations): p = "
                         f"{meta['p']:.3f} [{meta['p_ci'][0]:.3f}, {meta['p_ci'][1]:.3f}]")
            print(line)
        ref = points[f"{name}/sde"]
        for kind in ("algorithm", "injected"):
            if f"{name}/{kind}" not in points:
                continue
            alg = points[f"{name}/{kind}"]
            ratio = [a["rate"] / s["rate"] for a, s in zip(alg, ref, strict=True)]
            fits[f"{name}/ratio" + ("" if kind == "algorithm" else "_injected")] = dict(
                k=[a["k"] for a in alg], rate_ratio_algorithm_over_sde=ratio)
            print(f"{name:8s} rate ratio {kind}/SDE at k = "
                  + ", ".join(f"{a['k']:.2g}: {r:.2f}" for a, r in zip(alg, ratio,
                                                                         strict=True)))
    return fits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=150)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--injected", nargs="*", default=["adai"],
                    help="also run these algorithms with the SDE's Gaussian noise injected "
                         "instead of minibatches (separates discretization from noise shape)")
    ap.add_argument("--refit", action="store_true",
                    help="redo fits and figure from figures/sde_vs_algorithm.json")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    path = OUT / "sde_vs_algorithm.json"
    saved = json.loads(path.read_text()) if path.exists() and (args.refit or args.only) \
        else dict(points={}, settings=dict(wall_time_s={}))
    points, wall = saved["points"], saved["settings"]["wall_time_s"]
    wall = wall if isinstance(wall, dict) else {"all": wall}
    if args.refit:
        args.paths = saved["settings"]["paths_per_point"]
    else:  # --only: rerun those optimizers, keep the others' saved points
        run_names = [n for n in LR if not args.only or n in args.only]
        points.update(simulate_points(run_names, args.paths, args.injected))
        wall[" ".join(run_names)] = time.perf_counter() - t_all
    names = [n for n in LR if f"{n}/algorithm" in points]
    fits = analyze(names, points)

    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for kind, color, marker in (("algorithm", "C3", "s"), ("sde", "C0", "o")):
            rows, f = points[f"{name}/{kind}"], fits[f"{name}/{kind}"]
            k = np.array([r["k"] for r in rows])
            rate = np.array([r["rate"] for r in rows])
            ci = np.array([r["rate_ci95"] for r in rows]).T
            used = np.isin(k, f["k_fitted"])
            ax.errorbar(1 / k, np.log(rate), yerr=[np.log(rate) - np.log(ci[0]),
                                                   np.log(ci[1]) - np.log(rate)],
                        fmt="none", ecolor=color, capsize=2)
            meta = fits[f"{name}/{kind}/metastable"]
            label = f"{kind}: p = {f['p']:.2f} [{f['p_ci'][0]:.2f}, {f['p_ci'][1]:.2f}]"
            if meta is not None and meta["k_fitted"] != f["k_fitted"]:
                label += f"\n  metastable only: {meta['p']:.2f} [{meta['p_ci'][0]:.2f}, " \
                         f"{meta['p_ci'][1]:.2f}]"
            ax.plot(1 / k[used], np.log(rate[used]), marker, color=color, ms=4, label=label)
            ax.plot(1 / k[~used], np.log(rate[~used]), marker, mfc="none", color=color, ms=4)
            kg = np.linspace(k.min(), k.max(), 60)
            nug = np.array([ers.prefactor(theory_name(name), x, BATCH, LR[name]) for x in kg])
            ax.plot(1 / kg, np.log(nug) + f["a"] - f["b"] * kg ** (-f["p"]), "-", color=color,
                    lw=1)
        if f"{name}/injected" in points:
            rows = points[f"{name}/injected"]
            k = np.array([r["k"] for r in rows])
            rate = np.array([r["rate"] for r in rows])
            ci = np.array([r["rate_ci95"] for r in rows]).T
            ax.errorbar(1 / k, np.log(rate), yerr=[np.log(rate) - np.log(ci[0]),
                                                   np.log(ci[1]) - np.log(rate)],
                        fmt="^", color="C2", ms=4, capsize=2,
                        label="algorithm, SDE's Gaussian noise injected")
        ax.set_title(f"{name} (lr = {LR[name]:g})", fontsize=10)
        ax.set_xlabel("1 / k")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("log escape rate (per unit SDE time)")
    fig.suptitle(f"{DIM}-D data-shifted Styblinski–Tang, N = {N_DATA}, B = {BATCH}, "
                 f"{args.paths} paths/point: algorithm (real minibatches) vs SDE",
                 fontsize=10)
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "sde_vs_algorithm.png", dpi=110)
    settings = dict(dim=DIM, data_std=DATA_STD, n_data=N_DATA, batch_size=BATCH, beta1=BETA1,
                    lr=LR, sharpness={n: np.round(v, 4).tolist() for n, v in SHARPNESS.items()},
                    sde_dt={**{n: f"{v}/k" for n, v in DT_K.items()}, "adal": "lr"},
                    t_max=T_MAX, paths_per_point=args.paths, wall_time_s=wall)
    with open(OUT / "sde_vs_algorithm.json", "w") as fh:
        json.dump(dict(fits=fits, points=points, settings=settings), fh, indent=1,
                  default=float)
    print(f"wrote {OUT / 'sde_vs_algorithm.png'} (simulation seconds: {wall})")


if __name__ == "__main__":
    main()
