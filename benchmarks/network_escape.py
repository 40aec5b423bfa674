"""Escape from a trained network's minimum: does SGD leave the sharper minimum sooner than
Adam, and does the Lévy SDE with the measured tail index predict SGD's escape time better
than the Gaussian SDE?

An MLP (64 → 32 tanh → 10, 2 410 parameters) on scikit-learn's 1 797 handwritten digits
(`sd.networks.digits_problem`), trained from one initialization to two minima: by SGD
(lr 0.5) and by Adam (lr 1e-3), batch 32, 4 000 steps each. At each minimum:

* sharpness: the top Hessian eigenvalues (Lanczos, `sd.diagnostics.hessian_eigs`) and the
  trace (Hutchinson, 100 probes);
* gradient noise: the tail index α of minibatch noise (batch 32, 400 minibatches,
  Şimşekli et al.'s estimator, `sd.diagnostics.tail_index`) and the top 20 eigenpairs
  of the minibatch covariance `C/B` (`sd.diagnostics.noise_eigs`);
* escape: the exit is the loss on a fixed evaluation set (every 7th example, 257 of them)
  rising `--dl` (0.1) above its value at the minimum (`sd.exits.LevelSet`); the real
  algorithms (SGD, Momentum, Adam, Adai, AdaL; real minibatches of 32 drawn per path,
  `sd.escape_algorithm`) at three learning rates each, `--paths` paths of at most
  `--iters` iterations; beside SGD, its Gaussian SDE with the low-rank noise `C/B` (20
  eigenpairs) and its Lévy SDE (`sd.models.SGDLevy`, α = the measured index, the same
  low-rank scale), one step per iteration (dt = lr), capped at `--sde-iters`.

Mean escape times are in iterations, with the 95% interval of the exponential rate (right
censoring included: `EscapeResult.mean_time_ci`).

    python benchmarks/network_escape.py [--paths 128] [--iters 2000] [--quick]

writes figures/network_escape.png and figures/network_escape.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

import sdesim as sd
from sdesim import diagnostics as dg
from sdesim import networks as nw

HERE = os.path.dirname(os.path.abspath(__file__))
FIG = os.path.join(HERE, "..", "figures")

# optimizer -> (constructor, learning rates)
ALGOS = {
    "SGD": (sd.optim.sgd, (0.5, 1.0, 2.0)),
    "Momentum": (lambda lr: sd.optim.momentum(lr, 0.9), (0.05, 0.1, 0.2)),
    "Adam": (sd.optim.adam, (1e-3, 3e-3, 1e-2)),
    "Adai": (sd.optim.adai, (0.05, 0.1, 0.2)),
    "AdaL": (sd.optim.adal, (1e-3, 3e-3, 1e-2)),
}


def summary(res):
    """Mean escape time in iterations with its interval, and the escaped fraction."""
    lr = res.lr if res.lr else 1.0
    m = res.mean_time()
    lo, hi = res.mean_time_ci()
    return dict(escaped=int(res.n_escaped), paths=int(res.n_paths),
                diverged=int(res.n_diverged), mean_iters=float(m / lr),
                ci_iters=[float(lo / lr), float(hi / lr)])


def minimum_report(prob, params, key):
    t0 = time.perf_counter()
    e = dg.hessian_eigs(prob.loss, params, k=3, key=key)
    tr, se = dg.hessian_trace(prob.loss, params, n_samples=100, key=key)
    ti = dg.tail_index(prob.per_sample, params, prob.data, batch_size=32, n_batches=400,
                       key=key)
    ne = dg.noise_eigs(prob.per_sample, params, prob.data, batch_size=32.0, k=20)
    return dict(loss=float(prob.loss(params)), accuracy=prob.accuracy(params),
                top_eigs=e.values.tolist(), trace=tr, trace_se=se, alpha=ti.alpha,
                alpha_ci=list(ti.ci), alpha_raw=ti.raw, noise_top_eigs=ne.values.tolist(),
                seconds=time.perf_counter() - t0), ne


def replot(json_path=None):
    """Redraw the figure from its JSON (no simulation)."""
    base = os.path.join(FIG, "network_escape") if json_path is None else json_path[:-5]
    with open(base + ".json") as f:
        plot(json.load(f), base + ".png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=128)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--sde-paths", type=int, default=64)
    ap.add_argument("--sde-iters", type=int, default=300)
    ap.add_argument("--dl", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="small run to check the script")
    ap.add_argument("--out", default=os.path.join(FIG, "network_escape"))
    ap.add_argument("--replot", action="store_true", help="redraw the figure from the JSON")
    args = ap.parse_args(argv)
    if args.replot:
        return replot(args.out + ".json")
    if args.quick:
        args.paths, args.iters, args.sde_paths, args.sde_iters = 16, 200, 8, 50
    t_start = time.perf_counter()
    prob = nw.digits_problem(hidden=(32,), key=jax.random.key(0))
    minima = {
        "SGD minimum": nw.train(prob, sd.optim.sgd(0.5), steps=4000, batch_size=32,
                                key=jax.random.key(1)),
        "Adam minimum": nw.train(prob, sd.optim.adam(1e-3), steps=4000, batch_size=32,
                                 key=jax.random.key(1)),
    }
    ev = prob.data[::7]
    out = dict(n_params=prob.n_params, n_train=int(prob.data.shape[0]),
               n_eval=int(ev.shape[0]), dl=args.dl, paths=args.paths, iters=args.iters,
               sde_paths=args.sde_paths, sde_iters=args.sde_iters, minima={})
    for mname, params in minima.items():
        rep, ne = minimum_report(prob, params, jax.random.key(3))
        print(f"{mname}: loss {rep['loss']:.4g}, accuracy {rep['accuracy']:.3f}, top "
              f"eigenvalues {np.round(rep['top_eigs'], 4)}, trace {rep['trace']:.3f} ± "
              f"{rep['trace_se']:.3f}, alpha {rep['alpha']:.3f} {np.round(rep['alpha_ci'], 3)}",
              flush=True)
        level = float(prob.loss(params, ev)) + args.dl
        exit_ = sd.exits.LevelSet(lambda q: prob.loss(q, ev), level)
        rep["eval_loss"] = level - args.dl
        rep["runs"] = {}
        for aname, (make, lrs) in ALGOS.items():
            for lr in lrs:
                t0 = time.perf_counter()
                r = sd.escape_algorithm(make(lr), prob.loss, params, exit_, data=prob.data,
                                        batch_size=32, per_sample=prob.per_sample,
                                        n_iters=args.iters, n_paths=args.paths,
                                        key=jax.random.key(5), progress=False)
                row = summary(r) | dict(lr=lr, seconds=time.perf_counter() - t0)
                rep["runs"][f"{aname} lr={lr:g}"] = row
                print(f"  {aname:8s} lr {lr:<6g} escaped {row['escaped']}/{row['paths']}"
                      f"  mean {row['mean_iters']:.4g} it [{row['ci_iters'][0]:.4g}, "
                      f"{row['ci_iters'][1]:.4g}]  ({row['seconds']:.1f} s)", flush=True)
        noise = sd.noise.lowrank(ne)
        for lr in ALGOS["SGD"][1]:
            for sname, model in (("Gaussian SDE", sd.models.SGD(lr, noise)),
                                 ("Levy SDE", sd.models.SGDLevy(lr, min(rep["alpha"], 2.0),
                                                                noise))):
                t0 = time.perf_counter()
                r = sd.escape(model, prob.loss, params, exit_, n_paths=args.sde_paths,
                              dt=lr, t_max=args.sde_iters * lr, key=jax.random.key(6),
                              progress=False)
                row = summary(r) | dict(lr=lr, seconds=time.perf_counter() - t0)
                rep["runs"][f"SGD {sname} lr={lr:g}"] = row
                print(f"  SGD {sname:12s} lr {lr:<4g} escaped {row['escaped']}/"
                      f"{row['paths']}  mean {row['mean_iters']:.4g} it "
                      f"[{row['ci_iters'][0]:.4g}, {row['ci_iters'][1]:.4g}]  "
                      f"({row['seconds']:.1f} s)", flush=True)
        out["minima"][mname] = rep
    out["seconds"] = time.perf_counter() - t_start
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1)
    plot(out, args.out + ".png")
    print(f"wrote {args.out}.json and .png ({out['seconds']:.0f} s)")
    return out


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ALGOS) + ["SGD Gaussian SDE", "SGD Levy SDE"]
    fig, grid = plt.subplots(2, 4, figsize=(13, 6.4), sharey=True)
    axes = grid.ravel()[:len(names)]
    grid.ravel()[-1].axis("off")
    colors = {"SGD minimum": "tab:blue", "Adam minimum": "tab:red"}
    for ax, name in zip(axes, names, strict=True):
        for k, (mname, rep) in enumerate(out["minima"].items()):
            rows = [(r["lr"], r) for key, r in rep["runs"].items()
                    if key.rsplit(" lr=", 1)[0] == name]
            if not rows:
                continue
            lrs = np.array([lr for lr, _ in rows])
            m = np.array([r["mean_iters"] for _, r in rows])
            lo = np.array([r["ci_iters"][0] for _, r in rows])
            hi = np.array([r["ci_iters"][1] for _, r in rows])
            cap = out["sde_iters"] if "SDE" in name else out["iters"]
            fin = np.isfinite(m)
            lab = (f"{mname} (λmax {rep['top_eigs'][0]:.2f}, α {rep['alpha']:.2f})"
                   if name == names[0] else None)
            shift = 1.0 + 0.04 * (2 * k - 1)
            yerr = [np.maximum(m[fin] - lo[fin], 0),
                    np.maximum(np.minimum(hi[fin], 10 * cap) - m[fin], 0)]
            ax.errorbar(lrs[fin] * shift, m[fin], yerr=yerr, fmt="o-",
                        color=colors[mname], label=lab, capsize=3)
            ax.plot(lrs[~fin] * shift, np.full((~fin).sum(), cap), "v",
                    color=colors[mname], alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("learning rate")
    for ax in grid[:, 0]:
        ax.set_ylabel("mean escape time (iterations)")
    axes[0].legend(fontsize=7, loc="lower left")
    grid.ravel()[-1].text(0.0, 0.5, "▼: no path escaped by the cap\n(algorithms "
                          f"{out['iters']} iterations,\nSDEs {out['sde_iters']}); bars: 95% "
                          "intervals\nof the exponential mean, censoring\nincluded",
                          fontsize=9, va="center")
    fig.suptitle(f"Escape from two minima of a {out['n_params']}-parameter MLP on the "
                 f"digits: eval loss +{out['dl']} ({out['paths']} paths per point, batch 32)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
