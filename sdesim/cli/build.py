"""Config -> objects: landscape, start and exit, noise, model, run arguments, and the
closed-form reference where one applies (``sdesim.theory.reference``).

Objects are built by calling the constructors the registry found
(:mod:`sdesim.cli.registry`) with the config's keys; what the constructors, ``check`` and
the engine's argument checks reject becomes one ``ConfigError`` line naming the section
and key. The keys declared here are the ones that are not constructor arguments.
"""

from __future__ import annotations

import inspect
import re

from .config import ConfigError
from .registry import NO_DEFAULT, Entry, Key, keys_of, registry

# ---------------------------------------------------------------------------------------
# Keys and arguments that are not constructor arguments
# ---------------------------------------------------------------------------------------

# every landscape: the start, and its dimension (a field of some landscapes; for the
# others a check of theta0's length)
LANDSCAPE_KEYS = {"theta0": Key("theta0", "vec"), "dim": Key("dim", "int")}
LANDSCAPE_KEY_HELP = {"theta0": "a list of numbers: the start; default the basin's minimum",
                      "dim": "an integer: checked against theta0"}
# allowed values of the string arguments of the built-in basins
BASIN_CHOICES = {"valley": ("local", "global"), "side": ("left", "right"),
                 "minimum": ("A", "B", "C")}

# [model] name = "algorithm": a discrete optimizer of sdesim.optim (an optax
# transformation from optim.OPTIMIZERS, its hyperparameters from the function's signature)
# run by sdesim.optim.Algorithm; data = minibatches from the landscape's data model.
ALGORITHM = "algorithm"
ALGORITHM_FILLED = ("optimizer", "data", "per_sample", "hyperparams")

# covariance models: data=None is the landscape's population form (needs loss.grad_cov)
NOISE_FILLED = ("data", "per_sample")
# exits: fn = the landscape (LevelSet: exit when the loss exceeds level; a target's
# eval_loss if it gives one), dim = theta0's; a centred exit's centre defaults to theta0
EXIT_FILLED = ("fn", "dim")
# LevelSet: the level relative to the start, level = fn(theta0) + above_start
LEVEL_KEYS = {"above_start": Key("above_start", "number")}

# [landscape] target = "module:factory" (or "file.py:factory", relative to the config
# file): the user's function, called with the [landscape.args] table as keyword
# arguments, returns the problem (see load_target)
TARGET_KEYS = {"target": Key("target", "str", True), "args": Key("args", "table"),
               "dim": Key("dim", "int")}
TARGET_FIELDS = ("loss", "params", "per_sample", "data", "eval_loss", "exit")

RUN = {k: Key(k, t, k in ("n_paths", "dt", "t_max")) for k, t in (
    ("n_paths", "int"), ("dt", "number"), ("t_max", "number"), ("seed", "int"),
    ("lanes", "int"), ("bridge", "bool"), ("block", "int"))}
# [run] method: "direct" (sd.escape, in blocks; the default) or "ams" (sd.escape_ams, one
# call). The keys of the AMS method are escape_ams's arguments (its defaults apply when
# left out); the direct method's own keys are not used by it (and not required).
METHODS = ("direct", "ams")
AMS_RUN = {k: Key(k, t) for k, t in (
    ("n_replicas", "int"), ("k", "int"), ("n_runs", "int"), ("levels", "vec"),
    ("n_direct", "int"), ("max_iterations", "int"), ("phase_score", "bool"),
    ("warmup", "number"), ("directions", ("saddles",)))}
DIRECT_ONLY = ("n_paths", "lanes", "block")
RUN.update({"method": Key("method", METHODS), **AMS_RUN})


def has_data_model(cls, need=("grad_cov",)):
    return all(callable(getattr(cls, a, None)) for a in need)


def _hyper(optim, opt):
    """Hyperparameter names of ``optim.OPTIMIZERS[opt]`` (its arguments but ``lr``)."""
    return [p for p in inspect.signature(optim.OPTIMIZERS[opt]).parameters if p != "lr"]


def algorithm_keys(optim):
    keys = {"optimizer": Key("optimizer", tuple(optim.OPTIMIZERS), True),
            "lr": Key("lr", "number", True)}
    for fn in optim.OPTIMIZERS.values():
        ks, _, _ = keys_of(fn, filled=("lr",), noise=False)
        for name, k in ks.items():
            keys.setdefault(name, Key(name, k.type, False, None, k.default))
    keys["n_data"] = Key("n_data", "int")
    keys["data_seed"] = Key("data_seed", "int")
    return keys


