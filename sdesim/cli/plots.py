"""The figures of the command line: ``survival.png`` and ``histogram.png`` of a run,
``rate_vs_PARAM.png`` of a sweep. Each figure explains itself:

* the title names the experiment (model, landscape, their settings, paths per point:
  ``experiment``), not config keys;
* axes are labelled in words with units (``axis_label``: ``KEY_LABELS``, else a readable
  fallback), times in SDE time, with iterations on a second axis where the model has a
  learning rate; ticks come from matplotlib's locators (or 1-2-5 on a log axis), never
  the swept values printed to four decimals;
* the legend names the closed form (``formula_label``: ``FORMULA_NAMES``), rates carry
  their 95% intervals;
* a closed form is drawn hollow and grey, labelled "outside the formula's range", where
  the run is outside what it assumes (``outside_range``: escape within ``MIN_STEPS``
  iterations, or a barrier of less than ``MIN_BARRIER_OVER_NOISE`` noise temperatures);
* a sweep over the temperature is drawn on Arrhenius axes (log rate against 1/T), where
  Kramers' law is a straight line.

The ``*_figure`` functions return the matplotlib Figure (tests inspect it); the caller
saves and closes it.
"""

from __future__ import annotations

import json
import math
import re
import textwrap

# A closed form describes the SDE; the SDE describes an optimizer (and its simulation the
# SDE) only when escape takes many iterations (steps of the simulation where the model
# has no learning rate): a predicted mean escape within MIN_STEPS of them is a jump of a
# handful of steps, which no diffusion limit describes.
MIN_STEPS = 20
# Metastability: a formula built on exponential (memoryless) escape, such as F7's
# "first of d independent escapes, mean τ_1D/d", needs a barrier of several noise
# temperatures (the Kramers regime); the reference exposes ΔU/T where its formula needs it
# (``sdesim.theory.Reference.barrier_over_noise``; F4 is exact and F21 has no barrier).
MIN_BARRIER_OVER_NOISE = 3.0

OUTSIDE = "outside the formula's range"

# The closed forms of sdesim.theory.reference, by F-number, as the legend names them.
FORMULA_NAMES = {"F4": "exact 1-D MFPT (F4)", "F7": "F7 per coordinate, τ_1D/d",
                 "F21": "Zhou et al. Thm 1 (F21)"}

# Swept or shown keys in words (an indexed key "landscape.hessian[1]" takes the index as
# a subscript of the label's symbol: "Hessian eigenvalue h₂").
KEY_LABELS = {
    "model.temperature": "temperature T",
    "model.lr": "learning rate η",
    "model.alpha": "tail index α",
    "model.beta0": "Adai β₀",
    "model.beta1": "momentum β₁",
    "model.beta2": "second-moment decay β₂",
    "model.beta3": "β₃",
    "model.eps": "denominator offset ϵ",
    "model.epsilon": "denominator offset ϵ",
    "model.mass": "mass m",
    "model.friction": "friction γ",
    "model.sigma": "noise scale σ",
    "model.batch_size": "batch size B",
    "model.noise.batch_size": "batch size B",
    "model.noise.variance": "noise variance σ²",
    "model.noise.floor": "Hessian noise floor",
    "model.noise.k": "noise rank k",
    "landscape.barrier": "barrier height ΔU",
    "landscape.width": "well position w",
    "landscape.tilt": "tilt",
    "landscape.stiffness": "transverse stiffness",
    "landscape.dim": "dimension d",
    "landscape.sharpness": "sharpness k",
    "landscape.data_std": "data standard deviation",
    "landscape.hessian": "Hessian eigenvalue h",
    "landscape.height": "basin height (loss)",
    "landscape.past": "exit past the saddle (θ)",
    "landscape.amplitude": "amplitude",
    "exit.radius": "exit radius (θ)",
    "exit.level": "exit level (loss)",
    "exit.above_start": "exit level above the start (loss)",
    "run.dt": "time step dt (SDE time)",
    "run.t_max": "horizon t_max (SDE time)",
    "run.method": "method",
    "point": "sweep point",
}

