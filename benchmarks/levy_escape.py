"""Lévy-driven escape (Zhou et al. 2020; SPEC F20, F21): simulated vs the small-noise laws.

(a) Escape time vs ε on log-log axes, α ∈ {1.2, 1.5, 1.8}: 1-D well U = x²/2, interval
    (−2, 1), SGDLevy (Σ = 1, ε = lr^{(α−1)/α}), with the F20 lines (slope −α).
(b) Escape time vs basin half-width w (U = x²/2, exit at |x| = w): Lévy (α = 1.5, ε = 0.1)
    grows like w^α (F20: polynomial), Gaussian SGD (α = 2, same model, D = lr σ² = 0.25)
    like e^{w²/(2D)} (exact MFPT, F4 with reflection at the symmetric point).
(c) SGD vs Adam in the same anisotropic basin ½yᵀHy ≤ ½, H = diag(1, κ), Hessian-aligned
    noise Σ = (H/2B)^{1/2} (B = 2), α = 1.5, ε = 0.05: simulated mean escape times of
    SGDLevy and AdamLevy and the F21 prediction (theory.levy_sgd_vs_adam).
Also: throughput of the SαS sampler vs jax.random.normal (draws/s, same process).

    python benchmarks/levy_escape.py               # -> figures/levy_escape.{png,json}
    python benchmarks/levy_escape.py --plot-only   # redraw the PNG from the JSON
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import theory  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "figures"
N_PATHS = 2000
LANES = 128  # widths 128, 32, 16: fewer compilations; results do not depend on it

ALPHAS_A = [1.2, 1.5, 1.8]
EPS_A = [0.4, 0.2, 0.1, 0.05]
A_RIGHT, B_LEFT = 1.0, 2.0
WIDTHS_B = [0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0]
WIDTHS_GAUSS_SIM = [0.5, 0.75, 1.0, 1.5, 2.0]
KAPPAS_C = [1.0, 4.0, 16.0, 64.0]


def lr_for(eps, alpha):
    return eps ** (alpha / (alpha - 1))


def well(th):
    return 0.5 * th[0] ** 2


def summarize(res, want=None):
    lo, hi = res.mean_time_ci()
    out = dict(mean=res.mean_time(), ci95=[lo, hi], escaped=res.n_escaped,
               n_paths=res.n_paths, nonfinite=res.n_nonfinite, cv=res.cv(),
               seconds=res.info.wall_time)
    if want is not None:
        out.update(theory=want, ratio=res.mean_time() / want,
                   ratio_ci95=[lo / want, hi / want])
    return out


def run(model, loss, th0, exit_, dt, key, t_max=1e6, **kw):
    return sd.escape(model, loss, np.asarray(th0, float), exit_, n_paths=N_PATHS, dt=dt,
                     t_max=t_max, key=jax.random.key(key), lanes=LANES, progress=False, **kw)


def panel_a():
    rows = []
    ex = sd.exits.Box([-B_LEFT], [A_RIGHT])
    for i, alpha in enumerate(ALPHAS_A):
        for j, eps in enumerate(EPS_A):
            want = theory.levy_exit_time(alpha, eps, A_RIGHT, B_LEFT)
            res = run(sd.models.SGDLevy(lr_for(eps, alpha), alpha, 1.0), well, [0.0], ex,
                      dt=0.05, key=100 * i + j)
            row = dict(alpha=alpha, eps=eps, **summarize(res, want))
            rows.append(row)
            print(f"(a) α={alpha} ε={eps:<5}: sim {row['mean']:10.2f}  F20 {want:10.2f}  "
                  f"ratio {row['ratio']:.3f} [{row['ratio_ci95'][0]:.3f}, "
                  f"{row['ratio_ci95'][1]:.3f}]", flush=True)
    return rows


def panel_b():
    alpha, eps, temp = 1.5, 0.1, 0.25
    rows = []
    for k, w in enumerate(WIDTHS_B):
        ex = sd.exits.Box([-w], [w])
        want = theory.levy_exit_time(alpha, eps, w, w)
        res = run(sd.models.SGDLevy(lr_for(eps, alpha), alpha, 1.0), well, [0.0], ex,
                  dt=0.05, key=300 + k)
        row = dict(width=w, levy=summarize(res, want))
        # Gaussian: SGDLevy at α = 2 is Gaussian SGD with C = 2σ², D = lr C/2 = lr (σ = 1);
        # simulated with sd.models.SGD, whose Brownian-bridge exit test removes the
        # O(sqrt(dt)) grid-monitoring bias (+20-33% here without it). Exact MFPT from 0 to
        # ±w = MFPT reflecting at 0, absorbing at w (symmetry).
        exact = theory.mfpt_1d(lambda x: 0.5 * x**2, 0.0, w, temp, lower=0.0)
        row["gauss_theory"] = exact
        if w in WIDTHS_GAUSS_SIM:
            res_g = run(sd.models.SGD(temp, sd.noise.isotropic(2.0)), well, [0.0], ex,
                        dt=0.01, key=400 + k, bridge=True)
            row["gauss"] = summarize(res_g, exact)
        rows.append(row)
        g = row.get("gauss", {})
        print(f"(b) w={w:<4}: Lévy sim {row['levy']['mean']:9.2f} F20 {want:9.2f} "
              f"({row['levy']['ratio']:.3f})   Gauss exact {exact:11.4g}"
              + (f" sim {g['mean']:9.2f} ({g['ratio']:.3f})" if g else ""), flush=True)
    return dict(alpha=alpha, eps=eps, temperature=temp, rows=rows)


def panel_c():
    alpha, eps, height, batch = 1.5, 0.05, 0.5, 2.0
    lr = lr_for(eps, alpha)
    rows = []
    for k, kappa in enumerate(KAPPAS_C):
        hess = np.array([1.0, kappa])
        sigma = np.sqrt(hess / (2 * batch))
        pred = theory.levy_sgd_vs_adam(alpha, lr, sigma, hess, height)
        loss = sd.landscapes.Quadratic(hess)
        ex = sd.exits.Ellipsoid(np.zeros(2), np.diag(hess), height)
        dt = min(0.01, 0.2 / kappa)
        row = dict(kappa=kappa, sigma=sigma.tolist(), dt=dt, m_sgd=pred["m_sgd"],
                   m_adam=pred["m_adam"], ratio_theory=pred["ratio"])
        for name, model in [("sgd", sd.models.SGDLevy(lr, alpha, sigma)),
                            ("adam", sd.models.AdamLevy(lr, alpha, sigma))]:
            row[name] = summarize(run(model, loss, [0.0, 0.0], ex, dt=dt, key=500 + k),
                                  pred[f"{name}_time"])
        row["ratio_sim"] = row["adam"]["mean"] / row["sgd"]["mean"]
        rows.append(row)
        print(f"(c) κ={kappa:<4}: SGD sim {row['sgd']['mean']:8.3f} F21 {pred['sgd_time']:8.3f}"
              f" ({row['sgd']['ratio']:.3f})  Adam sim {row['adam']['mean']:8.3f} F21 "
              f"{pred['adam_time']:8.3f} ({row['adam']['ratio']:.3f})  Adam/SGD sim "
              f"{row['ratio_sim']:.2f} F21 {pred['ratio']:.2f}", flush=True)
    return dict(alpha=alpha, eps=eps, lr=lr, height=height, batch_size=batch, rows=rows)


def sampler_throughput(n=4_000_000, repeats=5):
    key = jax.random.key(0)
    fns = {
        "jax.random.normal": jax.jit(lambda k, a: jax.random.normal(k, (n,))),
        "sas alpha=1.5 (traced)": jax.jit(lambda k, a: sd.noise.sas(k, a, (n,))),
        "sas alpha=1.5 (static)": jax.jit(lambda k, a: sd.noise.sas(k, 1.5, (n,))),
        "sas alpha=1 (static)": jax.jit(lambda k, a: sd.noise.sas(k, 1.0, (n,))),
        "sas alpha=2 (traced)": jax.jit(lambda k, a: sd.noise.sas(k, a, (n,))),
    }
    out = {}
    for name, f in fns.items():
        a = jnp.asarray(2.0 if "alpha=2" in name else 1.5, jnp.result_type(float))
        f(key, a).block_until_ready()
        best = np.inf
        for r in range(repeats):
            t0 = time.perf_counter()
            f(jax.random.fold_in(key, r), a).block_until_ready()
            best = min(best, time.perf_counter() - t0)
        out[name] = n / best
    base = out["jax.random.normal"]
    print(f"sampler draws/s (best of {repeats}, {n} draws, {jnp.result_type(float)}):")
    for name, v in out.items():
        print(f"  {name:26s} {v:10.3e}  ({v / base:.2f}x normal)")
    return dict(n=n, repeats=repeats, dtype=str(jnp.result_type(float)), draws_per_s=out,
                relative_to_normal={k: v / base for k, v in out.items()})


def plot(a, b, c, path):
    fig, axs = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axs[0]
    eps_line = np.geomspace(min(EPS_A) / 1.3, max(EPS_A) * 1.3, 50)
    for alpha, color in zip(ALPHAS_A, ["C0", "C1", "C2"], strict=True):
        rows = [r for r in a if r["alpha"] == alpha]
        e = np.array([r["eps"] for r in rows])
        m = np.array([r["mean"] for r in rows])
        err = np.array([[r["mean"] - r["ci95"][0], r["ci95"][1] - r["mean"]] for r in rows]).T
        ax.errorbar(e, m, yerr=err, fmt="o", color=color, label=f"sim α={alpha}")
        ax.plot(eps_line, theory.levy_exit_time(alpha, eps_line, A_RIGHT, B_LEFT), "-",
                color=color, lw=1, label=f"F20 (slope −{alpha})")
    ax.set(xscale="log", yscale="log", xlabel="ε = lr^((α−1)/α)", ylabel="mean escape time",
           title="(a) 1-D well, exit (−2, 1): E τ ∝ ε^(−α)")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(EPS_A, [str(e) for e in EPS_A])
    ax.legend(fontsize=7)

    ax = axs[1]
    rows = b["rows"]
    w = np.array([r["width"] for r in rows])
    lv = np.array([r["levy"]["mean"] for r in rows])
    ax.plot(w, lv, "o", color="C1", label=f"Lévy α={b['alpha']}, ε={b['eps']} (sim)")
    wl = np.geomspace(w.min(), w.max(), 60)
    ax.plot(wl, theory.levy_exit_time(b["alpha"], b["eps"], wl, wl), "-", color="C1", lw=1,
            label="F20: ∝ w^α (polynomial)")
    gs = [r for r in rows if "gauss" in r]
    ax.plot([r["width"] for r in gs], [r["gauss"]["mean"] for r in gs], "s", color="C3",
            label=f"Gaussian (α=2), D={b['temperature']} (sim)")
    wg = np.linspace(w.min(), 3.2, 40)
    ax.plot(wg, [theory.mfpt_1d(lambda x: 0.5 * x**2, 0.0, v, b["temperature"], lower=0.0)
                 for v in wg], "-", color="C3", lw=1, label="exact MFPT (F4): ~ exp(w²/2D)")
    ax.set(xscale="log", yscale="log", xlabel="basin half-width w", ylabel="mean escape time",
           title="(b) width dependence: polynomial vs exponential", ylim=(0.2, 1e8))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(WIDTHS_B, [str(v) for v in WIDTHS_B])
    ax.legend(fontsize=7)

    ax = axs[2]
    rows = c["rows"]
    k = np.array([r["kappa"] for r in rows])
    for name, color, label in [("sgd", "C0", "SGD (Q = I)"),
                               ("adam", "C3", "Adam (Q = diag(√v+ϵ))")]:
        m = np.array([r[name]["mean"] for r in rows])
        err = np.array([[r[name]["mean"] - r[name]["ci95"][0],
                         r[name]["ci95"][1] - r[name]["mean"]] for r in rows]).T
        ax.errorbar(k, m, yerr=err, fmt="o", color=color, label=f"{label} sim")
        ax.plot(k, [r[name]["theory"] for r in rows], "--", color=color, lw=1,
                label=f"{label} F21")
    for r in rows:
        ax.annotate(f"Adam/SGD {r['ratio_sim']:.2f}\n(F21 {r['ratio_theory']:.2f})",
                    (r["kappa"] * 1.1, np.sqrt(r["sgd"]["mean"] * r["adam"]["mean"])),
                    fontsize=7, ha="left", va="center")
    ax.set(xscale="log", yscale="log", xlabel="anisotropy κ (H = diag(1, κ))",
           ylabel="mean escape time",
           title=f"(c) SGD vs Adam, Σ=(H/2B)^½, α={c['alpha']}, ε={c['eps']}",
           xlim=(0.8, 150))
    ax.set_xticks(KAPPAS_C, [f"{v:g}" for v in KAPPAS_C])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    if "--plot-only" in sys.argv:  # redraw from the JSON of the last run
        with open(OUT / "levy_escape.json") as f:
            data = json.load(f)
        plot(data["escape_vs_eps"], data["escape_vs_width"], data["sgd_vs_adam"],
             OUT / "levy_escape.png")
        return
    t0 = time.perf_counter()
    thr = sampler_throughput()
    a = panel_a()
    b = panel_b()
    c = panel_c()
    wall = time.perf_counter() - t0
    OUT.mkdir(exist_ok=True)
    plot(a, b, c, OUT / "levy_escape.png")
    with open(OUT / "levy_escape.json", "w") as f:
        json.dump(dict(escape_vs_eps=a, escape_vs_width=b, sgd_vs_adam=c, sampler=thr,
                       n_paths=N_PATHS, wall_time_s=wall, device=str(jax.devices()[0]),
                       jax=jax.__version__), f, indent=1)
    print(f"wall time {wall:.1f} s -> {OUT / 'levy_escape.png'}")


if __name__ == "__main__":
    main()
