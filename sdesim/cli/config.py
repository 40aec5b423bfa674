"""Configs: the built-in default, loading a TOML file with ``--set`` overrides, checking
every section against the registry (:mod:`sdesim.cli.registry`), and sweep points.

Everything here is static: types, names, required keys and the ``[run]`` values. Values
that only the package can judge (a negative sharpness, a matrix that is not positive
definite) are checked when the objects are built (:mod:`sdesim.cli.build`).

``[run]``: ``dt``, ``t_max``, ``seed`` (the key ``jax.random.key(seed)``), ``bridge``, and
``method``: ``"direct"`` (the default: ``sd.escape`` on ``n_paths`` paths, in blocks of
``block`` paths, ``lanes``) or ``"ams"`` (``sd.escape_ams``, one call: ``n_replicas`` >= 2,
``k`` (1 <= k < n_replicas), ``n_runs`` >= 2 (the interval comes from their spread),
``levels = [z_A, z_Sigma]`` (z_A < z_Sigma < 0; the default score of the exit is 0 on its
boundary), ``n_direct`` >= 2, ``max_iterations`` >= 1, ``phase_score`` (true: a model with
a velocity is split on position and velocity), ``warmup`` >= 0 (SDE time the direct run
loops before it samples the entrances; default 5 memory times of Adam/Adai),
``directions = "saddles"`` (the phase score's energy along the saddles' unstable
directions, found from the start), each escape_ams's default when left out;
``t_max`` is the longest segment of a replica). The AMS keys with the direct method are
refused, naming the key, except in a sweep over ``"run.method"``, where they are the
AMS points' settings; the direct keys (``n_paths``, ``block``, ``lanes``) are not needed
by method = "ams" and are ignored there, so ``--set run.method=ams`` switches any config
(``--paths`` with only AMS points is refused: it would set nothing).
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from pathlib import Path

from .registry import expected, registry, type_ok

DEFAULT_CONFIG = """\
# sdesim default experiment: SGD (minibatch noise) escaping a 10-D Styblinski–Tang valley
[landscape]
name = "styblinski_tang"
dim = 10
sharpness = 1.0
data_std = 1.0        # data x ~ N(0, data_std² I); per-sample loss f(sqrt(k)θ − x)
valley = "local"      # start in the local minimum, exit when a coordinate crosses the saddle

[model]
name = "sgd"
lr = 0.06

[model.noise]
kind = "minibatch"    # exact Cov_x[∇ℓ(θ; x)]/B (population closed form)
batch_size = 4