# Short symbols for a setting in a title ("T = 0.25"); other keys are named in words.
_SYMBOLS = {"model.temperature": "T", "model.lr": "η", "model.alpha": "α",
            "model.beta0": "β₀", "model.beta1": "β₁", "model.beta2": "β₂",
            "model.beta3": "β₃", "model.eps": "ϵ", "model.epsilon": "ϵ", "model.mass": "m",
            "model.friction": "γ", "model.sigma": "σ", "model.batch_size": "B",
            "model.noise.batch_size": "B", "model.noise.variance": "σ²",
            "model.noise.k": "k"}

MODEL_NAMES = {"langevin": "Langevin", "sgd": "SGD", "underdamped": "underdamped Langevin",
               "momentum": "SGD with momentum", "adam": "Adam", "adai": "Adai",
               "sgd_levy": "Lévy SGD", "adam_levy": "Lévy Adam", "adal": "AdaL"}
_OPTIMIZERS = {"sgd": "SGD", "momentum": "momentum SGD", "adam": "Adam", "adai": "Adai",
               "adal": "AdaL"}
LANDSCAPE_NAMES = {"double_well": "double well", "styblinski_tang": "Styblinski–Tang",
                   "quadratic": "quadratic basin", "rastrigin": "Rastrigin",
                   "rosenbrock": "Rosenbrock", "muller_brown": "Müller–Brown"}
NOISE_NAMES = {"isotropic": "isotropic noise", "fixed": "fixed-covariance noise",
               "hessian": "Hessian noise", "minibatch": "minibatch noise",
               "minibatch_fixed": "minibatch noise frozen at the start",
               "minibatch_lowrank": "low-rank minibatch noise"}

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def plt_():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------
# Words: keys, numbers, the experiment, the formula
# ---------------------------------------------------------------------------------------


def num(v):
    """A number for a label: 3 significant digits, no trailing zeros, whole numbers whole
    up to 10⁵ (0.167, 2000, 1e6, 1.25e-5)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if not math.isfinite(v):
        return "∞" if v > 0 else "−∞" if v < 0 else "nan"
    if float(v).is_integer() and abs(v) < 1e5:
        return str(int(v))
    mant, _, exp = f"{v:.3g}".partition("e")
    return mant + (f"e{int(exp)}" if exp else "")


def _value(v):
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return num(v)


def axis_label(key):
    """``key`` ("model.temperature", "landscape.hessian[1]") in words: ``KEY_LABELS``, else
    the key's name with its section ("landscape.sharpness" -> "sharpness (landscape)")."""
    m = re.fullmatch(r"(.+)\[(\d+)\]", key)
    base, idx = (m.group(1), int(m.group(2))) if m else (key, None)
    if base in KEY_LABELS:
        label = KEY_LABELS[base]
    else:
        section, _, name = base.rpartition(".")
        label = name.replace("_", " ") + (f" ({section.replace('.', ' ')})" if section
                                          else "")
    if idx is None:
        return label
    last = label.split(" ")[-1]
    if len(last) == 1 and last.isalpha():  # a symbol: subscript the coordinate (from 1)
        return label + str(idx + 1).translate(_SUB)
    return f"{label}, coordinate {idx + 1}"


def _model_name(mc):
    name = mc.get("name", "?")
    if name == "algorithm":
        opt = mc.get("optimizer", "?")
        return f"{_OPTIMIZERS.get(opt, opt)} (discrete iterations)"
    return MODEL_NAMES.get(name, name.replace("_", " "))


# Other settings in a title: in these words, else the key's name ("sharpness 2").
_WORDS = {"landscape.hessian": "Hessian", "landscape.hessian_neg": "Hessian (y < 0)",
          "landscape.data_std": "data std", "landscape.center": "centre"}


def _setting(key, v):
    sym = _SYMBOLS.get(key)
    if sym:
        return f"{sym} = {_value(v)}"
    return f"{_WORDS.get(key, key.rpartition('.')[2].replace('_', ' '))} {_value(v)}"


