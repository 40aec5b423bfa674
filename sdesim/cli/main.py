"""The commands: ``sdesim run``, ``sdesim sweep``, ``sdesim figures``, and ``main``, which
turns every refusal into one line ``sdesim: error: ...`` with exit status 2."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

from . import results as R
from .build import build
from .config import (
    DEFAULT_CONFIG,
    MAX_PATHS,
    ConfigError,
    ams_default,
    describe,
    load_config,
    points,
    seed_range,
    seed_rule,
    sweep_spec,
)
from .registry import help_text

ROOT = Path(__file__).resolve().parent.parent.parent  # a source checkout's root


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (not usage + error) for ``main`` to print."""

    def error(self, message):
        raise _UsageError(f"{message} (see {self.prog} --help)")


def _bar(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="path", mininterval=0.5, smoothing=0.1,
               dynamic_ncols=True)
    bar.n_start = bar.esc_start = 0
    return bar


def _out_dir(args):
    if args.out:
        return Path(args.out)
    return Path("results") / (Path(args.config).stem if args.config else "default")


def example_files():
    """{name: path} of the example configs shipped as ``sdesim.examples``."""
    from importlib import resources

    root = Path(str(resources.files("sdesim.examples")))
    return {p.stem: p for p in sorted(root.glob("*.toml"))}


def _example(name):
    found = example_files()
    if name not in found:
        raise ConfigError(f"--example {name}: no such example; the examples: "
                          f"{', '.join(found)} (sdesim examples lists them)")
    return found[name]


def _resolve_config(args):
    if getattr(args, "example", None):
        if args.config:
            raise ConfigError(f"give a config file or --example {args.example}, not both")
        args.config = str(_example(args.example))


def _config_from_args(args):
    _resolve_config(args)
    over = list(args.set or [])
    if args.paths is not None:
        if args.paths < 1:
            raise ConfigError(f"--paths {args.paths}: expected an integer >= 1")
        if args.paths > MAX_PATHS:
            raise ConfigError(f"--paths {args.paths}: at most {MAX_PATHS} (2**31 - 1) paths "
                              f"per run (the engine indexes paths with 32-bit integers); "
                              f"split the work over several seeds")
        over.append(f"run.n_paths={args.paths}")
    if args.seed is not None:
        lo, hi = seed_range()
        if not lo <= args.seed <= hi:
            raise ConfigError(f"--seed {args.seed}: {seed_rule()}")
        over.append(f"run.seed={args.seed}")
    cfg = load_config(args.config, over)
    if args.paths is not None and all(_is_ams(pc["run"]) for _, pc in points(cfg)):
        raise ConfigError(f"--paths {args.paths}: sets [run] n_paths, which method = \"ams\" "
                          f"does not use; set the replicas per AMS run with --set "
                          f"run.n_replicas=N")
    return cfg


def _is_ams(rc):
    return rc.get("method") == "ams"


def _build_point(i, over, pc, n_points, **kw):
    try:
        return build(pc, **kw)
    except ConfigError as err:
        if n_points == 1 and not over:
            raise
        raise ConfigError(f"sweep point {i} ({describe(over)}): {err}") from None


def _check_only(pts):
    """Every check a run does, for every point: the config, the objects, the engine's."""
    for i, (over, pc) in enumerate(pts):
        _build_point(i, over, pc, len(pts), reference=False, warn_unstable=True)
        print(f"point {i}: {describe(over) or 'config'}: ok")
    return 0