def check_algorithm(mc, lname):
    from sdesim import optim

    opt = mc["optimizer"]
    every = {h for o in optim.OPTIMIZERS for h in _hyper(optim, o)}
    mine = _hyper(optim, opt)
    for k in mc:
        if k in every and k not in mine:
            raise ConfigError(f"[model] {k} is not a hyperparameter of optimizer = \"{opt}\"; "
                              f"its hyperparameters: lr" + "".join(", " + h for h in mine))
    if "batch_size" in mc and ("noise" in mc or "alpha" in mc):
        raise ConfigError("[model] give batch_size (minibatch gradients from data) or a "
                          "[model.noise] table (injected noise), not both")
    if lname is None and ("n_data" in mc or "data_seed" in mc):
        raise ConfigError("[model] n_data/data_seed draw data from a built-in landscape's "
                          "data model; a [landscape] target gives its own data")
    if ("n_data" in mc or "data_seed" in mc) and "batch_size" not in mc:
        raise ConfigError("[model] n_data/data_seed need batch_size (minibatch gradients)")
    if mc.get("n_data", 1) < 1:
        raise ConfigError(f"[model] n_data = {mc['n_data']}: expected an integer >= 1 (data "
                          f"points drawn from the landscape's data model)")
    if "data_seed" in mc:
        from .config import seed_range, seed_rule

        lo, hi = seed_range()
        if not lo <= mc["data_seed"] <= hi:
            raise ConfigError(f"[model] data_seed = {mc['data_seed']}: {seed_rule()}")
    if "alpha" in mc and "noise" not in mc:
        raise ConfigError("[model] alpha needs a [model.noise] table (the covariance model "
                          "that sets the SαS noise scale (C/2)^(1/2))")
    reg = registry()
    if "batch_size" in mc and lname is not None and not has_data_model(
            reg.landscapes[lname].make, ("sample_data", "per_sample")):
        with_data = [n for n, e in reg.landscapes.items()
                     if has_data_model(e.make, ("sample_data", "per_sample"))]
        raise ConfigError(f"[model] batch_size draws minibatches from the landscape's data "
                          f"model ({', '.join(with_data)}), not {lname}; use a [model.noise] "
                          f"table")


def _minibatch_fixed(batch_size, *, loss, theta0):
    """The exact minibatch covariance at the start, held fixed (Xie et al.'s C ≈ H/B)."""
    import jax.numpy as jnp
    import numpy as np

    import sdesim as sd

    cov = np.asarray(loss.grad_cov(jnp.asarray(theta0)), float) / float(batch_size)
    return sd.noise.fixed(cov)


def _minibatch_lowrank(batch_size, k, *, data, per_sample, theta0):
    """Xie et al.'s local form for a network: the top-``k`` eigenpairs of the minibatch
    covariance ``C = Cov_x[∇ℓ(θ₀; x)]/batch_size`` at the start, ``k`` normals per step
    (``sdesim.noise.lowrank`` of ``sdesim.diagnostics.noise_eigs``)."""
    import sdesim as sd

    if data is None or per_sample is None:
        raise ValueError("kind = \"minibatch_lowrank\" needs the per-sample loss and data "
                         "of a [landscape] target (per_sample and data)")
    return sd.noise.lowrank(sd.diagnostics.noise_eigs(per_sample, theta0, data,
                                                      batch_size=batch_size, k=k))


def declared_noises():
    return {"minibatch_fixed": Entry(
        "minibatch_fixed", _minibatch_fixed,
        {"batch_size": Key("batch_size", "number", True, "batch_size")},
        filled=("data", "loss", "theta0")),
        "minibatch_lowrank": Entry(
        "minibatch_lowrank", _minibatch_lowrank,
        {"batch_size": Key("batch_size", "number", True, "batch_size"),
         "k": Key("k", "int", False, "k", 20)},
        filled=("data", "per_sample", "theta0"))}


# ---------------------------------------------------------------------------------------
# [landscape] target: the user's own problem (a network), from a factory function
# ---------------------------------------------------------------------------------------