def _model_settings(mc, swept):
    out = []
    for k, v in mc.items():
        key = f"model.{k}"
        if k in ("name", "optimizer") or key in swept:
            continue
        if k == "noise" and isinstance(v, dict):
            kind = v.get("kind")
            if "model.noise.kind" not in swept and kind is not None:
                out.append(NOISE_NAMES.get(kind, f"{kind} noise"))
            out += [_setting(f"model.noise.{nk}", nv) for nk, nv in v.items()
                    if nk != "kind" and f"model.noise.{nk}" not in swept]
        elif not isinstance(v, dict):
            out.append(_setting(key, v))
    return out


def _landscape_settings(ls, swept):
    out = []
    for k, v in ls.items():
        if k in ("name", "target", "args") or f"landscape.{k}" in swept or isinstance(v,
                                                                                     dict):
            continue
        if k == "dim":
            out.append(f"{v}-D")
        elif k == "side":
            out.append(f"{v} well")
        elif k == "valley":
            out.append(f"{v} valley")
        elif k == "theta0":
            out.append(f"start {_value(v)}" if len(v) <= 3 else "own start")
        else:
            out.append(_setting(f"landscape.{k}", v))
    return out


def _swept(cfg):
    return {k for k in cfg.get("sweep", {}) if k != "cross"}


def experiment(cfg):
    """The experiment in words: "Langevin (T = 0.25) in double well (barrier 1, left
    well)". In a sweep, swept settings are left out (they are on the axis or in the
    legend) and a swept model name lists the models ("SGD vs Adai (...)")."""
    return " ".join(_experiment(cfg))


def _experiment(cfg):
    """(the model, where: the landscape and exit) in words."""
    swept = _swept(cfg)
    mc, ls = cfg["model"], cfg["landscape"]
    if "model.name" in swept:
        names = dict.fromkeys(_model_name({**mc, "name": n}) for n in cfg["sweep"]["model.name"])
        model = " vs ".join(names)
    else:
        model = _model_name(mc)
    ms = _model_settings(mc, swept)
    if ms:
        model += f" ({', '.join(ms)})"
    if "target" in ls:
        where = f"on {ls['target']}"
        if isinstance(ls.get("args"), dict) and ls["args"]:
            where += " (" + ", ".join(f"{k} {_value(v)}" for k, v in ls["args"].items()
                                      if not isinstance(v, dict)) + ")"
    else:
        name = ls.get("name", "?")
        where = ("in " if name == "double_well" else "on ") + \
            LANDSCAPE_NAMES.get(name, name.replace("_", " "))
        lset = _landscape_settings(ls, swept)
        if lset:
            where += f" ({', '.join(lset)})"
    ex = cfg.get("exit")
    if isinstance(ex, dict) and ex.get("kind"):
        where += f"; exit: {ex['kind'].replace('_', ' ')}"
    return model, where


def run_settings(cfg):
    """The run in words: "2000 paths per point, dt = 0.001, t_max = 2000" (an AMS run:
    its runs and replicas)."""
    swept = _swept(cfg)
    rc = cfg["run"]
    per = " per point" if swept else ""
    if rc.get("method") == "ams":
        parts = [f"AMS: {rc.get('n_runs', '?')} runs × {rc.get('n_replicas', '?')} "
                 f"replicas{per}"]
    elif "run.n_paths" in swept:
        parts = []
    else:
        parts = [f"{rc.get('n_paths', '?')} paths{per}"]
    parts += [f"{k} = {num(rc[k])}" for k in ("dt", "t_max")
              if k in rc and f"run.{k}" not in swept]
    return ", ".join(parts)


def title(what, cfg, width=80):
    """``what`` (the figure), the experiment and the run settings: the experiment on one
    line if it fits ``width`` characters, else the model and the landscape on a line
    each (wrapped if longer)."""
    model, where = _experiment(cfg)
    one = f"{model} {where}"
    lines = [one] if len(one) <= width else (textwrap.wrap(model, width)
                                             + textwrap.wrap(where, width))
    return "\n".join([what, *lines, run_settings(cfg)])


