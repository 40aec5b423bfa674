"""The ``sdesim`` command: ``sdesim run``, ``sdesim sweep``, ``sdesim figures``.

A TOML config names a landscape (and its basin), a model with its noise, optionally an exit
and a start, and the run settings; ``[sweep]`` lists parameter values. ``sdesim run`` with
no file runs the built-in default experiment: Gaussian SGD with exact minibatch noise
escaping the local valley of the 10-D data-shifted Styblinski–Tang function, compared with
the exact 1-D mean first-passage time (F7) of one coordinate (landscape and noise are
separable, so the 10-D escape is the first of 10 independent coordinate escapes: mean time
≈ τ_1D/10 once escape is metastable).

Results folder (one per run; a sweep has one per point under ``points/``):
``run.json`` (the resolved config, written first: ``--resume`` refuses another config),
``blocks/paths-FIRST-LAST.npz`` (per-path steps and status of paths FIRST..LAST-1, each
written atomically when its block finishes — the resume points), then ``summary.json``,
``paths.csv``, ``survival.png``, ``histogram.png`` (and for a sweep ``sweep.json``,
``sweep.csv``, ``rate_vs_<param>.png``). Paths are global indices of the seed's stream
(``escape(first_path=...)``), so the blocks of a resumed run equal one uninterrupted run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

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

# ---------------------------------------------------------------------------------------
# Schema: key -> type ("num", "int", "bool", "str", "vec", "mat", "a|b" alternatives, or a
# tuple of allowed strings). Required keys per kind in REQUIRED.
# ---------------------------------------------------------------------------------------

LANDSCAPES = {
    "styblinski_tang": dict(dim="int", sharpness="num", data_std="num",
                            valley=("local", "global")),
    "double_well": dict(barrier="num", width="num", tilt="num", stiffness="num", dim="int",
                        side=("left", "right"), past="num"),
    "quadratic": dict(hessian="vec|mat", center="num|vec", height="num"),
    "rastrigin": dict(dim="int", amplitude="num"),
    "rosenbrock": dict(dim="int", a="num", b="num"),
}
_PHASE = dict(lr="num", alpha="num", scheme=("exponential", "euler"), noise="table")
_LEVY = dict(lr="num", alpha="num", sigma="num|vec|mat", noise="table")
_ADAM_LEVY = dict(_LEVY, beta1="num", beta2="num", epsilon="num")
MODELS = {
    "langevin": dict(temperature="num"),
    "underdamped": dict(mass="num", friction="num", temperature="num",
                        scheme=("semi-implicit", "euler")),
    "sgd": dict(lr="num", noise="table"),
    "momentum": dict(_PHASE, beta1="num", beta3="num"),
    "adam": dict(_PHASE, beta1="num", beta2="num", eps="num"),
    "adai": dict(_PHASE, beta0="num", beta2="num", eps="num"),
    "sgd_levy": _LEVY,
    "adam_levy": _ADAM_LEVY,
    "adal": dict(_ADAM_LEVY, decay="bool"),
    # a discrete optimizer (sdesim.optim, optax) run by the engine, one iteration per step
    "algorithm": dict(optimizer=("sgd", "momentum", "adam", "adai", "adal"), lr="num",
                      beta0="num", beta1="num", beta2="num", eps="num",
                      style=("pytorch", "adam"), decay="bool", weight_decay="num",
                      alpha="num", noise="table", batch_size="int", n_data="int",
                      data_seed="int"),
}
# hyperparameters of each discrete optimizer (sdesim.optim.<name>(lr, ...))
OPTIMIZER_KEYS = {"sgd": (), "momentum": ("beta1", "style"), "adam": ("beta1", "beta2", "eps"),
                  "adai": ("beta0", "beta2", "eps", "weight_decay"),
                  "adal": ("beta1", "beta2", "eps", "decay")}
NOISES = {
    "isotropic": dict(variance="num"),
    "fixed": dict(cov="vec|mat"),
    "hessian": dict(batch_size="num", floor="num"),
    "minibatch": dict(batch_size="num"),
    "minibatch_fixed": dict(batch_size="num"),
}
EXITS = {
    "halfspace": dict(normal="vec", offset="num"),
    "box": dict(lower="vec", upper="vec"),
    "ellipsoid": dict(center="vec", matrix="vec|mat", level="num"),
    "level_set": dict(level="num"),
}
RUN = dict(n_paths="int", dt="num", t_max="num", seed="int", lanes="int", bridge="bool",
           block="int")
REQUIRED = {
    "styblinski_tang": ("dim",), "quadratic": ("hessian",), "rastrigin": ("dim",),
    "rosenbrock": ("dim",),
    "langevin": ("temperature",), "underdamped": ("mass", "friction", "temperature"),
    "sgd": ("lr", "noise"), "momentum": ("lr", "beta1", "noise"), "adam": ("lr", "noise"),
    "adai": ("lr", "noise"), "sgd_levy": ("lr", "alpha"), "adam_levy": ("lr", "alpha"),
    "adal": ("lr", "alpha"), "algorithm": ("optimizer", "lr"),
    "isotropic": ("variance",), "fixed": ("cov",), "hessian": ("batch_size",),
    "minibatch": ("batch_size",), "minibatch_fixed": ("batch_size",),
    "halfspace": ("normal", "offset"), "box": ("lower", "upper"),
    "ellipsoid": ("center", "matrix", "level"), "level_set": ("level",),
    "run": ("n_paths", "dt", "t_max"),
}
SECTIONS = ("landscape", "model", "exit", "run", "sweep")
TYPE_NAMES = {"num": "a number", "int": "an integer", "bool": "true or false",
              "str": "a string", "vec": "a list of numbers",
              "mat": "a list of lists of numbers (a matrix)", "table": "a table"}


class ConfigError(ValueError):
    pass


def _is_num(v):
    return isinstance(v, int | float) and not isinstance(v, bool)


def _type_ok(v, spec):
    if isinstance(spec, tuple):
        return v in spec
    checks = {"num": _is_num, "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
              "bool": lambda x: isinstance(x, bool), "str": lambda x: isinstance(x, str),
              "vec": lambda x: isinstance(x, list) and len(x) > 0 and all(map(_is_num, x)),
              "mat": lambda x: isinstance(x, list) and len(x) > 0 and all(
                  isinstance(r, list) and len(r) == len(x) and all(map(_is_num, r)) for r in x),
              "table": lambda x: isinstance(x, dict)}
    return any(checks[s](v) for s in spec.split("|"))


def _expected(spec):
    if isinstance(spec, tuple):
        return "one of " + ", ".join(f'"{s}"' for s in spec)
    return " or ".join(TYPE_NAMES[s] for s in spec.split("|"))


def _check_table(where, table, allowed, required, skip=("name", "kind")):
    for k, v in table.items():
        if k in skip:
            continue
        if k not in allowed:
            raise ConfigError(f"unknown key '{k}' in [{where}]; allowed: "
                              f"{', '.join(sorted(set(allowed) | set(skip) & set(table)))}")
        if not _type_ok(v, allowed[k]):
            raise ConfigError(f"[{where}] {k} = {v!r}: expected {_expected(allowed[k])}")
    for k in required:
        if k not in table:
            raise ConfigError(f"[{where}] is missing '{k}' ({_expected(allowed[k])})")


def _choose(where, table, field, options):
    v = table.get(field)
    if v is None:
        raise ConfigError(f"[{where}] is missing '{field}'; allowed: {', '.join(options)}")
    if v not in options:
        raise ConfigError(f"[{where}] {field} = {v!r}; allowed: {', '.join(options)}")
    return v


def validate(cfg):
    """Check a config dict (no [sweep] overrides applied); raise ConfigError naming the key."""
    for k in cfg:
        if k not in SECTIONS:
            raise ConfigError(f"unknown section [{k}]; allowed: {', '.join(SECTIONS)}")
        if not isinstance(cfg[k], dict):
            raise ConfigError(f"'{k}' must be a section [{k}], got {cfg[k]!r}")
    for sec in ("landscape", "model", "run"):
        if sec not in cfg:
            raise ConfigError(f"missing section [{sec}]")
    ls, mc = cfg["landscape"], cfg["model"]
    lname = _choose("landscape", ls, "name", LANDSCAPES)
    _check_table("landscape", ls, dict(LANDSCAPES[lname], theta0="vec"), REQUIRED.get(lname, ()))
    if "exit" in cfg:
        ek = _choose("exit", cfg["exit"], "kind", EXITS)
        _check_table("exit", cfg["exit"], EXITS[ek], REQUIRED[ek])
    elif lname in ("rastrigin", "rosenbrock"):
        raise ConfigError(f"[landscape] {lname} has no built-in basin: add an [exit] section "
                          f"(kind = {', '.join(EXITS)}) and [landscape] theta0")
    elif lname == "quadratic" and "height" not in ls:
        raise ConfigError("[landscape] is missing 'height' (a number: exit when the loss "
                          "exceeds it), or add an [exit] section")
    if lname in ("rastrigin", "rosenbrock") and "theta0" not in ls:
        raise ConfigError(f"[landscape] is missing 'theta0' (a list of numbers: the start; "
                          f"{lname} has no built-in basin)")
    mname = _choose("model", mc, "name", MODELS)
    _check_table("model", mc, MODELS[mname], REQUIRED[mname])
    if mname in ("sgd_levy", "adam_levy", "adal") and ("sigma" in mc) == ("noise" in mc):
        raise ConfigError(f"[model] {mname} needs exactly one of 'sigma' (a number, a list "
                          f"or a matrix: the noise scale Σ) or a [model.noise] table")
    if mname == "algorithm":
        _check_algorithm(mc, lname)
    if "noise" in mc:
        kind = _choose("model.noise", mc["noise"], "kind", NOISES)
        _check_table("model.noise", mc["noise"], NOISES[kind], REQUIRED[kind])
        if kind == "minibatch" and lname != "styblinski_tang":
            raise ConfigError(f"[model.noise] kind = \"minibatch\" needs a landscape with a "
                              f"data model (styblinski_tang), not {lname}; use hessian, "
                              f"isotropic or fixed")
    # a discrete optimizer steps one iteration per step: dt = lr unless given
    _check_table("run", cfg["run"], RUN, [k for k in REQUIRED["run"]
                                          if not (k == "dt" and mname == "algorithm")],
                 skip=())
    if mname == "algorithm" and cfg["run"].get("dt", mc["lr"]) != mc["lr"]:
        raise ConfigError(f"[run] dt = {cfg['run']['dt']} but [model] lr = {mc['lr']}: a "
                          f"discrete optimizer runs one iteration per step, dt = lr (leave "
                          f"dt out)")
    for k in ("n_paths", "block", "lanes"):
        if k in cfg["run"] and cfg["run"][k] < 1:
            raise ConfigError(f"[run] {k} = {cfg['run'][k]}: expected an integer >= 1")
    return cfg


def _check_algorithm(mc, lname):
    opt = mc["optimizer"]
    for k in mc:
        if k in OPTIMIZER_KEYS["adal"] + OPTIMIZER_KEYS["adai"] + ("style",) and \
                k not in OPTIMIZER_KEYS[opt]:
            raise ConfigError(f"[model] {k} is not a hyperparameter of optimizer = \"{opt}\"; "
                              f"its hyperparameters: lr"
                              + "".join(", " + h for h in OPTIMIZER_KEYS[opt]))
    if "batch_size" in mc and ("noise" in mc or "alpha" in mc):
        raise ConfigError("[model] give batch_size (minibatch gradients from data) or a "
                          "[model.noise] table (injected noise), not both")
    if ("n_data" in mc or "data_seed" in mc) and "batch_size" not in mc:
        raise ConfigError("[model] n_data/data_seed need batch_size (minibatch gradients)")
    if "alpha" in mc and "noise" not in mc:
        raise ConfigError("[model] alpha needs a [model.noise] table (the covariance model "
                          "that sets the SαS noise scale (C/2)^(1/2))")
    if "batch_size" in mc and lname != "styblinski_tang":
        raise ConfigError(f"[model] batch_size draws minibatches from the landscape's data "
                          f"model (styblinski_tang), not {lname}; use a [model.noise] table")


# ---------------------------------------------------------------------------------------
# Loading, overrides, sweep points
# ---------------------------------------------------------------------------------------


def _parse_toml(text, where):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML: {err}") from err


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


def load_config(path=None, overrides=()):
    """TOML file (or the built-in default) + ``KEY=VALUE`` overrides -> validated dict."""
    if path is None:
        cfg = _parse_toml(DEFAULT_CONFIG, "default config")
    else:
        cfg = _parse_toml(Path(path).read_text(), path)
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


def _sweep_spec(cfg):
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


def points(cfg):
    """The list of (overrides dict, point config) of a config: one point if no [sweep]."""
    if "sweep" not in cfg:
        return [({}, cfg)]
    zipped, cross, sw = _sweep_spec(cfg)
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
                validate(pc)
            except ConfigError as err:
                desc = ", ".join(f"{k}={v}" for k, v in over.items())
                raise ConfigError(f"sweep point {len(out)} ({desc}): {err}") from None
            out.append((over, pc))
    return out


# ---------------------------------------------------------------------------------------
# Config -> objects
# ---------------------------------------------------------------------------------------


def _arr(v):
    import numpy as np

    return np.asarray(v, float) if isinstance(v, list) else float(v)


def _noise(nc, loss, theta0):
    import jax.numpy as jnp
    import numpy as np

    import sdesim as sd

    kind = nc["kind"]
    if kind == "isotropic":
        return sd.noise.isotropic(float(nc["variance"]))
    if kind == "fixed":
        return sd.noise.fixed(np.asarray(nc["cov"], float))
    if kind == "hessian":
        return sd.noise.hessian(float(nc["batch_size"]), float(nc.get("floor", 0.0)))
    if kind == "minibatch":
        return sd.noise.minibatch(None, float(nc["batch_size"]))
    if not hasattr(loss, "grad_cov"):  # minibatch_fixed
        raise ConfigError(f"[model.noise] kind = \"minibatch_fixed\" needs a landscape with a "
                          f"data model (styblinski_tang), not {type(loss).__name__}")
    # the exact minibatch covariance at the start, held fixed (Xie et al.'s C ≈ H/B)
    cov = np.asarray(loss.grad_cov(jnp.asarray(theta0)), float) / float(nc["batch_size"])
    return sd.noise.fixed(cov)


def build(cfg, reference=True):
    """Point config -> (model, loss, theta0, exit, run kwargs, theory reference or None)."""
    import jax
    import numpy as np

    import sdesim as sd

    ls, mc, rc = cfg["landscape"], cfg["model"], cfg["run"]
    lname = ls["name"]
    theta0 = exit = None
    if lname == "styblinski_tang":
        loss = sd.landscapes.StyblinskiTang(ls["dim"], float(ls.get("sharpness", 1.0)),
                                            float(ls.get("data_std", 0.0)))
        theta0, exit = loss.basin(ls.get("valley", "local"))
    elif lname == "double_well":
        loss = sd.landscapes.DoubleWell(float(ls.get("barrier", 1.0)),
                                        float(ls.get("width", 1.0)), float(ls.get("tilt", 0.0)),
                                        float(ls.get("stiffness", 1.0)), int(ls.get("dim", 1)))
        theta0, exit = loss.basin(ls.get("side", "left"), float(ls.get("past", 0.0)))
    elif lname == "quadratic":
        loss = sd.landscapes.Quadratic(np.asarray(ls["hessian"], float),
                                       _arr(ls.get("center", 0.0)))
        theta0 = np.broadcast_to(np.asarray(ls.get("center", 0.0), float), (loss.dim,))
        if "height" in ls:
            # = loss.basin(height) for a diagonal Hessian, but an Ellipsoid is a pytree of
            # traced arrays: a sweep over the Hessian reuses one program (basin's LevelSet
            # keeps the loss as static metadata, which the jit cache cannot compare)
            h = np.asarray(ls["hessian"], float)
            exit = sd.exits.Ellipsoid(theta0, np.diag(h) if h.ndim == 1 else h,
                                      float(ls["height"]))
    elif lname == "rastrigin":
        loss = sd.landscapes.Rastrigin(float(ls.get("amplitude", 10.0)))
    else:
        loss = sd.landscapes.Rosenbrock(float(ls.get("a", 1.0)), float(ls.get("b", 100.0)))
    if "theta0" in ls:
        theta0 = np.asarray(ls["theta0"], float)
    if "exit" in cfg:
        ec = cfg["exit"]
        kind = ec["kind"]
        if kind == "halfspace":
            exit = sd.exits.Halfspace(np.asarray(ec["normal"], float), float(ec["offset"]))
        elif kind == "box":
            exit = sd.exits.Box(np.asarray(ec["lower"], float), np.asarray(ec["upper"], float))
        elif kind == "ellipsoid":
            m = np.asarray(ec["matrix"], float)
            exit = sd.exits.Ellipsoid(np.asarray(ec["center"], float),
                                      np.diag(m) if m.ndim == 1 else m, float(ec["level"]))
        else:
            exit = sd.exits.LevelSet(loss, float(ec["level"]), dim=len(theta0))
    dim = ls.get("dim")
    if dim is not None and len(theta0) != dim:
        raise ConfigError(f"[landscape] theta0 has {len(theta0)} coordinates but dim = {dim}")

    mname = mc["name"]
    if mname == "algorithm":
        model = _algorithm(mc, loss, theta0)
    else:
        model = _model(mname, mc, loss, theta0)
    # value checks (lr > 0, shapes, ...) now, as a config error naming the argument
    model.check(len(theta0))
    sd.exits.as_exit(exit)
    if hasattr(loss, "check"):
        loss.check()

    n = rc["n_paths"]
    run = dict(n_paths=n, dt=float(rc.get("dt", mc.get("lr", 0.0))), t_max=float(rc["t_max"]),
               key=jax.random.key(int(rc.get("seed", 0))), bridge=bool(rc.get("bridge", True)),
               block=int(rc.get("block", _default_block(n))))
    if "lanes" in rc:
        run["lanes"] = int(rc["lanes"])
    ref = _reference(model, loss, cfg) if reference else None
    return model, loss, np.asarray(theta0, float), exit, run, ref


def _algorithm(mc, loss, theta0):
    """[model] name = "algorithm": sdesim.optim.Algorithm with an optax optimizer."""
    import jax

    from sdesim import optim

    opt = mc["optimizer"]
    hyper = {k: mc[k] for k in OPTIMIZER_KEYS[opt] if k in mc}
    kw = dict(lr=float(mc["lr"]))
    if "batch_size" in mc:
        kw["data"] = loss.sample_data(jax.random.key(mc.get("data_seed", 0)),
                                      mc.get("n_data", 10_000))
        kw["batch_size"] = mc["batch_size"]
    if "noise" in mc:
        kw["noise"] = _noise(mc["noise"], loss, theta0)
    if "alpha" in mc:
        kw["alpha"] = float(mc["alpha"])
    return optim.Algorithm(optim.OPTIMIZERS[opt](float(mc["lr"]), **hyper), **kw)


def _model(mname, mc, loss, theta0):
    import sdesim as sd

    kw = {k: (v if isinstance(v, str | bool) else _arr(v)) for k, v in mc.items()
          if k not in ("name", "noise", "sigma")}
    if "noise" in mc:
        noise = _noise(mc["noise"], loss, theta0)
        kw["sigma" if mname in ("sgd_levy", "adam_levy", "adal") else "noise"] = noise
    if "sigma" in mc:
        kw["sigma"] = _arr(mc["sigma"])
    cls = {"langevin": sd.models.Langevin, "underdamped": sd.models.Underdamped,
           "sgd": sd.models.SGD, "momentum": sd.models.Momentum, "adam": sd.models.Adam,
           "adai": sd.models.Adai, "sgd_levy": sd.models.SGDLevy,
           "adam_levy": sd.models.AdamLevy, "adal": sd.models.AdaL}[mname]
    return cls(**kw)


def _default_block(n_paths):
    """Paths per saved block (the resume unit): an eighth of the run, but at least 16 pool
    widths. Each block drains its own slow tail, which costs lane-steps: measured on the
    default experiment (benchmarks/progress_overhead.py), blocks of 16 widths run +4%
    lane-steps over one call, 8 widths +12%, 4 widths +31%. Runs below 16 widths are one
    block."""
    from sdesim.engine import default_lanes

    return int(min(n_paths, max(-(-n_paths // 8), 16 * default_lanes(n_paths))))


def _reference(model, loss, cfg):
    """Closed-form mean escape time where one applies, or None."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import sdesim as sd
    from sdesim import theory

    ls, mc = cfg["landscape"], cfg["model"]
    if "exit" in cfg or "theta0" in ls:
        return None  # the closed forms below are for the landscapes' own basins
    nkind = mc.get("noise", {}).get("kind")
    if isinstance(loss, sd.landscapes.StyblinskiTang) and (
            isinstance(model, sd.models.Langevin) or type(model) is sd.models.SGD
            and nkind in ("isotropic", "hessian", "minibatch", "minibatch_fixed")):
        one = sd.landscapes.StyblinskiTang(1, loss.sharpness, loss.data_std)
        cp = one.critical_points()
        valley = ls.get("valley", "local")
        drift = lambda x: -np.asarray(jax.vmap(jax.grad(lambda t: one(t[None])))(
            jnp.asarray(x)), float)
        if isinstance(model, sd.models.Langevin):
            temp = float(model.temperature)
            variance = lambda x: np.full(np.shape(x), 2 * temp)
        elif nkind == "minibatch_fixed":  # separable: every coordinate's variance is ηC_11
            var = float(model.lr) * float(model.noise.sqrt_cov[0]) ** 2
            variance = lambda x: np.full(np.shape(x), var)
        else:
            # the model's own noise factor on the 1-D landscape: variance = (sqrt(η)·B)²
            variance = lambda x: np.asarray(jax.vmap(
                lambda t: model._factor(t[None], one)[0] ** 2)(jnp.asarray(x)), float)
        tau1 = theory.mfpt_1d_ito(drift, variance, cp[f"{valley}_min"], cp["saddle"],
                                  lower=np.inf if valley == "local" else -np.inf)
        return {"formula": "F7 exact 1-D MFPT per coordinate; d-D mean ≈ τ_1D/d "
                           "(first of d independent metastable escapes)",
                "tau_1d": float(tau1), "mean_time": float(tau1) / loss.dim}
    if isinstance(loss, sd.landscapes.DoubleWell) and isinstance(model, sd.models.Langevin) \
            and loss.dim == 1:
        cp = loss.critical_points()
        side = ls.get("side", "left")
        c = cp["saddle"] + float(ls.get("past", 0.0)) * (1 if side == "left" else -1)
        well = lambda x: np.asarray(loss.well(np.asarray(x, float)), float)
        tau = theory.mfpt_1d(well, float(cp[f"{side}_min"]), c, float(model.temperature))
        return {"formula": "F4 exact 1-D MFPT", "mean_time": float(tau)}
    if isinstance(loss, sd.landscapes.Quadratic) and type(model) in (
            sd.models.SGDLevy, sd.models.AdamLevy) and np.ndim(ls["hessian"]) == 1 \
            and nkind in (None, "hessian", "isotropic"):
        hess = np.asarray(ls["hessian"], float)
        if nkind is None:
            sigma = np.broadcast_to(np.asarray(mc["sigma"], float), hess.shape) \
                if np.ndim(mc["sigma"]) < 2 else np.asarray(mc["sigma"], float)
        elif nkind == "hessian":  # Σ = (C/2)^{1/2}, C = max(H, floor)/B
            c = np.maximum(hess, mc["noise"].get("floor", 0.0)) / mc["noise"]["batch_size"]
            sigma = np.sqrt(c / 2)
        else:
            sigma = np.full(hess.shape, np.sqrt(mc["noise"]["variance"] / 2))
        pred = theory.levy_sgd_vs_adam(float(model.alpha), float(model.lr), sigma, hess,
                                       float(ls["height"]),
                                       epsilon=float(getattr(model, "epsilon", 1e-8)))
        which = "sgd" if type(model) is sd.models.SGDLevy else "adam"
        return {"formula": "F21 small-noise Lévy escape time (Zhou et al. Thm 1)",
                "mean_time": float(pred[f"{which}_time"])}
    return None