class Target:
    """What a target factory returned, on the flat vector: ``loss``, ``theta0`` (NumPy),
    ``per_sample``, ``data``, ``eval_loss``, ``exit`` (each None if not given) and
    ``unravel`` (None when the parameters are already a vector)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def check_target(ls):
    """The static checks of a [landscape] table with ``target``."""
    if "name" in ls:
        raise ConfigError("[landscape] give name (a built-in landscape) or target (your "
                          "function \"module:factory\"), not both")
    from .config import _check_table

    _check_table("landscape", ls, TARGET_KEYS, ["target"], skip=())
    mod, sep, fn = ls["target"].rpartition(":")
    if not (sep and mod and fn.isidentifier()):
        raise ConfigError(f"[landscape] target = {ls['target']!r}: expected \"module:function"
                          f"\" (an importable module) or \"path/to/file.py:function\" "
                          f"(relative to the config file)")


def _import_factory(spec):
    import importlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    mod, _, fn = spec.rpartition(":")
    where = f"[landscape] target = {spec!r}"
    try:
        if mod.endswith(".py") or "/" in mod or os.sep in mod:
            path = Path(mod)
            if not path.is_file():
                raise ConfigError(f"{where}: no file {mod}")
            name = f"sdesim_target_{abs(hash(str(path.resolve())))}"
            spec_ = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[name] = module  # dataclasses and pickling look modules up here
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(mod)
    except ConfigError:
        raise
    except ImportError as err:
        raise ConfigError(f"{where}: cannot import {mod} ({err})") from None
    factory = getattr(module, fn, None)
    if not callable(factory):
        raise ConfigError(f"{where}: {mod} has no function {fn}")
    return factory


_TARGETS = {}


def load_target(ls):
    """Call the factory of ``[landscape] target`` with ``[landscape.args]`` (once per
    distinct target and args in a process: a sweep's points share one problem and its
    compiled programs) and flatten what it returns.

    The factory returns a mapping or an object (e.g. ``sdesim.networks.Problem``) with
    ``loss`` (params -> scalar, required), ``params`` (the start: any pytree of arrays, a
    network's minimum; ``theta0`` is a synonym), and optionally ``per_sample`` ((params,
    example) -> scalar, with ``data``: one example per row; needed for minibatch gradients
    and minibatch noise), ``eval_loss`` (what an [exit] level_set watches instead of
    ``loss``) and ``exit`` (an ``sdesim.exits`` object, used when the config has no
    [exit])."""
    import json

    import numpy as np

    from sdesim import pytrees

    args = ls.get("args", {})
    cache_key = (ls["target"], json.dumps(args, sort_keys=True))
    if cache_key in _TARGETS:
        return _TARGETS[cache_key]
    where = f"[landscape] target = {ls['target']!r}"
    factory = _import_factory(ls["target"])
    try:
        out = factory(**args)
    except TypeError as err:
        if "argument" in str(err):
            raise ConfigError(f"[landscape.args] {err}") from None
        raise
    from collections.abc import Mapping

    if isinstance(out, Mapping):
        got = dict(out)
        if "theta0" in got and "params" not in got:
            got["params"] = got.pop("theta0")
        unknown = sorted(set(got) - set(TARGET_FIELDS))
        if unknown:
            raise ConfigError(f"{where} returned unknown key(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(TARGET_FIELDS)} (theta0 = params)")
    else:
        got = {f: getattr(out, f) for f in TARGET_FIELDS if getattr(out, f, None) is not None}
        if "params" not in got and getattr(out, "theta0", None) is not None:
            got["params"] = out.theta0
    for f in ("loss", "params"):
        if got.get(f) is None:
            raise ConfigError(f"{where} returned no {f} (a {type(out).__name__}); the "
                              f"factory returns loss, params and optionally "
                              f"{', '.join(TARGET_FIELDS[2:])}")
    for f in ("loss", "per_sample", "eval_loss"):
        if got.get(f) is not None and not callable(got[f]):
            raise ConfigError(f"{where}: its {f} must be a function, got "
                              f"{type(got[f]).__name__}")
    if ("per_sample" in got) != ("data" in got):
        only = "per_sample" if "per_sample" in got else "data"
        raise ConfigError(f"{where}: per_sample and data come together (one example of "
                          f"data per row), got only {only}")
    params = got["params"]
    try:
        if pytrees.is_vector_like(params):
            flat, un = np.asarray(params, float), None
        else:
            flat, un = pytrees.layout(params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: its params: {err}") from None
    wrap = (lambda f: f) if un is None else (lambda f: pytrees.OnParams(f, un))
    data = got.get("data")
    if data is not None:  # as noise.minibatch: floating data in the run's float dtype
        import jax.numpy as jnp

        data = jnp.asarray(data)
        if jnp.issubdtype(data.dtype, jnp.floating):
            data = data.astype(jnp.result_type(float))
    tgt = Target(
        loss=wrap(got["loss"]), theta0=np.asarray(flat, float), unravel=un,
        per_sample=None if got.get("per_sample") is None else wrap(got["per_sample"]),
        data=data,
        eval_loss=None if got.get("eval_loss") is None else wrap(got["eval_loss"]),
        exit=None if got.get("exit") is None
        else (got["exit"] if un is None else pytrees.wrap_exit(got["exit"], un)))
    _TARGETS[cache_key] = tgt
    return tgt


# ---------------------------------------------------------------------------------------
# Package errors -> one line naming the section and key
# ---------------------------------------------------------------------------------------


def package_error(err, places):
    """``err`` (a ValueError/TypeError of the package) as a ConfigError naming the key:
    the config key (of the tables in ``places``, a list of (section, table)) that the
    message mentions first, with its value; else the first section."""
    msg = " ".join(str(err).split())
    # values the package echoes as JAX arrays: the number a config user wrote
    msg = re.sub(r"Array\((.*?), dtype=\w+(?:, weak_type=True)?\)", r"\1", msg)
    best = None
    for sec, table in places:
        for k, v in (table or {}).items():
            if k in ("name", "kind") or isinstance(v, dict):
                continue
            m = re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", msg)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), sec, k, v)
    if best is not None:
        _, sec, k, v = best
        return ConfigError(f"[{sec}] {k} = {v!r}: {msg}")
    # no key named: the section the message speaks of ("noise covariance ...", "loss
    # must return ..."), or the first
    words = {"landscape": r"landscape|loss", "model.noise": "noise"}
    named = [sec for sec, table in places if table is not None
             and re.search(rf"\b({words.get(sec, sec)})\b", msg)]
    return ConfigError(f"[{(named or [places[0][0]])[-1]}] {msg}")


def _call(places, fn, /, *args, **kw):
    try:
        return fn(*args, **kw)
    except ConfigError:
        raise
    except (ValueError, TypeError, ArithmeticError) as err:
        raise package_error(err, places) from None


def _value(v, key):
    import numpy as np

    if key.type in ("array", "vec"):
        return np.asarray(v, float) if isinstance(v, list) else float(v)
    if key.type == "number":
        return float(v)
    return v


def _kwargs(entry, table, skip=()):
    return {k.arg: _value(table[name], k) for name, k in entry.keys.items()
            if k.arg is not None and name in table and name not in skip
            and not isinstance(table[name], dict)}


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


def _noise(nc, loss, theta0, target=None):
    ne = registry().noises[nc["kind"]]
    context = {"data": None, "loss": loss, "theta0": theta0}
    if target is not None:  # the user's data and per-sample loss
        if "data" in ne.filled and target.data is None:
            raise ConfigError(f"[model.noise] kind = \"{nc['kind']}\" needs data: the "
                              f"target's factory returns no per_sample and data")
        if nc["kind"] == "minibatch_fixed":
            raise ConfigError("[model.noise] kind = \"minibatch_fixed\" needs a built-in "
                              "landscape's population covariance; for a target use "
                              "\"minibatch\" (exact, every step) or \"minibatch_lowrank\"")
        context.update(data=target.data, per_sample=target.per_sample)
    params = inspect.signature(ne.make).parameters
    kw = _kwargs(ne, nc)
    kw.update({k: context[k] for k in ne.filled if k in context and k in params})
    return _call([("model.noise", nc)], ne.make, **kw)


def _model(mc, loss, theta0, target=None):
    me = registry().models[mc["name"]]
    places = [("model", mc), ("model.noise", mc.get("noise"))]
    kw = _kwargs(me, mc)
    if "noise" in mc:
        kw[me.noise_arg] = _noise(mc["noise"], loss, theta0, target)
    if mc["name"] != ALGORITHM:
        return _call(places, me.make, **kw)
    import jax

    from sdesim import optim

    opt = mc["optimizer"]
    hyper = {k: mc[k] for k in _hyper(optim, opt) if k in mc}
    optimizer = _call(places, optim.OPTIMIZERS[opt], float(mc["lr"]), **hyper)
    fields = inspect.signature(me.make).parameters
    kw = {k: v for k, v in kw.items() if k in fields and k not in hyper}
    if "lr" in fields:
        kw["lr"] = float(mc["lr"])
    if "batch_size" in mc and target is not None:
        if target.data is None:
            raise ConfigError("[model] batch_size draws minibatches from data: the target's "
                              "factory returns no per_sample and data")
        kw.update(data=target.data, per_sample=target.per_sample)
    elif "batch_size" in mc:
        kw["data"] = _call(places, loss.sample_data, jax.random.key(mc.get("data_seed", 0)),
                           mc.get("n_data", 10_000))
    return _call(places, me.make, optimizer=optimizer, **kw)


def _start_and_exit(cfg, loss):
    """(theta0, exit) from the landscape's basin, [landscape] theta0 and [exit]."""
    import numpy as np

    import sdesim as sd

    ls = cfg["landscape"]
    le = registry().landscapes[ls["name"]]
    at = [("landscape", ls)]
    theta0 = exit = None
    quad = isinstance(loss, sd.landscapes.Quadratic) and "hessian_neg" not in ls
    if quad:
        # The centre, and for a config without [exit] the ellipsoid {½yᵀHy ≤ height}:
        # = loss.basin(height) for a diagonal Hessian, but an Ellipsoid of traced arrays,
        # which earlier versions used; kept so that results stay bit-identical.
        theta0 = np.broadcast_to(np.asarray(ls.get("center", 0.0), float), (loss.dim,))
        if "exit" not in cfg:
            from sdesim import _checks

            height = ls["height"]
            if np.ndim(height) != 0:
                raise ConfigError(f"[landscape] height = {height!r}: expected a number")
            _call(at, _checks.real, "height", height, positive=True)  # as basin() checks it
            h = np.asarray(ls["hessian"], float)
            exit = _call(at, sd.exits.Ellipsoid, theta0, np.diag(h) if h.ndim == 1 else h,
                         float(height))
    elif le.basin and ("exit" not in cfg or "theta0" not in ls):
        if all(k in ls for k, key in le.basin.items() if key.required):
            args = {k: _value(ls[k], key) for k, key in le.basin.items() if k in ls}
            theta0, exit = _call(at, loss.basin, **args)
    if "theta0" in ls:
        theta0 = np.asarray(ls["theta0"], float)
    if theta0 is None:
        need = [k for k, key in le.basin.items() if key.required]
        raise ConfigError("[landscape] is missing 'theta0' (a list of numbers: the start)"
                          + (f", or {', '.join(need)} to start at the basin's minimum"
                             if need else ""))
    theta0 = np.asarray(theta0, float)
    d = theta0.shape[0]
    if "dim" in ls and d != ls["dim"]:
        raise ConfigError(f"[landscape] theta0 has {d} coordinates but dim = {ls['dim']}")
    ldim = getattr(loss, "dim", None)
    if isinstance(ldim, int) and ldim != d:
        raise ConfigError(f"[landscape] theta0 has {d} coordinates but the {ls['name']} "
                          f"landscape has dimension {ldim}")
    if "exit" in cfg:
        exit = _exit(cfg["exit"], loss, theta0)
    return theta0, exit


