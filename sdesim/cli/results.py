"""Results folders: the run record, blocks (the resume points), summary, CSV and plots.

A folder holds one run: ``run.json`` (the resolved config, the seed, the float precision
and the run's hash, written once every input is checked), ``blocks/paths-FIRST-LAST.npz``
(per-path steps and status of paths FIRST..LAST-1 and the run's hash, each written
atomically when its block finishes), then ``summary.json``, ``paths.csv``,
``survival.png``, ``histogram.png``. The CLI never writes into a folder that holds
anything but its own run: a non-empty ``--out`` without ``run.json`` is refused, and a
block file whose hash is not the run's is refused, not reused.

A run of ``[run] method = "ams"`` (one ``sd.escape_ams`` call) has no blocks: its folder
holds ``run.json``, ``ams.npz`` (the ``AMSResult`` and the run's hash, written atomically
when the call returns: the resume point, reused by ``--resume``) and ``summary.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re

from . import plots
from .config import ConfigError

RUN_FILE = "run.json"
FORMAT = 2  # of run.json and the block files (1: no run hash)
_BLOCK = re.compile(r"paths-(\d{9})-(\d{9})\.npz")


# ---------------------------------------------------------------------------------------
# Strict JSON: no Infinity/NaN (null with a reason instead), config infinities as strings
# ---------------------------------------------------------------------------------------

_REASONS = {
    "mean_time": "no path escaped: infinite",
    "mean_iterations": "no path escaped: infinite",
    "mean_time_ci95": "upper bound infinite: the rate's interval reaches 0 (no path "
                      "escaped)",
    "ratio_to_reference": "no path escaped: infinite",
    "ratio_ci95": "upper bound infinite: the rate's interval reaches 0 (no path escaped)",
    "cv": "undefined: fewer than 2 paths escaped",
    "rate": "undefined: no exposure",
}


def _finite(x):
    return not isinstance(x, float) or math.isfinite(x)


def _spell(x):
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def config_json(obj):
    """A config with its non-finite numbers as the TOML strings "inf", "-inf", "nan"."""
    if isinstance(obj, dict):
        return {k: config_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [config_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return _spell(obj)
    return obj


def strict(obj, reasons=None):
    """``obj`` with every non-finite float replaced by ``None`` and a ``KEY_note`` string
    beside it giving the reason (``reasons``: notes by key, over the direct method's; the
    ``config`` entry keeps "inf" as a string)."""
    import numpy as np

    why = _REASONS if reasons is None else {**_REASONS, **reasons}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "config":
                out[k] = config_json(v)
                continue
            v = v.item() if isinstance(v, np.generic) else v
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
                out[f"{k}_note"] = why.get(k, _spell(v).replace("inf", "infinite")
                                           .replace("nan", "not a number"))
            elif isinstance(v, list | tuple) and not all(map(_finite, v)):
                out[k] = [x if _finite(x) else None for x in v]
                bad = [_spell(x) for x in v if not _finite(x)]
                out[f"{k}_note"] = why.get(k, "non-finite entries: " + ", ".join(bad))
            else:
                out[k] = strict(v, reasons)
        return out
    if isinstance(obj, list | tuple):
        return [strict(v, reasons) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj, reasons=None):
    return json.dumps(strict(obj, reasons), indent=1, allow_nan=False, default=float) + "\n"


# ---------------------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------------------


def _write_atomic(path, write):
    """``write(fileobj)`` into ``path`` via a temporary file and a rename: an interrupted
    run leaves either the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        try:
            if tmp.exists():
                tmp.unlink()
        except OSError:
            pass


def write_text(path, text):
    _write_atomic(path, lambda fh: fh.write(text.encode()))


# ---------------------------------------------------------------------------------------
# The run record and the folder
# ---------------------------------------------------------------------------------------


def _x64():
    import jax

    return bool(jax.config.jax_enable_x64)


def record(cfg):
    """The run record: the canonical config, seed, precision, and their hash (which ties
    every block file to this run)."""
    conf = config_json(cfg)
    ident = {"config": conf, "seed": int(cfg["run"].get("seed", 0)), "x64": _x64(),
             "format": FORMAT}
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {**ident, "run_hash": hashlib.sha256(text.encode()).hexdigest()}


