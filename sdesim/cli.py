"""The ``sdesim`` command: ``sdesim run [CONFIG.toml]``, ``sdesim figures``.

``sdesim run`` with no file runs the built-in default experiment: Gaussian SGD with exact
minibatch noise escaping the local valley of the 10-D data-shifted Styblinski–Tang
function, compared with the exact 1-D mean first-passage time (F7) of one coordinate (the
landscape and the noise are separable, so the 10-D escape is the first of 10 independent
coordinate escapes: mean time ≈ τ_1D/10 once escape is metastable).
"""

from __future__ import annotations

import argparse
import json
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

SCHEMA = {
    "landscape": {"name", "dim", "sharpness", "data_std", "valley", "barrier", "width", "tilt",
                  "stiffness", "side", "past", "hessian", "height"},
    "model": {"name", "lr", "temperature", "mass", "friction", "noise", "scheme"},
    "noise": {"kind", "variance", "cov", "batch_size", "floor"},
    "run": {"n_paths", "dt", "t_max", "seed", "lanes", "bridge"},
}
LANDSCAPES = ("styblinski_tang", "double_well", "quadratic")
MODELS = ("langevin", "sgd", "underdamped")
NOISES = ("isotropic", "fixed", "hessian", "minibatch")


class ConfigError(ValueError):
    pass


def _need(section, table, key, kind=(int, float)):
    if key not in table:
        raise ConfigError(f"[{section}] is missing '{key}'")
    v = table[key]
    if not isinstance(v, kind) or isinstance(v, bool) and bool not in (kind if isinstance(
            kind, tuple) else (kind,)):
        raise ConfigError(f"[{section}] {key} = {v!r}: expected "
                          f"{getattr(kind, '__name__', 'a number')}")
    return v


def _check_keys(section, table, allowed):
    for k in table:
        if k not in allowed:
            raise ConfigError(f"unknown key '{k}' in [{section}]; allowed: "
                              f"{', '.join(sorted(allowed))}")


def load_config(path=None):
    text = DEFAULT_CONFIG if path is None else Path(path).read_text()
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    for k in cfg:
        if k not in SCHEMA or k == "noise":
            raise ConfigError(f"unknown section [{k}]; allowed: landscape, model, run")
    for sec in ("landscape", "model", "run"):
        if sec not in cfg:
            raise ConfigError(f"missing section [{sec}]")
        _check_keys(sec, cfg[sec], SCHEMA[sec])
    if "noise" in cfg["model"]:
        _check_keys("model.noise", cfg["model"]["noise"], SCHEMA["noise"])
    return cfg


