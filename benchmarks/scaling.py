"""How sd.escape's cost grows with the work: n_paths, dimension, t_max.

Three series, every contender in this one process (ratios within one run; absolute rates
depend on the machine and its load):

* ``n_paths`` = 10² … 10⁶: 1-D double well, Langevin at ΔU/T = 2, dt = 0.01.
* dimension d = 1, 10, 100: SGD with Hessian-shaped noise on the d-D Styblinski–Tang
  landscape (the throughput benchmark's 10-D problem; any coordinate crossing its saddle
  is an exit), 1 000 paths, t_max = 100 (censoring the slow low-d paths).
* ``t_max`` = 10 … 10⁴: the 1-D double well at ΔU/T = 4, 1 000 paths.

Per point: useful path-steps/s of sd.escape (compilation excluded: the compile time the
run reported through ``jax.monitoring`` is subtracted; short runs are repeated), lane
utilization (useful ÷ executed lane-steps), and memory: the XLA-planned peak of the
largest compiled engine program (arguments + outputs − donated + temporaries; on an
accelerator also the device's ``peak_bytes_in_use``) and the host result arrays.
Baselines: the bare scan (``model.step`` and the engine's noise, no exit logic, every step
counts: the limit) and diffrax (vmapped ``diffeqsolve``, Euler, Event; only where it runs
in seconds).

    python benchmarks/scaling.py [--quick] [--max-paths 1000000]
        [--json figures/scaling.json] [--png figures/scaling.png] [--plot-only]

(on a GPU the defaults are figures/scaling_gpu.json and figures/scaling_gpu.png)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput as tp  # noqa: E402

from sdesim import engine  # noqa: E402

FIG = Path(__file__).resolve().parent.parent / "figures"


class CompileClock:
    """Seconds spent tracing/lowering/compiling while active (jax.monitoring events)."""

    def __enter__(self):
        self.seconds = 0.0

        def listener(event, duration, **kw):
            if event.startswith("/jax/core/compile/"):
                self.seconds += duration

        self._listener = listener
        jax.monitoring.register_event_duration_secs_listener(listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


def timed(fn, long_run=5.0, repeats=2):
    """Best of ``repeats`` calls of ``fn()`` with their compile time subtracted; a single
    call when it takes over ``long_run`` seconds. Returns (seconds, last output)."""
    best, out = np.inf, None
    for _ in range(repeats):
        with CompileClock() as clock:
            t0 = time.perf_counter()
            out = fn()
            t = time.perf_counter() - t0 - clock.seconds
        best = min(best, max(t, 1e-9))
        if best > long_run:
            break
    return best, out


class ProgramMemory:
    """Records the engine's compiled programs during a run; ``peak()`` = the largest
    XLA-planned footprint among them (bytes, all devices)."""

    def __enter__(self):
        self.calls = {}
        self._orig = engine._advance

        def recorder(params, pool, max_pages, **kw):
            key = (pool.path.shape, tuple(sorted((k, str(v)) for k, v in kw.items())))
            if key not in self.calls:
                # a copy: the engine donates the pool to the call
                self.calls[key] = (params, jax.tree_util.tree_map(jnp.copy, pool),
                                   jnp.copy(max_pages), kw)
            return self._orig(params, pool, max_pages, **kw)

        engine._advance = recorder
        return self

    def __exit__(self, *exc):
        engine._advance = self._orig

    def peak(self):
        best = 0
        for params, pool, max_pages, kw in self.calls.values():
            m = self._orig.lower(params, pool, max_pages, **kw).compile().compiled
            m = m.memory_analysis()
            best = max(best, m.argument_size_in_bytes + m.output_size_in_bytes
                       - m.alias_size_in_bytes + m.temp_size_in_bytes)
        return best


def device_peak():
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def point(spec, n, key, bare=True, diffrax=False):
    """One point of a series: sdesim (+ bare scan, + diffrax)."""
    # warm-up with the same shapes and a 1-page horizon (t_max is traced: same programs)
    tp.run_sdesim(dict(spec, t_max=engine.NOISE_PAGE * spec["dt"]), n, jax.random.key(99))
    with ProgramMemory() as mem:
        t, res = timed(lambda: tp.run_sdesim(spec, n, key))
    row = dict(n_paths=n, seconds=t, useful_steps=res.useful_steps,
               steps_per_s=res.useful_steps / t,
               utilization=res.useful_steps / res.info.executed_steps,
               mean_steps=res.useful_steps / n, escaped_fraction=res.escaped_fraction,
               widths=sorted(set(res.info.widths), reverse=True),
               program_bytes=mem.peak(),
               host_result_bytes=sum(a.nbytes for a in (res.times, res.escaped, res.steps,
                                                         res.status)),
               device_peak_bytes=device_peak())
    n_steps = max(1, int(round(row["mean_steps"])))
    if bare:
        scan = tp.make_bare_scan(spec, n, n_steps)
        tb, _ = timed(lambda: jax.block_until_ready(scan(key)))
        row["bare_steps_per_s"] = n * n_steps / tb
        row["ratio_bare"] = row["steps_per_s"] / row["bare_steps_per_s"]
    if diffrax:
        go = tp.make_diffrax(spec, n)
        td, useful = timed(lambda: go(key))
        row["diffrax_steps_per_s"] = useful / td
        row["ratio_diffrax"] = row["steps_per_s"] / row["diffrax_steps_per_s"]
    return row


def show(row, label):
    extra = ""
    if "ratio_bare" in row:
        extra += f"  {row['ratio_bare']:.2f}x bare"
    if "ratio_diffrax" in row:
        extra += f"  {row['ratio_diffrax']:.1f}x diffrax"
    print(f"{label:>16s}: {row['steps_per_s']:9.3e} steps/s  util {row['utilization']:.3f}  "
          f"program {row['program_bytes'] / 2**20:8.3f} MiB  host results "
          f"{row['host_result_bytes'] / 2**20:8.3f} MiB{extra}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small grids (a smoke test)")
    ap.add_argument("--max-paths", type=int, default=10**6)
    ap.add_argument("--diffrax-max-paths", type=int, default=1000)
    # on a GPU the defaults are figures/scaling_gpu.json and figures/scaling_gpu.png
    gpu = jax.default_backend() == "gpu"
    ap.add_argument("--json", default=str(FIG / ("scaling_gpu.json" if gpu else "scaling.json")))
    ap.add_argument("--png", default=str(FIG / ("scaling_gpu.png" if gpu else "scaling.png")))
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON")
    args = ap.parse_args(argv)
    if args.plot_only:
        with open(args.json) as f:
            return plot(json.load(f), args.png)
    dev = jax.local_devices()[0]
    device = (f"{dev.platform} ({dev.device_kind}), {len(jax.local_devices())} local "
              f"device(s), {os.cpu_count()} cpus, {platform.machine()}, jax {jax.__version__}")
    print(device)
    key = jax.random.key(1)
    out = dict(device=device, series={})

    ns = [10**k for k in range(2, 7) if 10**k <= args.max_paths]
    if args.quick:
        ns = ns[:3]
    print("\nn_paths (1-D double well, ΔU/T = 2):")
    rows = []
    for n in ns:
        rows.append(point(tp.double_well(temp=0.5, t_max=1e3), n, key,
                          diffrax=n <= args.diffrax_max_paths))
        show(rows[-1], f"n={n}")
    out["series"]["n_paths"] = rows

    print("\ndimension (Styblinski–Tang, SGD, Hessian noise, 1 000 paths, t_max = 100):")
    rows = []
    for d in ([1, 10] if args.quick else [1, 10, 100]):
        row = point(tp.styblinski(dim=d, t_max=100.0), 200 if args.quick else 1000, key,
                    diffrax=not args.quick and d == 10)
        row["dim"] = d
        rows.append(row)
        show(row, f"d={d}")
    out["series"]["dim"] = rows

    print("\nt_max (1-D double well, ΔU/T = 4, 1 000 paths):")
    rows = []
    for t_max in ([10.0, 100.0] if args.quick else [10.0, 100.0, 1e3, 1e4]):
        row = point(tp.double_well(t_max=t_max), 1000, key, bare=not args.quick)
        row["t_max"] = t_max
        rows.append(row)
        show(row, f"t_max={t_max:g}")
    out["series"]["t_max"] = rows

    # How memory grows with n_paths once the pool width is at its cap (the last points):
    # bytes per extra path.
    rn = [r for r in out["series"]["n_paths"]
          if r["widths"][0] == out["series"]["n_paths"][-1]["widths"][0]]
    if len(rn) > 1:
        dn = rn[-1]["n_paths"] - rn[0]["n_paths"]
        out["program_bytes_per_path"] = (rn[-1]["program_bytes"] - rn[0]["program_bytes"]) / dn
        out["host_bytes_per_path"] = (rn[-1]["host_result_bytes"]
                                      - rn[0]["host_result_bytes"]) / dn
    rt = out["series"]["t_max"]
    out["program_bytes_t_max"] = [r["program_bytes"] for r in rt]
    print(f"\nengine program memory: {out.get('program_bytes_per_path', 0):.2f} bytes per "
          f"path (results: int32 steps + int8 status = 5) ; vs t_max: "
          f"{sorted(set(out['program_bytes_t_max']))} bytes")
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    plot(out, args.png)
    print(f"wrote {args.json}, {args.png}")


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(13, 7.5))
    s = out["series"]
    for col, (name, xkey, xlabel) in enumerate((("n_paths", "n_paths", "n_paths"),
                                                 ("dim", "dim", "dimension d"),
                                                 ("t_max", "t_max", "t_max (SDE time)"))):
        rows = s[name]
        x = [r[xkey] for r in rows]
        a = ax[0, col]
        a.loglog(x, [r["steps_per_s"] for r in rows], "o-", label="sd.escape")
        if any("bare_steps_per_s" in r for r in rows):
            xb = [r[xkey] for r in rows if "bare_steps_per_s" in r]
            a.loglog(xb, [r["bare_steps_per_s"] for r in rows if "bare_steps_per_s" in r],
                     "s--", label="bare scan (limit)")
        if any("diffrax_steps_per_s" in r for r in rows):
            xd = [r[xkey] for r in rows if "diffrax_steps_per_s" in r]
            a.loglog(xd, [r["diffrax_steps_per_s"] for r in rows
                          if "diffrax_steps_per_s" in r], "^:", label="diffrax")
        a.set_xlabel(xlabel)
        a.set_ylabel("useful path-steps / s")
        a2 = a.twinx()
        a2.semilogx(x, [r["utilization"] for r in rows], "k.:", alpha=0.5)
        a2.set_ylim(0, 1.05)
        a2.set_ylabel("lane utilization (dotted)")
        a.legend(fontsize=8, loc="best")
        b = ax[1, col]
        b.loglog(x, [r["program_bytes"] for r in rows], "o-", label="engine program (XLA)")
        b.loglog(x, [r["host_result_bytes"] for r in rows], "s--", label="host result arrays")
        if any(r.get("device_peak_bytes") for r in rows):
            b.loglog(x, [r["device_peak_bytes"] for r in rows], "^:", label="device peak")
        if name == "n_paths":  # same pool width from here on: only the results grow
            cap = [r for r in rows if r["widths"][0] == rows[-1]["widths"][0]]
            xs = np.geomspace(cap[0]["n_paths"], cap[-1]["n_paths"], 20)
            b.loglog(xs, cap[-1]["program_bytes"] + 5 * (xs - xs[-1]), "k:", alpha=0.6,
                     label="5 bytes per path")
        b.set_xlabel(xlabel)
        b.set_ylabel("bytes")
        b.legend(fontsize=8)
    fig.suptitle(f"sd.escape scaling — {out['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
