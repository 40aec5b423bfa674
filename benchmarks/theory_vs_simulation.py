"""``sd.theory.predict`` against simulation on landscapes not built around a known answer.

For each landscape, ``predict`` finds the minimum downhill from the start, the index-1
saddle(s) bounding its basin (gentlest ascent; refined by Newton) and evaluates each
model's formula there; nothing below is given by hand but the start. The simulation's
exit comes from the same tools: the other minimum beyond the (lowest) saddle (gradient
flow from the saddle), the minimum-energy path to it (``critical.string_path``) and the
arc length along it (``critical.path_coordinate``); a path has escaped when it is
``COMMIT`` (80%) of the way from the saddle down to the other minimum — committed, so the
simulated time is the transition time that Eyring–Kramers speaks of (not the first touch
of the saddle, which takes about half as long); with several saddles, past any of them.
(On the separable 10-D Styblinski–Tang each saddle moves one coordinate, and the same
exit is a box: a coordinate 80% of the way to its other minimum.) The exit's score is
the splitting score: ``sd.escape_ams`` (``--replicas`` × ``--runs``) at every point, and
direct simulation (``sd.escape``, ``--direct`` paths) where the escape is short enough.

Landscapes:

* Müller–Brown (``sd.landscapes.MullerBrown``), from its minimum B = (0.623, 0.028): one
  saddle bounds that basin, the B–C saddle (0.212, 0.293) at ΔL = 35.9.
* a rotated anisotropic double well, ``L = (u² − 1)² + (1 + u²/2) v²`` in coordinates
  rotated by 0.6 rad: the transverse curvature is 3 at the minima, 2 at the saddle.
* a random smooth potential: a tilted double well ``(x² − 1)² + 0.2 x + y²`` plus 12
  Gaussian bumps of random centre, width and signed height (seed 0).
* 10-D Styblinski–Tang from its local minimum (2.747, …): ten saddles, one per
  coordinate, all found by gentlest ascent along ± each of the ten (equal) softest modes;
  the rates add.

Models, at the formula's exponent ΔL/T = 5, 10, 15, 20 (``--betas``):

* ``Langevin(T)``: Eyring–Kramers (F8), exact as ΔL/T → ∞; on the 2-D landscapes also
  the exact mean exit time (``predict(..., exit=, box=)``: the backward equation on a
  400 × 400 grid over ``BOXES``), which holds at every ΔL/T.
* ``SGD(lr, noise.hessian(B, floor))``: Xie et al.'s F14 along the escape direction.
* ``Momentum(lr, β₁ = 0.9, noise.hessian(B, floor))``: F16.
* ``Adai(lr, noise.hessian(B, floor))``: F18; ``Adam(lr/10, noise.hessian(B, floor))``:
  F17 (its exponent grows as sqrt(B)).

For SGD and Momentum the batch size is chosen so that the formula's effective
temperature along the escape direction (``Prediction.temperature``) gives the exponent;
``floor`` = H_ae/4 keeps the noise alive where the Hessian vanishes on the way out.

    python benchmarks/theory_vs_simulation.py [--betas 5 10 15 20] [--replicas 500]
        [--runs 12] [--direct 1000] [--only NAME ...] [--models NAME ...] [--replot]
        [--table] [--merge] [--merge-from JSON ...] [--path-exponent] [--grid]
        [--t-max-steps 1e5]

``--grid`` adds the exact (grid) column to the Langevin rows of the existing JSON without
simulating again (seconds per row).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdesim as sd
from sdesim import critical

FIG = os.path.join(os.path.dirname(__file__), "..", "figures")
COMMIT = 0.8  # the exit: this fraction of the way from the saddle to the other minimum
LR = 0.1  # SGD/Momentum learning rate (SDE time per iteration)
SPREAD = 30.0  # runs' p̂ spanning more than this factor: the estimate is not converged
PHASE = ("Momentum", "Adai", "Adam")  # the models with a velocity
MEMORY = ("Adai", "Adam")  # ... and a second-moment EMA (escape_ams's warm-up)
DT_CURV = 0.01  # dt · (the fastest rate of the model's dynamics, linearized; step_size)
# the box of the exact (grid) mean exit time on the 2-D landscapes: L is ≥ 20 T above the
# basin's minimum on its faces at every ΔL/T of the table
BOXES = {"Müller–Brown": ([-1.7, -0.5], [1.3, 2.2]),
         "rotated anisotropic double well": ([-2.5, -2.5], [2.5, 2.5]),
         "random smooth potential": ([-2.6, -2.6], [2.6, 2.6])}


def rotated_double_well(phi=0.6):
    c, s = float(np.cos(phi)), float(np.sin(phi))

    def loss(th):
        u = c * th[0] + s * th[1]
        v = -s * th[0] + c * th[1]
        return (u**2 - 1.0) ** 2 + (1.0 + 0.5 * u**2) * v**2

    return loss, np.array([-c, -s])


def random_smooth(seed=0, n_bumps=12):
    rng = np.random.default_rng(seed)
    centres = rng.uniform([-1.8, -1.2], [1.8, 1.2], size=(n_bumps, 2))
    widths = rng.uniform(0.3, 0.7, size=n_bumps)
    heights = rng.uniform(-0.25, 0.25, size=n_bumps)

    def loss(th):
        dtype = th.dtype
        d2 = jnp.sum((th[None, :] - jnp.asarray(centres, dtype)) ** 2, axis=1)
        bumps = jnp.sum(jnp.asarray(heights, dtype)
                        * jnp.exp(-d2 / (2 * jnp.asarray(widths, dtype) ** 2)))
        return (th[0] ** 2 - 1.0) ** 2 + 0.2 * th[0] + th[1] ** 2 + bumps

    return loss, np.array([-1.0, 0.0])


def landscapes():
    """name -> (loss, start, n_modes: the softest modes gentlest ascent follows)."""
    st = sd.landscapes.StyblinskiTang(10)
    return {
        "Müller–Brown": (sd.landscapes.MullerBrown(), np.array([0.623, 0.028]), 2),
        "rotated anisotropic double well": (*rotated_double_well(), 2),
        "random smooth potential": (*random_smooth(), 2),
        # ten equal softest modes: every one is followed (both signs); separable: the
        # exit is the box of the committed points (cheaper than ten path coordinates)
        "10-D Styblinski–Tang": (st, np.full(10, 2.5), 10),
    }


def geometry(loss, start, n_modes):
    """Minimum, saddles (predict's search), each saddle's other side, string and path
    coordinate, and the exit past any of them; dt from the largest curvature."""
    t0 = time.perf_counter()
    pred = sd.theory.predict(sd.models.Langevin(1.0), loss, start, n_modes=n_modes)
    x_min = pred.minimum
    coords, levels, others, paths = [], [], [], []
    for sad in pred.saddles:
        other = critical.minimum_beyond(loss, sad.point, x_min, sad.direction)
        paths.append(critical.string_path(loss, x_min, other, n_images=48))
        pc = critical.path_coordinate(paths[-1])
        coords.append(pc)
        levels.append(COMMIT * float(pc(jnp.asarray(other, jnp.result_type(float)))))
        others.append(other)
    exit = sd.exits.LevelSet(critical.Committed(tuple(coords), jnp.asarray(
        levels, jnp.result_type(float))), 0.0)
    if getattr(loss, "separable", False):  # each saddle moves one coordinate: a box
        lower, upper = np.full(x_min.size, -np.inf), np.full(x_min.size, np.inf)
        for sad, other in zip(pred.saddles, others, strict=True):
            i = int(np.argmax(np.abs(sad.point - x_min)))
            face = sad.point[i] + COMMIT * (other[i] - sad.point[i])
            if other[i] < x_min[i]:
                lower[i] = face
            else:
                upper[i] = face
        exit = sd.exits.Box(lower, upper)
    sad = min(pred.saddles, key=lambda s: s.barrier)
    curv = max(np.abs(np.linalg.eigvalsh(pred.hessian_min)).max(),
               max(np.abs(np.linalg.eigvalsh(s.hessian)).max() for s in pred.saddles))
    lowest = next(i for i, s in enumerate(pred.saddles) if s is sad)
    return dict(pred=pred, x_min=x_min, saddle=sad, other=others[lowest],
                exit=exit, path=paths[lowest],
                level=levels, dt=DT_CURV / curv, curv=curv,
                h_ae=float(sad.direction @ pred.hessian_min @ sad.direction),
                seconds=time.perf_counter() - t0)


def models(geo, beta):
    """(name, model) at the formula's exponent ``beta`` = ΔL/T."""
    dl = geo["saddle"].barrier
    out = [("Langevin", sd.models.Langevin(dl / beta))]
    floor = geo["h_ae"] / 4
    for name, make, power in (
            ("SGD", lambda b: sd.models.SGD(LR, sd.noise.hessian(b, floor)), 1),
            ("Momentum", lambda b: sd.models.Momentum(LR, 0.9, sd.noise.hessian(b, floor)), 1),
            ("Adai", lambda b: sd.models.Adai(LR, sd.noise.hessian(b, floor)), 1),
            ("Adam", lambda b: sd.models.Adam(LR * 0.1, sd.noise.hessian(b, floor)), 2)):
        t1 = predict(make(1.0), geo).temperature  # T ∝ B^(-1/power) (Adam: 1/sqrt(B))
        out.append((name, make((beta * t1 / dl) ** power)))
    return out


def fastest_rate(model, curv, d):
    """The fastest rate of ``model``'s dynamics linearized on a mode of curvature ``curv``
    (the largest |curvature| at the minimum and the saddles): ``curv`` for the overdamped
    models (drift ``−∇L``); for the phase-space ones, the largest modulus of the roots of
    ``μ² + γμ + curv/M`` with the lightest mass ``M`` (friction ``γ``) the model can take
    anywhere: Momentum's are constants; Adai's ``M_i = η/(1 − β₁,i)`` with ``1 − β₁,i =
    β₀ v̂_i/mean(v̂) <= min(1, β₀ d)``, ``γ_i = 1/M_i``; Adam's ``M_i = η(sqrt(v̂_i) + ϵ)/(1 −
    β₁)`` with ``v̂_i >= floor/B`` (the Hessian noise's floor is in every ``g²`` its EMA
    averages), ``γ = (1 − β₁)/η``. A phase-space model oscillates at ``sqrt(curv/M)``, far
    slower than the overdamped rate ``curv`` where the curvature is large (Müller–Brown:
    55 against 3 005), so its step may be that much longer for the same resolution."""
    if isinstance(model, sd.models.Momentum):
        m, fm = (float(x) for x in model.mass_friction(jnp.float32))
    elif isinstance(model, sd.models.Adai):
        m = float(model.lr) / min(1.0, float(model.beta0) * d)
        fm = 1.0
    elif isinstance(model, sd.models.Adam):
        vhat = float(model.noise.floor) / float(model.noise.batch_size)
        fm = np.sqrt(vhat) + float(model.eps)
        m = float(model.lr) * fm / (1 - float(model.beta1))
    else:
        return curv
    g = fm / m
    return float(np.max(np.abs(np.roots([1.0, g, curv / m]))))


def step_size(model, geo):
    """``dt`` = ``DT_CURV`` / the model's fastest linearized rate (``fastest_rate``)."""
    return DT_CURV / fastest_rate(model, geo["curv"], geo["x_min"].size)


def predict(model, geo):
    return sd.theory.predict(model, geo["loss"], geo["x_min"],
                             saddles=[s.point for s in geo["pred"].saddles])


def exact(model, geo, lname):
    """The exact mean exit time (grid) for a Langevin row of a 2-D landscape, else None."""
    if lname not in BOXES or not isinstance(model, sd.models.Langevin):
        return None
    t0 = time.perf_counter()
    p = sd.theory.predict(model, geo["loss"], geo["x_min"],
                          saddles=[s.point for s in geo["pred"].saddles], exit=geo["exit"],
                          box=BOXES[lname])
    return dict(mean=p.exact_mean_time, rel_error=p.exact.rel_error, n=p.exact.n,
                seconds=time.perf_counter() - t0)


PATH_MODELS = ("SGD", "Momentum", "Adai", "Adam")  # the rows that get a path exponent
EMA_MODELS = ("Adai", "Adam")  # and, with their EMA following g² (ema="instant"), a second


def path_exponent(model, geo, ema="frozen"):
    """Φ of a model along the lowest saddle's minimum-energy path
    (``sd.theory.path_exponent``): the exponent its own noise gives, where the formulas
    (F14, F16, F17, F18) freeze the Hessian noise at the minimum; for the phase-space models
    the least action of the dynamics restricted to the path. None (printed) where it is
    refused. ``ema``: Adam's/Adai's second-moment EMA frozen at the minimum (F17/F18's
    assumption) or ``"instant"`` (following ``g²``), the two limits of its memory."""
    try:
        return sd.theory.path_exponent(model, geo["loss"], geo["path"], ema=ema)
    except ValueError as err:
        print(f"  path_exponent refused for {type(model).__name__}: {err}", flush=True)
        return None


ACTION_MODELS = ("SGD", "Momentum", "Adai")  # Φ ∝ B: Σ ∝ 1/B, drift, mass, friction fixed


def add_least_action(args):
    """``--least-action``: ``sd.theory.least_action`` along the lowest saddle, once per
    landscape and model (at its lowest ΔL/T, scaled to the others: its noise's covariance
    ∝ 1/B and nothing else moves with B, so Φ ∝ B ∝ ΔL/T), into the rows (rows merged in
    later take the value already computed for their model, scaled); the JSON is
    re-read before each result is written into it (the runs are long, and runs on other
    landscapes may share it)."""
    import warnings

    with open(args.out + ".json") as f:
        out = json.load(f)
    for lname, (loss, start, n_modes) in landscapes().items():
        if args.only and not any(lname.lower().startswith(o.lower()) for o in args.only):
            continue
        rows = out["landscapes"].get(lname, {}).get("rows", [])
        copied = False
        for m in ACTION_MODELS:  # rows added since (--merge-from): the model's Φ/B, scaled
            done = [r for r in rows if r["model"] == m and "least_action" in r]
            for row in rows:
                if done and row["model"] == m and "least_action" not in row:
                    row.update({k: v for k, v in done[0].items()
                                if k.startswith("least_action")})
                    row["least_action"] = done[0]["least_action"] / done[0]["beta"] * row["beta"]
                    copied = True
        if copied:
            save(out, args.out)
        todo = [m for m in ACTION_MODELS if (not args.models or m in args.models)
                and any(r["model"] == m and "least_action" not in r for r in rows)]
        if not todo:
            continue
        geo = geometry(loss, start, n_modes)
        geo["loss"] = loss
        for m in todo:
            beta = min(r["beta"] for r in rows if r["model"] == m)
            model = dict(models(geo, beta))[m]
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # converged is kept
                r = sd.theory.least_action(model, loss, geo["path"],
                                           iterations=args.iterations)
            secs = time.perf_counter() - t0
            print(f"{lname} {m}: least action {r.action:.6g} at ΔL/T {beta:g} "
                  f"({r.action / beta:.4f} per unit; converged {r.converged} after "
                  f"{r.iterations} steps, {r.times.size - 1} time steps, {secs:.0f} s)",
                  flush=True)
            with open(args.out + ".json") as f:  # each result as it comes (runs are long)
                out = json.load(f)
            for row in out["landscapes"][lname]["rows"]:
                if row["model"] == m:
                    row["least_action"] = r.action / beta * row["beta"]
                    row["least_action_converged"] = r.converged
                    row["least_action_steps"] = r.iterations
                    row["least_action_seconds"] = secs
            save(out, args.out)


def simulate(model, geo, args, key, direct_paths):
    loss = geo["loss"]
    dt = geo["dt"] if args.overdamped_dt else step_size(model, geo)
    row = dict(dt=dt)
    t0 = time.perf_counter()
    directions = None if args.whole_energy else [s.direction for s in geo["pred"].saddles]
    score = None
    if (args.state_mass or args.quasi_potential) and not args.position_score:
        score = sd.rare.phase_score(model, loss, geo["x_min"],
                                    sd.rare.default_score(geo["exit"], geo["x_min"]), dt,
                                    directions, state_mass=args.state_mass,
                                    quasi_potential=args.quasi_potential)
    ams = sd.escape_ams(model, loss, geo["x_min"], geo["exit"], dt=dt, key=key,
                        n_replicas=args.replicas, n_runs=args.runs,
                        t_max=args.t_max_steps * dt, score=score,
                        phase_score=not args.position_score, directions=directions)
    lo, hi = ams.mean_time_ci()
    # failed: trial paths that reached neither the basin nor the exit within escape_ams's
    # t_max; they count as failures to escape, so the time can only be too long
    row["ams"] = dict(mean=float(ams.mean_time()), ci=[float(lo), float(hi)],
                      p=float(ams.p), p_runs=[float(x) for x in ams.p_runs],
                      failed=int(ams.failed), phase_score=bool(ams.phase_score),
                      directions=int(ams.directions), warmup=float(ams.warmup),
                      state_mass=bool(ams.state_mass),
                      kind=getattr(score, "kind", None),
                      seconds=time.perf_counter() - t0)
    if direct_paths:
        t0 = time.perf_counter()
        # --direct-t-max alone bounds the run (no cap from the prediction: on Müller–Brown
        # F18 is 70x short for Adai, so 30x the prediction censored most paths)
        t_max = min(args.direct_t_max, 2**30 * dt)
        r = sd.escape(model, loss, geo["x_min"], geo["exit"], n_paths=direct_paths,
                      dt=dt, t_max=t_max, key=jax.random.fold_in(key, 1),
                      progress=False)
        lo, hi = r.mean_time_ci()
        row["direct"] = dict(mean=float(r.mean_time()), ci=[float(lo), float(hi)],
                             escaped=int(np.sum(r.escaped)), paths=direct_paths,
                             t_max=float(t_max), seconds=time.perf_counter() - t0)
    return row


def dt_check(args):
    """Direct simulation of the phase-space models at ΔL/T = 5 (``--only``, default the
    rotated well and the random potential) at ``step_size``'s step and 3× that: the mean
    escape times and their 95% intervals (``--direct`` paths, default 1 000); the Euler
    error is about linear in ``dt``, so the error at ``step_size`` is about half their
    difference."""
    names = args.only or ["rotated", "random"]
    for lname, (loss, start, n_modes) in landscapes().items():
        if not any(lname.lower().startswith(o.lower()) for o in names):
            continue
        geo = geometry(loss, start, n_modes)
        geo["loss"] = loss
        for mname, model in models(geo, args.betas[0]):
            if mname not in (args.models or ["Momentum", "Adai"]):
                continue
            new = step_size(model, geo)
            for label, dt in (("step_size", new), ("3 step_size", 3 * new)):
                t0 = time.perf_counter()
                r = sd.escape(model, loss, geo["x_min"], geo["exit"],
                              n_paths=args.direct or 1000, dt=dt, t_max=args.direct_t_max,
                              key=jax.random.key(7), progress=False)
                lo, hi = r.mean_time_ci()
                print(f"{lname} {mname} ΔL/T {args.betas[0]:g} dt {dt:.3g} ({label}): mean "
                      f"{float(r.mean_time()):.4g} [{float(lo):.4g}, {float(hi):.4g}], "
                      f"{int(np.sum(r.escaped))}/{r.escaped.size} escaped, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)


def landscape_entry(geo, rows):
    return dict(minimum=geo["x_min"].tolist(),
                saddles=[s.point.tolist() for s in geo["pred"].saddles],
                barrier=geo["saddle"].barrier, other=geo["other"].tolist(), dt=geo["dt"],
                level=geo["level"], h_ae=geo["h_ae"], rows=rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--betas", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0])
    ap.add_argument("--replicas", type=int, default=500)
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--direct", type=int, default=1000, help="paths of direct simulation "
                    "at ΔL/T <= --direct-beta (0: none)")
    ap.add_argument("--direct-beta", type=float, default=5.0)
    ap.add_argument("--t-max-steps", type=float, default=1e5, help="escape_ams's t_max in "
                    "steps of dt (longest trial path; longer ones count as failures, †)")
    ap.add_argument("--direct-t-max", type=float, default=1e4)
    ap.add_argument("--overdamped-dt", action="store_true", help="every model at the "
                    "landscape's dt = DT_CURV/curvature (the rule before 2026-12-03: the "
                    "phase-space rows without a dt of their own), not step_size's")
    ap.add_argument("--whole-energy", action="store_true", help="the phase score's energy "
                    "in all coordinates, not along the saddles' escape directions "
                    "(escape_ams(directions=None); the phase-space rows whose ams has no "
                    "'directions' were measured so)")
    ap.add_argument("--position-score", action="store_true", help="split the phase-space "
                    "models on the position alone (escape_ams(phase_score=False); before "
                    "2026-12-03 every row was)")
    ap.add_argument("--state-mass", action="store_true", help="the phase score's kinetic "
                    "energy with the mass Adai's state carries (phase_score(..., "
                    "state_mass=True); measured biased, docs: rare events), not the mass at "
                    "the minimum")
    ap.add_argument("--quasi-potential", action="store_true", help="split the phase-space "
                    "models on the quasi-potential of their dynamics linearized at the "
                    "minimum (phase_score(..., quasi_potential=True): each mode's energy "
                    "over its own temperature), not the energy")
    ap.add_argument("--only", nargs="*", default=None, help="landscape names (prefixes)")
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--out", default=os.path.join(FIG, "theory_vs_simulation"))
    ap.add_argument("--replot", action="store_true")
    ap.add_argument("--table", action="store_true", help="print the JSON as a Markdown table")
    ap.add_argument("--merge", action="store_true", help="add these rows to the JSON's "
                    "(same settings; e.g. --models Adai Adam after a run of the others)")
    ap.add_argument("--merge-from", nargs="+", default=None, metavar="JSON",
                    help="add the rows of these JSON files (other runs' --out, or their "
                    ".partial.json) to --out's JSON, then redraw")
    ap.add_argument("--path-exponent", action="store_true", help="add the path exponent "
                    "(sd.theory.path_exponent) to the JSON's SGD, Momentum, Adai and Adam "
                    "rows that lack it, then redraw")
    ap.add_argument("--least-action", action="store_true", help="add the free least action "
                    "(sd.theory.least_action, all coordinates) to the JSON's SGD, Momentum and "
                    "Adai rows (--models, --only) that lack it: computed at each model's "
                    "lowest ΔL/T and scaled (Φ ∝ B for them), then redraw")
    ap.add_argument("--iterations", type=int, default=2000,
                    help="least_action's most Levenberg–Marquardt steps (--least-action)")
    ap.add_argument("--grid", action="store_true", help="add the exact (grid) mean time to "
                    "the JSON's Langevin rows of the 2-D landscapes, then redraw")
    ap.add_argument("--dt-check", action="store_true", help="direct simulation of "
                    "Momentum and Adai (--models) at --betas[0] with two steps (dt_check)")
    args = ap.parse_args(argv)
    if args.dt_check:
        return dt_check(args)
    if args.grid:
        with open(args.out + ".json") as f:
            out = json.load(f)
        for lname, (loss, start, n_modes) in landscapes().items():
            if lname not in BOXES or lname not in out["landscapes"]:
                continue
            geo = geometry(loss, start, n_modes)
            geo["loss"] = loss
            for row in out["landscapes"][lname]["rows"]:
                if row["model"] != "Langevin":
                    continue
                model = sd.models.Langevin(geo["saddle"].barrier / row["beta"])
                row["exact"] = exact(model, geo, lname)
                a = row["ams"]
                print(f"{lname} ΔL/T {row['beta']:g}: exact {row['exact']['mean']:.4g} "
                      f"(grid error {row['exact']['rel_error']:.1e}, "
                      f"{row['exact']['seconds']:.1f} s), AMS {a['mean']:.4g} "
                      f"[{a['ci'][0]:.4g}, {a['ci'][1]:.4g}], Eyring–Kramers "
                      f"{row['predicted']:.4g}", flush=True)
        return save(out, args.out)
    if args.path_exponent:
        with open(args.out + ".json") as f:
            out = json.load(f)
        for lname, (loss, start, n_modes) in landscapes().items():
            rows = [r for r in out["landscapes"].get(lname, {}).get("rows", [])
                    if r["model"] in PATH_MODELS and "path_exponent" not in r
                    or r["model"] in EMA_MODELS and "path_exponent_instant" not in r]
            if not rows:
                continue
            geo = geometry(loss, start, n_modes)
            geo["loss"] = loss
            for row in rows:
                t0 = time.perf_counter()
                model = dict(models(geo, row["beta"]))[row["model"]]
                if "path_exponent" not in row:
                    row["path_exponent"] = path_exponent(model, geo)
                if row["model"] in EMA_MODELS and "path_exponent_instant" not in row:
                    row["path_exponent_instant"] = path_exponent(model, geo, "instant")
                print(f"{lname} {row['model']} ΔL/T {row['beta']:g}: path exponent "
                      f"{row['path_exponent']}, EMA instant {row.get('path_exponent_instant')}"
                      f" ({time.perf_counter() - t0:.1f} s)", flush=True)
        return save(out, args.out)
    if args.least_action:
        return add_least_action(args)
    if args.merge_from:
        with open(args.out + ".json") as f:
            out = json.load(f)
        for path in args.merge_from:
            with open(path) as f:
                new = json.load(f)
            merge_rows(out, new)
            print(f"merged {path}: {sum(len(e['rows']) for e in new['landscapes'].values())}"
                  " rows", flush=True)
        return save(out, args.out)
    if args.replot or args.table:
        with open(args.out + ".json") as f:
            out = json.load(f)
        return table(out) if args.table else plot(out, args.out + ".png")
    t_start = time.perf_counter()
    out = dict(machine=f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{jax.default_backend()}", commit=COMMIT, lr=LR, replicas=args.replicas,
               runs=args.runs, x64=bool(jax.config.jax_enable_x64), landscapes={})
    for li, (lname, (loss, start, n_modes)) in enumerate(landscapes().items()):
        if args.only and not any(lname.lower().startswith(o.lower()) for o in args.only):
            continue
        geo = geometry(loss, start, n_modes)
        geo["loss"] = loss
        sad = geo["saddle"]
        print(f"{lname}: minimum {np.round(geo['x_min'], 4)}, {len(geo['pred'].saddles)} "
              f"saddle(s), lowest {np.round(sad.point, 4)} ΔL = {sad.barrier:.4g}, other "
              f"minimum {np.round(geo['other'], 4)}, exit at {COMMIT:.0%} of the way there, "
              f"dt {geo['dt']:.3g} (geometry {geo['seconds']:.1f} s)", flush=True)
        rows = []
        for bi, beta in enumerate(args.betas):
            for mi, (mname, model) in enumerate(models(geo, beta)):
                if args.models and mname not in args.models:
                    continue
                p = predict(model, geo)
                key = jax.random.key(1000 * li + 10 * bi + mi)
                sim = simulate(model, geo, args, key,
                               args.direct if beta <= args.direct_beta else 0)
                row = dict(model=mname, beta=beta, predicted=p.mean_time,
                           formula=p.formula, temperature=p.temperature,
                           replicas=args.replicas, runs=args.runs,
                           t_max_steps=args.t_max_steps, **sim)
                row["ratio"] = p.mean_time / sim["ams"]["mean"]
                ex = exact(model, geo, lname)
                if ex is not None:
                    row["exact"] = ex
                if mname in PATH_MODELS:
                    row["path_exponent"] = path_exponent(model, geo)
                if mname in EMA_MODELS:
                    row["path_exponent_instant"] = path_exponent(model, geo, "instant")
                rows.append(row)
                d = sim.get("direct")
                dtxt = "" if d is None else (f"; direct {d['mean']:.4g} [{d['ci'][0]:.4g}, "
                                             f"{d['ci'][1]:.4g}] ({d['escaped']}/"
                                             f"{d['paths']})")
                a = sim["ams"]
                out["landscapes"][lname] = landscape_entry(geo, rows)
                with open(args.out + ".partial.json", "w") as f:  # kept if interrupted
                    json.dump(out, f, indent=1)
                print(f"  ΔL/T {beta:4g} {mname:9s} predicted {p.mean_time:.4g}  AMS "
                      f"{a['mean']:.4g} [{a['ci'][0]:.4g}, {a['ci'][1]:.4g}] "
                      f"({a['seconds']:.0f} s, runs' p̂ "
                      f"{min(a['p_runs']):.3g}…{max(a['p_runs']):.3g}){dtxt}  "
                      f"predicted/simulated "
                      f"{row['ratio']:.3f}", flush=True)
        out["landscapes"][lname] = landscape_entry(geo, rows)
    out["seconds"] = time.perf_counter() - t_start
    if args.merge:
        with open(args.out + ".json") as f:
            old = json.load(f)
        merge_rows(old, out)
        out = old
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1)
    plot(out, args.out + ".png")
    print(f"wrote {args.out}.json and .png ({out['seconds']:.0f} s)")
    return out


def save(out, stem):
    """Write ``stem``.json, redraw ``stem``.png and print the table."""
    with open(stem + ".json", "w") as f:
        json.dump(out, f, indent=1)
    plot(out, stem + ".png")
    return table(out)


def merge_rows(old, new):
    """Add ``new``'s rows to ``old`` (in place); a row of ``new`` replaces ``old``'s row of
    the same landscape, model and ΔL/T. Each row records its own replicas and runs."""
    for lname, entry in new["landscapes"].items():
        for r in entry["rows"]:
            r.setdefault("replicas", new.get("replicas"))
            r.setdefault("runs", new.get("runs"))
        prev = old["landscapes"].setdefault(lname, dict(entry, rows=[]))
        keep = {(r["model"], r["beta"]) for r in entry["rows"]}
        prev["rows"] = [r for r in prev["rows"] if (r["model"], r["beta"]) not in keep] \
            + entry["rows"]
    order = ("Langevin",) + PATH_MODELS  # the table's and the figure's order
    for entry in old["landscapes"].values():
        entry["rows"].sort(key=lambda r: (order.index(r["model"]), r["beta"]))
    old["seconds"] = old.get("seconds", 0.0) + new.get("seconds", 0.0)
    return old


def table(out):
    """Predicted ÷ simulated (AMS, 95% interval) per landscape, model and ΔL/T."""
    betas = sorted({r["beta"] for e in out["landscapes"].values() for r in e["rows"]})
    print("| landscape (ΔL) | model | " + " | ".join(f"ΔL/T = {b:g}" for b in betas) + " |")
    print("| --- | --- |" + " ---: |" * len(betas))
    for lname, entry in out["landscapes"].items():
        models = list(dict.fromkeys(r["model"] for r in entry["rows"]))
        for m in models:
            cells = []
            for b in betas:
                r = next((r for r in entry["rows"] if r["model"] == m and r["beta"] == b),
                         None)
                if r is None:
                    cells.append("—")
                    continue
                lo, hi = r["ams"]["ci"]
                p = r["predicted"]
                f = lambda x: f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"  # noqa: E731
                # †: some trial paths hit t_max (the simulated time can only be too long)
                mark = "†" if r["ams"].get("failed") else ""
                mark += "‡" if unconverged(r["ams"]) else ""
                # §: a phase-space model split on its position alone (rows before
                # escape_ams's phase score, or --position-score)
                mark += "§" if m in PHASE and not r["ams"].get("phase_score") else ""
                # ◦: Adam/Adai measured before escape_ams's warm-up (μ sampled after the
                # first loop, while the second-moment EMA still carries its start at 0)
                mark += "◦" if m in MEMORY and "warmup" not in r["ams"] else ""
                cells.append(f"{f(p / r['ams']['mean'])} [{f(p / hi)}, {f(p / lo)}]{mark}")
            print(f"| {lname} ({entry['barrier']:.3g}) | {m} | " + " | ".join(cells) + " |")
            if m == "Langevin" and any("exact" in r for r in entry["rows"]):
                cells = []
                for b in betas:
                    r = next((r for r in entry["rows"] if r["model"] == m and r["beta"] == b
                              and "exact" in r), None)
                    if r is None:
                        cells.append("—")
                        continue
                    lo, hi = r["ams"]["ci"]
                    e = r["exact"]["mean"]
                    cells.append(f"{e / r['ams']['mean']:.2f} [{e / hi:.2f}, {e / lo:.2f}]")
                print(f"| {lname} ({entry['barrier']:.3g}) | Langevin, exact (grid) | "
                      + " | ".join(cells) + " |")
    exponents(out)
    return out


def unconverged(ams):
    """‡: not converged: the runs' spread reaches p = 0 (an open interval), or their p̂
    span more than SPREAD (Momentum on the rotated well at 15, two keys: estimates 3.4x
    apart with spreads of 36x and 5.6x)."""
    pr = np.asarray(ams.get("p_runs") or [1.0])
    return (not np.isfinite(ams["ci"][1]) or pr.min() <= 0
            or pr.max() / pr.min() > SPREAD)


def exponents(out):
    """Each model's escape exponent per unit of its formula's (F14, F16, F18, F17, whose
    exponent is ΔL/T by construction): the path exponent's Φ/(ΔL/T) (Adam, Adai: with the
    EMA frozen at the minimum, and in brackets following g²) against the slope of
    ln(simulated time ÷ the formula's prefactor) over ΔL/T (least squares over the rows,
    with the range of the slopes between neighbouring rows). Rows marked ‡ (not converged)
    are left out of the slope. SGD, Momentum and Adai: also the free least action
    (``--least-action``, all coordinates; * where not settled: an upper bound)."""
    lines = []
    for lname, entry in out["landscapes"].items():
        for model in PATH_MODELS:
            rs = sorted((r for r in entry["rows"] if r["model"] == model
                         and not unconverged(r["ams"])), key=lambda r: r["beta"])
            phi = [r["path_exponent"] / r["beta"] for r in entry["rows"]
                   if r["model"] == model and r.get("path_exponent") is not None]
            if len(rs) < 2 and not phi:
                continue
            c = f"{np.mean(phi):.3f}" if phi else "—"
            inst = [r["path_exponent_instant"] / r["beta"] for r in entry["rows"]
                    if r["model"] == model and r.get("path_exponent_instant") is not None]
            if inst:  # not ∝ ΔL/T: (∇L)² in v̂ does not scale with B; the rows' range
                lo, hi = min(inst), max(inst)
                c += f" ({lo:.3f})" if hi - lo < 0.01 * lo else f" ({lo:.2f}–{hi:.2f})"
            free = [r for r in entry["rows"] if r["model"] == model and "least_action" in r]
            la = "—"
            if free:  # the same per unit of ΔL/T on every row (computed once, scaled)
                la = f"{free[0]['least_action'] / free[0]['beta']:.3f}"
                la += "" if free[0]["least_action_converged"] else "*"
            if len(rs) >= 2:
                b = np.array([r["beta"] for r in rs])
                # the exponent's slope: 1 + d ln(simulated/predicted)/d(ΔL/T), which takes
                # out the formula's prefactor where it moves with B (Adam's mass ∝ 1/sqrt B)
                y = b + np.log([r["ams"]["mean"] / r["predicted"] for r in rs])
                fit = np.polyfit(b, y, 1)[0]
                pair = np.diff(y) / np.diff(b)
                dag = "†" if any(r["ams"].get("failed") for r in rs) else ""
                s = (f"{fit:.3f}{dag} ({pair.min():.2f}–{pair.max():.2f})" if len(rs) > 2
                     else f"{fit:.3f}{dag}")
                span = f"{b.min():g}–{b.max():g}"
            else:
                s, span = "—", "—"
            lines.append(f"| {lname} | {model} | {c} | {la} | {s} | {span} |")
    if lines:
        print("\n| landscape | model | Φ ÷ (ΔL/T), path exponent (EMA instant) | free least "
              "action | d ln(τ_sim/prefactor) / d(ΔL/T) (pairs) | ΔL/T |\n"
              "| --- | --- | ---: | ---: | ---: | --- |")
        print("\n".join(lines))


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    names = list(out["landscapes"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 6.2), squeeze=False)
    marks = {"Langevin": "o", "SGD": "s", "Momentum": "^", "Adai": "v", "Adam": "D"}
    for ax, lname in zip(axes[0], names, strict=True):
        rows = out["landscapes"][lname]["rows"]
        for m, mk in marks.items():
            rs = [r for r in rows if r["model"] == m]
            if not rs:
                continue
            b = np.array([r["beta"] for r in rs])
            sim = np.array([r["ams"]["mean"] for r in rs])
            ci = np.array([r["ams"]["ci"] for r in rs])
            pred = np.array([r["predicted"] for r in rs])
            # the ratio simulated/predicted, with the simulation's interval
            y = sim / pred
            bars = ax.errorbar(b, y, yerr=[y - ci[:, 0] / pred, ci[:, 1] / pred - y],
                               marker=mk, capsize=3,
                               label=f"{m} ({rs[0]['formula'].split(' (')[0].split(',')[0]})")
            rs = [r for r in rs if r.get("path_exponent") is not None
                  and not unconverged(r["ams"])]
            if len(rs) >= 2:  # the trend the path exponent predicts, one level fitted
                b = np.array([r["beta"] for r in rs])
                y = np.log([r["ams"]["mean"] / r["predicted"] for r in rs])
                slope = np.mean([r["path_exponent"] / r["beta"] for r in rs]) - 1.0
                bb = np.linspace(b.min(), b.max(), 50)
                ax.plot(bb, np.exp(np.mean(y - slope * b) + slope * bb), ":", lw=1,
                        color=bars[0].get_color(),
                        label=f"{m}: path exponent's slope, Φ = {slope + 1:.2f} ΔL/T")
        rs = [r for r in rows if r["model"] == "Langevin" and "exact" in r]
        if rs:  # the exact (grid) time, simulated / exact, with the simulation's interval
            b = np.array([r["beta"] for r in rs]) + 0.3
            ex = np.array([r["exact"]["mean"] for r in rs])
            sim = np.array([r["ams"]["mean"] for r in rs])
            ci = np.array([r["ams"]["ci"] for r in rs])
            y = sim / ex
            ax.errorbar(b, y, yerr=[y - ci[:, 0] / ex, ci[:, 1] / ex - y], marker="x",
                        color="k", ls="none", capsize=3,
                        label="Langevin (exact: backward equation on a grid)")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhspan(0.95, 1.05, color="0.9", zorder=0)
        ax.set_title(f"{lname}\nΔL = {out['landscapes'][lname]['barrier']:.3g}", fontsize=10)
        ax.set_xlabel("ΔL / T (the formula's exponent)")
        ax.set_xlim(4, 21)
        lo, hi = ax.get_ylim()
        decades = np.log10(hi) - np.log10(max(lo, 1e-300))
        if decades > 1:  # log where the ratios span decades, plain labels
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(
                subs=(1.0,) if decades > 3 else (1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(
                lambda y, _: f"{y:g}" if 1e-3 <= y <= 1e3 else f"{y:.0e}"))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    axes[0][0].set_ylabel("simulated / predicted mean escape time")
    fig.suptitle("sd.theory.predict vs simulation (AMS, 95% intervals; grey: ±5%)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return out


if __name__ == "__main__":
    main()