def build(cfg):
    """Config -> (model, loss, theta0, exit, run kwargs, theory reference or None)."""
    import jax
    import numpy as np

    import sdesim as sd

    ls, mc, rc = cfg["landscape"], cfg["model"], cfg["run"]
    name = ls.get("name")
    if name not in LANDSCAPES:
        raise ConfigError(f"[landscape] name = {name!r}; allowed: {', '.join(LANDSCAPES)}")
    if name == "styblinski_tang":
        loss = sd.landscapes.StyblinskiTang(int(_need("landscape", ls, "dim", int)),
                                            float(ls.get("sharpness", 1.0)),
                                            float(ls.get("data_std", 0.0)))
        theta0, exit = loss.basin(ls.get("valley", "local"))
    elif name == "double_well":
        loss = sd.landscapes.DoubleWell(float(ls.get("barrier", 1.0)),
                                        float(ls.get("width", 1.0)), float(ls.get("tilt", 0.0)),
                                        float(ls.get("stiffness", 1.0)), int(ls.get("dim", 1)))
        theta0, exit = loss.basin(ls.get("side", "left"), float(ls.get("past", 0.0)))
    else:
        loss = sd.landscapes.Quadratic(np.asarray(_need("landscape", ls, "hessian", list),
                                                  float))
        theta0, exit = loss.basin(float(_need("landscape", ls, "height")))

    mname = mc.get("name")
    if mname not in MODELS:
        raise ConfigError(f"[model] name = {mname!r}; allowed: {', '.join(MODELS)}")
    if mname == "langevin":
        model = sd.models.Langevin(float(_need("model", mc, "temperature")))
    elif mname == "underdamped":
        model = sd.models.Underdamped(float(_need("model", mc, "mass")),
                                      float(_need("model", mc, "friction")),
                                      float(_need("model", mc, "temperature")),
                                      scheme=mc.get("scheme", "semi-implicit"))
    else:
        nc = mc.get("noise", {"kind": "isotropic", "variance": 1.0})
        kind = nc.get("kind")
        if kind not in NOISES:
            raise ConfigError(f"[model.noise] kind = {kind!r}; allowed: {', '.join(NOISES)}")
        if kind == "isotropic":
            noise = sd.noise.isotropic(float(_need("model.noise", nc, "variance")))
        elif kind == "fixed":
            noise = sd.noise.fixed(np.asarray(_need("model.noise", nc, "cov", list), float))
        elif kind == "hessian":
            noise = sd.noise.hessian(float(_need("model.noise", nc, "batch_size")),
                                     float(nc.get("floor", 0.0)))
        else:
            noise = sd.noise.minibatch(None, float(_need("model.noise", nc, "batch_size")))
        model = sd.models.SGD(float(_need("model", mc, "lr")), noise)

    run = dict(n_paths=int(_need("run", rc, "n_paths", int)), dt=float(_need("run", rc, "dt")),
               t_max=float(_need("run", rc, "t_max")),
               key=jax.random.key(int(rc.get("seed", 0))), bridge=bool(rc.get("bridge", True)))
    if "lanes" in rc:
        run["lanes"] = int(rc["lanes"])
    return model, loss, theta0, exit, run, _reference(model, loss, theta0, cfg)