def cmd_run(args, progress):
    cfg = _config_from_args(args)
    if "sweep" in cfg:
        raise ConfigError("this config has a [sweep] section: run it with `sdesim sweep`")
    if args.check:
        return _check_only([({}, cfg)])
    out = progress.out = _out_dir(args)
    model, loss, theta0, exit, run, ref = build(cfg)
    if _is_ams(run):
        return _run_ams(args, cfg, out, progress, (model, loss, theta0, exit, run, ref))
    rec = R.start_folder(out, cfg, args.resume)
    progress.folder = out
    layout = R.block_layout(run["n_paths"], run["block"])
    progress.total = len(layout)
    if rec["mode"] == "resume":
        done = len(R.load_blocks(out / "blocks", layout, rec["run_hash"]))
        if done == len(layout):
            print(f"{out} holds this run (same config), finished: its saved result is shown, "
                  f"not simulated again (another --out runs it afresh)", file=sys.stderr)
        else:
            print(f"{out} holds this run (same config): {done} of {len(layout)} blocks are "
                  f"saved; continuing with the rest", file=sys.stderr)
    t0 = time.perf_counter()
    bar = _bar(run["n_paths"], not args.no_progress, "paths")
    try:
        res, seconds = R.simulate_blocks(out, model, loss, theta0, exit, run, bar,
                                         run_hash=rec["run_hash"], progress=progress)
    finally:
        if bar is not None:
            bar.close()
    summary = R.write_results(out, cfg, res, ref, seconds, time.perf_counter() - t0)
    print(R.report(res, ref, summary))
    print(f"simulation {seconds:.1f} s; results in {out}/ (summary.json, paths.csv, "
          f"survival.png, histogram.png)")
    return 0


def _ams_notice(args, run, where=""):
    if not args.no_progress:  # escape_ams is one call: no progress bar
        n, runs = (run.get(k, ams_default(k)) for k in ("n_replicas", "n_runs"))
        print(f"{where}AMS: {runs} runs x {n} replicas (one call, no progress bar) ...",
              file=sys.stderr, flush=True)


def _run_ams(args, cfg, out, progress, built):
    """``sdesim run`` with [run] method = "ams": one sd.escape_ams call, its result saved
    (ams.npz) and summarized (summary.json); a finished run in ``out`` is reused."""
    model, loss, theta0, exit, run, ref = built
    rec = R.start_folder(out, cfg, args.resume)
    progress.folder = out
    progress.total = 1
    progress.unit = ("AMS result", "AMS results")
    t0 = time.perf_counter()
    if not (out / R.AMS_FILE).exists():
        _ams_notice(args, run)
    res, loaded = R.simulate_ams(out, model, loss, theta0, exit, run, cfg["run"],
                                 run_hash=rec["run_hash"], progress=progress)
    summary = R.write_ams_results(out, cfg, res, ref, rec["run_hash"],
                                  time.perf_counter() - t0)
    if loaded:
        print(f"{out} holds this AMS run, finished: its result ({R.AMS_FILE}) is reused, "
              f"not simulated again")
    print(R.report_ams(res, ref, summary))
    print(f"AMS {res.wall_time:.1f} s ({res.cost:.3g} lane-steps); results in {out}/ "
          f"(summary.json, {R.AMS_FILE})")
    return 0