def formula_label(ref):
    """The closed form's name for a legend: ``FORMULA_NAMES`` by F-number, else its
    formula text up to the first ";"."""
    text = str(ref.get("formula", "closed form"))
    m = re.match(r"(F\d+)\b", text)
    if m and m.group(1) in FORMULA_NAMES:
        return FORMULA_NAMES[m.group(1)]
    short = text.split(";")[0].strip()
    return short if len(short) <= 40 else short[:37].rstrip() + "..."


def outside_range(ref, lr=None, dt=None):
    """Why the run is outside the range of its closed form ``ref`` (a reference dict), or
    None if it is inside (or there is no closed form): the predicted mean escape takes
    fewer than ``MIN_STEPS`` iterations (``lr``; steps of ``dt`` where the model has no
    learning rate), or the formula assumes metastable escape and the barrier is under
    ``MIN_BARRIER_OVER_NOISE`` noise temperatures (``ref["barrier_over_noise"]``)."""
    if ref is None:
        return None
    why = []
    tau = ref.get("mean_time")
    step, unit = (lr, "iterations") if lr else (dt, "steps")
    if isinstance(tau, int | float) and step and math.isfinite(tau) \
            and tau / step < MIN_STEPS:
        why.append(f"predicted mean escape {tau / step:.2g} {unit}, under {MIN_STEPS}")
    b = ref.get("barrier_over_noise")
    if isinstance(b, int | float) and b < MIN_BARRIER_OVER_NOISE:
        why.append(f"ΔU/T = {b:.2g}, under {MIN_BARRIER_OVER_NOISE:g}")
    return "; ".join(why) or None


# ---------------------------------------------------------------------------------------
# Axes
# ---------------------------------------------------------------------------------------


def _iterations_axis(ax, lr):
    """A top axis in iterations (t/η) over an SDE-time x axis."""
    if not lr:
        return None
    sec = ax.secondary_xaxis("top", functions=(lambda t: t / lr, lambda k: k * lr))
    sec.set_xlabel(f"iterations t/η (η = {num(lr)})", fontsize=8)
    sec.tick_params(labelsize=8)
    import matplotlib.ticker as mt

    sec.xaxis.set_major_formatter(mt.EngFormatter(sep=""))  # 500k, 1M: no offset text
    return sec


def _clean_log_ticks(axis, lo, hi):
    """Major ticks at 1, 2, 3, 5 × 10ⁿ (within a decade) or 1, 2, 5 × 10ⁿ (up to three
    decades) with plain labels (0.2, 0.5, 1); over more, matplotlib's powers of ten
    (10⁻⁴). Minor ticks unlabelled."""
    import matplotlib.ticker as mt

    if hi / lo <= 1e3:
        subs = (1.0, 2.0, 3.0, 5.0) if hi / lo <= 10 else (1.0, 2.0, 5.0)
        axis.set_major_locator(mt.LogLocator(base=10, subs=subs))
        axis.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mt.NullFormatter())


def _style(ax, fig):
    ax.grid(True, which="major", alpha=0.3)
    ax.title.set_fontsize(9)
    fig.tight_layout()


# ---------------------------------------------------------------------------------------
# One run: survival and histogram
# ---------------------------------------------------------------------------------------


def _ref_style(ref, why):
    """(line style kwargs, label) of a closed-form curve."""
    tau = ref["mean_time"]
    label = f"{formula_label(ref)}: exp(−t/τ), τ = {num(tau)}"
    if why:
        return dict(ls=":", color="0.55"), f"{label}\n({OUTSIDE}: {why})"
    return dict(ls=":", color="C3"), label


