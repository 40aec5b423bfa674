"""Rare escapes: adaptive multilevel splitting (AMS) on the engine's stepping.

For escape times far beyond direct simulation (barriers of 20–40 kT). Notation: a score
``ξ(θ)`` increasing towards the exit ``B``; ``A = {ξ ≤ z_A}`` a small neighbourhood of the
minimum; ``Σ = {ξ = z_Σ}`` with ``z_A < z_Σ``.

* **Probability.** ``p = P(reach B before A | start on Σ with law μ)``, μ the law of the
  first entrances on Σ coming from A. ``n`` replicas from μ run until A or B; ``M_i`` is
  the largest score along replica ``i`` (``+inf`` once it is in B). Iteration ``q``:
  ``Z_q`` = the ``k``-th smallest ``M``; every replica with ``M_i ≤ Z_q`` is killed
  (``K_q ≥ k`` of them when scores tie, which keeps the estimator unbiased); each is
  replaced by a copy of a uniformly chosen survivor cut at the survivor's first step with
  score ``> Z_q`` (the whole model state: velocity, moments, optimizer state), then run on
  with fresh noise until A or B. Stop when ``Z_q`` is ``+inf`` (at least ``n − k + 1``
  replicas are in B) or every replica was killed (``p̂ = 0``).
  ``p̂ = Π_q (1 − K_q/n) · (fraction of final replicas in B)`` is unbiased for any ``k``,
  any score and any discrete-time Markov chain (Bréhier, Gazeau, Goudenège, Lelièvre,
  Rousset, Ann. Appl. Probab. 26, 2016) — here the Euler–Maruyama chain itself, with its
  Brownian-bridge exit test.
* **Mean escape time** (cycle decomposition; Cérou, Guyader, Lelièvre, Pommier, JCP 134,
  2011; Lopes & Lelièvre, J. Comput. Chem. 40, 2019): a direct run from ``θ₀`` records the
  time ``T₀`` to the first entrance on Σ, entrance states (the sample of μ), and loops
  Σ → A → Σ; then ``E τ = E[T₀] + ((1 − p)/p)·E[T_loop] + E[T_reac]``, ``T_reac`` the Σ → B
  time of the successful replicas (their cloned history included).
* **No stored trajectories.** A replica is (origin state, origin step, noise key): its
  noise is counter-based per (key, run, iteration, replica, page), so its path is a pure
  function of those, and the state at its first crossing above ``Z_q`` is found by
  re-running it (cheaper than storing every replica's history, and exact). The clones of
  one iteration run together as lanes of one jitted program.
* **Intervals** come from ``n_runs`` independent AMS runs (the average of unbiased
  estimates is unbiased; its standard error is measured, not modelled — the asymptotic
  AMS variance formula assumes an ideal score).
"""

from __future__ import annotations

import dataclasses
import math
import time as _time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats as _st

from . import _checks
from . import engine as _engine
from . import exits as _exits

K = _engine.NOISE_PAGE
# lane outcomes of one advance
RUNNING, UP, DOWN, EXITED, CAPPED, DIVERGED = 0, 1, 2, 3, 4, 5
_TAG_DIRECT, _TAG_INIT = 1 << 20, 1 << 21  # noise tags of the direct run and AMS start


# ---------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------


def _towards_exit(exit, x0):
    """A direction from ``x0`` towards the exit's boundary, where one is evident."""
    if isinstance(exit, _exits.Halfspace):
        return np.asarray(exit.normal, float)
    if isinstance(exit, _exits.Box):
        lo, up = np.asarray(exit.lower, float), np.asarray(exit.upper, float)
        gaps = np.concatenate([up - x0, x0 - lo])
        i = int(np.argmin(gaps))
        v = np.zeros_like(x0)
        v[i % x0.size] = 1.0 if i < x0.size else -1.0
        return v if np.isfinite(gaps[i]) else None
    if isinstance(exit, _exits.Ellipsoid):
        v = x0 - np.asarray(exit.center, float)
        return v if np.any(v != 0) else None
    return None