def _is_empty(folder):
    try:
        return not any(folder.iterdir())
    except OSError as err:
        raise ConfigError(f"--out {folder}: cannot read the folder ({err.strerror or err})") \
            from None


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diff(old, new):
    a, b = _flat(old), _flat(new)
    return "; ".join(f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}"
                     for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def _read_record(out):
    path = out / RUN_FILE
    fix = f"delete {out} (or use another --out) to start over"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is unreadable ({type(err).__name__}: {err}): {fix}") \
            from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise ConfigError(f"{path} is not a run record of sdesim (no config): {fix}")
    return saved


def check_folder(out, cfg, resume, flag="--out"):
    """Decide what a run may do with ``out`` before anything is written: "new" (create
    it, or use it empty) or "resume" (it holds this very run: same config, precision and
    run hash; its saved blocks are reused, so rerunning a finished run shows its result and
    an interrupted one continues). ``resume``: True (``--resume``: there must be a run to
    continue), False (the same run is still reused; another config is refused), or "auto"
    (a sweep's point folder). Raises ConfigError otherwise."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a folder; choose another {flag}")
    if not out.exists():
        if resume is True:
            raise ConfigError(f"--resume: {out} does not exist, so there is nothing to "
                              f"resume; run without --resume to start")
        return "new"
    if not (out / RUN_FILE).exists():
        if _is_empty(out):
            if resume is True:
                raise ConfigError(f"--resume: {out} is empty, so there is nothing to resume; "
                                  f"run without --resume to start")
            return "new"
        raise ConfigError(f"{flag} {out} is not empty and holds no sdesim run (no {RUN_FILE})"
                          f": sdesim writes only into a new or empty folder, to never "
                          f"overwrite files it did not write; choose another {flag}")
    saved = _read_record(out)
    mine = record(cfg)
    if saved["config"] != mine["config"]:
        if not resume:
            raise ConfigError(f"{out} already holds a run of another config "
                              f"({_diff(saved['config'], mine['config'])}): choose another "
                              f"folder with --out, or delete {out}")
        raise ConfigError(f"cannot resume {out}: it was started with another config "
                          f"({_diff(saved['config'], mine['config'])}); rerun with the same "
                          f"config or another --out")
    if saved.get("x64", mine["x64"]) != mine["x64"]:
        raise ConfigError(f"cannot resume {out}: it was started with JAX_ENABLE_X64="
                          f"{int(saved['x64'])}, this process has {int(mine['x64'])}")
    if saved.get("run_hash") != mine["run_hash"]:
        raise ConfigError(f"cannot resume {out}: its {RUN_FILE} has no run hash of this "
                          f"version of sdesim (format {saved.get('format', 1)}), so its "
                          f"blocks cannot be tied to this run; delete {out} or use another "
                          f"--out")
    return "resume"


def start_folder(out, cfg, resume, flag="--out"):
    """``check_folder``, then create ``out`` with its run record if new. Returns the
    record (with its ``run_hash``) and ``mode`` ("new" or "resume")."""
    mode = check_folder(out, cfg, resume, flag)
    rec = record(cfg)
    if mode == "new":
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{flag} {out}: cannot create the folder "
                              f"({err.strerror or err})") from None
        write_text(out / RUN_FILE, json.dumps(rec, indent=1, sort_keys=True,
                                              allow_nan=False) + "\n")
    return {**rec, "mode": mode}


# ---------------------------------------------------------------------------------------
# Running in blocks (resume points)
# ---------------------------------------------------------------------------------------


class Progress:
    """What is on disk, for an interruption message that is true."""

    def __init__(self):
        self.out = None  # the --out folder, once known
        self.folder = None  # the run's folder once this process created or resumed it
        self.saved = 0  # block files of this run on disk (loaded or written)
        self.total = 0  # blocks the whole command will have
        # what is saved: blocks; an AMS run saves one result (ams.npz), counted as a block
        self.unit = ("block", "blocks")

    def interrupted(self):
        one, many = self.unit
        if self.folder is None:
            if self.out is not None and (self.out / RUN_FILE).exists():
                return (f"interrupted before the run resumed; {self.out} is as it was: "
                        f"continue with the same command and --resume")
            return f"interrupted before the run started; no {one} was saved"
        if self.saved == 0:
            return (f"interrupted before the first {one} finished; {self.folder} holds only "
                    f"the run's settings: continue with the same command and --resume")
        return (f"interrupted; {self.saved} of {self.total} {many} are saved in "
                f"{self.folder}: continue with the same command and --resume")


def block_layout(n_paths, block):
    return [(first, min(block, n_paths - first)) for first in range(0, n_paths, block)]


def _block_name(first, size):
    return f"paths-{first:09d}-{first + size:09d}.npz"


def load_blocks(bdir, layout, run_hash):
    """Every block file already in ``bdir``, checked: {first: (steps, status, seconds)}.
    A file that is unreadable, not one of this run's blocks, or of another run is
    refused, naming it and what to do."""
    import numpy as np

    expected = {_block_name(f, s): (f, s) for f, s in layout}
    out = {}
    if not bdir.is_dir():
        return out
    for path in sorted(bdir.iterdir()):
        if path.name.endswith(".tmp"):  # an interrupted write of ours: rewritten
            continue
        fix = ("delete it (its paths are simulated again with --resume) or use another "
               "--out")
        if path.name not in expected:
            raise ConfigError(f"{path} is not one of this run's block files "
                              f"({_block_name(*layout[0])} ...): {fix}")
        first, size = expected[path.name]
        try:
            with np.load(path, allow_pickle=False) as z:
                h = str(z["run_hash"]) if "run_hash" in z.files else None
                steps, status = np.asarray(z["steps"]), np.asarray(z["status"])
                seconds = float(z["seconds"])
        except Exception as err:  # any failure to parse the file: a corrupted block
            raise ConfigError(f"{path} is unreadable ({type(err).__name__}: "
                              f"{' '.join(str(err).split()) or 'corrupted'}): {fix}") from None
        if h is None and run_hash is not None:
            raise ConfigError(f"{path} carries no run hash: it was not written by this run "
                              f"(or by an older sdesim): {fix}")
        if h != run_hash:
            raise ConfigError(f"{path} belongs to another run (hash {str(h)[:12]}, this run "
                              f"{str(run_hash)[:12]}): {fix}")
        if steps.shape != (size,) or status.shape != (size,) or steps.dtype.kind not in "iu" \
                or not np.all((status >= 1) & (status <= 3)) or not math.isfinite(seconds):
            raise ConfigError(f"{path} is corrupted (shapes {steps.shape}, {status.shape} "
                              f"for {size} paths, or unknown statuses): {fix}")
        out[first] = (steps, status, seconds)
    return out


def _divergence_warning():
    from sdesim import engine

    return engine.DivergenceWarning


def _engine_lr_of(model):
    from sdesim import engine

    return engine._lr_of(model)


def simulate_blocks(out, model, loss, theta0, exit, run, bar=None, *, run_hash=None,
                    progress=None):
    """Run ``run["n_paths"]`` paths in blocks of ``run["block"]``, each saved to
    ``out/blocks`` as it finishes (with ``run_hash``); blocks already there are checked
    (they must carry the same ``run_hash``; ``None``: none) and loaded, not rerun.
    Returns (EscapeResult, simulation seconds summed over all blocks ever run). The
    engine's divergence warning is left to the caller's result line (its count is in the
    result)."""
    import warnings

    import numpy as np

    import sdesim as sd

    n, block = run["n_paths"], run["block"]
    kw = {k: v for k, v in run.items() if k not in ("n_paths", "block")}
    bdir = out / "blocks"
    layout = block_layout(n, block)
    saved = load_blocks(bdir, layout, run_hash)
    try:
        bdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {bdir}: {err.strerror or err}") from None
    if progress is not None:
        progress.saved += len(saved)
    steps = np.zeros(n, np.int64)
    status = np.zeros(n, np.int8)
    seconds = 0.0
    escaped_before = 0
    quiet = _divergence_warning()
    for first, size in layout:
        path = bdir / _block_name(first, size)
        if first in saved:
            s, st, sec = saved[first]
            steps[first:first + size], status[first:first + size] = s, st
            seconds += sec
        else:
            cb = False  # the engine calls progress(done, escaped, total) after every chunk
            if bar is not None:
                def cb(done, escaped, total, base=bar.n, esc0=bar.esc_start + escaped_before):
                    bar.update(base + int(done) - bar.n)
                    bar.set_postfix(escaped=esc0 + int(escaped), refresh=False)
            with warnings.catch_warnings():
                if quiet is not None:
                    warnings.simplefilter("ignore", quiet)
                res = sd.escape(model, loss, theta0, exit, n_paths=size, first_path=first,
                                progress=cb, **kw)
            steps[first:first + size], status[first:first + size] = res.steps, res.status
            seconds += res.info.wall_time
            extra = {} if run_hash is None else {"run_hash": np.str_(run_hash)}
            _write_atomic(path, lambda fh, r=res, x=extra: np.savez(
                fh, steps=r.steps, status=r.status, seconds=r.info.wall_time, **x))
            if progress is not None:
                progress.saved += 1
        escaped_before += int(np.sum(status[first:first + size] == 1))
        if bar is not None:
            bar.update(bar.n_start + first + size - bar.n)
            bar.set_postfix(escaped=bar.esc_start + escaped_before, refresh=False)
    res = sd.EscapeResult.from_steps(steps, status, dt=run["dt"], t_max=run["t_max"],
                                     lr=_engine_lr_of(model))
    return res, seconds


def counts(res):
    """(escaped, diverged, censored) from the statuses (1, 3, 2): right before and after
    ``EscapeResult`` kept diverged paths apart."""
    import numpy as np

    st = np.asarray(res.status)
    return int(np.sum(st == 1)), int(np.sum(st == 3)), int(np.sum(st == 2))


def environment():
    import jax
    import numpy as np

    import sdesim

    vers = {"sdesim": sdesim.__version__, "jax": jax.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
    for mod in ("jaxlib", "equinox", "diffrax", "optax", "scipy"):
        try:
            vers[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return {"versions": vers, "device": str(jax.devices()[0]),
            "backend": jax.default_backend(), "x64": bool(jax.config.jax_enable_x64)}


# ---------------------------------------------------------------------------------------
# Results: summary, CSV, plots
# ---------------------------------------------------------------------------------------


def plt_():
    from . import plots

    return plots.plt_()


def savefig(fig, path):
    plt = plt_()
    _write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)


def write_results(out, cfg, res, ref, seconds, wall):
    """summary.json (strict JSON), paths.csv, survival.png, histogram.png in ``out``."""
    import numpy as np

    esc, div, cen = counts(res)
    summary = res.summary()
    summary.update(n_escaped=esc, n_diverged=div, n_censored=cen)
    summary.update(config=cfg, seed=int(cfg["run"].get("seed", 0)), reference=ref,
                   simulation_seconds=seconds, wall_time_s=wall, **environment())
    if ref is not None:
        summary["ratio_to_reference"] = res.mean_time() / ref["mean_time"]
        lo, hi = res.mean_time_ci()
        summary["ratio_ci95"] = [lo / ref["mean_time"], hi / ref["mean_time"]]
        summary["reference_outside_range"] = outside_range(ref, res)
    write_text(out / "summary.json", dumps(summary))
    its = res.iterations if res.iterations is not None else np.full(res.n_paths, np.nan)
    st = np.asarray(res.status)
    lines = ["path,time,iterations,escaped,status,diverged"]
    lines += [f"{i},{t:.9g},{it:.9g},{int(s == 1)},{int(s)},{int(s == 3)}" for i, (t, it, s)
              in enumerate(zip(res.times, its, st, strict=True))]
    write_text(out / "paths.csv", "\n".join(lines) + "\n")

    savefig(plots.survival_figure(res, ref, cfg), out / "survival.png")
    savefig(plots.histogram_figure(res, ref, cfg), out / "histogram.png")
    return summary


def outside_range(ref, res):
    """Why ``res`` is outside the range of its closed form ``ref`` (``plots.outside_range``:
    escape within ``plots.MIN_STEPS`` iterations or steps, or ΔU/T below
    ``plots.MIN_BARRIER_OVER_NOISE``), or None."""
    return plots.outside_range(ref, res.lr, res.dt)


def _range_note(ref, res):
    """The result line's flag on a ratio outside the closed form's range ("" if inside)."""
    why = outside_range(ref, res)
    return "" if why is None else f" ({plots.OUTSIDE}: {why})"


def report(res, ref, summary):
    """The result line: escaped / diverged / censored counts, rate, mean time."""
    esc, div, cen = counts(res)
    lo, hi = res.mean_time_ci()
    outcome = f"{esc}/{res.n_paths} escaped"
    if div:
        outcome += (f", {div} diverged (non-finite state; try a smaller dt or "
                    f"JAX_ENABLE_X64=1), {cen} censored")
    msg = (f"{outcome}; rate {res.rate():.4g} "
           f"[{res.rate_ci()[0]:.4g}, {res.rate_ci()[1]:.4g}] (95%); mean time "
           f"{res.mean_time():.4g} [{lo:.4g}, {hi:.4g}]"
           + (f" = {res.mean_time() / res.lr:.4g} iterations" if res.lr else ""))
    if ref is not None:
        msg += (f"\n  closed form ({ref['formula']}): {ref['mean_time']:.4g}; simulated/closed"
                f" form = {summary['ratio_to_reference']:.3f} [{summary['ratio_ci95'][0]:.3f},"
                f" {summary['ratio_ci95'][1]:.3f}]" + _range_note(ref, res))
    return msg


# ---------------------------------------------------------------------------------------
# method = "ams": one sd.escape_ams call; its result (ams.npz) is the resume point
# ---------------------------------------------------------------------------------------

AMS_FILE = "ams.npz"
_AMS_REASONS = {
    "mean_time": "p = 0 (no replica of any AMS run reached the exit): infinite",
    "mean_iterations": "p = 0 (no replica of any AMS run reached the exit): infinite",
    "mean_time_ci95": "upper bound infinite: p's interval reaches 0 (the AMS runs spread "
                      "as much as p: raise n_runs or n_replicas)",
    "rate_ci95": "upper bound infinite: the mean time's interval reaches 0",
    "ratio_to_reference": "p = 0: infinite",
    "ratio_ci95": "upper bound infinite: p's interval reaches 0",
}


def _ams_fields():
    import dataclasses

    import sdesim as sd

    return [f.name for f in dataclasses.fields(sd.AMSResult)]


def _ams_value(name, a):
    import numpy as np

    if name in ("p_runs", "iterations"):
        return np.asarray(a)
    if name == "levels":
        return tuple(float(v) for v in a)
    return a.item()


def load_ams(out, run_hash):
    """The ``AMSResult`` a finished AMS run saved in ``out/ams.npz``, or None if none is
    there. A file that is unreadable or of another run is refused, naming it."""
    import numpy as np

    import sdesim as sd

    path = out / AMS_FILE
    if not path.exists():
        return None
    fix = "delete it (the AMS run is simulated again with --resume) or use another --out"
    try:
        with np.load(path, allow_pickle=False) as z:
            h = str(z["run_hash"]) if "run_hash" in z.files else None
            res = sd.AMSResult(**{k: _ams_value(k, z[k]) for k in _ams_fields()
                                  if k in z.files})
    except Exception as err:  # any failure to parse the file: a corrupted result
        raise ConfigError(f"{path} is unreadable ({type(err).__name__}: "
                          f"{' '.join(str(err).split()) or 'corrupted'}): {fix}") from None
    if h != run_hash:
        raise ConfigError(f"{path} belongs to another run (hash {str(h)[:12]}, this run "
                          f"{str(run_hash)[:12]}): {fix}")
    return res


def simulate_ams(out, model, loss, theta0, exit, run, rc, *, run_hash, progress=None):
    """``sd.escape_ams`` with ``run``'s arguments, its result saved to ``out/ams.npz``
    (with ``run_hash``); a result already there (a finished run) is checked and loaded,
    not rerun. Returns (AMSResult, whether it was loaded). What escape_ams refuses (no
    path reached Σ, too few loops, ...) becomes a ConfigError naming the [run] key
    (``rc``)."""
    import numpy as np

    import sdesim as sd

    from .build import package_error

    res = load_ams(out, run_hash)
    if res is None:
        kw = {k: v for k, v in run.items() if k != "method"}
        try:
            res = sd.escape_ams(model, loss, theta0, exit, **kw)
        except (ValueError, TypeError, ArithmeticError) as err:
            raise package_error(err, [("run", rc)]) from None
        arrays = {k: np.asarray(getattr(res, k)) for k in _ams_fields()
                  if getattr(res, k) is not None}
        _write_atomic(out / AMS_FILE, lambda fh: np.savez(fh, run_hash=np.str_(run_hash),
                                                          **arrays))
        loaded = False
    else:
        loaded = True
    if progress is not None:
        progress.saved += 1
    return res, loaded


def write_ams_results(out, cfg, res, ref, run_hash, wall):
    """summary.json (strict JSON) of an AMS run: ``AMSResult.summary()`` (method "ams",
    p and its interval, mean time, rate, cycle times, levels, cost), the rate's interval,
    the runs' p, and as for the direct method the config, seed, run hash, closed form and
    ratio, runtime and environment. Returns the summary."""
    summary = res.summary()
    summary.update(rate_ci95=list(res.rate_ci()), p_runs=res.p_runs.tolist(),
                   t_first_se=res.t_first_se, t_loop_se=res.t_loop_se,
                   t_max=float(cfg["run"]["t_max"]))
    if res.lr:
        summary["mean_iterations"] = res.mean_time() / res.lr
    summary.update(config=cfg, seed=int(cfg["run"].get("seed", 0)), run_hash=run_hash,
                   reference=ref, simulation_seconds=res.wall_time, wall_time_s=wall,
                   **environment())
    if ref is not None:
        summary["ratio_to_reference"] = res.mean_time() / ref["mean_time"]
        lo, hi = res.mean_time_ci()
        summary["ratio_ci95"] = [lo / ref["mean_time"], hi / ref["mean_time"]]
        summary["reference_outside_range"] = outside_range(ref, res)
    write_text(out / "summary.json", dumps(summary, _AMS_REASONS))
    return summary


def report_ams(res, ref, summary):
    """The result line of an AMS run: p, rate and mean time with their 95% intervals."""
    (plo, phi), (rlo, rhi), (lo, hi) = res.p_ci(), res.rate_ci(), res.mean_time_ci()
    msg = (f"AMS, {res.n_runs} runs x {res.n_replicas} replicas (k = {res.k}): p = "
           f"{res.p:.4g} [{plo:.4g}, {phi:.4g}]; rate {res.rate():.4g} [{rlo:.4g}, "
           f"{rhi:.4g}] (95%); mean time {res.mean_time():.4g} [{lo:.4g}, {hi:.4g}]"
           + (f" = {res.mean_time() / res.lr:.4g} iterations" if res.lr else ""))
    if res.failed:
        msg += (f"; {res.failed} replicas reached neither A nor the exit within t_max "
                f"(raise t_max)")
    if ref is not None:
        msg += (f"\n  closed form ({ref['formula']}): {ref['mean_time']:.4g}; AMS/closed form"
                f" = {summary['ratio_to_reference']:.3f} [{summary['ratio_ci95'][0]:.3f},"
                f" {summary['ratio_ci95'][1]:.3f}]" + _range_note(ref, res))
    return msg


# ---------------------------------------------------------------------------------------
# Sweeps: sweep.json, sweep.csv, rate_vs_PARAM.png
# ---------------------------------------------------------------------------------------


def _row_reference(ref, res):
    """A sweep row's closed form: its mean time, formula and why the point is outside
    the formula's range (None: inside)."""
    if ref is None:
        return dict(reference_mean_time=None)
    return dict(reference_mean_time=ref["mean_time"], reference_formula=ref["formula"],
                reference_outside_range=outside_range(ref, res))


