"""Cost of the CLI's progress bar and of its resume blocks, on the default experiment.

Progress: the same run (the built-in default config: 10-D Styblinski–Tang, SGD with
minibatch noise, 4 000 paths in the default blocks), timed after a warm-up
(compilation excluded), alternating bar on / bar off; also the time spent inside the bar's
own calls (the engine calls it once per jitted chunk, ~0.5 s), which is the overhead
itself, free of the machine's noise.

Blocks: lane-steps the engine executed per useful path-step (deterministic, so free of
timing noise) for the run split into blocks of 16, 8 and 4 pool widths of 125 lanes,
relative to one call: the price of resume points (each block drains its own slow tail);
then the CLI's default rule (blocks of 1 000 here, each with its own default pool) against
one call, in lane-steps and in warm wall time.

    python benchmarks/progress_overhead.py [--repeats 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import jax

import sdesim as sd
from sdesim import cli


def timed(bar):
    """Wrap the bar's update/set_postfix to accumulate the seconds spent in them."""
    bar.spent = 0.0
    bar.calls = 0
    for name in ("update", "set_postfix"):
        fn = getattr(bar, name)

        def wrapper(*a, _fn=fn, **k):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                bar.spent += time.perf_counter() - t0
                bar.calls += 1

        setattr(bar, name, wrapper)
    return bar


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = cli.load_config(None)
    model, loss, th0, ex, run, _ = cli.build(cfg, reference=False)
    n = run["n_paths"]

    def once(bar_on):
        with tempfile.TemporaryDirectory() as d:
            bar = cli._bar(n, bar_on, "paths")
            if bar is not None:
                timed(bar)
            t0 = time.perf_counter()
            res, _ = cli.simulate_blocks(Path(d), model, loss, th0, ex, run, bar)
            wall = time.perf_counter() - t0
            spent = 0.0 if bar is None else bar.spent
            if bar is not None:
                bar.close()
        return wall, spent, res

    once(True)  # warm-up: compile every pool width
    walls = {True: [], False: []}
    spent, ref = [], None
    for _ in range(args.repeats):
        for on in (True, False):
            wall, s, res = once(on)
            walls[on].append(wall)
            if on:
                spent.append(s / wall)
            ref = res.times if ref is None else ref
            assert (res.times == ref).all(), "the bar must not change results"
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"{n} paths, block {run['block']}, {jax.devices()[0]}, {args.repeats} repeats")
    print(f"  bar on   median {med[True]:6.2f} s  ({', '.join(f'{x:.2f}' for x in walls[True])})")
    print(f"  bar off  median {med[False]:6.2f} s  ({', '.join(f'{x:.2f}' for x in walls[False])})")
    print(f"  progress overhead: wall ratio on/off {med[True] / med[False]:.3f}; time inside the "
          f"bar's calls {100 * max(spent):.3f}% of the run (max over repeats)")

    kw = {k: v for k, v in run.items() if k not in ("block", "n_paths")}
    width = 125  # a pool narrower than the default 512, so that 8-32 widths fit in 4 000 paths
    base = None
    for mult in (None, 16, 8, 4):
        block = n if mult is None else min(n, mult * width)
        executed = useful = 0
        for first in range(0, n, block):
            r = sd.escape(model, loss, th0, ex, n_paths=min(block, n - first),
                          first_path=first, lanes=width, progress=False, **kw)
            executed += r.info.executed_steps
            useful += r.useful_steps
        base = base or executed
        print(f"  blocks of {block:5d} paths ({block / width:4.1f} widths of {width}): "
              f"lane-steps/useful {executed / useful:.3f}, vs one call {executed / base:.3f}")

    # the CLI's default block rule (an eighth of the run, at least 1 000 paths), each block
    # with its own default pool, vs one call: lane-steps (exact) and warm wall time
    # (alternating, after a warm-up of both)
    rule = run["block"]
    walls = {n: [], rule: []}
    for rep in range(1 + args.repeats):
        for block in (n, rule):
            executed = useful = wall = 0
            for first in range(0, n, block):
                r = sd.escape(model, loss, th0, ex, n_paths=min(block, n - first),
                              first_path=first, progress=False, **kw)
                executed, useful = executed + r.info.executed_steps, useful + r.useful_steps
                wall += r.info.wall_time
            if rep:
                walls[block].append(wall)
            if rep == 1:
                print(f"  default pools, blocks of {block:5d} paths: lane-steps/useful "
                      f"{executed / useful:.3f}")
    print(f"  default rule ({rule} paths per block) vs one call: wall median "
          f"{statistics.median(walls[rule]):.2f} s vs {statistics.median(walls[n]):.2f} s")


if __name__ == "__main__":
    main()