@_checks.pytree_dataclass
class ExitScore:
    """The default score of an exit (a pytree: its numbers are traced, so one compiled
    program serves every run with the same kind of exit)."""

    exit: object
    theta0: jax.Array
    span_up: jax.Array | None = None
    span_lo: jax.Array | None = None

    def __call__(self, th):
        ex = self.exit
        if isinstance(ex, _exits.Halfspace):
            n = ex.normal.astype(th.dtype)
            return (jnp.dot(n, th) - ex.offset) / jnp.linalg.norm(n)
        if isinstance(ex, _exits.Box):
            x = th - self.theta0.astype(th.dtype)
            return jnp.maximum(jnp.max(x / self.span_up.astype(th.dtype)),
                               jnp.max(-x / self.span_lo.astype(th.dtype))) - 1
        if isinstance(ex, _exits.Ellipsoid):
            y = th - ex.center.astype(th.dtype)
            q = 0.5 * y @ (ex.matrix.astype(th.dtype) @ y) / ex.level
            return jnp.sqrt(jnp.maximum(q, 0)) - 1
        return ex.fn(th) - ex.level  # LevelSet


def default_score(exit, theta0):
    """A score increasing towards the exit, ``0`` on its boundary, from the exit alone:
    a half-space: the signed distance ``(n·θ − offset)/|n|``; a box: the largest
    normalized coordinate progress from ``theta0`` to a finite face, minus 1; an
    ellipsoid: ``sqrt(½ yᵀAy / level) − 1``; a level set: ``fn(θ) − level``."""
    th0 = jnp.asarray(theta0)
    if isinstance(exit, _exits.Box):
        lo, up = np.asarray(exit.lower, float), np.asarray(exit.upper, float)
        x0 = np.asarray(theta0, float)
        span_up = np.where(np.isfinite(up), up - x0, np.inf)
        span_lo = np.where(np.isfinite(lo), x0 - lo, np.inf)
        if not (np.any(np.isfinite(span_up)) or np.any(np.isfinite(span_lo))):
            raise ValueError("score: a box with no finite face has no default score")
        return ExitScore(exit, th0, jnp.asarray(span_up, th0.dtype),
                         jnp.asarray(span_lo, th0.dtype))
    if isinstance(exit, _exits.Halfspace | _exits.Ellipsoid | _exits.LevelSet):
        return ExitScore(exit, th0)
    raise ValueError(f"score: no default score for an exit of type {type(exit).__name__}; "
                     f"pass score=callable theta -> scalar (increasing towards the exit)")


# ---------------------------------------------------------------------------------------
# The jitted kernel: advance lanes until a level, A, B, a cap or divergence
# ---------------------------------------------------------------------------------------


class _Lanes(eqx.Module):
    state: object  # model state, leading axis W
    step: jax.Array  # (W,) absolute step (model time t = step·dt)
    page: jax.Array  # (W,) pages run since the lane's origin (its noise counter)
    key: jax.Array  # (W,) noise key of the lane's path
    best: jax.Array  # (W,) largest score so far
    status: jax.Array  # (W,) RUNNING, UP, DOWN, EXITED, CAPPED, DIVERGED
    active: jax.Array  # (W,) lanes that run at all