[run]
n_paths = 4000
dt = 0.001
t_max = 1000.0
seed = 0
"""

SECTIONS = ("landscape", "model", "exit", "run", "sweep")

# The engine indexes paths and counts steps in 32-bit integers (sdesim.engine.escape).
MAX_PATHS = 2**31 - 1


class ConfigError(ValueError):
    """A config, flag or file the command line refuses: printed as one line, exit 2."""


def _check_table(where, table, allowed, required, skip=("name", "kind")):
    for k, v in table.items():
        if k in skip:
            continue
        if k not in allowed:
            raise ConfigError(f"unknown key '{k}' in [{where}]; allowed: "
                              f"{', '.join(sorted(set(allowed) | set(skip) & set(table)))}")
        if not type_ok(v, allowed[k].type):
            raise ConfigError(f"[{where}] {k} = {v!r}: expected {expected(allowed[k].type)}")
    for k in required:
        if k not in table:
            raise ConfigError(f"[{where}] is missing '{k}' ({expected(allowed[k].type)})")


def _choose(where, table, field, options):
    v = table.get(field)
    if v is None:
        raise ConfigError(f"[{where}] is missing '{field}'; allowed: {', '.join(options)}")
    if not isinstance(v, str) or v not in options:
        raise ConfigError(f"[{where}] {field} = {v!r}; allowed: {', '.join(options)}")
    return v


def _required(keys):
    return [k for k, key in keys.items() if key.required]


def validate(cfg, methods_swept=None):
    """Check a config dict (no [sweep] overrides applied); raise ConfigError naming the key.
    ``methods_swept``: the config is a point of a sweep over "run.method" (its keys of the
    other method are then ignored, not refused); default: whether ``cfg`` sweeps it."""
    import importlib

    _b = importlib.import_module("sdesim.cli.build")  # the module, not cli.build()

    reg = registry()
    for k in cfg:
        if k not in SECTIONS:
            raise ConfigError(f"unknown section [{k}]; allowed: {', '.join(SECTIONS)}")
        if not isinstance(cfg[k], dict):
            raise ConfigError(f"'{k}' must be a section [{k}], got {cfg[k]!r}")
    for sec in ("landscape", "model", "run"):
        if sec not in cfg:
            raise ConfigError(f"missing section [{sec}]")
    ls, mc = cfg["landscape"], cfg["model"]
    target = "target" in ls
    if target:  # the user's factory: its problem is known when it is built
        _b.check_target(ls)
        lname, le = None, None
    else:
        lname = _choose("landscape", ls, "name", reg.landscapes)
        le = reg.landscapes[lname]
        _check_table("landscape", ls, {**le.keys, **le.basin}, _required(le.keys))
    if "exit" in cfg:
        ek = _choose("exit", cfg["exit"], "kind", reg.exits)
        _check_table("exit", cfg["exit"], reg.exits[ek].keys, _required(reg.exits[ek].keys))
    elif target:
        pass  # the factory's exit, or an error when it is built
    elif not le.basin:
        raise ConfigError(f"[landscape] {lname} has no built-in basin: add an [exit] section "
                          f"(kind = {', '.join(reg.exits)}) and [landscape] theta0")
    else:
        for k in _required(le.basin):
            if k not in ls:
                raise ConfigError(f"[landscape] is missing '{k}' ({expected(le.basin[k].type)}"
                                  f": the argument of {le.label}.basin that sets the exit), "
                                  f"or add an [exit] section")
    if not target and not le.basin and "theta0" not in ls:
        raise ConfigError(f"[landscape] is missing 'theta0' (a list of numbers: the start; "
                          f"{lname} has no built-in basin)")
    mname = _choose("model", mc, "name", reg.models)
    me = reg.models[mname]
    _check_table("model", mc, me.keys, _required(me.keys))
    if me.noise_alias is not None:
        alias = me.noise_alias
        need = me.keys[alias].default is _b.NO_DEFAULT
        if (alias in mc and "noise" in mc) or (need and alias not in mc and "noise" not in mc):
            raise ConfigError(f"[model] {mname} needs {'exactly' if need else 'at most'} one "
                              f"of '{alias}' (a number, a list or a matrix: the noise scale "
                              f"Σ) or a [model.noise] table")
    if mname == _b.ALGORITHM:
        _b.check_algorithm(mc, lname)
    if "noise" in mc:
        nc = mc["noise"]
        kind = _choose("model.noise", nc, "kind", reg.noises)
        ne = reg.noises[kind]
        _check_table("model.noise", nc, ne.keys, _required(ne.keys))
        if kind == "minibatch_lowrank" and not target:
            raise ConfigError("[model.noise] kind = \"minibatch_lowrank\" takes the data and "
                              "per-sample loss of a [landscape] target; for a built-in "
                              "landscape use minibatch or minibatch_fixed")
        if not target and "data" in ne.filled and not _b.has_data_model(le.make):
            with_data = [n for n, e in reg.landscapes.items() if _b.has_data_model(e.make)]
            others = [n for n, e in reg.noises.items() if "data" not in e.filled]
            raise ConfigError(f"[model.noise] kind = \"{kind}\" needs a landscape with a "
                              f"data model ({', '.join(with_data)}), not {lname}; use "
                              f"{', '.join(others[:-1])} or {others[-1]}")
    algorithm = mname == _b.ALGORITHM
    ams = cfg["run"].get("method") == "ams"
    _check_table("run", cfg["run"], _b.RUN, [k for k in _required(_b.RUN)
                                             if not (k == "dt" and algorithm)
                                             and not (k in _b.DIRECT_ONLY and ams)], skip=())
    if methods_swept is None:
        methods_swept = "run.method" in cfg.get("sweep", {})
    _check_method(cfg["run"], methods_swept)
    if algorithm and cfg["run"].get("dt", mc["lr"]) != mc["lr"]:
        raise ConfigError(f"[run] dt = {cfg['run']['dt']} but [model] lr = {mc['lr']}: a "
                          f"discrete optimizer runs one iteration per step, dt = lr (leave "
                          f"dt out)")
    _check_run(cfg["run"], mc.get("lr") if algorithm else None)
    return cfg


def _check_method(rc, methods_swept=False):
    """The AMS keys need method = "ams" (outside a sweep over "run.method", where they
    are the AMS points' settings); the direct keys are ignored by method = "ams"."""
    import importlib

    _b = importlib.import_module("sdesim.cli.build")
    if rc.get("method", "direct") == "direct" and not methods_swept:
        for k in _b.AMS_RUN:
            if k in rc:
                has = ('method = "direct"' if "method" in rc
                       else 'no method (the default is "direct")')
                raise ConfigError(f"[run] {k} is a key of method = \"ams\" (adaptive "
                                  f"multilevel splitting), but [run] has {has}: set method = "
                                  f"\"ams\" or remove {k}")


# [run] keys of method = "ams": the least value and what the key counts
AMS_MIN = {"n_replicas": (2, "replicas per AMS run"),
           "k": (1, "replicas killed per AMS iteration at least"),
           "n_runs": (2, "independent AMS runs: the interval comes from their spread"),
           "n_direct": (2, "paths of the direct run that measures the cycle times"),
           "max_iterations": (1, "AMS iterations per run at most")}


def ams_default(name):
    import inspect

    from sdesim import rare

    return inspect.signature(rare.escape_ams).parameters[name].default


def _check_ams(rc):
    for k, (least, what) in AMS_MIN.items():
        if k in rc and rc[k] < least:
            raise ConfigError(f"[run] {k} = {rc[k]}: expected an integer >= {least} ({what})")
    if "k" in rc:
        n = rc.get("n_replicas", ams_default("n_replicas"))
        if rc["k"] >= n:
            given = "" if "n_replicas" in rc else " (the default)"
            raise ConfigError(f"[run] k = {rc['k']}: expected k < n_replicas = {n}{given} "
                              f"(k replicas are killed per AMS iteration; default "
                              f"n_replicas // 4)")
    if "warmup" in rc and not (math.isfinite(rc["warmup"]) and rc["warmup"] >= 0):
        raise ConfigError(f"[run] warmup = {rc['warmup']}: expected a finite SDE time >= 0 "
                          f"(the direct run loops Sigma -> A -> Sigma that long before it "
                          f"samples the entrances on Sigma)")
    if "levels" in rc:
        lv = rc["levels"]
        if len(lv) != 2 or not all(math.isfinite(v) for v in lv) or not lv[0] < lv[1]:
            raise ConfigError(f"[run] levels = {lv!r}: expected [z_A, z_Sigma], two finite "
                              f"scores with z_A < z_Sigma (A = {{score <= z_A}} around the "
                              f"minimum, Sigma = {{score = z_Sigma}}; the score is negative "
                              f"inside the exit and 0 on its boundary)")


def _check_run(rc, lr=None):
    """Values of [run] (the engine's arguments), with the engine's own checks and limits."""
    from sdesim import _checks

    for k in ("n_paths", "block", "lanes"):
        if k in rc and rc[k] < 1:
            raise ConfigError(f"[run] {k} = {rc[k]}: expected an integer >= 1")
    _check_ams(rc)
    if rc.get("n_paths", 0) > MAX_PATHS:
        raise ConfigError(f"[run] n_paths = {rc['n_paths']}: at most {MAX_PATHS} (2**31 - 1) "
                          f"paths per run (the engine indexes paths with 32-bit integers); "
                          f"split the work over several seeds")
    if "seed" in rc:
        lo, hi = seed_range()
        if not lo <= rc["seed"] <= hi:
            raise ConfigError(f"[run] seed = {rc['seed']}: {seed_rule()}")
    dt = rc.get("dt", lr)
    name = "dt" if "dt" in rc else "dt (= [model] lr)"
    for k, v in ((name, dt), ("t_max", rc["t_max"])):
        try:
            _checks.real(k.split()[0], v, positive=True)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"[run] {k} = {v!r}: {err}") from None
    if dt > rc["t_max"]:
        raise ConfigError(f"[run] {name} = {dt!r} > t_max = {rc['t_max']!r}: a path must be "
                          f"able to take at least one step (t_max >= dt)")
    from sdesim import engine

    page = getattr(engine, "NOISE_PAGE", 64)
    n_max = math.ceil(float(rc["t_max"]) / float(dt) - 1e-9)
    if n_max >= 2**31 - page:
        raise ConfigError(f"[run] t_max/dt = {rc['t_max']!r}/{dt!r} = {n_max} steps per path: "
                          f"at most {2**31 - page - 1} (the engine counts steps in 32-bit "
                          f"integers); raise dt or lower t_max")