def _exit(ec, fn, theta0):
    """The [exit] table's exit: ``fn`` fills a LevelSet's function, ``theta0`` a centred
    exit's centre when not given and ``above_start`` (level = fn(theta0) + above_start)."""
    import jax.numpy as jnp
    import numpy as np

    d = theta0.shape[0]
    ee = registry().exits[ec["kind"]]
    kw = _kwargs(ee, ec)
    kw.update({k: v for k, v in (("fn", fn), ("dim", d)) if k in ee.filled})
    if "center" in ee.keys and "center" not in ec:
        kw["center"] = theta0
    if "above_start" in ec:
        if "level" in ec:
            raise ConfigError("[exit] give level or above_start (level = the function at "
                              "the start + above_start), not both")
        at0 = float(_call([("exit", ec)], fn, jnp.asarray(theta0, jnp.result_type(float))))
        kw["level"] = at0 + float(ec["above_start"])
    if "matrix" in kw and np.ndim(kw["matrix"]) == 1:  # a vector: the diagonal
        kw["matrix"] = np.diag(kw["matrix"])
    exit = _call([("exit", ec)], ee.make, **kw)
    edim = getattr(exit, "dim", None)
    if isinstance(edim, int) and edim != d:
        first = next((k for k in ec if k != "kind" and isinstance(ec[k], list)), None)
        what = f" ({first} has {edim} coordinates)" if first else ""
        raise ConfigError(f"[exit] {ec['kind']} has dimension {edim}{what} but theta0 has "
                          f"{d} coordinates")
    return exit


