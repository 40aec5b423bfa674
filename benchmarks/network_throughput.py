"""The discrete algorithms' escape on a network vs the loop a user would write by hand,
and the engine's memory as the network grows.

Problem: the MLP 64 → 32 tanh → 10 (2 410 parameters) on scikit-learn's 1 797 digits,
trained by SGD (lr 0.5, batch 32, 4 000 steps) to its minimum; the exit is the loss on a
fixed evaluation set (every 7th example) 0.1 above its value there, tested every
iteration; minibatches of 32 examples drawn with replacement, a fresh draw per path and
iteration. Cases: SGD lr 2 (the paths leave after ~35 iterations, spread out) and Adam
lr 1e-2 (few leave: nearly every path runs to the horizon), both at most 2 000
iterations as in `benchmarks/network_escape.py`.

* ``sd.escape_algorithm``: the engine (paths retire when they exit, the pool is refilled
  and compacted).
* the hand-written loop: what a JAX user writes — the parameter pytree and optax state
  stacked over the paths (``vmap`` of ``optimizer.init``), one ``lax.while_loop`` whose
  step draws each path's minibatch indices, takes ``vmap(grad)`` of the minibatch loss,
  ``vmap(optimizer.update)``, tests the exit for every path and records first exits; it
  stops when every path has exited or at the horizon, so every path runs until the
  slowest one is out.

Metric: useful path-steps/s = (sum over paths of the iterations until each one's exit,
or the horizon) / wall time, compile excluded (each runs once to warm up, then the best
of ``--repeats``, the two alternating).

Memory: the XLA-planned footprint (arguments + outputs − aliases + temporaries) of the
engine's largest compiled program, for MLPs of 2.4·10³ to 10⁵ parameters at a fixed pool
width (``--lanes``), and ``sd.engine.default_lanes`` at each size.

    python benchmarks/network_throughput.py [--paths 256] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sdesim as sd
from sdesim import engine
from sdesim import networks as nw

sys.path.insert(0, os.path.dirname(__file__))
from scaling import ProgramMemory  # noqa: E402

FIG = os.path.join(os.path.dirname(__file__), "..", "figures")
BATCH = 32


def hand_loop(optimizer, prob, eval_loss, level):
    """The loop a user writes (see the module doc): returns jitted
    ``run(params, n_paths, n_iters, key) -> first-exit iteration per path (-1: none)``."""
    data = jnp.asarray(prob.data)
    n = data.shape[0]

    def grad_one(p, k):
        rows = data[jax.random.randint(k, (BATCH,), 0, n)]
        return jax.grad(prob.loss)(p, rows)

    @jax.jit
    def run(params, n_iters, key, n_paths_like):
        n_paths = n_paths_like.shape[0]
        stack = jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (n_paths, *x.shape)), params)
        state = jax.vmap(optimizer.init)(stack)

        def cond(c):
            it, _, _, first, _ = c
            return (it < n_iters) & jnp.any(first < 0)

        def body(c):
            it, p, s, first, key = c
            key, sub = jax.random.split(key)
            g = jax.vmap(grad_one)(p, jax.random.split(sub, n_paths))
            upd, s = jax.vmap(optimizer.update)(g, s, p)
            p = optax.apply_updates(p, upd)
            out = jax.vmap(eval_loss)(p) > level
            first = jnp.where((first < 0) & out, it + 1, first)
            return it + 1, p, s, first, key

        init = (jnp.int32(0), stack, state, jnp.full((n_paths,), -1, jnp.int32), key)
        return jax.lax.while_loop(cond, body, init)[3]

    return run


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def throughput(prob, params, exit_, eval_loss, level, args):
    cases = {"SGD lr 2": (sd.optim.sgd(2.0), 2000), "Adam lr 1e-2": (sd.optim.adam(1e-2), 2000)}
    rows = {}
    for name, (opt, n_iters) in cases.items():
        def engine_run(iters=n_iters, opt=opt):
            r = sd.escape_algorithm(opt, prob.loss, params, exit_, data=prob.data,
                                    batch_size=BATCH, per_sample=prob.per_sample,
                                    n_iters=iters, n_paths=args.paths,
                                    key=jax.random.key(5), progress=False)
            jax.block_until_ready(r.times)
            return r

        hand = hand_loop(opt, prob, eval_loss, level)
        like = jnp.zeros((args.paths,))

        def hand_run(iters=n_iters, hand=hand, like=like):
            return np.asarray(hand(params, jnp.int32(iters), jax.random.key(5), like))

        engine_run(64)  # warm up: compile (n_iters is traced in both)
        hand_run(64)
        t_e = t_h = float("inf")
        for _ in range(args.repeats):  # alternating, best of each
            t, res = best_of(engine_run, 1)
            t_e = min(t_e, t)
            t, first = best_of(hand_run, 1)
            t_h = min(t_h, t)
        useful_e = int(res.useful_steps)
        it_h = np.where(first < 0, n_iters, first)
        useful_h = int(it_h.sum())
        executed_h = int(it_h.max()) * args.paths
        rows[name] = dict(
            n_iters=n_iters, paths=args.paths,
            engine=dict(seconds=t_e, useful_steps=useful_e, steps_per_s=useful_e / t_e,
                        escaped=int(np.sum(np.asarray(res.escaped))),
                        executed_steps=int(res.info.executed_steps)),
            hand=dict(seconds=t_h, useful_steps=useful_h, steps_per_s=useful_h / t_h,
                      escaped=int(np.sum(first >= 0)), executed_steps=executed_h))
        rows[name]["ratio"] = rows[name]["engine"]["steps_per_s"] / \
            rows[name]["hand"]["steps_per_s"]
        e, h = rows[name]["engine"], rows[name]["hand"]
        print(f"{name:13s} engine {e['steps_per_s']:9.4g} path-steps/s ({e['escaped']}/"
              f"{args.paths} out, {e['seconds']:.2f} s) | hand loop {h['steps_per_s']:9.4g} "
              f"({h['escaped']}/{args.paths} out, {h['seconds']:.2f} s, ran "
              f"{h['executed_steps'] / max(h['useful_steps'], 1):.2f}× the useful steps) | "
              f"engine ÷ hand {rows[name]['ratio']:.2f}", flush=True)
    return rows


def memory(args):
    """The engine's planned memory for MLPs of growing width at ``args.lanes`` lanes."""
    out = []
    x, y = nw.digits()
    for hidden in args.hidden:
        prob = nw.mlp_problem(x, y, hidden=(hidden,), key=jax.random.key(0))
        ev = prob.data[::7]
        exit_ = sd.exits.LevelSet(lambda q, ev=ev, prob=prob: prob.loss(q, ev), 1e9)
        d = prob.n_params
        with ProgramMemory() as mem:
            sd.escape_algorithm(sd.optim.adam(1e-3), prob.loss, prob.params, exit_,
                                data=prob.data, batch_size=BATCH, per_sample=prob.per_sample,
                                n_iters=engine.NOISE_PAGE, n_paths=args.lanes,
                                lanes=args.lanes, key=jax.random.key(0), progress=False)
        peak = mem.peak()
        lanes_default = engine.default_lanes(10**6, d=d, noise_dim=BATCH, state=3 * d)
        out.append(dict(hidden=hidden, d=d, lanes=args.lanes, program_bytes=peak,
                        bytes_per_lane_param=peak / (args.lanes * d),
                        default_lanes_1e6_paths=lanes_default))
        print(f"hidden {hidden:5d}: d = {d:7d}, {args.lanes} lanes (Adam), program "
              f"{peak / 2**20:8.1f} MiB = {peak / (args.lanes * d):6.1f} bytes per lane and "
              f"parameter; default pool width at 10⁶ paths: {lanes_default}", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--hidden", type=int, nargs="+", default=[32, 330, 1330])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", default=os.path.join(FIG, "network_throughput.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    prob = nw.digits_problem(hidden=(32,), key=jax.random.key(0))
    params = nw.train(prob, sd.optim.sgd(0.5), steps=4000, batch_size=BATCH,
                      key=jax.random.key(1))
    ev = prob.data[::7]

    def eval_loss(q):
        return prob.loss(q, ev)

    level = float(eval_loss(params)) + 0.1
    exit_ = sd.exits.LevelSet(eval_loss, level)
    out = dict(machine=f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{jax.default_backend()}", d=prob.n_params, n_train=int(prob.data.shape[0]),
               batch=BATCH, paths=args.paths, repeats=args.repeats,
               jax=jax.__version__, x64=bool(jax.config.jax_enable_x64))
    out["throughput"] = throughput(prob, params, exit_, eval_loss, level, args)
    if not args.skip_memory:
        out["memory"] = memory(args)
    out["seconds"] = time.perf_counter() - t0
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json} ({out['seconds']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
