"""Throughput of sd.escape vs diffrax, a vectorized NumPy loop and bare fused lax.scans.

Two problems, every contender in this one process (compare ratios within one run; the
machine may be shared):

* ``dw``: overdamped Langevin in the 1-D double well U = ΔU(x² − 1)², ΔU = 1, T = 0.25,
  dt = 0.01, start at the left minimum, exit at the saddle (Brownian bridge on).
* ``st``: Gaussian SGD diffusion with Hessian-shaped noise C = max(|H|, 4)/B on the 10-D
  Styblinski–Tang landscape (data_std = 1), lr = 1, B = 2, dt = 0.002, from the local
  minimum, exit when any coordinate crosses its saddle (box exit, bridge on).

Metric: *useful path-steps per second* = (sum over paths of the steps each path is alive)
/ wall time, compile excluded. Every contender is compiled and run once, then all are
timed in ``--repeats`` interleaved rounds (each round runs each once, in a rotated order;
best time per contender; the same key every round), so that a load that comes and goes
on this shared machine hits them alike. The bare scans step the same model with
``model.step`` and no exit logic at all (every lane-step counts):

* "bulk noise, 100-step blocks": ``jax.random.normal(k, (100, n, d))`` per block of 100
  steps, an inner scan over the block (the limit as issue 18 wrote it);
* "bulk, lanes minor": the same draw as ``(100, d, n)``, vmapped over the last axis, so a
  step's arithmetic runs along the lanes (in 10-D 4× faster than ``(100, n, d)``);
* "... cache-sized blocks": blocks of at most 2¹⁶ numbers (at 10⁵ paths a
  ``(100, 10⁵)`` draw does not stay in cache);
* "... engine's lane width": the paths in groups of the engine's pool width, one after
  the other (``lax.map``);
* "same noise": the engine's normals (both halves of each threefry hash), drawn per step;
* "jax.random.normal": one ``jax.random.normal`` call per step.

**The limit** of a case is the fastest of these in the run (a limit is the best baseline
one can write, not the convenient one). "bridge off" is sd.escape without the
Brownian-bridge exit test (grid monitoring only; biased exit times, shown for what the
bridge costs). Lane utilization = useful ÷ executed lane-steps. Progress overhead: the
same run with and without the tqdm bar.

    python benchmarks/throughput.py [--paths 2000 100000] [--repeats 5] [--json out.json]
    python benchmarks/throughput.py --chunks | --kernels | --constants | --lanes W ...
        | --unroll U ... | --layout D ...   (one diagnostic each: time per jitted chunk
        of the 1-D run; kernels per step of its page loop and of the bare scan, from the
        optimized HLO, and what one more carried array costs; the main pool with the
        model, loss and exit as arguments vs compile-time constants; pool widths;
        page-loop unrolling; page layout by dimension)

At 10⁵ paths diffrax and NumPy run 2 000 of them (their path-steps/s does not grow with
more paths on this CPU; minutes per repeat otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd
from sdesim import engine

BARRIER, TEMP, DT = 1.0, 0.25, 0.01


def double_well(temp=TEMP, t_max=1e5, dt=DT):
    dw = sd.landscapes.DoubleWell(barrier=BARRIER)
    th0, ex = dw.basin("left")
    return dict(name="1-D double well, Langevin", model=sd.models.Langevin(temp), loss=dw,
                theta0=th0, exit=ex, dt=dt, t_max=t_max)


def styblinski(dim=10, t_max=1e3, dt=0.002, lr=1.0, batch=2.0, floor=4.0):
    st = sd.landscapes.StyblinskiTang(dim, 1.0, 1.0)
    th0, ex = st.basin("local")
    model = sd.models.SGD(lr, sd.noise.hessian(batch, floor=floor))
    return dict(name=f"{dim}-D Styblinski–Tang, SGD, Hessian noise", model=model, loss=st,
                theta0=th0, exit=ex, dt=dt, t_max=t_max)


def run_sdesim(spec, n, key, **kw):
    kw.setdefault("progress", False)
    return sd.escape(spec["model"], spec["loss"], spec["theta0"], spec["exit"], n_paths=n,
                     dt=spec["dt"], t_max=spec["t_max"], key=key, **kw)


BLOCK = 100  # steps per bulk draw of the bulk-noise bare scan
CACHE_NUMBERS = 1 << 16  # a cache-sized bulk draw: 2**16 numbers (256 KB of float32)


def cache_block(lanes, d):
    """Steps per bulk draw that keep one draw within ``CACHE_NUMBERS`` (1 to 100)."""
    return int(min(BLOCK, max(1, CACHE_NUMBERS // max(1, lanes * d))))


def make_bare_scan(spec, n, n_steps, noise="engine", block=BLOCK, group=None,
                   lanes_minor=False):
    """n paths, n_steps steps of model.step, no exits: the limit. ``noise``: 'bulk' (the
    limit a JAX user would write: ``jax.random.normal(k, (block, n, d))`` per block of
    ``block`` steps, an inner scan over the block), 'engine' (normals from both halves of
    each threefry hash, as sd.escape) or 'jax' (one jax.random.normal call per step).
    ``group`` (bulk only): the paths run as ceil(n/group) groups of ``group`` lanes one
    after the other (``lax.map``), as the engine's pool does; every lane-step counts.
    ``lanes_minor`` (bulk only): draw ``(block, d, n)`` and vmap over the last axis, so
    that a step's arithmetic runs along the lanes (4× faster in 10-D on this CPU: the
    engine's noise has that layout; ``(block, n, d)`` vectorizes over d = 10 only)."""
    model, loss = spec["model"], spec["loss"]
    th0 = jnp.asarray(spec["theta0"], jnp.result_type(float))
    d = th0.shape[0]
    dt = jnp.asarray(spec["dt"], th0.dtype)

    if noise == "bulk":
        n_blocks = max(1, -(-n_steps // block))
        lanes = n if group is None else group

        def run_lanes(key):
            x0 = jax.vmap(lambda _: model.init(th0))(jnp.arange(lanes))

            def one_block(x, b):
                shape = (block, d, lanes) if lanes_minor else (block, lanes, d)
                z = jax.random.normal(jax.random.fold_in(key, b), shape, th0.dtype)

                def step(x, jz):
                    j, zj = jz
                    t = (b * block + j).astype(th0.dtype) * dt
                    return jax.vmap(lambda s, zi: model.step(s, t, dt, loss, zi)[0],
                                    (0, 1 if lanes_minor else 0))(x, zj), None

                x, _ = jax.lax.scan(step, x, (jnp.arange(block), z))
                return x, None

            x, _ = jax.lax.scan(one_block, x0, jnp.arange(n_blocks))
            return x

        if group is None:
            return jax.jit(run_lanes)
        n_groups = -(-n // group)
        return jax.jit(lambda key: jax.lax.map(
            lambda g: run_lanes(jax.random.fold_in(key, g)), jnp.arange(n_groups)))

    @jax.jit
    def run(key):
        x0 = jax.vmap(lambda _: model.init(th0))(jnp.arange(n))

        def body(x, k):
            kk = jax.random.fold_in(key, k)
            if noise == "engine":
                z = engine._normal_from_bits(engine._words(kk, n * d, th0.dtype), th0.dtype)
                z = z.reshape(n, d)
            else:
                z = jax.random.normal(kk, (n, d), th0.dtype)
            t = k.astype(th0.dtype) * dt
            return jax.vmap(lambda s, zi: model.step(s, t, dt, loss, zi)[0])(x, z), None

        x, _ = jax.lax.scan(body, x0, jnp.arange(n_steps))
        return x

    return run


def make_diffrax(spec, n):
    """diffrax.diffeqsolve (Euler–Maruyama, Event at the exit) vmapped over n paths."""
    import diffrax

    model, loss, ex = spec["model"], spec["loss"], spec["exit"]
    drift, diffusion = model.vector_field(loss)
    y0 = jnp.asarray(spec["theta0"], jnp.result_type(float))
    d = y0.shape[0]
    cond = lambda t, y, args, **kw: ex.outside(y)

    @jax.jit
    @jax.vmap
    def solve(k):
        bm = diffrax.UnsafeBrownianPath(shape=(d,), key=k)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, spec["t_max"], spec["dt"], y0,
                                  event=diffrax.Event(cond), max_steps=None,
                                  adjoint=diffrax.ForwardMode(),
                                  saveat=diffrax.SaveAt(t1=True))
        return sol.ts[-1], sol.stats["num_steps"]

    def go(key):
        t, steps = solve(jax.random.split(key, n))
        jax.block_until_ready(t)
        return int(np.sum(steps))

    return go


def grad_u(x):
    return 4 * BARRIER * x * (x**2 - 1)


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


def best_of(fn, repeats):
    """(best seconds, last output) of ``fn(i)`` over ``repeats`` calls."""
    best, out = np.inf, None
    for i in range(repeats):
        t0 = time.perf_counter()
        out = fn(i)
        best = min(best, time.perf_counter() - t0)
    return best, out


BARE = ("bare scan (bulk noise, 100-step blocks)", "bare scan (bulk, lanes minor)",
        "bare scan (bulk, lanes minor, cache-sized blocks)",
        "bare scan (bulk, lanes minor, engine's lane width)", "bare scan (same noise)",
        "bare scan (jax.random.normal)")


def compare(spec, n, repeats, diffrax=True, numpy_baseline=False, diffrax_paths=2000):
    """All contenders on one problem, timed in interleaved rounds (each round runs every
    contender once, in a rotated order; best time per contender): a load that comes and
    goes on this shared machine then hits them all alike. Returns rows {name:
    dict(seconds, useful_steps, ...)} and the name of the limit, the fastest bare scan.
    diffrax and NumPy run at most ``diffrax_paths`` paths (at 10⁵ paths diffrax would take
    minutes per repeat; their path-steps/s does not grow with more) and in a third of the
    rounds."""
    key = jax.random.key(1)
    res = run_sdesim(spec, n, key)  # compile; every round reruns the same paths
    n_steps = max(1, int(round(res.useful_steps / n)))
    d = int(np.shape(spec["theta0"])[0])
    width = engine.default_lanes(n, d)
    contenders, info = {}, {}

    def escape_row(name, **kw):
        r = run_sdesim(spec, n, key, **kw)
        info[name] = dict(useful_steps=r.useful_steps,
                          utilization=r.useful_steps / r.info.executed_steps)
        contenders[name] = lambda: run_sdesim(spec, n, key, **kw)

    escape_row("sdesim.escape")
    # the same run without the Brownian-bridge test: what the bridge costs
    escape_row("sdesim.escape, bridge off", bridge=False)
    bare = ((BARE[0], dict(noise="bulk")),
            (BARE[1], dict(noise="bulk", lanes_minor=True)),
            (BARE[2], dict(noise="bulk", lanes_minor=True, block=cache_block(n, d))),
            (BARE[3], dict(noise="bulk", lanes_minor=True, block=cache_block(width, d),
                           group=width)),
            (BARE[4], dict(noise="engine")), (BARE[5], dict(noise="jax")))
    for name, kw in bare:
        scan = make_bare_scan(spec, n, n_steps, **kw)
        jax.block_until_ready(scan(key))
        if kw["noise"] == "bulk":
            blk, lanes = kw.get("block", BLOCK), kw.get("group") or n
            steps = -(-n // lanes) * lanes * max(1, -(-n_steps // blk)) * blk
            info[name] = dict(useful_steps=steps, block=blk, lanes=lanes)
        else:
            info[name] = dict(useful_steps=n * n_steps)
        contenders[name] = lambda f=scan: jax.block_until_ready(f(key))
    sparse = []
    if diffrax:
        go = make_diffrax(spec, min(n, diffrax_paths))
        info["diffrax (vmap, Euler, Event)"] = dict(useful_steps=go(key))
        contenders["diffrax (vmap, Euler, Event)"] = lambda: go(key)
        sparse.append("diffrax (vmap, Euler, Event)")
    if numpy_baseline:
        info["numpy (vectorized, compacting)"] = dict(
            useful_steps=run_numpy(min(n, diffrax_paths), 1))
        contenders["numpy (vectorized, compacting)"] = lambda: run_numpy(
            min(n, diffrax_paths), 1)
        sparse.append("numpy (vectorized, compacting)")
    best = dict.fromkeys(contenders, np.inf)
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name in sparse and r >= max(1, repeats // 3):
                continue
            t0 = time.perf_counter()
            contenders[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
    rows = {name: dict(seconds=best[name], **info[name]) for name in names}
    ref = rows["sdesim.escape"]["useful_steps"] / rows["sdesim.escape"]["seconds"]
    for r in rows.values():
        r["steps_per_s"] = r["useful_steps"] / r["seconds"]
        r["sdesim_ratio"] = ref / r["steps_per_s"]
    limit = max(BARE, key=lambda k: rows[k]["steps_per_s"])
    return rows, limit


def progress_overhead(spec, n, repeats):
    """The same run with the tqdm bar (written to a buffer) and without, in ``repeats``
    interleaved pairs (order alternating). Returns (median on/off time ratio − 1, best
    seconds off, best seconds on, host round trips per run)."""
    run_sdesim(spec, n, jax.random.key(0))
    off, on, ratios = [], [], []
    for i in range(repeats):
        pair = {}
        for flag in ((False, True) if i % 2 == 0 else (True, False)):
            with contextlib.redirect_stderr(io.StringIO()):
                t0 = time.perf_counter()
                res = run_sdesim(spec, n, jax.random.key(1 + i), progress=flag)
                pair[flag] = time.perf_counter() - t0
        off.append(pair[False])
        on.append(pair[True])
        ratios.append(pair[True] / pair[False])
    return float(np.median(ratios)) - 1, min(off), min(on), res.info.chunks


def print_rows(title, rows):
    print(f"\n{title}")
    print(f"{'method':52s} {'useful steps':>13s} {'seconds':>8s} {'steps/s':>10s} "
          f"{'sdesim / this':>13s}")
    for name, r in rows.items():
        print(f"{name:52s} {r['useful_steps']:13d} {r['seconds']:8.3f} "
              f"{r['steps_per_s']:10.3e} {r['sdesim_ratio']:13.2f}")
    print(f"sdesim lane utilization (useful / executed steps): "
          f"{rows['sdesim.escape']['utilization']:.3f}")


def lanes_sweep(spec, n, widths, repeats):
    """sd.escape at several pool widths, bridge on and off, against the same-noise bare
    scan (no exit logic): is the gap core use (a wider pool) or the bridge's work?"""
    res = run_sdesim(spec, n, jax.random.key(0))
    n_steps = max(1, int(round(res.useful_steps / n)))
    scan = make_bare_scan(spec, n, n_steps, "engine")
    jax.block_until_ready(scan(jax.random.key(0)))
    t, _ = best_of(lambda i: jax.block_until_ready(scan(jax.random.key(i))), repeats)
    bare = n * n_steps / t
    rows = []
    for w in widths:
        for bridge in (True, False):
            run_sdesim(spec, n, jax.random.key(0), lanes=w, bridge=bridge)
            t, r = best_of(lambda i, w=w, b=bridge: run_sdesim(
                spec, n, jax.random.key(1 + i), lanes=w, bridge=b), repeats)
            rows.append(dict(lanes=w, bridge=bridge, steps_per_s=r.useful_steps / t,
                             ratio_to_bare_same_noise=r.useful_steps / t / bare,
                             utilization=r.useful_steps / r.info.executed_steps))
            print(f"lanes {w:5d} bridge {'on ' if bridge else 'off'}: "
                  f"{rows[-1]['steps_per_s']:.3g} steps/s = "
                  f"{rows[-1]['ratio_to_bare_same_noise']:.2f}x bare scan (same noise), "
                  f"utilization {rows[-1]['utilization']:.2f}")
    return rows


def chunk_breakdown(spec, n, repeats):
    """Where one sd.escape call's time goes: each jitted chunk (width, pages, ms, ns per
    executed lane-step) and the rest of the call (input checks, pool, results), best of
    ``repeats`` calls."""
    log, advance = [], engine._advance

    def timed(params, pool, max_pages, **kw):
        t0 = time.perf_counter()
        out = advance(params, pool, max_pages, **kw)
        pages = int(np.asarray(out[1])[0, 0])
        log.append((pool.path.shape[1], pages, time.perf_counter() - t0))
        return out

    engine._advance = timed
    try:
        run_sdesim(spec, n, jax.random.key(0))
        best = None
        for i in range(repeats):
            log.clear()
            t0 = time.perf_counter()
            run_sdesim(spec, n, jax.random.key(1 + i))
            total = time.perf_counter() - t0
            if best is None or total < best[0]:
                best = (total, list(log))
    finally:
        engine._advance = advance
    total, chunks = best
    print(f"{spec['name']}, {n} paths: {1e3 * total:.1f} ms per call; outside the jitted "
          f"chunks {1e3 * (total - sum(c[2] for c in chunks)):.1f} ms")
    for w, pages, sec in chunks:
        per = sec / (w * pages * engine.NOISE_PAGE) * 1e9 if pages else float("nan")
        print(f"  width {w:5d}  pages {pages:5d}  {1e3 * sec:7.2f} ms  {per:6.2f} ns per "
              f"executed lane-step")
    return dict(total=total, chunks=chunks)


def _computations(hlo):
    """{name: instruction lines} of an optimized HLO module's text."""
    comps, name = {}, None
    for line in hlo.splitlines():
        if line and not line.startswith(" ") and "{" in line and not line.startswith("HloModule"):
            name = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
            comps[name] = []
        elif name and line.startswith("  "):
            comps[name].append(line.strip())
    return comps


_QUIET = ("parameter(", "get-tuple-element(", "constant(", "tuple(", "bitcast(")


def _kernels_per_step(hlo, trip=None):
    """The kernels one iteration of the innermost ``while`` with trip count ``trip``
    (else the largest) runs: its body's and its condition's instructions other than
    parameters, tuple plumbing, constants and bitcasts (each one a kernel launch of XLA
    CPU's thunk runtime: fusions, copies, scalar ops)."""
    import re

    comps = _computations(hlo)
    loops = []
    for lines in comps.values():
        for ln in lines:
            m = re.search(r"while\(.*condition=%?([\w.\-]+), body=%?([\w.\-]+)", ln)
            if m:
                n = re.search(r'"known_trip_count":\{"n":"(\d+)"', ln)
                loops.append((int(n.group(1)) if n else -1, m.group(1), m.group(2)))
    inner = [lp for lp in loops if not any("while(" in ln for ln in comps[lp[2]])]
    pick = [lp for lp in inner if lp[0] == trip] if trip else inner
    n, cond, body = max(pick or inner)
    ops = []
    for part, label in ((body, "body"), (cond, "condition")):
        for ln in comps[part]:
            rhs = ln.split(" = ", 1)[-1]
            if ln.startswith("ROOT %tuple") or any(q in rhs.split(" ", 1)[-1][:40] for q in _QUIET):
                continue
            m = re.match(r"(ROOT )?%([\w.\-]+) = (\S+) (\w[\w\-]*)\(", ln)
            if m:
                ops.append((label, m.group(4), m.group(2), m.group(3)))
    return n, ops


def _carry_cost(widths=(31, 500), repeats=5):
    """ns per step of a 64-step lax.scan over ``w`` lanes whose body updates one carried
    array, vs three (the same arithmetic plus a survival and a first-exit carry): what
    one more kernel per step costs on this CPU."""
    out = {}
    for w in widths:
        x, z = jnp.full((w,), -1.0), jnp.full((64, w), 0.01)

        def one(x, z):
            return jax.lax.scan(lambda x, zj: (x - 0.01 * x * (x * x - 1) + zj, None), x, z)[0]

        def three(x, z):
            def body(c, zj):
                x, s, m = c
                y = x - 0.01 * x * (x * x - 1) + zj
                s = s * (1 - jnp.exp(-2 * jnp.maximum(-x, 0) * jnp.maximum(-y, 0)))
                return (y, s, jnp.where((m == 64) & (y > 0), 3, m)), None
            return jax.lax.scan(body, (x, jnp.ones_like(x), jnp.full(x.shape, 64)), z)[0]

        for name, f in (("one carry", jax.jit(one)), ("three carries", jax.jit(three))):
            jax.block_until_ready(f(x, z))
            t, _ = best_of(lambda i, f=f, x=x, z=z: [jax.block_until_ready(f(x, z))
                                                     for _ in range(200)],
                           repeats)
            out[(w, name)] = t / 200 / 64 * 1e9
    return out


def kernel_report(spec, n, repeats):
    """Kernels per step of the engine's page loop (its compiled program for the first
    chunk) and of the same-noise bare scan, from the optimized HLO, and what one more
    kernel per step costs (``_carry_cost``)."""
    grab, advance = {}, engine._advance

    def spy(params, pool, max_pages, **kw):
        if "hlo" not in grab:
            grab["hlo"] = advance.lower(params, pool, max_pages, **kw).compile() \
                .compiled.as_text()
        return advance(params, pool, max_pages, **kw)

    engine._advance = spy
    try:
        res = run_sdesim(spec, n, jax.random.key(0))
    finally:
        engine._advance = advance
    scan = make_bare_scan(spec, n, max(1, int(round(res.useful_steps / n))), "engine")
    bare = scan.lower(jax.random.key(0)).compile().as_text()
    for label, hlo, trip in (("sd.escape page loop", grab["hlo"], engine.NOISE_PAGE),
                             ("bare scan (same noise)", bare, None)):
        _, ops = _kernels_per_step(hlo, trip)
        print(f"{label}: {len(ops)} kernels per step")
        for part, op, name, shape in ops:
            print(f"  {part:9s} {op:10s} {name:28s} {shape}")
    cost = _carry_cost(repeats=repeats)
    for (w, name), ns in cost.items():
        print(f"64-step scan, {w:4d} lanes, {name:13s}: {ns:6.0f} ns per step")
    return dict(cost={f"{w} lanes, {name}": ns for (w, name), ns in cost.items()})


def unroll_sweep(n, values, repeats):
    """sd.escape with the page loop unrolled ``u`` steps per iteration (the engine picks
    ``engine._page_unroll(platform)``; results do not depend on it), both problems,
    compile time included in its own column."""
    rows = []
    default = engine._page_unroll
    try:
        for key, spec in (("dw", double_well()), ("st", styblinski())):
            for u in values:
                engine._page_unroll = lambda platform, u=u: u
                t0 = time.perf_counter()
                run_sdesim(spec, n, jax.random.key(0))
                first = time.perf_counter() - t0
                t, r = best_of(lambda i, s=spec: run_sdesim(s, n, jax.random.key(1 + i)), repeats)
                rows.append(dict(case=key, unroll=u, steps_per_s=r.useful_steps / t,
                                 first_call_seconds=first))
                print(f"{key} unroll {u:3d}: {r.useful_steps / t:.3g} steps/s "
                      f"(best {t:.3f} s; first call with compile {first:.1f} s)", flush=True)
    finally:
        engine._page_unroll = default
    return rows


def layout_sweep(dims, repeats, n=2000):
    """sd.escape with the page's lanes first vs last in the state (``engine._lane_axis``;
    results do not depend on it) on ``styblinski(dim=d)``: old ÷ new wall time per d. The
    jit cache does not see a patched ``_lane_axis``, so each setting is timed in its own
    block after ``jax.clear_caches()`` and a warm-up; two blocks per setting, alternating."""
    rows, default = [], engine._lane_axis
    try:
        for d in dims:
            spec = styblinski(dim=d, t_max=100.0 if d > 20 else 1e3)
            best = {}
            for _ in range(2):
                for name, fn in (("first", lambda state: 0), ("last", lambda state: -1)):
                    engine._lane_axis = fn
                    jax.clear_caches()
                    run_sdesim(spec, n, jax.random.key(1))
                    t, _ = best_of(lambda i, s=spec: run_sdesim(s, n, jax.random.key(1)),
                                   repeats)
                    best[name] = min(best.get(name, np.inf), t)
            engine._lane_axis = default
            pick = "last" if default(jax.vmap(spec["model"].init)(
                jnp.zeros((2, d)))) == -1 else "first"
            rows.append(dict(d=d, first=best["first"], last=best["last"], default=pick))
            print(f"d = {d:3d}: lanes first {best['first']:.3f} s, last {best['last']:.3f} s,"
                  f" first ÷ last {best['first'] / best['last']:.2f}; the engine uses "
                  f"{pick}", flush=True)
    finally:
        engine._lane_axis = default
    return rows


def constants_report(spec, n, repeats, pages=32):
    """What it costs that the engine takes the model, loss and exit as *arguments* of its
    compiled chunk (one program for every temperature of a sweep) rather than as
    compile-time constants: the main pool's ``_advance_one`` (``pages`` pages, no exits
    left to run out of paths) timed with each of them traced in turn, all three, and none;
    and the page loop alone (no ``_finish_page``), constants. ns per executed lane-step,
    best of ``repeats`` interleaved rounds."""
    import equinox as eqx

    model, loss, exit = spec["model"], spec["loss"], spec["exit"]
    dtype = jnp.result_type(float)
    th0 = jnp.asarray(spec["theta0"], dtype)
    dt, key = jnp.asarray(spec["dt"], dtype), jax.random.key(1)
    width = engine.default_lanes(n, th0.shape[0])
    n_max = jnp.asarray(engine.n_steps(spec["t_max"], spec["dt"]), jnp.int32)
    pool = engine._initial_pool(model.init(th0), [n], [0], n, width)
    pool = jax.tree_util.tree_map(lambda x: jnp.asarray(x[0]), pool)
    objs = (model, loss, exit)

    def variant(traced):
        @eqx.filter_jit
        def run(dyn, pool):
            m, lo, ex = (dyn[i] if traced[i] else objs[i] for i in range(3))
            params = (m, lo, ex, th0, dt, n_max, key)
            return engine._advance_one(params, pool, jnp.int32(pages), th0.shape[0], True,
                                       0, 1)[0]
        return lambda: run(objs, pool)

    @jax.jit
    def page_only(pool):
        def body(_, pool):
            s, mark = engine._run_page(model, loss, exit, key, pool, dt, th0.shape[0], True, 1)
            return pool._replace(state=s, page=pool.page + 1 + 0 * mark)
        return jax.lax.fori_loop(0, pages, body, pool)

    fns = {"all traced (as sd.escape)": variant((1, 1, 1)), "model traced": variant((1, 0, 0)),
           "loss traced": variant((0, 1, 0)), "exit traced": variant((0, 0, 1)),
           "all constants": variant((0, 0, 0)),
           "page loop alone, constants": lambda: page_only(pool)}
    best = dict.fromkeys(fns, np.inf)
    for f in fns.values():
        jax.block_until_ready(f())
    for _r in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"{spec['name']}: {width} lanes, {pages} pages")
    rows = {}
    for name, t in best.items():
        rows[name] = t / (pages * engine.NOISE_PAGE * width) * 1e9
        print(f"  {name:28s} {rows[name]:6.2f} ns per executed lane-step")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, nargs="+", default=[2000],
                    help="path counts to measure (each a full set of rows), e.g. 2000 100000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--progress-paths", type=int, default=20000,
                    help="paths of the progress on/off run (long enough for several chunks)")
    ap.add_argument("--progress-pairs", type=int, default=6)
    ap.add_argument("--skip-diffrax", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--lanes", type=int, nargs="*", default=None,
                    help="only the 1-D pool-width sweep at these widths (bridge on/off)")
    ap.add_argument("--unroll", type=int, nargs="*", default=None,
                    help="only the page-loop unroll sweep at these values (both problems)")
    ap.add_argument("--layout", type=int, nargs="*", default=None,
                    help="only the lanes-first vs lanes-last page layout at these d "
                    "(Styblinski-Tang, SGD, Hessian noise, box exit)")
    ap.add_argument("--chunks", action="store_true",
                    help="only the per-chunk time breakdown of the 1-D run")
    ap.add_argument("--kernels", action="store_true",
                    help="only the kernels per step of the 1-D page loop and bare scan "
                    "(optimized HLO) and what one more kernel per step costs")
    ap.add_argument("--constants", action="store_true",
                    help="only the 1-D main pool's cost with the model, loss and exit as "
                    "arguments (as sd.escape) against compile-time constants")
    args = ap.parse_args(argv)
    n = args.paths[0]
    if args.chunks:
        return chunk_breakdown(double_well(), n, args.repeats)
    if args.kernels:
        return kernel_report(double_well(), n, args.repeats)
    if args.constants:
        return constants_report(double_well(), n, args.repeats)
    if args.unroll:
        return unroll_sweep(n, args.unroll, args.repeats)
    if args.layout:
        return layout_sweep(args.layout, args.repeats)
    if args.lanes:
        return lanes_sweep(double_well(), n, args.lanes, args.repeats)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), {len(jax.devices())} device(s), "
          f"{os.cpu_count()} cpus, {platform.machine()}; paths {args.paths}; "
          f"jax {jax.__version__}")
    out = dict(paths=args.paths, device=f"{dev.platform} {dev.device_kind}",
               cpus=os.cpu_count(), jax=jax.__version__, repeats=args.repeats, cases={})
    summary = []
    for n in args.paths:
        for key, spec, numpy_baseline in (("dw", double_well(), True),
                                          ("st", styblinski(), False)):
            rows, limit = compare(spec, n, args.repeats, diffrax=not args.skip_diffrax,
                                  numpy_baseline=numpy_baseline)
            print_rows(f"{spec['name']}, dt={spec['dt']}, {n} paths", rows)
            out["cases"][f"{key}_{n}"] = dict(name=spec["name"], dt=spec["dt"], paths=n,
                                             rows=rows, limit=limit,
                                             limit_ratio=rows[limit]["sdesim_ratio"])
            line = (f"{spec['name']}, {n} paths: sdesim = "
                    f"{rows[limit]['sdesim_ratio']:.2f}x the limit ({limit}); "
                    + ", ".join(f"{rows[k]['sdesim_ratio']:.2f}x {k[len('bare scan '):]}"
                                for k in BARE if k != limit))
            if "diffrax (vmap, Euler, Event)" in rows:
                line += f"; {rows['diffrax (vmap, Euler, Event)']['sdesim_ratio']:.1f}x diffrax"
            summary.append(line)
    if args.progress_pairs > 0:
        over, off, on, chunks = progress_overhead(double_well(), args.progress_paths,
                                                  args.progress_pairs)
        out["progress"] = dict(paths=args.progress_paths, pairs=args.progress_pairs,
                               median_overhead=over, best_seconds_off=off,
                               best_seconds_on=on, chunks=chunks)
        summary.append(f"progress bar overhead ({args.progress_paths} paths, {chunks} chunks,"
                       f" median of {args.progress_pairs} pairs): {100 * over:+.1f}% "
                       f"(best {off:.3f} s off, {on:.3f} s on)")
    print("\n" + "\n".join(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