@eqx.filter_jit
def _advance(params, lanes, up, down, max_pages, *, d, bridge, signature):
    """Run every active lane, a page of K steps at a time, until its score exceeds ``up``
    (state frozen at that step: the first crossing), falls to ``<= down``, its position
    leaves the exit, becomes non-finite, or ``max_pages`` pages ran."""
    model, loss, exit, score, dt = params
    dtype = dt.dtype
    use_bridge = bridge and isinstance(exit, _exits.Halfspace | _exits.Box)
    ups, downs = up, down  # (W,) per lane

    def page_fn(lanes):
        z, u = jax.vmap(lambda k, b: _engine._page_noise(model, k, 0, b, d, dtype,
                                                         use_bridge))(lanes.key, lanes.page)
        z = jnp.moveaxis(z, 1, 0)
        u = u if use_bridge else jnp.zeros(lanes.step.shape, dtype)

        def lane_step(state, step, surv, status, best, uj, up, down, zj):
            t = step.astype(dtype) * dt
            new, factor = model.step(state, t, dt, loss, zj)
            x, y = model.position(state), model.position(new)
            gone = exit.outside(y)
            bad = jnp.any(jnp.isnan(y)) | (jnp.any(jnp.isinf(y)) & ~gone)
            if use_bridge:
                fac = factor if factor is not None else None
                if fac is not None:
                    surv = surv * (1 - exit.cross_prob(x, y, fac, dt))
                    gone = gone | (surv < uj)
            s = score(y)
            new_status = jnp.where(bad, DIVERGED, jnp.where(gone, EXITED, jnp.where(
                s > up, UP, jnp.where(s <= down, DOWN, RUNNING))))
            run = status == RUNNING
            keep = lambda a, b: jnp.where(run, a, b)
            state = jax.tree_util.tree_map(keep, new, state)
            best = jnp.where(run, jnp.where(gone, jnp.inf, jnp.maximum(best, s)), best)
            return (state, jnp.where(run, step + 1, step), surv,
                    jnp.where(run, new_status, status), best)

        def body(carry, zj):
            state, step, surv, status, best = carry
            out = jax.vmap(lane_step)(state, step, surv, status, best, u, ups, downs, zj)
            return out, None

        surv0 = jnp.ones(lanes.step.shape, dtype)
        (state, step, _, status, best), _ = jax.lax.scan(
            body, (lanes.state, lanes.step, surv0, lanes.status, lanes.best), z)
        return dataclasses.replace(lanes, state=state, step=step, page=lanes.page + 1,
                                   status=status, best=best)

    def cond(c):
        lanes, n = c
        return jnp.any(lanes.status == RUNNING) & (n < max_pages)

    def body(c):
        lanes, n = c
        return page_fn(lanes), n + 1

    s0 = jax.vmap(lambda st: score(model.position(st)))(lanes.state)
    start = jnp.where(~lanes.active, CAPPED, jnp.where(s0 > ups, UP, RUNNING))
    lanes = dataclasses.replace(lanes, status=start, best=jnp.maximum(lanes.best, s0))
    lanes, _ = jax.lax.while_loop(cond, body, (lanes, jnp.asarray(0, jnp.int32)))
    status = jnp.where((lanes.status == RUNNING) & lanes.active, CAPPED, lanes.status)
    return dataclasses.replace(lanes, status=status)


# ---------------------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------------------