def _target_start_and_exit(cfg, tgt):
    """(theta0, exit) of a [landscape] target: its parameters, and the [exit] table (a
    level_set watches the target's eval_loss if it gives one) or the target's own exit."""
    ls, theta0 = cfg["landscape"], tgt.theta0
    if theta0.ndim != 1:
        raise ConfigError(f"[landscape] target = {ls['target']!r}: its params must be a "
                          f"pytree or a vector, got an array of shape {theta0.shape}")
    if "dim" in ls and theta0.shape[0] != ls["dim"]:
        raise ConfigError(f"[landscape] the target's params have {theta0.shape[0]} "
                          f"coordinates but dim = {ls['dim']}")
    if "exit" in cfg:
        fn = tgt.loss if tgt.eval_loss is None else tgt.eval_loss
        return theta0, _exit(cfg["exit"], fn, theta0)
    if tgt.exit is None:
        raise ConfigError(f"[landscape] target = {ls['target']!r} returns no exit: add an "
                          f"[exit] section, e.g. kind = \"ball\" with radius (around the "
                          f"start), or kind = \"level_set\" with above_start (its loss, or "
                          f"eval_loss, that far above the start)")
    return theta0, tgt.exit


def build(cfg, reference=True, *, warn_unstable=False):
    """Point config -> (model, loss, theta0, exit, run kwargs, theory reference or None).

    Runs every check a run would: the constructors', ``check``, and the engine's argument
    checks (``sdesim.engine.check_inputs``: dimensions, θ₀ finite and inside the exit,
    values representable in the run's dtype); ``warn_unstable`` also gives the engine's
    step-stability warning (``--check``; a run gets it from ``sd.escape``). Raises
    ConfigError naming the key."""
    import jax
    import numpy as np

    ls, mc, rc = cfg["landscape"], cfg["model"], cfg["run"]
    target = None
    if "target" in ls:
        target = load_target(ls)
        loss = target.loss
        theta0, exit = _target_start_and_exit(cfg, target)
    else:
        le = registry().landscapes[ls["name"]]
        loss = _call([("landscape", ls)], le.make, **_kwargs(le, ls, skip=le.basin))
        if callable(getattr(loss, "check", None)):
            _call([("landscape", ls)], loss.check)
        theta0, exit = _start_and_exit(cfg, loss)
    if not np.all(np.isfinite(theta0)):
        where = ("[landscape] theta0" if "theta0" in ls else "the target's params"
                 if target is not None else "the basin's start theta0")
        bad = np.flatnonzero(~np.isfinite(theta0))
        shown = (f" = {theta0.tolist()}" if theta0.size <= 10 else
                 f" ({bad.size} coordinate(s) are not finite, the first at index {bad[0]})")
        raise ConfigError(f"{where}{shown}: must be finite")
    model = _model(mc, loss, theta0, target)
    if rc.get("method") == "ams":
        run = _ams_run(rc, mc)
    else:
        n = rc["n_paths"]
        run = dict(n_paths=n, dt=float(rc.get("dt", mc.get("lr", 0.0))),
                   t_max=float(rc["t_max"]), key=jax.random.key(int(rc.get("seed", 0))),
                   bridge=bool(rc.get("bridge", True)),
                   block=int(rc.get("block", _default_block(n))))
        if "lanes" in rc:
            run["lanes"] = int(rc["lanes"])
    _engine_checks(cfg, model, loss, theta0, exit, run, warn_unstable)
    if run.get("method") == "ams":
        _ams_checks(cfg, theta0, exit, run)
    ref = None
    if reference:  # the closed form, where one applies (sdesim.theory.reference)
        from sdesim import theory

        r = _call([("landscape", ls), ("model", mc)], theory.reference, model, loss, theta0,
                  exit)
        ref = None if r is None else r.as_dict()
        if r is not None and r.barrier_over_noise is not None:  # for the range check
            ref["barrier_over_noise"] = r.barrier_over_noise
    return model, loss, theta0, exit, run, ref