def survival_figure(res, ref, cfg):
    """P(τ > t) of the run against t: the simulated curve, the fitted exponential with the
    95% band of its rate, and the closed form (grey where outside its range)."""
    import numpy as np

    plt = plt_()
    st = np.asarray(res.status)
    esc = int(np.sum(st == 1))
    # nothing escaped: the survival curve is 1 (EscapeResult.survival needs an escape)
    t, s = res.survival() if esc else (np.zeros(1), np.ones(1))
    fig, ax = plt.subplots(figsize=(6, 4.6))
    ax.step(t, s, where="post", color="C0", label=f"simulated ({res.n_paths} paths)")
    tmax = float(t.max()) if t.size and t.max() > 0 else float(res.t_max)
    grid = np.linspace(0, tmax, 200)
    lam = res.rate()
    lo, hi = res.rate_ci()
    ax.plot(grid, np.exp(-lam * grid), "--", color="C1",
            label=f"fitted exp(−λ̂t), λ̂ = {num(lam)} per unit time")
    ax.fill_between(grid, np.exp(-hi * grid), np.exp(-lo * grid), color="C1", alpha=0.2,
                    lw=0, label=f"95% interval of λ̂: [{num(lo)}, {num(hi)}]")
    if ref is not None:
        why = outside_range(ref, res.lr, res.dt)
        kw, label = _ref_style(ref, why)
        ax.plot(grid, np.exp(-grid / ref["mean_time"]), label=label, **kw)
    ax.set_yscale("log")
    floor = 0.5 / max(res.n_paths, 1)  # below one path: not resolved
    ax.set_ylim(max(ax.get_ylim()[0], floor), 1.15)
    _clean_log_ticks(ax.yaxis, *ax.get_ylim())
    ax.set(xlabel="SDE time t", ylabel="fraction still in the basin, P(τ > t)",
           title=title("Survival in the basin", cfg))
    _iterations_axis(ax, res.lr)
    ax.legend(fontsize=7, loc="lower left")
    _style(ax, fig)
    return fig


def histogram_figure(res, ref, cfg):
    """The escape times of the escaped paths, with the fitted exponential density and the
    closed form's (grey where outside its range), in paths per bin."""
    import numpy as np

    plt = plt_()
    st = np.asarray(res.status)
    fig, ax = plt.subplots(figsize=(6, 4.6))
    te = np.asarray(res.times)[st == 1]
    if te.size:
        _, edges, _ = ax.hist(te, bins=min(60, max(10, te.size // 20)), alpha=0.6,
                              color="C0", label=f"escaped paths ({te.size} of {res.n_paths})")
        g = np.linspace(0, edges[-1], 200)
        width = np.diff(edges)[0]
        lam = res.rate()
        ax.plot(g, res.n_paths * lam * np.exp(-lam * g) * width, "-", color="C1",
                label=f"fitted exponential, λ̂ = {num(lam)} per unit time")
        if ref is not None:
            why = outside_range(ref, res.lr, res.dt)
            kw, label = _ref_style(ref, why)
            tau = ref["mean_time"]
            ax.plot(g, res.n_paths / tau * np.exp(-g / tau) * width, label=label, **kw)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, f"no path escaped within t_max = {num(float(res.t_max))}",
                ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="escape time τ (SDE time)", ylabel="paths per bin",
           title=title("Escape times", cfg))
    _iterations_axis(ax, res.lr)
    _style(ax, fig)
    return fig


# ---------------------------------------------------------------------------------------
# A sweep: rate against the swept parameter
# ---------------------------------------------------------------------------------------


def _method(row):
    return row.get("method", "direct")


def _group_label(over, cross):
    parts = []
    for c in cross:
        v = over[c]
        if c == "model.name":
            parts.append(MODEL_NAMES.get(v, str(v)))
        elif c == "run.method":
            parts.append("AMS" if v == "ams" else "direct")
        else:
            sym = _SYMBOLS.get(c)
            parts.append(f"{sym} = {_value(v)}" if sym else f"{axis_label(c)} {_value(v)}")
    return ", ".join(parts)


def _common_lr(pts):
    lrs = {pc["model"].get("lr") for _, pc in pts}
    lr = lrs.pop() if len(lrs) == 1 else None
    return float(lr) if isinstance(lr, int | float) and lr > 0 else None


def _inverse(v):
    """1/v, with inf at 0 (a secondary axis' transform: matplotlib passes 0 too)."""
    import numpy as np

    v = np.array(v, float)
    zero = v == 0
    v[zero] = np.inf
    v[~zero] = 1 / v[~zero]
    return v


def _inverse_ticks(lo, hi, n=7):
    """Round values T (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9 × 10ⁿ, coarsest first)
    whose 1/T lie in [lo, hi], at least (hi − lo)/n apart on the 1/T axis (so the top
    labels do not overlap)."""
    import numpy as np

    if not (0 < lo < hi and np.isfinite(hi)):
        return []
    tlo, thi = 1 / hi, 1 / lo
    cands = sorted({round(m * 10.0**e, 12) for e in range(math.floor(math.log10(tlo)) - 1,
                                                           math.ceil(math.log10(thi)) + 1)
                    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)})
    # from the coarsest: powers of ten, then 1-2-5, then the rest
    rank = {1: 0, 2: 1, 5: 1, 1.5: 2, 2.5: 2, 3: 2, 4: 2, 6: 3, 8: 3, 1.2: 4, 7: 4, 9: 4}
    inside = [t for t in cands if tlo <= t <= thi]
    gap = (hi - lo) / n
    kept = []
    for t in sorted(inside, key=lambda t: rank[round(t / 10.0**math.floor(math.log10(t)),
                                                     6)]):
        if all(abs(1 / t - 1 / k) >= gap for k in kept):
            kept.append(t)
    return sorted(kept)