def _pad(n):
    """Lane widths: powers of two (few compiled programs)."""
    return max(8, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


class _Runner:
    """Runs batches of lanes through ``_advance`` (padded to a power-of-two width)."""

    def __init__(self, model, loss, exit, score, dt, d, bridge, max_pages):
        dtype = _engine._float_dtype()
        self.params = _engine._arrayify((model, loss, exit, score, jnp.asarray(dt, dtype)))
        self.sig = _engine._signature(self.params)
        self.model, self.d, self.bridge, self.max_pages = model, d, bridge, max_pages
        self.dtype = dtype
        self.steps = 0  # executed lane-steps (cost)

    def run(self, states, steps, keys, up, down, best=None):
        """Advance ``len(steps)`` lanes from ``states`` (a pytree with a leading axis)."""
        n = int(np.shape(steps)[0])
        w = _pad(n)
        pad = lambda a: jnp.concatenate([a, jnp.repeat(a[:1], w - n, axis=0)]) if w > n \
            else a
        lanes = _Lanes(jax.tree_util.tree_map(pad, states), pad(jnp.asarray(steps, jnp.int32)),
                       jnp.zeros(w, jnp.int32), pad(keys),
                       pad(jnp.full(n, -jnp.inf, self.dtype) if best is None
                           else jnp.asarray(best, self.dtype)),
                       jnp.zeros(w, jnp.int32), jnp.arange(w) < n)
        lvl = lambda v: pad(jnp.broadcast_to(jnp.asarray(v, self.dtype), (n,)))
        out = _advance(self.params, lanes, lvl(up), lvl(down),
                       jnp.asarray(self.max_pages, jnp.int32), d=self.d,
                       bridge=self.bridge, signature=self.sig)
        self.steps += int(np.max(np.asarray(out.page))) * w * K
        cut = lambda a: a[:n]
        return (jax.tree_util.tree_map(cut, out.state), np.asarray(out.step[:n]),
                np.asarray(out.best[:n]), np.asarray(out.status[:n]))


@jax.jit
def _keys_jit(base, tag, slots):
    k = jax.random.fold_in(base, tag)
    return jax.vmap(lambda s: jax.random.fold_in(k, s))(slots)


def _keys(base, tag, slots):
    return _keys_jit(base, jnp.asarray(tag, jnp.uint32), jnp.asarray(slots, jnp.uint32))


def _take(states, idx):
    return jax.tree_util.tree_map(lambda a: a[jnp.asarray(idx)], states)


@dataclasses.dataclass(frozen=True)
class AMSResult:
    """Result of ``escape_ams``.

    Attributes:
      p: mean over the runs of ``p̂ = P(B before A | start on Σ)``; ``p_runs`` per run.
      t_first: ``E[T₀]`` (θ₀ to the first entrance on Σ), ``t_loop``: ``E[T_loop]``
        (Σ → A → Σ), ``t_reactive``: ``E[T_reac]`` (Σ → B of the successful replicas),
        each with its standard error (``*_se``).
      levels: ``(z_A, z_Σ)``; iterations: AMS iterations per run; n_replicas, k.
      cost: executed lane-steps (direct run + AMS); wall_time in seconds.
      failed: replicas that reached neither A nor B within ``t_max`` (0 when all ended).
    """

    p: float
    p_runs: np.ndarray
    t_first: float
    t_first_se: float
    t_loop: float
    t_loop_se: float
    t_reactive: float
    levels: tuple
    iterations: np.ndarray
    n_replicas: int
    k: int
    cost: int
    wall_time: float
    dt: float
    lr: float | None = None
    failed: int = 0

    @property
    def n_runs(self):
        return int(self.p_runs.size)

    def p_ci(self, level=0.95):
        """Interval of ``p`` from the spread of the independent runs (Student t on their
        mean; the runs are i.i.d. and each is unbiased)."""
        r = self.p_runs
        if r.size < 2:
            return (0.0, np.inf)
        se = float(np.std(r, ddof=1) / np.sqrt(r.size))
        q = float(_st.t.ppf(0.5 + level / 2, r.size - 1))
        return max(0.0, self.p - q * se), self.p + q * se

    def _time(self, p, t_loop, t_first, t_reac):
        if p <= 0:
            return np.inf
        return t_first + (1 - p) / p * t_loop + t_reac

    def mean_time(self):
        """``E τ = E[T₀] + ((1 − p)/p)·E[T_loop] + E[T_reac]``."""
        return self._time(self.p, self.t_loop, self.t_first, self.t_reactive)

    def mean_time_ci(self, level=0.95):
        """Interval of ``E τ``: the ends of ``p``'s interval and of the loop time's (a
        normal interval from its standard error), combined at their worst."""
        lo_p, hi_p = self.p_ci(level)
        zq = float(_st.norm.ppf(0.5 + level / 2))
        lo_l = max(0.0, self.t_loop - zq * self.t_loop_se)
        hi_l = self.t_loop + zq * self.t_loop_se
        lo = self._time(hi_p, lo_l, max(0.0, self.t_first - zq * self.t_first_se),
                        max(0.0, self.t_reactive))
        hi = self._time(lo_p, hi_l, self.t_first + zq * self.t_first_se, self.t_reactive)
        return lo, hi

    def rate(self):
        return 1.0 / self.mean_time()

    def rate_ci(self, level=0.95):
        lo, hi = self.mean_time_ci(level)
        return (1.0 / hi if hi > 0 else np.inf), (1.0 / lo if lo > 0 else np.inf)

    def summary(self):
        lo, hi = self.mean_time_ci()
        return {"method": "ams", "p": self.p, "p_ci95": list(self.p_ci()),
                "mean_time": self.mean_time(), "mean_time_ci95": [lo, hi],
                "rate": self.rate(), "t_first": self.t_first, "t_loop": self.t_loop,
                "t_reactive": self.t_reactive, "levels": list(self.levels),
                "n_runs": self.n_runs, "n_replicas": self.n_replicas, "k": self.k,
                "iterations": self.iterations.tolist(), "cost_lane_steps": self.cost,
                "wall_time_s": self.wall_time, "failed": self.failed, "dt": self.dt}

    def __repr__(self):
        lo, hi = self.mean_time_ci()
        return (f"AMSResult(p={self.p:.4g}, mean_time={self.mean_time():.4g} "
                f"[{lo:.4g}, {hi:.4g}], runs={self.n_runs}, replicas={self.n_replicas}, "
                f"k={self.k})")


def _mean_se(x):
    x = np.asarray(x, float)
    if x.size == 0:
        return np.nan, np.nan
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else np.inf


@jax.jit
def _clone_keys(key, runs, tags, slots):
    """Noise key of replica ``slot`` created at ``tag`` in run ``run``: a pure function of
    (key, run, iteration, replica)."""
    one = lambda r, t, s: jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(
        key, r), t), s)
    return jax.vmap(one)(runs, tags, slots)