def _engine_checks(cfg, model, loss, theta0, exit, run, warn_unstable=False):
    """The checks ``sd.escape`` runs before it compiles anything, now, naming the key."""
    import jax.numpy as jnp

    from sdesim import engine

    places = [("run", cfg["run"]), ("landscape", cfg["landscape"]), ("exit", cfg.get("exit")),
              ("model", cfg["model"]), ("model.noise", cfg["model"].get("noise"))]
    _call(places[3:], model.check, theta0.shape[0])
    th = jnp.asarray(theta0, jnp.result_type(float))
    if bool(_call(places[1:3], exit.outside, th)):
        src = "[landscape] theta0" if "theta0" in cfg["landscape"] else "the basin's start"
        where = (f"the [exit] {cfg['exit']['kind']} region" if "exit" in cfg
                 else "the basin")
        raise ConfigError(f"{src} {theta0.tolist()} is already outside {where}: every path "
                          f"would 'escape' at the first step; start inside the exit region")
    _call(places, engine.check_inputs, model, loss, theta0, exit, run.get("n_paths", 1),
          run["dt"], run["t_max"], run["key"])
    warn = engine.warn_if_unstable
    if warn_unstable and warn is not None:  # the stability warning sd.escape would give
        _call(places, warn, model, loss, th, run["dt"])