def is_arrhenius(xkey, x):
    """A sweep over the temperature (all positive): drawn against 1/T."""
    import numpy as np

    return xkey == "model.temperature" and x.size > 0 and bool(np.all(x > 0))


def sweep_figure(rows, x, xkey, pts, cross, cfg):
    """Escape rate against the swept parameter ``xkey`` (values ``x``), one series per
    crossed value and method with its 95% intervals, the closed form per series (hollow
    and grey at points outside its range: ``row["reference_outside_range"]``). Over the
    temperature: Arrhenius axes (log rate against 1/T, with a straight-line fit)."""
    import numpy as np

    plt = plt_()
    fig, ax = plt.subplots(figsize=(6.6, 4.8))
    arrhenius = is_arrhenius(xkey, x)
    xs = 1 / x if arrhenius else x
    methods = [_method(r) for r in rows]
    named = "ams" in methods
    # simulated: markers with their intervals; closed forms: dashed lines
    styles = {"direct": ("o", "simulated, direct" if named else "simulated"),
              "ams": ("D", "simulated, AMS")}
    cross = [c for c in cross if c != "run.method"]
    groups = {}
    for i, (over, _) in enumerate(pts):
        groups.setdefault(tuple(json.dumps(over[c]) for c in cross), []).append(i)
    n_series = 0
    flagged = []  # (x, y) of closed-form points outside their range
    upper = []  # (x, upper bound, colour) of points where no path escaped
    fits = []
    rank = {}  # legend label -> its place: simulated, closed forms, outside, bounds, fits
    for idx in groups.values():
        # the group's first series' colour is its closed form's (black if one group)
        color = f"C{n_series % 10}" if len(groups) > 1 else "k"
        glabel = _group_label(pts[idx[0]][0], cross)
        pre = glabel + ": " if glabel else ""
        outside = {i for i in idx if rows[i].get("reference_outside_range")}
        for m in dict.fromkeys(methods[i] for i in idx):
            sel = np.array([i for i in idx if methods[i] == m])
            rate = np.array([rows[i]["rate"] for i in sel], float)
            ci = np.array([rows[i]["rate_ci95"] for i in sel], float).T
            err = np.array([rate - ci[0], ci[1] - rate])
            err = np.where(np.isfinite(err), err, np.nan)  # an unbounded end: not drawn
            fmt, what = styles[m]
            c = f"C{n_series % 10}"
            pos = rate > 0
            label = f"{pre}{what} (95% interval)"
            rank.setdefault(label, (0, n_series))
            ax.errorbar(xs[sel][pos], rate[pos], yerr=err[:, pos], fmt=fmt, color=c,
                        capsize=3, ms=4, elinewidth=1, label=label)
            upper += [(xi, h, c) for xi, h in zip(xs[sel][~pos], ci[1][~pos], strict=True)
                      if np.isfinite(h)]
            # the fit: the points with escapes, inside the closed form's range if enough are
            use = pos & np.array([i not in outside for i in sel])
            use = use if use.sum() >= 3 else pos
            if arrhenius and use.sum() >= 3:
                fits.append((xs[sel][use], rate[use], c, pre))
            n_series += 1
        ref = [rows[i].get("reference_mean_time") for i in idx]
        have = [k for k, r in enumerate(ref) if r]
        if have:
            xr, yr = xs[idx][have], 1 / np.array([ref[k] for k in have], float)
            bad = np.array([idx[k] in outside for k in have])
            if named:  # both methods at one value: one closed-form point, in order
                xr, first = np.unique(xr, return_index=True)
                yr, bad = yr[first], bad[first]
            name = formula_label({"formula": rows[idx[have[0]]].get("reference_formula")
                                  or "closed form"})
            if (~bad).any():
                label = f"{pre}closed form: {name}"
                rank.setdefault(label, (1, n_series))
                ax.plot(xr[~bad], yr[~bad], "s--", color=color, ms=3.5, lw=1, label=label)
            flagged += list(zip(xr[bad], yr[bad], strict=True))
    if flagged:
        fx, fy = np.array(flagged).T
        label = (f"closed form {OUTSIDE}\n(mean escape under {MIN_STEPS} iterations or "
                 f"steps, or ΔU/T under {MIN_BARRIER_OVER_NOISE:g})")
        rank[label] = (2, 0)
        ax.plot(fx, fy, "s", mfc="none", mec="0.55", ms=7, ls="none", label=label)
    for k, (xi, h, c) in enumerate(upper):
        label = "no escape: 95% upper bound of the rate"
        rank[label] = (3, 0)
        ax.plot([xi], [h], "v", color=c, mfc="none", ms=7, label=None if k else label)
    for fx, fy, c, pre in fits:  # Arrhenius: log λ = a − ΔE·(1/T)
        slope, icpt = np.polyfit(fx, np.log(fy), 1)
        g = np.linspace(fx.min(), fx.max(), 50)
        label = f"{pre}fit λ ∝ exp(−ΔE/T) to the simulated: ΔE = {num(-slope)}"
        rank[label] = (4, len(rank))
        ax.plot(g, np.exp(icpt + slope * g), ":", color=c, lw=1.2, label=label)
    ax.set_yscale("log")
    if arrhenius:
        ax.set_xlabel("inverse temperature 1/T")
        sec = ax.secondary_xaxis("top", functions=(_inverse, _inverse))
        sec.set_xlabel("temperature T", fontsize=8)
        sec.tick_params(labelsize=8)
        lo, hi = ax.get_xlim()
        sec.set_xticks(_inverse_ticks(lo, hi), [f"{v:g}" for v in _inverse_ticks(lo, hi)])
    elif xkey == "point":
        keys = [k for k in pts[0][0] if k not in cross]
        ax.set_xticks(xs, [", ".join(_value(pts[i][0][k]) for k in keys) or str(i)
                           for i in range(len(xs))])
        ax.set_xlabel("sweep point" + (f" ({', '.join(map(axis_label, keys))})"
                                       if keys else ""))
    else:
        ax.set_xlabel(axis_label(xkey))
        if bool(np.all(x > 0)) and x.max() / x.min() >= 4:
            ax.set_xscale("log")
            _clean_log_ticks(ax.xaxis, x.min(), x.max())
    ax.set_ylabel("escape rate λ (per unit SDE time)")
    lr = _common_lr(pts)
    if lr:
        sec = ax.secondary_yaxis("right", functions=(lambda r: r * lr, lambda r: r / lr))
        sec.set_ylabel(f"per iteration (λη, η = {num(lr)})", fontsize=8)
        sec.tick_params(labelsize=8)
    what = ("Escape rate on Arrhenius axes (Kramers: a straight line)" if arrhenius
            else f"Escape rate vs {axis_label(xkey)}")
    ax.set_title(title(what, cfg))
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: rank.get(labels[i], (5, i)))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7)
    _style(ax, fig)
    return fig