def cmd_sweep(args, progress):
    if not args.config and not args.example:
        raise ConfigError("sdesim sweep needs a config file with a [sweep] section, or "
                          "--example NAME (sdesim examples lists them)")
    cfg = _config_from_args(args)
    if "sweep" not in cfg:
        raise ConfigError("no [sweep] section: add one, e.g. [sweep] \"landscape.sharpness\" "
                          "= [1.0, 2.0, 4.0] (or use `sdesim run`)")
    pts = points(cfg)
    if args.check:
        return _check_only(pts)
    out = progress.out = _out_dir(args)
    built = [_build_point(i, over, pc, len(pts)) for i, (over, pc) in enumerate(pts)]
    R.check_folder(out, cfg, args.resume)
    # every point's folder and saved blocks are checked before anything runs or is written
    hashes = []
    for i, ((over, pc), b) in enumerate(zip(pts, built, strict=True)):
        pdir = out / "points" / f"{i:03d}"
        try:
            R.check_folder(pdir, pc, "auto", flag="point folder")
            rec = R.record(pc)
            if _is_ams(b[4]):
                R.load_ams(pdir, rec["run_hash"])
            else:
                R.load_blocks(pdir / "blocks", R.block_layout(b[4]["n_paths"],
                                                              b[4]["block"]),
                              rec["run_hash"])
        except ConfigError as err:
            raise ConfigError(f"sweep point {i} ({describe(over)}): {err}") from None
        hashes.append(rec["run_hash"])
    R.start_folder(out, cfg, args.resume)
    progress.folder = out
    progress.total = sum(1 if _is_ams(b[4]) else len(R.block_layout(b[4]["n_paths"],
                                                                     b[4]["block"]))
                         for b in built)
    if any(_is_ams(b[4]) for b in built):
        progress.unit = ("block or AMS result", "blocks and AMS results")
    zipped, cross, _ = sweep_spec(cfg)
    total = sum(b[4].get("n_paths", 0) for b in built)  # the bar counts direct paths
    bar = _bar(total, not args.no_progress and total > 0, f"sweep ({len(pts)} points)")
    rows = []
    t0 = time.perf_counter()
    try:
        for i, ((over, pc), (model, loss, theta0, exit, run, ref)) in enumerate(
                zip(pts, built, strict=True)):
            pdir = out / "points" / f"{i:03d}"
            R.start_folder(pdir, pc, "auto", flag="point folder")
            if bar is not None:
                bar.n_start = bar.n
                bar.esc_start = sum(r.get("n_escaped", 0) for r in rows)
                bar.set_description(f"point {i + 1}/{len(pts)}"
                                    + (" (AMS)" if _is_ams(run) else ""))
            tp = time.perf_counter()
            if _is_ams(run):
                if not (pdir / R.AMS_FILE).exists() and bar is None:
                    _ams_notice(args, run, f"[{i + 1}/{len(pts)}] ")
                try:
                    res, _ = R.simulate_ams(pdir, model, loss, theta0, exit, run, pc["run"],
                                            run_hash=hashes[i], progress=progress)
                except ConfigError as err:
                    raise ConfigError(f"sweep point {i} ({describe(over)}): {err}") from None
                summary = R.write_ams_results(pdir, pc, res, ref, hashes[i],
                                              time.perf_counter() - tp)
                rows.append(R.sweep_row_ams(i, over, res, ref))
                line = R.report_ams(res, ref, summary)
            else:
                res, seconds = R.simulate_blocks(pdir, model, loss, theta0, exit, run, bar,
                                                 run_hash=hashes[i], progress=progress)
                summary = R.write_results(pdir, pc, res, ref, seconds,
                                          time.perf_counter() - tp)
                rows.append(R.sweep_row(i, over, res, ref, seconds))
                line = R.report(res, ref, summary)
            print(f"[{i + 1}/{len(pts)}] {describe(over)}: {line}", flush=True)
    finally:
        if bar is not None:
            bar.close()
    fig_name = R.write_sweep(out, cfg, pts, rows, zipped, cross, time.perf_counter() - t0)
    print(f"sweep of {len(pts)} points in {time.perf_counter() - t0:.1f} s; results in "
          f"{out}/ (sweep.json, sweep.csv, {fig_name}, points/NNN/)")
    return 0


def _summary_line(path):
    """The first sentence of an example's leading comment."""
    text = " ".join(ln.lstrip("# ").strip() for ln in path.read_text(encoding="utf-8")
                    .splitlines()[:4] if ln.startswith("#"))
    first = re.split(r"(?<=[.:])\s", text, maxsplit=1)[0]
    return first if len(first) <= 90 else first[:87].rstrip() + "..."


