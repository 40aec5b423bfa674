"""Throughput of sd.escape vs diffrax, a vectorized NumPy loop and a bare fused lax.scan.

Problem: overdamped Langevin in the 1-D double well U = ΔU((x)² − 1)², ΔU = 1, T = 0.25,
dt = 0.01, start at the left minimum, exit at the saddle; 2 000 paths by default.
Metric: *useful path-steps per second* = (sum over paths of the steps each path is alive)
/ wall time, compile excluded (each contender is run once to warm up, then timed). The bare
scan has no exit logic: every one of its steps counts, it is the limit.

    python benchmarks/throughput.py [--paths 2000] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd

BARRIER, TEMP, DT = 1.0, 0.25, 0.01


def grad_u(x):
    return 4 * BARRIER * x * (x**2 - 1)


def run_sdesim(n, key):
    dw = sd.landscapes.DoubleWell(barrier=BARRIER)
    th0, ex = dw.basin("left")
    res = sd.escape(sd.models.Langevin(TEMP), dw, th0, ex, n_paths=n, dt=DT, t_max=1e5,
                    key=key, progress=False)
    return res.useful_steps, res


def run_diffrax(n, key):
    import diffrax

    def drift(t, y, args):
        return -grad_u(y)

    def diffusion(t, y, args):
        return jnp.sqrt(2 * TEMP) * jnp.eye(1)

    cond = lambda t, y, args, **kw: y[0] > 0.0

    @jax.jit
    @jax.vmap
    def solve(k):
        bm = diffrax.UnsafeBrownianPath(shape=(1,), key=k)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 1e5, DT, jnp.array([-1.0]),
                                  event=diffrax.Event(cond), max_steps=None,
                                  adjoint=diffrax.ForwardMode(),
                                  saveat=diffrax.SaveAt(t1=True))
        return sol.ts[-1], sol.stats["num_steps"]

    keys = jax.random.split(key, n)
    t, steps = solve(keys)
    jax.block_until_ready(t)
    return int(np.sum(steps)), solve, keys


def run_numpy(n, seed):
    rng = np.random.default_rng(seed)
    x = np.full(n, -1.0)
    alive = np.arange(n)
    useful = 0
    sig = math.sqrt(2 * TEMP * DT)
    while alive.size:
        xa = x[alive]
        xa = xa - grad_u(xa) * DT + sig * rng.standard_normal(alive.size)
        x[alive] = xa
        useful += alive.size
        alive = alive[xa <= 0.0]
    return useful


def make_scan(n, n_steps):
    @jax.jit
    def run(key):
        def body(x, k):
            z = jax.random.normal(jax.random.fold_in(key, k), x.shape)
            return x - grad_u(x) * DT + jnp.sqrt(2 * TEMP * DT) * z, None

        x, _ = jax.lax.scan(body, jnp.full((n,), -1.0), jnp.arange(n_steps))
        return x

    return run


def timed(fn, repeats):
    best = np.inf
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-diffrax", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    n, key = args.paths, jax.random.key(0)
    rows = {}

    # sd.escape (warm-up compiles; a new key each timed call, same shapes)
    run_sdesim(n, key)
    t, (useful, res) = timed(lambda: run_sdesim(n, jax.random.key(1)), args.repeats)
    rows["sdesim.escape"] = dict(seconds=t, useful_steps=useful,
                                 utilization=useful / res.info.executed_steps)
    mean_steps = useful / n

    # bare scan: the same number of path-steps as sd.escape's useful work
    n_steps = int(round(mean_steps))
    scan = make_scan(n, n_steps)
    jax.block_until_ready(scan(key))
    t, _ = timed(lambda: jax.block_until_ready(scan(jax.random.key(2))), args.repeats)
    rows["bare lax.scan (no exits)"] = dict(seconds=t, useful_steps=n * n_steps)

    if not args.skip_diffrax:
        _, solve, keys = run_diffrax(n, key)
        def go():
            t_, s_ = solve(keys)
            jax.block_until_ready(t_)
            return int(np.sum(s_))
        t, useful_d = timed(go, max(1, args.repeats - 2))
        rows["diffrax (vmap, Euler, Event)"] = dict(seconds=t, useful_steps=useful_d)

    t, useful_np = timed(lambda: run_numpy(n, 0), max(1, args.repeats - 2))
    rows["numpy (vectorized, compacting)"] = dict(seconds=t, useful_steps=useful_np)

    ref = rows["sdesim.escape"]
    ref_rate = ref["useful_steps"] / ref["seconds"]
    print(f"1-D double well, {n} paths, dt={DT}, T={TEMP}; device: "
          f"{jax.devices()[0].device_kind}, {os.cpu_count()} cpus, {platform.machine()}")
    print(f"{'method':34s} {'useful steps':>14s} {'seconds':>9s} {'steps/s':>12s} "
          f"{'sdesim / this':>14s}")
    for name, r in rows.items():
        rate = r["useful_steps"] / r["seconds"]
        r["steps_per_s"] = rate
        r["sdesim_ratio"] = ref_rate / rate
        print(f"{name:34s} {r['useful_steps']:14d} {r['seconds']:9.3f} {rate:12.3e} "
              f"{ref_rate / rate:14.2f}")
    print(f"sdesim lane utilization (useful / executed steps): {ref['utilization']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(paths=n, dt=DT, temperature=TEMP, rows=rows), f, indent=1)
    return rows


if __name__ == "__main__":
    main()