def _ams_run(rc, mc):
    """The arguments of ``sd.escape_ams`` (``method`` = "ams" besides): [run]'s AMS keys
    that are given (escape_ams's defaults for the others), dt, t_max (the longest replica
    segment), the key from the seed as for the direct method, bridge."""
    import jax

    run = dict(method="ams", dt=float(rc.get("dt", mc.get("lr", 0.0))),
               t_max=float(rc["t_max"]), key=jax.random.key(int(rc.get("seed", 0))),
               bridge=bool(rc.get("bridge", True)))
    for k in AMS_RUN:
        if k in rc:
            run[k] = (tuple(float(v) for v in rc[k]) if k == "levels"
                      else bool(rc[k]) if k == "phase_score"
                      else float(rc[k]) if k == "warmup"
                      else rc[k] if k == "directions" else int(rc[k]))
    return run


def _ams_checks(cfg, theta0, exit, run):
    """What ``escape_ams`` checks of its score and levels before it runs, naming the key:
    the default score of the exit (sdesim.rare.default_score; 0 on the exit's boundary,
    negative inside) and ``score(theta0) <= z_A < z_Sigma < 0``."""
    import jax.numpy as jnp

    from sdesim import rare

    rc = cfg["run"]
    score = _call([("exit", cfg.get("exit")), ("landscape", cfg["landscape"])],
                  rare.default_score, exit, jnp.asarray(theta0, jnp.result_type(float)))
    s0 = float(score(jnp.asarray(theta0, jnp.result_type(float))))
    if "levels" not in run:
        return
    z_a, z_s = run["levels"]
    if not s0 <= z_a:
        raise ConfigError(f"[run] levels = {rc['levels']!r}: z_A must be >= score(theta0) = "
                          f"{s0:.6g} (the start's score; A = {{score <= z_A}} holds the "
                          f"minimum)")
    if not z_s < 0:
        raise ConfigError(f"[run] levels = {rc['levels']!r}: z_Sigma must be < 0, the score "
                          f"on the exit's boundary (score(theta0) = {s0:.6g})")


def _default_block(n_paths):
    """Paths per saved block (the resume unit, so what Ctrl-C can lose): an eighth of the
    run, at least 1 000 paths (a block has its own pool, ``default_lanes(block)`` wide, and
    drains its own slow tail). Measured on the default experiment (4 000 paths, so 4 blocks
    of 1 000; ``python benchmarks/progress_overhead.py``): lane-steps +3.6% over one call,
    wall time the same within the machine's noise (narrower pools); blocks of 500 cost +16%
    lane-steps."""
    return int(min(n_paths, max(-(-n_paths // 8), 1000)))


__all__ = ["build", "NO_DEFAULT"]