def cmd_examples(args, progress=None):
    found = example_files()
    if not args.names and args.copy is None:
        width = max(map(len, found))
        for name, p in found.items():
            print(f"{name:<{width}}  {_summary_line(p)}")
        print("\nsdesim examples NAME (prints it)  |  sdesim examples --copy DIR [NAME ...]  |  "
              "sdesim run --example NAME")
        return 0
    unknown = [n for n in args.names if n not in found]
    if unknown:
        raise ConfigError(f"unknown example {', '.join(unknown)}; the examples: "
                          f"{', '.join(found)}")
    names = args.names or list(found)
    if args.copy is None:
        for i, n in enumerate(names):
            print(("\n" if i else "") + found[n].read_text(encoding="utf-8"), end="")
        return 0
    dest = Path(args.copy)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--copy {dest}: cannot create it ({err.strerror or err})") from None
    files = []
    for n in names:  # the config and any Python file it names as a target
        files.append(found[n])
        for py in re.findall(r"^target\s*=\s*\"([\w.-]+\.py):", found[n].read_text(
                encoding="utf-8"), flags=re.M):
            files.append(found[n].parent / py)
    for f in files:
        if (dest / f.name).exists():
            raise ConfigError(f"--copy {dest}: {f.name} is already there; sdesim does not "
                              f"overwrite files (choose another folder)")
    for f in dict.fromkeys(files):
        (dest / f.name).write_bytes(f.read_bytes())
        print(dest / f.name)
    return 0


def figure_scripts(root=None):
    """{figure name: benchmark script} for every ``benchmarks/*.py`` that writes
    ``figures/NAME.png`` (found in its source), plus the figures already in ``figures/``
    (script None if no benchmark makes them)."""
    root = ROOT if root is None else Path(root)
    found = {}
    for p in sorted((root / "benchmarks").glob("*.py")):
        for name in re.findall(r"[\"']([A-Za-z0-9_]+)\.png[\"']", p.read_text()):
            found.setdefault(name, p)
    for p in sorted((root / "figures").glob("*.png")):
        same = root / "benchmarks" / f"{p.stem}.py"  # a script that builds the name itself
        found.setdefault(p.stem, same if same.exists() else None)
    return dict(sorted(found.items()))


def _has_gpu():
    import jax

    return jax.default_backend() != "cpu"


def cmd_figures(args, progress=None):
    root = ROOT
    if not (root / "benchmarks").is_dir():
        raise ConfigError("sdesim figures needs the benchmarks/ folder of a source checkout "
                          "(pip install -e .)")
    scripts = figure_scripts(root)
    if args.list:
        for name, p in scripts.items():
            where = f"python {p.relative_to(root)}" if p else "(no benchmark script makes it)"
            if p and name.endswith("_gpu"):
                where += " on a GPU machine (there it writes the _gpu names)"
            print(f"figures/{name}.png  <-  {where}")
        return 0
    unknown = [n for n in args.only if n not in scripts]
    if unknown:
        raise ConfigError(f"unknown figure {', '.join(unknown)}; known: {', '.join(scripts)}")
    rc_all = 0
    ran = set()
    for name, p in scripts.items():
        if args.only and name not in args.only:
            continue
        if p is None:
            print(f"== figures/{name}.png: no benchmark script writes it; skipped")
            continue
        if name.endswith("_gpu") and not _has_gpu():
            print(f"== figures/{name}.png: made by {p.relative_to(root)} on a GPU machine; "
                  f"this one has none: skipped")
            continue
        if p in ran:
            continue
        ran.add(p)
        print(f"== figures/{name}.png <- {p.relative_to(root)}", flush=True)
        rc = subprocess.call([sys.executable, str(p)], cwd=root)
        if rc:
            print(f"sdesim: {p.name} failed with exit status {rc}", file=sys.stderr)
            rc_all = rc
    return rc_all


EPILOG = """\
examples:
  sdesim run                                   # the built-in default experiment (<1 min)
  sdesim examples                              # the shipped example configs
  sdesim run --example sgd_styblinski_tang --out results/sgd
  sdesim run my.toml --set model.lr=0.05 --set run.t_max=100 --paths 200
  sdesim run my.toml                           # again: the stored result, or continues it
  sdesim sweep --example zhou_sgd_vs_adam --out results/zhou  # one point per value
  sdesim run --example kramers_ams             # [run] method = "ams": a rare escape
  sdesim run --example digits_mlp              # your network: [landscape] target
  sdesim figures --list; sdesim figures levy_escape
"""