def sweep_row(i, over, res, ref, seconds):
    esc, div, cen = counts(res)
    return dict(point=i, **over, n_paths=res.n_paths, n_escaped=esc, n_diverged=div,
                n_censored=cen, rate=res.rate(), rate_ci95=list(res.rate_ci()),
                mean_time=res.mean_time(), mean_time_ci95=list(res.mean_time_ci()),
                cv=res.cv(), **_row_reference(ref, res), simulation_seconds=seconds)


def sweep_row_ams(i, over, res, ref):
    """A sweep row of an AMS point: the direct rows' rate and mean time with intervals,
    p with its interval, and the AMS settings (no path counts)."""
    return dict(point=i, **over, method="ams", n_replicas=res.n_replicas, n_runs=res.n_runs,
                k=res.k, p=res.p, p_ci95=list(res.p_ci()), rate=res.rate(),
                rate_ci95=list(res.rate_ci()), mean_time=res.mean_time(),
                mean_time_ci95=list(res.mean_time_ci()), failed=res.failed,
                **_row_reference(ref, res), simulation_seconds=res.wall_time)


def _method(row):
    return row.get("method", "direct")


def _cell(v):
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else f"{v:.9g}"


def _x_axis(pts, keys):
    """The swept key to plot against: the first zipped key with numbers (a list value is
    reduced to the one coordinate that varies, e.g. hessian = [1, κ] -> κ)."""
    import numpy as np

    def num(v):
        return isinstance(v, int | float) and not isinstance(v, bool)

    for k in keys:
        vals = [over[k] for over, _ in pts]
        if all(num(v) for v in vals):
            return k, np.asarray(vals, float)
        if all(isinstance(v, list) and all(map(num, v)) for v in vals) and \
                len({len(v) for v in vals}) == 1:
            a = np.asarray(vals, float)
            varying = np.flatnonzero(np.ptp(a, axis=0) > 0)
            if varying.size == 1:
                return f"{k}[{varying[0]}]", a[:, varying[0]]
    return "point", np.arange(len(pts), dtype=float)