# ---------------------------------------------------------------------------------------
# Running in blocks (resume points)
# ---------------------------------------------------------------------------------------


def _write_atomic(path, write):
    """``write(fileobj)`` into ``path`` via a temporary file and a rename: an interrupted
    run leaves either the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path, text):
    _write_atomic(path, lambda fh: fh.write(text.encode()))


def _lr_of(model):
    lr = getattr(model, "lr", None)
    return None if lr is None else float(lr)


def simulate_blocks(out, model, loss, theta0, exit, run, bar=None):
    """Run ``run["n_paths"]`` paths in blocks of ``run["block"]``, each saved to
    ``out/blocks`` as it finishes; blocks already there are loaded, not rerun.
    Returns (EscapeResult, simulation seconds summed over all blocks ever run)."""
    import numpy as np

    import sdesim as sd

    n, block = run["n_paths"], run["block"]
    kw = {k: v for k, v in run.items() if k not in ("n_paths", "block")}
    bdir = out / "blocks"
    bdir.mkdir(parents=True, exist_ok=True)
    steps = np.zeros(n, np.int64)
    status = np.zeros(n, np.int8)
    seconds = 0.0
    escaped_before = 0
    for first in range(0, n, block):
        size = min(block, n - first)
        path = bdir / f"paths-{first:09d}-{first + size:09d}.npz"
        if path.exists():
            with np.load(path) as z:
                steps[first:first + size], status[first:first + size] = z["steps"], z["status"]
                seconds += float(z["seconds"])
        else:
            cb = False  # the engine calls progress(done, escaped, total) after every chunk
            if bar is not None:
                def cb(done, escaped, total, base=bar.n, esc0=bar.esc_start + escaped_before):
                    bar.update(base + int(done) - bar.n)
                    bar.set_postfix(escaped=esc0 + int(escaped), refresh=False)
            res = sd.escape(model, loss, theta0, exit, n_paths=size, first_path=first,
                            progress=cb, **kw)
            steps[first:first + size], status[first:first + size] = res.steps, res.status
            seconds += res.info.wall_time
            _write_atomic(path, lambda fh, r=res: np.savez(
                fh, steps=r.steps, status=r.status, seconds=r.info.wall_time))
        escaped_before += int(np.sum((status[first:first + size] == 1)
                                     | (status[first:first + size] == 3)))
        if bar is not None:
            bar.update(bar.n_start + first + size - bar.n)
            bar.set_postfix(escaped=bar.esc_start + escaped_before, refresh=False)
    res = sd.EscapeResult.from_steps(steps, status, dt=run["dt"], t_max=run["t_max"],
                                     lr=_lr_of(model))
    return res, seconds


def _start_folder(out, cfg, resume):
    """Create ``out`` with run.json, or check that it holds this config (``--resume``)."""
    import jax

    meta = out / "run.json"
    x64 = bool(jax.config.jax_enable_x64)  # float precision changes the paths' results
    text = json.dumps({"config": cfg, "x64": x64}, indent=1, sort_keys=True)
    if meta.exists():
        if not resume:
            raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or "
                              f"--out to choose another folder")
        saved = json.loads(meta.read_text())
        if saved["config"] != json.loads(text)["config"]:
            diff = _diff(saved["config"], cfg)
            raise ConfigError(f"cannot resume {out}: it was started with another config "
                              f"({diff}); rerun with the same config or another --out")
        if saved.get("x64", x64) != x64:
            raise ConfigError(f"cannot resume {out}: it was started with JAX_ENABLE_X64="
                              f"{int(saved['x64'])}, this process has {int(x64)}")
        return
    out.mkdir(parents=True, exist_ok=True)
    _write_text(meta, text)


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


def _environment():
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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_results(out, cfg, res, ref, seconds, wall):
    """summary.json, paths.csv, survival.png, histogram.png in ``out``."""
    import numpy as np

    summary = res.summary()
    summary.update(config=cfg, seed=int(cfg["run"].get("seed", 0)), reference=ref,
                   simulation_seconds=seconds, wall_time_s=wall, **_environment())
    if ref is not None:
        summary["ratio_to_reference"] = res.mean_time() / ref["mean_time"]
        lo, hi = res.mean_time_ci()
        summary["ratio_ci95"] = [lo / ref["mean_time"], hi / ref["mean_time"]]
    _write_text(out / "summary.json", json.dumps(summary, indent=1, default=float) + "\n")
    its = res.iterations if res.iterations is not None else np.full(res.n_paths, np.nan)
    lines = ["path,time,iterations,escaped,status"]
    lines += [f"{i},{t:.9g},{it:.9g},{int(e)},{int(s)}" for i, (t, it, e, s) in
              enumerate(zip(res.times, its, res.escaped, res.status, strict=True))]
    _write_text(out / "paths.csv", "\n".join(lines) + "\n")

    plt = _plt()
    t, s = res.survival()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.step(t, s, where="post", label=f"simulated ({res.n_paths} paths)")
    grid = np.linspace(0, t.max() if t.size else 1.0, 200)
    ax.plot(grid, np.exp(-res.rate() * grid), "--", label=f"exp(−λ̂t), λ̂ = {res.rate():.3g}")
    if ref is not None:
        ax.plot(grid, np.exp(-grid / ref["mean_time"]), ":", label="closed form (exponential)")
    ax.set(yscale="log", xlabel="SDE time t", ylabel="P(τ > t)",
           title="survival of paths in the basin")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, out / "survival.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    te = res.times[res.escaped]
    if te.size:
        counts, edges, _ = ax.hist(te, bins=min(60, max(10, te.size // 20)), alpha=0.6,
                                   label=f"escaped paths ({te.size})")
        g = np.linspace(0, edges[-1], 200)
        lam = res.rate()
        ax.plot(g, res.n_paths * lam * np.exp(-lam * g) * np.diff(edges)[0], "-",
                label="fitted exponential")
        ax.legend(fontsize=8)
    ax.set(xlabel="escape time τ (SDE time)", ylabel="paths", title="escape-time histogram")
    fig.tight_layout()
    _savefig(fig, out / "histogram.png")
    return summary


def _savefig(fig, path):
    plt = _plt()
    _write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)


def _report(res, ref, summary):
    lo, hi = res.mean_time_ci()
    msg = (f"{res.n_escaped}/{res.n_paths} escaped; rate {res.rate():.4g} "
           f"[{res.rate_ci()[0]:.4g}, {res.rate_ci()[1]:.4g}] (95%); mean time "
           f"{res.mean_time():.4g} [{lo:.4g}, {hi:.4g}]"
           + (f" = {res.mean_time() / res.lr:.4g} iterations" if res.lr else ""))
    if ref is not None:
        msg += (f"\n  closed form ({ref['formula']}): {ref['mean_time']:.4g}; simulated/closed"
                f" form = {summary['ratio_to_reference']:.3f} [{summary['ratio_ci95'][0]:.3f},"
                f" {summary['ratio_ci95'][1]:.3f}]")
    return msg


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


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


def _config_from_args(args):
    over = list(args.set or [])
    if args.paths is not None:
        over.append(f"run.n_paths={args.paths}")
    if args.seed is not None:
        over.append(f"run.seed={args.seed}")
    return load_config(args.config, over)


def _check_only(pts):
    for i, (over, pc) in enumerate(pts):
        _build(pc, reference=False)
        desc = ", ".join(f"{k}={v}" for k, v in over.items()) or "config"
        print(f"point {i}: {desc}: ok")
    return 0


def cmd_run(args):
    cfg = _config_from_args(args)
    if "sweep" in cfg:
        raise ConfigError("this config has a [sweep] section: run it with `sdesim sweep`")
    if args.check:
        return _check_only([({}, cfg)])
    model, loss, theta0, exit, run, ref = _build(cfg)
    out = _out_dir(args)
    _start_folder(out, cfg, args.resume)
    t0 = time.perf_counter()
    bar = _bar(run["n_paths"], not args.no_progress, "paths")
    try:
        res, seconds = simulate_blocks(out, model, loss, theta0, exit, run, bar)
    finally:
        if bar is not None:
            bar.close()
    summary = write_results(out, cfg, res, ref, seconds, time.perf_counter() - t0)
    print(_report(res, ref, summary))
    print(f"simulation {seconds:.1f} s; results in {out}/ (summary.json, paths.csv, "
          f"survival.png, histogram.png)")
    return 0


def _build(cfg, reference=True):
    try:
        return build(cfg, reference)
    except (ValueError, TypeError) as err:  # value checks of the package, one line
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"invalid config: {err}") from None


def _x_axis(pts, keys):
    """The swept key to plot against: the first zipped key with numbers (a list value is
    reduced to the one coordinate that varies, e.g. hessian = [1, κ] -> κ)."""
    import numpy as np

    for k in keys:
        vals = [over[k] for over, _ in pts]
        if all(_is_num(v) for v in vals):
            return k, np.asarray(vals, float)
        if all(isinstance(v, list) and all(map(_is_num, v)) for v in vals) and \
                len({len(v) for v in vals}) == 1:
            a = np.asarray(vals, float)
            varying = np.flatnonzero(np.ptp(a, axis=0) > 0)
            if varying.size == 1:
                return f"{k}[{varying[0]}]", a[:, varying[0]]
    return "point", np.arange(len(pts), dtype=float)


def cmd_sweep(args):
    cfg = _config_from_args(args)
    if "sweep" not in cfg:
        raise ConfigError("no [sweep] section: add one, e.g. [sweep] \"landscape.sharpness\" "
                          "= [1.0, 2.0, 4.0] (or use `sdesim run`)")
    pts = points(cfg)
    if args.check:
        return _check_only(pts)
    built = [_build(pc) for _, pc in pts]
    out = _out_dir(args)
    _start_folder(out, cfg, args.resume)
    zipped, cross, _ = _sweep_spec(cfg)
    total = sum(b[4]["n_paths"] for b in built)
    bar = _bar(total, not args.no_progress, f"sweep ({len(pts)} points)")
    rows = []
    t0 = time.perf_counter()
    try:
        for i, ((over, pc), (model, loss, theta0, exit, run, ref)) in enumerate(
                zip(pts, built, strict=True)):
            pdir = out / "points" / f"{i:03d}"
            _start_folder(pdir, pc, True)
            if bar is not None:
                bar.n_start = bar.n
                bar.esc_start = sum(r["n_escaped"] for r in rows)
                bar.set_description(f"point {i + 1}/{len(pts)}")
            tp = time.perf_counter()
            res, seconds = simulate_blocks(pdir, model, loss, theta0, exit, run, bar)
            summary = write_results(pdir, pc, res, ref, seconds, time.perf_counter() - tp)
            rows.append(dict(point=i, **over, n_paths=res.n_paths, n_escaped=res.n_escaped,
                             rate=res.rate(), rate_ci95=list(res.rate_ci()),
                             mean_time=res.mean_time(), mean_time_ci95=list(res.mean_time_ci()),
                             cv=res.cv(), reference_mean_time=None if ref is None
                             else ref["mean_time"], simulation_seconds=seconds))
            desc = ", ".join(f"{k}={v}" for k, v in over.items())
            msg = f"[{i + 1}/{len(pts)}] {desc}: {_report(res, ref, summary)}"
            print(msg if bar is None else msg, file=sys.stdout, flush=True)
    finally:
        if bar is not None:
            bar.close()
    xkey, x = _x_axis(pts, zipped or cross)
    env = _environment()
    _write_text(out / "sweep.json", json.dumps(dict(config=cfg, seed=int(cfg["run"].get(
        "seed", 0)), swept=list(cfg["sweep"]), x=xkey, points=rows,
        wall_time_s=time.perf_counter() - t0, **env), indent=1, default=float) + "\n")
    keys = [k for k in cfg["sweep"] if k != "cross"]
    lines = [",".join(keys + ["n_paths", "n_escaped", "rate", "rate_lo", "rate_hi",
                              "mean_time", "cv", "reference_mean_time"])]
    for r in rows:
        vals = [json.dumps(r[k]).replace(",", ";") for k in keys]
        lines.append(",".join(vals + [str(r["n_paths"]), str(r["n_escaped"])] + [
            f"{v:.9g}" for v in (r["rate"], *r["rate_ci95"], r["mean_time"], r["cv"])]
            + ["" if r["reference_mean_time"] is None else f"{r['reference_mean_time']:.9g}"]))
    _write_text(out / "sweep.csv", "\n".join(lines) + "\n")
    fig_name = f"rate_vs_{re.sub(r'[^A-Za-z0-9_]+', '_', xkey.split('.')[-1]).strip('_')}.png"
    _plot_sweep(out / fig_name, rows, x, xkey, pts, cross)
    print(f"sweep of {len(pts)} points in {time.perf_counter() - t0:.1f} s; results in "
          f"{out}/ (sweep.json, sweep.csv, {fig_name}, points/NNN/)")
    return 0


def _plot_sweep(path, rows, x, xkey, pts, cross):
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    groups = {}
    for i, (over, _) in enumerate(pts):
        groups.setdefault(tuple(over[c] for c in cross), []).append(i)
    for j, (g, idx) in enumerate(groups.items()):
        color = f"C{j % 10}"
        label = ", ".join(f"{c.split('.')[-1]}={v}" for c, v in zip(cross, g, strict=True))
        rate = np.array([rows[i]["rate"] for i in idx])
        ci = np.array([rows[i]["rate_ci95"] for i in idx]).T
        ax.errorbar(x[idx], rate, yerr=[rate - ci[0], ci[1] - rate], fmt="o-", color=color,
                    capsize=3, ms=4, label=(label + ": " if label else "") + "simulated (95%)")
        ref = [rows[i]["reference_mean_time"] for i in idx]
        have = [k for k, r in enumerate(ref) if r]
        if have:
            ax.plot(x[idx][have], 1 / np.array([ref[k] for k in have]), "s--", mfc="none",
                    color=color, label=(label + ": " if label else "") + "closed form")
    pos = x[x > 0]
    if xkey != "point" and pos.size == x.size and x.max() / x.min() >= 4:
        ax.set_xscale("log")
        ticks = np.unique(x)
        if ticks.size <= 12:  # label the swept values themselves, not powers of ten
            import matplotlib.ticker

            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(yscale="log", xlabel=xkey, ylabel="escape rate (per unit SDE time)",
           title="escape rate vs " + xkey)
    if xkey == "point":
        ax.set_xticks(x, [str(i) for i in range(len(x))])
    ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path)


def figure_scripts(root=None):
    """{figure name: benchmark script} for every ``benchmarks/*.py`` that writes
    ``figures/NAME.png`` (found in its source), plus the figures already in ``figures/``
    (script None if no benchmark makes them)."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    found = {}
    for p in sorted((root / "benchmarks").glob("*.py")):
        for name in re.findall(r"[\"']([A-Za-z0-9_]+)\.png[\"']", p.read_text()):
            found.setdefault(name, p)
    for p in sorted((root / "figures").glob("*.png")):
        same = root / "benchmarks" / f"{p.stem}.py"  # a script that builds the name itself
        found.setdefault(p.stem, same if same.exists() else None)
    return dict(sorted(found.items()))


def cmd_figures(args):
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks").is_dir():
        print("sdesim: error: sdesim figures needs the benchmarks/ folder of a source "
              "checkout (pip install -e .)", file=sys.stderr)
        return 2
    scripts = figure_scripts(root)
    if args.list:
        for name, p in scripts.items():
            where = f"python {p.relative_to(root)}" if p else "(no benchmark script makes it)"
            print(f"figures/{name}.png  <-  {where}")
        return 0
    unknown = [n for n in args.only if n not in scripts]
    if unknown:
        print(f"sdesim: error: unknown figure {', '.join(unknown)}; known: "
              f"{', '.join(scripts)}", file=sys.stderr)
        return 2
    rc_all = 0
    ran = set()
    for name, p in scripts.items():
        if args.only and name not in args.only:
            continue
        if p is None:
            print(f"== figures/{name}.png: no benchmark script writes it; skipped")
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
  sdesim run examples/sgd_styblinski_tang.toml --out results/sgd
  sdesim run my.toml --resume                  # continue an interrupted run
  sdesim run my.toml --set model.lr=0.05 --set run.t_max=100 --paths 200
  sdesim sweep examples/zhou_sgd_vs_adam.toml --out results/zhou  # one point per value
  sdesim figures --list; sdesim figures levy_escape
"""


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="sdesim", description="Simulate optimizer SDEs and measure escape from basins.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    schema = "\n".join(
        [f"[landscape] name = {n}: {', '.join(k)}" for n, k in LANDSCAPES.items()]
        + ["[landscape] theta0 = [...] (start; default: the basin's minimum)"]
        + [f"[model] name = {n}: {', '.join(k)}" for n, k in MODELS.items()]
        + [f"[model.noise] kind = {n}: {', '.join(k)}" for n, k in NOISES.items()]
        + [f"[exit] kind = {n}: {', '.join(k)}" for n, k in EXITS.items()]
        + [f"[run] {', '.join(RUN)}  (block = paths per saved block, the resume unit)",
           '[sweep] "SECTION.KEY" = [values...] (lists zipped; cross = ["KEY"] for all '
           "combinations)"])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", help="results folder (default results/CONFIG-NAME)")
    common.add_argument("--paths", type=int, help="override [run] n_paths")
    common.add_argument("--seed", type=int, help="override [run] seed")
    common.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override any key, e.g. --set model.lr=0.05 (TOML value)")
    common.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out (same config required)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_argument("--check", action="store_true",
                        help="validate the config (every sweep point) and exit")
    r = sub.add_parser("run", parents=[common], help="run one escape experiment",
                       description="Run an escape experiment from a TOML config; without a "
                                   "file, the built-in default:\n\n" + DEFAULT_CONFIG
                                   + "\nkeys:\n" + schema,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", nargs="?", help="TOML file (default: the built-in experiment)")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("sweep", parents=[common], help="run a config's [sweep] points",
                       description="Run every point of a config's [sweep] section (same "
                                   "seed at every point: common random numbers). Points "
                                   "with the same shapes reuse one compiled program.\n\n"
                                   "keys:\n" + schema,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("config", help="TOML file with a [sweep] section")
    s.set_defaults(fn=cmd_sweep)
    f = sub.add_parser("figures", help="regenerate figures/ by running benchmarks/*.py",
                       description="Regenerate figures/NAME.png with the benchmark script "
                                   "that writes it (found by name in benchmarks/*.py).",
                       epilog="examples:\n  sdesim figures --list\n  sdesim figures "
                              "kramers_validation levy_escape",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("only", nargs="*", help="figure names (default: all)")
    f.add_argument("--list", action="store_true", help="list figures and their commands")
    f.set_defaults(fn=cmd_figures)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, FileNotFoundError) as err:
        print(f"sdesim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsdesim: interrupted; finished blocks are saved: continue with the same "
              "command and --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