def parser():
    ap = _Parser(
        prog="sdesim", description="Simulate optimizer SDEs and measure escape from basins.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    schema = help_text()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", help="results folder (default results/CONFIG-NAME); new "
                                      "or empty, or holding this run with --resume")
    common.add_argument("--paths", type=int, help="override [run] n_paths")
    common.add_argument("--seed", type=int, help="override [run] seed")
    common.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override any key, e.g. --set model.lr=0.05 (TOML value)")
    common.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out and fail if there is none "
                             "(without it, a folder holding this same run is continued or, "
                             "finished, shown; another config there is refused)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_argument("--check", action="store_true",
                        help="run every check of a run (every sweep point: the config, the "
                             "objects, the engine's argument checks) and exit")
    r = sub.add_parser("run", parents=[common], help="run one escape experiment",
                       description="Run an escape experiment from a TOML config; without a "
                                   "file, the built-in default:\n\n" + DEFAULT_CONFIG
                                   + "\nkeys (from the constructors):\n" + schema,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", nargs="?", help="TOML file (default: the built-in experiment)")
    r.add_argument("--example", metavar="NAME",
                   help="run a shipped example config (sdesim examples lists them)")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("sweep", parents=[common], help="run a config's [sweep] points",
                       description="Run every point of a config's [sweep] section (same "
                                   "seed at every point: common random numbers). Points "
                                   "with the same shapes reuse one compiled program.\n\n"
                                   "keys (from the constructors):\n" + schema,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("config", nargs="?", help="TOML file with a [sweep] section")
    s.add_argument("--example", metavar="NAME",
                   help="sweep a shipped example config (sdesim examples lists them)")
    s.set_defaults(fn=cmd_sweep)
    e = sub.add_parser("examples", help="list, print or copy the shipped example configs",
                       description="The example configs that ship with sdesim: without "
                                   "arguments, list them; with names, print them; with "
                                   "--copy DIR, copy them (and the Python files they name) "
                                   "into DIR to edit.",
                       epilog="examples:\n  sdesim examples\n  sdesim examples "
                              "kramers_double_well > my.toml\n  sdesim examples --copy "
                              "my_configs digits_mlp\n  sdesim run --example "
                              "kramers_double_well",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("names", nargs="*", metavar="NAME", help="example names (default: all)")
    e.add_argument("--copy", metavar="DIR", help="copy the examples into DIR")
    e.set_defaults(fn=cmd_examples)
    f = sub.add_parser("figures", help="regenerate figures/ by running benchmarks/*.py",
                       description="Regenerate figures/NAME.png with the benchmark script "
                                   "that writes it (found by name in benchmarks/*.py).",
                       epilog="examples:\n  sdesim figures --list\n  sdesim figures "
                              "kramers_validation levy_escape",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("only", nargs="*", help="figure names (default: all)")
    f.add_argument("--list", action="store_true", help="list figures and their commands")
    f.set_defaults(fn=cmd_figures)
    return ap


def _error(msg):
    print(f"sdesim: error: {' '.join(str(msg).split())}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"sdesim: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None):
    """The ``sdesim`` command. Returns the exit status: 0, 2 for anything refused (one
    line ``sdesim: error: ...`` naming the key, file or flag), 130 after Ctrl-C, 1 for an
    unexpected failure (one line; ``SDESIM_TRACEBACK=1`` shows the traceback)."""
    try:
        args = parser().parse_args(argv)
    except _UsageError as err:
        _error(err)
        return 2
    progress = R.Progress()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.fn(args, progress)
    except ConfigError as err:
        _error(err)
        return 2
    except KeyboardInterrupt:
        print(f"\nsdesim: {progress.interrupted()}", file=sys.stderr)
        return 130
    except OSError as err:  # a file-system failure the steps above did not name
        where = f"{err.filename}: " if err.filename else ""
        _error(f"{where}{err.strerror or err}")
        return 2
    except Exception as err:
        if os.environ.get("SDESIM_TRACEBACK"):
            raise
        _error(f"unexpected {type(err).__name__}: {err} (a bug in sdesim: please report it "
               f"with the command; SDESIM_TRACEBACK=1 shows where)")
        return 1
