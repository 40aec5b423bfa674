"""Simulated mean escape time vs the exact MFPT integral (F4) across ΔU/T.

Overdamped Langevin in the double well U = (x² − 1)² (ΔU = 1), start at −1, absorbed at
the saddle 0; 4 000 paths per point, dt = 0.002 with the Brownian-bridge exit correction,
and dt = 0.01 with and without it to show the discretization bias. The Kramers asymptote
(F1, absorbing at the saddle: τ_K/2) is drawn for contrast.

    python benchmarks/kramers_validation.py   # -> figures/kramers_validation.{png,json}
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import sdesim as sd  # noqa: E402
from sdesim import theory  # noqa: E402

RATIOS = [2.0, 3.0, 4.0, 5.0, 6.0]  # ΔU/T
N_PATHS = 4000
OUT = Path(__file__).resolve().parent.parent / "figures"


def main():
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    u = lambda x: (x**2 - 1) ** 2
    rows = []
    t_start = time.perf_counter()
    for r in RATIOS:
        temp = 1.0 / r
        exact = theory.mfpt_1d(u, -1.0, 0.0, temp)
        kramers = theory.kramers_time(1.0, 8.0, -4.0, temp, where="saddle")
        row = dict(barrier_over_T=r, temperature=temp, exact=exact, kramers=kramers)
        for label, dt, bridge in [("dt=0.002 bridge", 0.002, True),
                                  ("dt=0.01 bridge", 0.01, True),
                                  ("dt=0.01 grid only", 0.01, False)]:
            res = sd.escape(sd.models.Langevin(temp), dw, th0, ex, n_paths=N_PATHS, dt=dt,
                            t_max=1e6, key=jax.random.key(int(10 * r)), bridge=bridge,
                            progress=False)
            lo, hi = res.mean_time_ci()
            row[label] = dict(mean=res.mean_time(), ci95=[lo, hi], ratio=res.mean_time() / exact,
                              ratio_ci95=[lo / exact, hi / exact], cv=res.cv(),
                              seconds=res.info.wall_time)
        rows.append(row)
        print(f"ΔU/T={r:.0f}: exact {exact:9.3f}  Kramers/2 {kramers:9.3f}  " + "  ".join(
            f"{k}: {v['ratio']:.3f} [{v['ratio_ci95'][0]:.3f},{v['ratio_ci95'][1]:.3f}]"
            for k, v in row.items() if isinstance(v, dict)), flush=True)
    wall = time.perf_counter() - t_start

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.array(RATIOS)
    ex_t = np.array([r_["exact"] for r_ in rows])
    ax1.semilogy(x, ex_t, "k-", label="exact MFPT (F4)")
    ax1.semilogy(x, [r_["kramers"] for r_ in rows], "k:", label="Kramers τ_K/2 (F1)")
    style = {"dt=0.002 bridge": "o", "dt=0.01 bridge": "s", "dt=0.01 grid only": "^"}
    for k, mk in style.items():
        m = np.array([r_[k]["mean"] for r_ in rows])
        ci = np.array([r_[k]["ci95"] for r_ in rows]).T
        ax1.errorbar(x, m, yerr=[m - ci[0], ci[1] - m], fmt=mk, ms=4, capsize=2, label=k)
        rr = np.array([r_[k]["ratio"] for r_ in rows])
        rci = np.array([r_[k]["ratio_ci95"] for r_ in rows]).T
        ax2.errorbar(x, rr, yerr=[rr - rci[0], rci[1] - rr], fmt=mk + "-", ms=4, capsize=2,
                     label=k)
    ax2.plot(x, [r_["kramers"] / r_["exact"] for r_ in rows], "k:", label="Kramers/exact")
    ax2.axhline(1, color="k", lw=0.8)
    ax2.axhspan(0.97, 1.03, color="0.9", zorder=0, label="±3%")
    ax1.set_xlabel("ΔU / T")
    ax1.set_ylabel("mean escape time")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("ΔU / T")
    ax2.set_ylabel("simulated / exact")
    ax2.legend(fontsize=7, loc="center right")
    fig.suptitle(f"Double well, overdamped Langevin, {N_PATHS} paths per point (95% intervals)")
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "kramers_validation.png", dpi=120)
    with open(OUT / "kramers_validation.json", "w") as f:
        json.dump(dict(rows=rows, n_paths=N_PATHS, wall_time_s=wall), f, indent=1)
    print(f"wrote {OUT / 'kramers_validation.png'} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