def _ams_runs(runner, key, runs, orig, orig_step, t_sigma, n, k, z_a, max_iterations):
    """Independent AMS runs ``runs`` side by side (their clones share each kernel call;
    results per run do not depend on which runs share it). ``orig`` holds ``len(runs)·n``
    start states (run-major). Returns per run ``p̂``, iterations, and the reactive steps
    of the replicas that ended in B, plus the number of failed segments."""
    runs = np.asarray(runs, np.int64)
    n_r = runs.size
    rr = np.repeat(runs, n)
    keys = _clone_keys(key, jnp.asarray(rr, jnp.uint32),
                       jnp.full(rr.size, _TAG_INIT + 1, jnp.uint32),
                       jnp.asarray(np.tile(np.arange(n), n_r), jnp.uint32))
    _, end_step, best, status = runner.run(orig, orig_step, keys, np.inf, z_a)
    failed = int(np.sum(status == CAPPED))
    best = np.where(status == EXITED, np.inf, best).reshape(n_r, n)
    end_step = end_step.reshape(n_r, n).copy()
    orig_step = np.asarray(orig_step).reshape(n_r, n).copy()
    t_sigma = np.asarray(t_sigma).reshape(n_r, n).copy()
    weight = np.ones(n_r)
    iters = np.zeros(n_r, np.int64)
    done = np.zeros(n_r, bool)
    rngs = [np.random.default_rng(np.asarray(jax.random.key_data(jax.random.fold_in(key, r)))
                                  .astype(np.uint64).tolist()) for r in runs]
    while not done.all():
        rows, kid, par, zs = [], [], [], []
        for i in np.flatnonzero(~done):
            z = np.partition(best[i], k - 1)[k - 1]
            if z == np.inf:
                done[i] = True
                continue
            if iters[i] >= max_iterations:
                raise ValueError(f"AMS run {runs[i]} did not finish in max_iterations = "
                                 f"{max_iterations}: raise it or move the levels")
            killed = np.flatnonzero(best[i] <= z)
            alive = np.flatnonzero(best[i] > z)
            if alive.size == 0:  # every replica at or below the level: p̂ = 0
                weight[i], done[i] = 0.0, True
                continue
            weight[i] *= 1 - killed.size / n
            rows.append(np.full(killed.size, i))
            kid.append(killed)
            par.append(alive[rngs[i].integers(0, alive.size, killed.size)])
            zs.append(np.full(killed.size, z))
        if not rows:
            break
        rows, kid, par, zs = (np.concatenate(x) for x in (rows, kid, par, zs))
        flat_par, flat_kid = rows * n + par, rows * n + kid
        # re-run each parent's path from its origin to its first score > z: its noise is
        # a pure function of its key, so this is the very same path
        cst, cstep, _, cstatus = runner.run(_take(orig, flat_par), orig_step[rows, par],
                                            keys[jnp.asarray(flat_par)], zs, -np.inf)
        in_b = cstatus == EXITED  # the parent left through the bridge test before > z
        new_keys = _clone_keys(key, jnp.asarray(runs[rows], jnp.uint32),
                               jnp.asarray(_TAG_INIT + 2 + iters[rows], jnp.uint32),
                               jnp.asarray(kid, jnp.uint32))
        _, fstep, fbest, fstatus = runner.run(cst, cstep, new_keys, np.inf, z_a)
        failed += int(np.sum(fstatus == CAPPED))
        fbest = np.where((fstatus == EXITED) | in_b, np.inf, fbest)
        ix = jnp.asarray(flat_kid)
        orig = jax.tree_util.tree_map(lambda a, b, ix=ix: a.at[ix].set(b), orig, cst)
        keys = keys.at[ix].set(new_keys)
        orig_step[rows, kid] = cstep
        t_sigma[rows, kid] = t_sigma[rows, par]
        end_step[rows, kid] = np.where(in_b, cstep, fstep)
        best[rows, kid] = fbest
        iters[np.unique(rows)] += 1
    in_b = best == np.inf
    p = weight * in_b.mean(axis=1)
    reac = [(end_step[i] - t_sigma[i])[in_b[i]] for i in range(n_r)]
    return p, iters, reac, failed