def write_sweep(out, cfg, pts, rows, zipped, cross, wall):
    """sweep.json (strict JSON), sweep.csv and the rate plot; returns the plot's name.
    A sweep with AMS points (``[run] method = "ams"``) names every row's method, and its
    CSV adds the columns method, mean_time_lo, mean_time_hi, p, p_lo, p_hi (the path
    counts and cv of an AMS row are empty)."""
    ams = any(_method(r) == "ams" for r in rows)
    if ams:
        rows = [{**r, "method": _method(r)} for r in rows]
    xkey, x = _x_axis(pts, zipped or cross)
    write_text(out / "sweep.json", dumps(dict(
        config=cfg, seed=int(cfg["run"].get("seed", 0)), swept=list(cfg["sweep"]), x=xkey,
        points=rows, wall_time_s=wall, **environment()), _AMS_REASONS if ams else None))
    keys = [k for k in cfg["sweep"] if k != "cross"]
    extra = ["method", "mean_time_lo", "mean_time_hi", "p", "p_lo", "p_hi"] if ams else []
    lines = [",".join(keys + ["n_paths", "n_escaped", "rate", "rate_lo", "rate_hi",
                              "mean_time", "cv", "reference_mean_time", "n_diverged"]
                      + extra)]
    for r in rows:
        vals = [json.dumps(config_json(r[k])).replace(",", ";") for k in keys]
        vals += [_cell(r.get(k)) for k in ("n_paths", "n_escaped")]
        vals += [_cell(v) for v in (r["rate"], *r["rate_ci95"], r["mean_time"], r.get("cv"),
                                    r["reference_mean_time"], r.get("n_diverged"))]
        if ams:
            vals += [r["method"]] + [_cell(v) for v in (*r["mean_time_ci95"], r.get("p"),
                                                        *r.get("p_ci95", (None, None)))]
        lines.append(",".join(vals))
    write_text(out / "sweep.csv", "\n".join(lines) + "\n")
    fig_name = f"rate_vs_{re.sub(r'[^A-Za-z0-9_]+', '_', xkey.split('.')[-1]).strip('_')}.png"
    _plot_sweep(out / fig_name, rows, x, xkey, pts, cross, cfg)
    return fig_name


def _plot_sweep(path, rows, x, xkey, pts, cross, cfg):
    savefig(plots.sweep_figure(rows, x, xkey, pts, cross, cfg), path)
