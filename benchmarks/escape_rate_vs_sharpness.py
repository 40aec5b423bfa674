"""Escape rate vs sharpness for SGD, Momentum, Adam and Adai (the Adai paper's Fig. 6).

10-D data-shifted Styblinski–Tang (SPEC §5: ℓ(θ; x) = f(sqrt(k)θ − x), x ~ N(0, I)), start
in the local valley, exit when any coordinate crosses its saddle. Gradient noise: exact
minibatch covariance Cov_x[∇ℓ]/B (population closed form). For each optimizer's SDE a
sweep over the sharpness k (traced: one compilation per optimizer), escape rate with its
exact 95% interval, and a weighted fit

    log(rate/ν(k)) = a − b·k^(−p)

whose p is the sharpness exponent (the paper: p = 1 for SGD, Momentum, Adai; p = 1/2 for
Adam). ν(k) is the Kramers prefactor of each optimizer (F10 with its mass and friction;
its overdamped limit for SGD), computed, not fitted: with five to seven sharpness values
a free prefactor power c·log k is degenerate with p (tried: c ran to its bounds). Only
points whose predicted exponent ΔL/T is >= E_MIN = 3 are fitted (Kramers' asymptotic
prefactor needs a real barrier); the others are drawn as open circles.
Noise (``--noise``): "local" (default) is the exact minibatch covariance at the valley's
minimum held fixed — Xie et al.'s C ≈ H/B, under which the theory's exponents hold;
"minibatch" follows the state-dependent covariance along the path, where the
temperature varies between minimum and saddle and inertia changes the effective barrier
(Momentum then escapes far sooner than SGD at the same ηC/2: measured, see README).

    python benchmarks/escape_rate_vs_sharpness.py [--paths 500]
    -> figures/escape_rate_vs_sharpness.{png,json}
    python benchmarks/escape_rate_vs_sharpness.py --method ams [--replicas 400 --runs 8]
    -> figures/escape_rate_vs_sharpness_ams.{png,json}
       (benchmarks/escape_rate_vs_sharpness_ams.py: the settings of README's table)

``--method ams`` takes the same optimizers to the regime the formulas speak of: learning
rates divided so that ΔL/T = 40 at k = 1 (``LR_AMS``), sharpness up to where ΔL/T ≈ 5
(SGD, Momentum, Adai: k = 1…8; Adam, whose exponent falls like k^(−1/2): k = 1…16, ΔL/T
40…10), each point by adaptive multilevel splitting (``sd.escape_ams``: rate and its
interval from independent runs), every point fitted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import optimize, stats  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import theory  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "figures"
DIM, DATA_STD = 10, 1.0
# Adam's exponent falls like k^(-1/2): it needs a wider sharpness range (and a higher
# barrier at k = 1) to stay in the Kramers regime over a useful lever arm.
SHARPNESS = {"sgd": np.geomspace(1.0, 5.0, 8), "momentum": np.geomspace(1.0, 5.0, 8),
             "adai": np.geomspace(1.0, 5.0, 8), "adam": np.geomspace(1.0, 9.0, 7)}
# dt = DT_K/k keeps dt·curvature fixed; Adam's heavy mass makes it slow, so it gets a
# larger step (ω_a·dt or H_a·dt ≈ 0.04–0.07 at every k, where the exponential scheme and the
# bridge-corrected Euler step are accurate).
DT_K = {"sgd": 0.004, "momentum": 0.004, "adai": 0.004, "adam": 0.05}
# learning rates put the predicted exponent ΔL/T at ≈ 10 (SGD, Momentum, Adai) and ≈ 9
# (Adam) at k = 1; t_max lets >= 95% of the paths escape at the slowest point.
LR = {"sgd": 0.0121, "momentum": 0.0121, "adai": 0.0121, "adam": 0.149}
T_MAX = {"sgd": 8000.0, "momentum": 8000.0, "adai": 8000.0, "adam": 40000.0}
BETA1 = 0.9


def make_noise(kind, st, batch):
    """'local': the exact minibatch covariance Cov_x[∇ℓ(θ*; x)]/B at the valley's minimum,
    held fixed (the locally-constant noise of Xie et al.'s theory, C ≈ H/B near θ*);
    'minibatch': the state-dependent minibatch covariance along the path."""
    if kind == "minibatch":
        return sd.noise.minibatch(None, batch)
    th0, _ = st.basin("local")
    return sd.noise.fixed(np.asarray(st.grad_cov(jnp.asarray(th0))) / batch)


def optimizers(noise, lr=LR):
    return {
        "sgd": sd.models.SGD(lr["sgd"], noise),
        "momentum": sd.models.Momentum(lr["momentum"], BETA1, noise),
        "adam": sd.models.Adam(lr["adam"], noise, beta1=BETA1, beta2=0.999),
        "adai": sd.models.Adai(lr["adai"], noise),
    }


def lr_ams(batch):
    """Learning rates with ΔL/T = E_AMS at k = 1 (the SDE temperatures scale with lr)."""
    return {n: LR[n] * predicted_exponent(n, 1.0, batch) / E_AMS for n in LR}


def prefactor(name, k, batch, lr=None):
    """Kramers prefactor ν(k) of the d-D rate (d coordinates, each escaping at the 1-D
    rate): underdamped F10 ``(λ_b/ω_b)(ω_a/2π)`` with the optimizer's mass and friction at
    the minimum (theory.optimizer_dynamics), its overdamped limit ``sqrt(H_a|H_b|)/2π``
    for SGD. Dividing it out leaves the Arrhenius factor ``exp(−b·k^{−p})`` to fit."""
    st = sd.landscapes.StyblinskiTang(1, k, DATA_STD)
    cp = st.critical_points()
    h_a = float(st.hessian_diag(jnp.asarray([cp["local_min"]]))[0])
    h_b = float(st.hessian_diag(jnp.asarray([cp["saddle"]]))[0])
    c = float(st.grad_cov(jnp.asarray([cp["local_min"]]))[0]) / batch
    if name == "sgd":
        return DIM * np.sqrt(h_a * abs(h_b)) / (2 * np.pi)
    lr = LR[name] if lr is None else lr
    dyn = theory.optimizer_dynamics("momentum" if name == "adai" else name, lr, c,
                                    beta1=BETA1)
    m, gam = float(dyn["mass"]), float(dyn["friction"])
    w_a, w_b = np.sqrt(h_a / m), np.sqrt(abs(h_b) / m)
    lam = np.sqrt(gam**2 / 4 + w_b**2) - gam / 2
    return DIM * (lam / w_b) * w_a / (2 * np.pi)


E_MIN = 3.0  # fit only points whose predicted ΔL/T >= E_MIN (Kramers regime)
# --method ams: ΔL/T from 40 (k = 1) down to ~5 (Adam: ~10)
E_AMS = 40.0
SHARPNESS_AMS = {"sgd": np.geomspace(1.0, 8.0, 8), "momentum": np.geomspace(1.0, 8.0, 8),
                 "adai": np.geomspace(1.0, 8.0, 8), "adam": np.geomspace(1.0, 16.0, 7)}


def predicted_exponent(name, k, batch, lr=None):
    """ΔL/T at the minimum from theory.optimizer_dynamics (the SDE's own temperature)."""
    lr = LR[name] if lr is None else lr
    st = sd.landscapes.StyblinskiTang(1, k, DATA_STD)
    cp = st.critical_points()
    c = float(st.grad_cov(jnp.asarray([cp["local_min"]]))[0]) / batch
    dyn = theory.optimizer_dynamics("momentum" if name == "adai" else name, lr, c,
                                    beta1=BETA1)
    barrier = float(st.potential_1d(cp["saddle"]) - st.potential_1d(cp["local_min"]))
    return barrier / float(dyn["temperature"])


def fit_exponent(k, rate, lo, hi, nu):
    """Weighted least squares of log(rate/ν(k)) = a − b·k^(−p); returns p with its 95%
    interval (from the fit's covariance, errors = the rates' exact intervals), b, a."""
    y = np.log(rate / nu)
    sig = (np.log(hi) - np.log(lo)) / (2 * 1.96)
    f = lambda kk, a, b, p: a - b * kk ** (-p)
    popt, pcov = optimize.curve_fit(f, k, y, p0=[y[-1] + 1, 5.0, 1.0], sigma=sig,
                                    absolute_sigma=True,
                                    bounds=([-50, 0, 0.01], [50, 1e3, 5]), maxfev=20000)
    se = np.sqrt(np.diag(pcov))
    chi2 = float(np.sum(((y - f(k, *popt)) / sig) ** 2))
    tq = stats.norm.ppf(0.975)
    return dict(p=popt[2], p_ci=[popt[2] - tq * se[2], popt[2] + tq * se[2]], b=popt[1],
                b_ci=[popt[1] - tq * se[1], popt[1] + tq * se[1]], a=popt[0], chi2=chi2,
                dof=len(k) - 3, model="log(rate/ν(k)) = a − b·k^(−p), ν = Kramers prefactor")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=500)
    ap.add_argument("--batch", type=float, default=5.0)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--noise", choices=["local", "minibatch"], default="local")
    ap.add_argument("--method", choices=["direct", "ams"], default="direct")
    ap.add_argument("--replicas", type=int, default=400, help="AMS replicas per run")
    ap.add_argument("--runs", type=int, default=8, help="independent AMS runs per point")
    args = ap.parse_args(argv)
    ams = args.method == "ams"
    lrs = lr_ams(args.batch) if ams else LR
    sharp = SHARPNESS_AMS if ams else SHARPNESS
    e_min = 0.0 if ams else E_MIN
    t_all = time.perf_counter()
    results, fits = {}, {}
    for name in optimizers(sd.noise.isotropic(1.0)):
        if args.only and name not in args.only:
            continue
        rows = []
        t_opt = time.perf_counter()
        for i, k in enumerate(np.round(sharp[name], 4).tolist()):
            st = sd.landscapes.StyblinskiTang(DIM, k, DATA_STD)
            th0, ex = st.basin("local")
            model = optimizers(make_noise(args.noise, st, args.batch), lrs)[name]
            row = dict(k=k, prefactor=prefactor(name, k, args.batch, lrs[name]),
                       predicted_exponent=predicted_exponent(name, k, args.batch, lrs[name]))
            if ams:
                t0 = time.perf_counter()
                res = sd.escape_ams(model, st, th0, ex, dt=DT_K[name] / k,
                                    key=jax.random.key(100 + i), n_replicas=args.replicas,
                                    n_runs=args.runs)
                row.update(p=res.p, failed=res.failed, diverged=res.diverged,
                           iterations=res.iterations.tolist(), lane_steps=res.cost,
                           seconds=time.perf_counter() - t0)
                extra = f"p={res.p:.3g} failed={res.failed}"
            else:
                res = sd.escape(model, st, th0, ex, n_paths=args.paths, dt=DT_K[name] / k,
                                t_max=T_MAX[name],
                                key=jax.random.key(100 + i), progress=False)
                row.update(escaped_fraction=res.escaped_fraction,
                           seconds=res.info.wall_time)
                extra = f"escaped={res.escaped_fraction:.3f}"
            lo, hi = res.rate_ci()
            row.update(rate=res.rate(), rate_ci95=[lo, hi], mean_time=res.mean_time(),
                       mean_iterations=res.mean_time() / float(lrs[name]))
            rows.append(row)
            print(f"{name:9s} k={k:4.1f} ΔL/T={row['predicted_exponent']:5.1f} "
                  f"rate={res.rate():.4g} [{lo:.4g}, {hi:.4g}] {extra} "
                  f"({row['seconds']:.1f} s)", flush=True)
        use = [r for r in rows if r["predicted_exponent"] >= e_min]
        kk = np.array([r["k"] for r in use])
        fit = fit_exponent(kk, np.array([r["rate"] for r in use]),
                           np.array([r["rate_ci95"][0] for r in use]),
                           np.array([r["rate_ci95"][1] for r in use]),
                           np.array([r["prefactor"] for r in use]))
        fit["k_fitted"] = kk.tolist()
        fit["seconds"] = time.perf_counter() - t_opt
        results[name], fits[name] = rows, fit
        print(f"{name:9s} p = {fit['p']:.3f} [{fit['p_ci'][0]:.3f}, {fit['p_ci'][1]:.3f}], "
              f"b = {fit['b']:.3g}, chi2/dof = {fit['chi2']:.1f}/"
              f"{fit['dof']}", flush=True)
    wall = time.perf_counter() - t_all

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = dict(sgd="C0", momentum="C1", adam="C3", adai="C2")
    for name, rows in results.items():
        k = np.array([r["k"] for r in rows])
        rate = np.array([r["rate"] for r in rows])
        ci = np.array([r["rate_ci95"] for r in rows]).T
        f = fits[name]
        used = np.isin(k, f["k_fitted"])
        ax.errorbar(1 / k, np.log(rate), yerr=[np.log(rate) - np.log(ci[0]),
                                               np.log(ci[1]) - np.log(rate)],
                    fmt="none", ecolor=colors[name], capsize=2)
        ax.plot(1 / k[used], np.log(rate[used]), "o", color=colors[name], ms=4,
                label=f"{name}: p = {f['p']:.2f} [{f['p_ci'][0]:.2f}, {f['p_ci'][1]:.2f}]")
        ax.plot(1 / k[~used], np.log(rate[~used]), "o", mfc="none", color=colors[name], ms=4)
        kg = np.linspace(k.min(), k.max(), 100)
        nug = np.array([prefactor(name, x, args.batch, lrs[name]) for x in kg])
        ax.plot(1 / kg, np.log(nug) + f["a"] - f["b"] * kg ** (-f["p"]), "-",
                color=colors[name], lw=1)
    ax.set_xlabel("1 / k   (k = sharpness: Hessian scale)")
    ax.set_ylabel("log escape rate (per unit SDE time)")
    per = (f"AMS {args.replicas}×{args.runs} replicas, ΔL/T {E_AMS:g} at k = 1" if ams
           else f"{args.paths} paths/point")
    ax.set_title(f"{DIM}-D data-shifted Styblinski–Tang, B = {args.batch:g}, "
                 f"{args.noise} noise, {per}", fontsize=9)
    ax.legend(fontsize=8, title=None if ams else f"open: ΔL/T < {E_MIN:g}, not fitted",
              title_fontsize=7)
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    name = "escape_rate_vs_sharpness_ams" if ams else "escape_rate_vs_sharpness"
    fig.savefig(OUT / f"{name}.png", dpi=120)  # the _ams figure: its own script
    settings = dict(dim=DIM, data_std=DATA_STD,
                    sharpness={n: np.round(v, 4).tolist() for n, v in sharp.items()},
                    method=args.method, learning_rates=lrs,
                    ams=dict(replicas=args.replicas, runs=args.runs) if ams else None,
                    batch_size=args.batch,
                    paths_per_point=args.paths, dt={n: f"{v}/k" for n, v in DT_K.items()},
                    t_max=T_MAX,
                    optimizers={n: {f.name: (float(getattr(m, f.name)) if
                                             hasattr(getattr(m, f.name), "dtype") else None)
                                    for f in __import__("dataclasses").fields(m)
                                    if f.name != "noise"}
                                for n, m in optimizers(sd.noise.isotropic(1.0), lrs).items()},
                    noise=args.noise, wall_time_s=wall)
    with open(OUT / f"{name}.json", "w") as fh:
        json.dump(dict(fits=fits, points=results, settings=settings), fh, indent=1, default=float)
    print(f"wrote {OUT / name}.png and .json in {wall:.0f} s")


if __name__ == "__main__":
    main()