def _reference(model, loss, theta0, cfg):
    """Closed-form mean escape time where one applies (separable landscapes)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import sdesim as sd
    from sdesim import theory

    ls = cfg["landscape"]
    if isinstance(loss, sd.landscapes.StyblinskiTang) and isinstance(
            model, sd.models.SGD | sd.models.Langevin):
        one = sd.landscapes.StyblinskiTang(1, loss.sharpness, loss.data_std)
        cp = one.critical_points()
        valley = ls.get("valley", "local")
        drift = lambda x: -np.asarray(jax.vmap(jax.grad(lambda t: one(t[None])))(
            jnp.asarray(x)), float)
        if isinstance(model, sd.models.Langevin):
            temp = float(model.temperature)
            variance = lambda x: np.full(np.shape(x), 2 * temp)
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
        tau = theory.mfpt_1d(well, float(theta0[0]), c, float(model.temperature))
        return {"formula": "F4 exact 1-D MFPT", "mean_time": float(tau)}
    return None


def _write_results(out, cfg, res, ref, wall, config_path):
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import sdesim

    out.mkdir(parents=True, exist_ok=True)
    summary = res.summary()
    summary.update(config=cfg, config_file=str(config_path) if config_path else None,
                   reference=ref, wall_time_s=wall, sdesim_version=sdesim.__version__,
                   jax_version=jax.__version__, device=str(jax.devices()[0]))
    if ref is not None:
        summary["ratio_to_reference"] = res.mean_time() / ref["mean_time"]
        lo, hi = res.mean_time_ci()
        summary["ratio_ci95"] = [lo / ref["mean_time"], hi / ref["mean_time"]]
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=1, default=float)
    with open(out / "paths.csv", "w") as f:
        f.write("path,time,iterations,escaped,status\n")
        its = res.iterations if res.iterations is not None else np.full(res.n_paths, np.nan)
        for i in range(res.n_paths):
            f.write(f"{i},{res.times[i]:.9g},{its[i]:.9g},{int(res.escaped[i])},"
                    f"{int(res.status[i])}\n")
    t, s = res.survival()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.step(t, s, where="post", label=f"simulated ({res.n_paths} paths)")
    grid = np.linspace(0, t.max() if t.size else 1.0, 200)
    ax.plot(grid, np.exp(-res.rate() * grid), "--", label=f"exp(−λ̂t), λ̂={res.rate():.3g}")
    if ref is not None:
        ax.plot(grid, np.exp(-grid / ref["mean_time"]), ":", label="theory (exponential)")
    ax.set_yscale("log")
    ax.set_xlabel("SDE time t")
    ax.set_ylabel("P(τ > t)")
    ax.legend(fontsize=8)
    ax.set_title("survival of paths in the basin")
    fig.tight_layout()
    fig.savefig(out / "survival.png", dpi=120)
    plt.close(fig)
    return summary


def cmd_run(args):
    cfg = load_config(args.config)
    if args.paths is not None:
        cfg["run"]["n_paths"] = args.paths
    if args.seed is not None:
        cfg["run"]["seed"] = args.seed
    model, loss, theta0, exit, run, ref = build(cfg)
    import sdesim as sd

    t0 = time.perf_counter()
    res = sd.escape(model, loss, theta0, exit, **run)
    wall = time.perf_counter() - t0
    out = Path(args.out or f"results/run-{time.strftime('%Y%m%d-%H%M%S')}")
    summary = _write_results(out, cfg, res, ref, wall, args.config)
    lo, hi = res.mean_time_ci()
    print(f"{res.n_escaped}/{res.n_paths} escaped; rate {res.rate():.4g} per unit time "
          f"[{res.rate_ci()[0]:.4g}, {res.rate_ci()[1]:.4g}] (95%)")
    print(f"mean escape time {res.mean_time():.4g} [{lo:.4g}, {hi:.4g}]"
          + (f" = {res.mean_time() / res.lr:.4g} iterations" if res.lr else ""))
    if ref is not None:
        print(f"theory ({ref['formula']}): {ref['mean_time']:.4g}; simulated/theory = "
              f"{summary['ratio_to_reference']:.3f} [{summary['ratio_ci95'][0]:.3f}, "
              f"{summary['ratio_ci95'][1]:.3f}]")
    print(f"wall time {wall:.1f} s; results in {out}/ (summary.json, paths.csv, survival.png)")
    return 0


def cmd_figures(args):
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    scripts = sorted(p for p in root.glob("*.py") if p.name != "throughput.py") if \
        root.is_dir() else []
    if not scripts:
        print("sdesim figures needs the benchmarks/ folder of a source checkout "
              "(pip install -e .)", file=sys.stderr)
        return 2
    for p in scripts:
        if args.only and p.stem not in args.only:
            continue
        print(f"== {p.name}", flush=True)
        rc = subprocess.call([sys.executable, str(p)], cwd=root.parent)
        if rc:
            return rc
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="sdesim", description="Simulate optimizer SDEs and measure escape from basins.",
        epilog="examples:\n  sdesim run                 # the default experiment (<1 min)\n"
               "  sdesim run my.toml --out results/my\n  sdesim figures             "
               "# regenerate figures/ from benchmarks/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one escape experiment (default: built-in)",
                       description="Run an escape experiment from a TOML config (sections "
                                   "[landscape], [model], [model.noise], [run]); without a "
                                   "file, the built-in default:\n\n" + DEFAULT_CONFIG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", nargs="?", help="TOML file")
    r.add_argument("--out", help="results folder (default results/run-TIMESTAMP)")
    r.add_argument("--paths", type=int, help="override [run] n_paths")
    r.add_argument("--seed", type=int, help="override [run] seed")
    r.set_defaults(fn=cmd_run)
    f = sub.add_parser("figures", help="regenerate figures/ by running benchmarks/*.py")
    f.add_argument("only", nargs="*", help="benchmark names (default: all but throughput)")
    f.set_defaults(fn=cmd_figures)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, FileNotFoundError) as err:
        print(f"sdesim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