def splitting_probability(model, loss, start, exit, *, level_a, dt, key, n_replicas=100,
                          k=None, score=None, n_runs=1, t_max=None, bridge=True,
                          max_iterations=100_000):
    """AMS estimates of ``P(reach the exit before score <= level_a | start)`` from a fixed
    start point (all replicas start at ``start``, velocity zero), one per run: the
    splitting core of ``escape_ams`` on its own (unbiased for the discrete chain).
    Returns ``(p̂ per run (n_runs,), iterations per run)``."""
    n = _checks.integer("n_replicas", n_replicas, minimum=2)
    k = max(1, n // 4) if k is None else _checks.integer("k", k, minimum=1)
    if k >= n:
        raise ValueError(f"k must be < n_replicas ({n}), got {k}")
    n_runs = _checks.integer("n_runs", n_runs, minimum=1)
    t_max = 1e5 * float(dt) if t_max is None else t_max
    _, start, exit, key = _engine.check_inputs(model, loss, start, exit, 1, dt, t_max, key)
    score = default_score(exit, start) if score is None else score
    if float(score(start)) <= float(level_a):
        raise ValueError(f"level_a = {level_a} must be below score(start) = "
                         f"{float(score(start)):.4g}")
    runner = _Runner(model, loss, exit, score, dt, start.shape[0],
                     bool(bridge) and model.noise_kind == "gaussian"
                     and model.diffusive_position,
                     max(1, math.ceil(_engine.n_steps(t_max, dt) / K)))
    states = jax.vmap(lambda _: model.init(start))(jnp.arange(n * n_runs))
    zero = np.zeros(n * n_runs, np.int64)
    p, iters, _, _ = _ams_runs(runner, key, np.arange(n_runs), states, zero, zero, n, k,
                               float(level_a), max_iterations)
    return p, iters


def escape_ams(model, loss, theta0, exit, *, dt: float, key: jax.Array,
               n_replicas: int = 200, k: int | None = None, score=None,
               levels: tuple[float, float] | None = None, n_runs: int = 8,
               n_direct: int | None = None, t_max: float | None = None, bridge: bool = True,
               max_iterations: int = 100_000) -> AMSResult:
    """Mean escape time by adaptive multilevel splitting (see the module docstring).

    Args:
      model, loss, theta0, exit, dt, key: as ``sd.escape`` (``theta0`` near the minimum).
      n_replicas: replicas per AMS run (``n``); k: replicas killed per iteration at least
        (default ``n // 4``; ties kill more). The relative variance of ``p̂`` is about
        ``|ln p|·(k/n)/((1 − k/n)·|ln(1 − k/n)|)/n`` per run with a good score (1.16
        ``|ln p|/n`` at ``k = n/4``, against ``|ln p|/n`` at ``k = 1``) while the number of
        iterations, ``|ln p|/|ln(1 − k/n)|``, falls from ``n|ln p|`` to ``3.5|ln p|``: the
        clones of an iteration run as lanes together, so large ``k`` is cheap.
      score: ``θ -> scalar`` increasing towards the exit (default ``default_score``).
      levels: ``(z_A, z_Σ)`` with ``score(θ₀) < z_A < z_Σ < score on the exit``; default
        ``z_A = s₀ + 0.1|s₀|``, ``z_Σ = s₀ + 0.2|s₀|`` (``s₀ = score(θ₀) < 0``).
      n_runs: independent AMS runs (the interval comes from their spread).
      n_direct: paths of the direct run that measures ``T₀``, ``T_loop`` and samples μ
        (default ``2·n_replicas``).
      t_max: longest SDE time one replica segment or direct-run stage may take (default
        ``10⁵·dt``); replicas that reach neither A nor B by then are reported in
        ``failed`` (and warned about), never counted as escapes.
      bridge: Brownian-bridge exit test (Gaussian overdamped models, half-space/box).

    Returns:
      ``AMSResult``: ``p``, ``p_ci()``, ``mean_time()``, ``mean_time_ci()``, ``rate()``,
      ``rate_ci()``, the cycle times, iterations and cost.
    """
    t_start = _time.perf_counter()
    n = _checks.integer("n_replicas", n_replicas, minimum=2)
    k = max(1, n // 4) if k is None else _checks.integer("k", k, minimum=1)
    if k >= n:
        raise ValueError(f"k must be < n_replicas ({n}), got {k}")
    n_runs = _checks.integer("n_runs", n_runs, minimum=1)
    n_direct = 2 * n if n_direct is None else _checks.integer("n_direct", n_direct, minimum=2)
    max_iterations = _checks.integer("max_iterations", max_iterations, minimum=1)
    t_max = 1e5 * float(dt) if t_max is None else t_max
    _, theta0, exit, key = _engine.check_inputs(model, loss, theta0, exit, 1, dt, t_max, key)
    if exit is None:
        raise TypeError("exit is required: an exit from sdesim.exits")
    if score is None:
        score = default_score(exit, theta0)
    elif not callable(score):
        raise TypeError(f"score must be a callable theta -> scalar, got "
                        f"{type(score).__name__}")
    s_out = jax.eval_shape(score, theta0)
    if s_out.shape != ():
        raise ValueError(f"score must return a scalar, got shape {s_out.shape}")
    s0 = float(score(theta0))
    if not np.isfinite(s0):
        raise ValueError(f"score(theta0) = {s0} must be finite")
    # the score must increase towards the exit at theta0 (a step along its gradient
    # moves towards the exit's boundary)
    g = np.asarray(jax.grad(score)(theta0), float)
    if not np.all(np.isfinite(g)) or not np.any(g != 0):
        raise ValueError("score must be differentiable with a non-zero gradient at theta0 "
                         "(increasing towards the exit)")
    towards = _towards_exit(exit, np.asarray(theta0, float))
    if towards is not None and float(g @ towards) <= 0:
        raise ValueError("score must increase towards the exit at theta0: its gradient "
                         "there points away from the exit (did you flip its sign?)")
    if levels is None:
        if s0 >= 0:
            raise ValueError(f"score(theta0) = {s0:.4g} >= 0: the default levels need a "
                             f"score that is negative inside and 0 on the exit; pass levels")
        levels = (s0 + 0.1 * abs(s0), s0 + 0.2 * abs(s0))
    z_a, z_s = (float(v) for v in levels)
    if not (s0 <= z_a < z_s):
        raise ValueError(f"levels must satisfy score(theta0) = {s0:.4g} <= z_A < z_Sigma, got "
                         f"levels=({z_a:.4g}, {z_s:.4g})")
    _engine.warn_if_unstable(model, loss, theta0, dt)
    d = theta0.shape[0]
    max_pages = max(1, math.ceil(_engine.n_steps(t_max, dt) / K))
    use_bridge = bool(bridge) and model.noise_kind == "gaussian" and model.diffusive_position
    runner = _Runner(model, loss, exit, score, dt, d, use_bridge, max_pages)
    dtv = float(dt)
    failed = 0

    # -- direct run: T0, entrance states on Σ, loops Σ -> A -> Σ ------------------------
    kd = jax.random.fold_in(key, _TAG_DIRECT)
    init = jax.vmap(lambda _: model.init(theta0))(jnp.arange(n_direct))
    st, stp, _, status = runner.run(init, np.zeros(n_direct, np.int64),
                                    _keys(kd, 0, np.arange(n_direct)), z_s, -np.inf)
    reached = status == UP
    failed += int(np.sum(status == CAPPED))
    if not reached.any():
        raise ValueError(f"no direct path from theta0 reached the level z_Sigma = {z_s:.4g} "
                         f"within t_max = {t_max:g}: lower levels[1] or raise t_max")
    t_first = stp[reached] * dtv
    ent_states, ent_steps = _take(st, np.flatnonzero(reached)), stp[reached]
    n_ent = int(reached.sum())
    # Σ -> A (or B) then A -> Σ: loop durations and fresh entrances (coming from A)
    st2, stp2, _, status2 = runner.run(ent_states, ent_steps,
                                       _keys(kd, 1, np.arange(n_ent)), np.inf, z_a)
    back = status2 == DOWN
    failed += int(np.sum(status2 == CAPPED))
    if not back.any():
        raise ValueError("no direct path returned from Sigma to A: the levels are too "
                         "close to the exit (or A too small); lower levels")
    st3, stp3, _, status3 = runner.run(_take(st2, np.flatnonzero(back)), stp2[back],
                                       _keys(kd, 2, np.arange(int(back.sum()))), z_s,
                                       -np.inf)
    again = status3 == UP
    failed += int(np.sum(status3 == CAPPED))
    loops = (stp3[again] - ent_steps[back][again]) * dtv
    if loops.size < 2:
        raise ValueError("fewer than 2 loops Sigma -> A -> Sigma in the direct run: raise "
                         "n_direct or t_max")
    mu_states = _take(st3, np.flatnonzero(again))  # entrances on Σ coming from A
    mu_steps = stp3[again]
    mu_start = mu_steps.copy()
    n_mu = int(again.sum())

    # -- AMS runs ----------------------------------------------------------------------
    pick = np.concatenate([np.asarray(jax.random.randint(
        jax.random.fold_in(jax.random.fold_in(key, r), _TAG_INIT), (n,), 0, n_mu))
        for r in range(n_runs)])
    p_runs, iters, reac, fail_r = _ams_runs(runner, key, np.arange(n_runs),
                                            _take(mu_states, pick), mu_steps[pick],
                                            mu_start[pick], n, k, z_a, max_iterations)
    failed += fail_r
    reac = np.concatenate(reac) * dtv if len(reac) else np.zeros(0)
    if failed:
        import warnings

        warnings.warn(f"{failed} paths or replicas reached neither A nor the exit within "
                      f"t_max = {t_max:g} (counted as failures to escape, which biases p "
                      f"low): raise t_max", RuntimeWarning, stacklevel=2)
    p_runs = np.asarray(p_runs)
    tf, tf_se = _mean_se(t_first)
    tl, tl_se = _mean_se(loops)
    tr = float(np.mean(reac)) if reac.size else 0.0
    return AMSResult(p=float(p_runs.mean()), p_runs=p_runs, t_first=tf, t_first_se=tf_se,
                     t_loop=tl, t_loop_se=tl_se, t_reactive=tr, levels=(z_a, z_s),
                     iterations=np.asarray(iters), n_replicas=n, k=k, cost=runner.steps,
                     wall_time=_time.perf_counter() - t_start, dt=dtv,
                     lr=_engine._lr_of(model), failed=failed)