def seed_range():
    """Seeds that give distinct streams: without JAX_ENABLE_X64, jax.random.key keeps only
    the low 32 bits (2**32 is the stream of 0, -1 that of 2**32 - 1)."""
    import jax

    return 0, (2**63 - 1 if jax.config.jax_enable_x64 else 2**32 - 1)


def seed_rule():
    import jax

    if jax.config.jax_enable_x64:
        return "expected an integer in 0 .. 2**63 - 1"
    return ("expected an integer in 0 .. 2**32 - 1 (4294967295): without JAX_ENABLE_X64=1 a "
            "larger or negative seed gives the stream of another seed")


# ---------------------------------------------------------------------------------------
# Loading, overrides, sweep points
# ---------------------------------------------------------------------------------------


def _parse_toml(text, where):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML: {err}") from err


def _read_config(path):
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML config file") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: "
                          f"{data[err.start:err.start + 1]!r}); a TOML file is UTF-8") from None


def _set(cfg, dotted, value):
    *head, key = dotted.split(".")
    node = cfg
    for h in head:
        node = node.setdefault(h, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set '{dotted}': '{h}' is not a section")
    node[key] = value


def _merge(cfg, tree):
    for k, v in tree.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            _merge(cfg[k], v)
        else:
            cfg[k] = v


def _target_near(cfg, folder):
    """A ``[landscape] target`` in a file ("file.py:factory") is found next to the config
    file: its relative path becomes absolute (the path a stored config keeps)."""
    import os

    ls = cfg.get("landscape")
    spec = ls.get("target") if isinstance(ls, dict) else None
    if not isinstance(spec, str):
        return
    mod, sep, fn = spec.rpartition(":")
    if sep and (mod.endswith(".py") or "/" in mod) and not os.path.isabs(mod):
        ls["target"] = os.path.abspath(os.path.join(folder, mod)) + ":" + fn


def load_config(path=None, overrides=()):
    """TOML file (or the built-in default) + ``KEY=VALUE`` overrides -> validated dict."""
    if path is None:
        cfg = _parse_toml(DEFAULT_CONFIG, "default config")
    else:
        cfg = _parse_toml(_read_config(path), path)
        _target_near(cfg, Path(path).parent)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. run.t_max=100")
        key, raw = (s.strip() for s in item.split("=", 1))
        try:  # a TOML line, so keys may be quoted: sweep."model.lr"=[0.1, 0.2]
            tree = tomllib.loads(f"{key} = {raw}")
        except tomllib.TOMLDecodeError:
            try:  # a bare word: a string
                tree = tomllib.loads(f"{key} = {json.dumps(raw)}")
            except tomllib.TOMLDecodeError as err:
                raise ConfigError(f"--set {item!r}: not KEY=VALUE ({err})") from None
        _merge(cfg, tree)
    validate(cfg)
    points(cfg)  # validates every sweep point too
    return cfg


def sweep_spec(cfg):
    """[sweep] -> (zipped keys, crossed keys, {key: values})."""
    sw = dict(cfg.get("sweep", {}))
    cross = sw.pop("cross", [])
    if not isinstance(cross, list) or not all(isinstance(c, str) for c in cross):
        raise ConfigError(f"[sweep] cross = {cross!r}: expected a list of swept keys")
    if not sw:
        raise ConfigError("[sweep] lists no parameters; e.g. \"landscape.sharpness\" = "
                          "[1.0, 2.0, 4.0]")
    for k, v in sw.items():
        sec = k.split(".")[0]
        if sec not in ("landscape", "model", "exit", "run") or "." not in k:
            raise ConfigError(f"[sweep] key '{k}': expected SECTION.KEY with SECTION one of "
                              f"landscape, model, model.noise, exit, run (quote it: "
                              f"\"{k}\" = [...])")
        if not isinstance(v, list) or not v:
            raise ConfigError(f"[sweep] \"{k}\" = {v!r}: expected a non-empty list of values")
    for c in cross:
        if c not in sw:
            raise ConfigError(f"[sweep] cross names '{c}', which is not swept; swept: "
                              f"{', '.join(sw)}")
    zipped = [k for k in sw if k not in cross]
    lengths = {k: len(sw[k]) for k in zipped}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"[sweep] zipped lists must have equal lengths, got {lengths}; "
                          f"list a key in 'cross' to take all combinations instead")
    return zipped, cross, sw


def describe(over):
    return ", ".join(f"{k}={v}" for k, v in over.items())


def points(cfg):
    """The list of (overrides dict, point config) of a config: one point if no [sweep]."""
    if "sweep" not in cfg:
        return [({}, cfg)]
    zipped, cross, sw = sweep_spec(cfg)
    base = {k: v for k, v in cfg.items() if k != "sweep"}
    n_zip = len(sw[zipped[0]]) if zipped else 1
    out = []
    for combo in itertools.product(*(sw[c] for c in cross)):
        for i in range(n_zip):
            over = dict(zip(cross, combo, strict=True))
            over.update({k: sw[k][i] for k in zipped})
            pc = json.loads(json.dumps(base))
            for k, v in over.items():
                _set(pc, k, v)
            try:
                validate(pc, methods_swept="run.method" in sw)
            except ConfigError as err:
                raise ConfigError(f"sweep point {len(out)} ({describe(over)}): {err}") from None
            out.append((over, pc))
    return out
