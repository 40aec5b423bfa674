"""Critical points of a loss: minima, index-1 saddles, minimum-energy paths.

- ``minimize(loss, x0)``: a minimum downhill from ``x0`` (optimistix BFGS, or L-BFGS),
  then Newton on the gradient to the dtype's precision; ``descend(loss, x)``: the
  gradient flow, which stays in ``x``'s basin of attraction (BFGS may not).
- ``newton(loss, x)``: Newton's method on ``∇L = 0`` (dense Hessian, or GMRES); it
  converges to the critical point near ``x`` whatever its index — the refinement of every
  point the other functions return.
- ``morse_index(loss, x)``: the number of negative Hessian eigenvalues (0 at a minimum,
  1 at a transition saddle); ``lowest_modes(loss, x, k)``: the softest Hessian modes.
- ``saddle_from_minimum(loss, x_min, direction)``: gentlest-ascent dynamics (E & Zhou
  2011) from a minimum along ``direction`` (default: the Hessian's softest mode): the
  point climbs along the tracked softest direction and descends in the others, so it
  converges to an index-1 saddle; then ``newton``.
- ``string_path(loss, a, b, n_images)``: the zero-temperature string method (E, Ren &
  Vanden-Eijnden 2007): all images take a gradient step together (one jitted program) and
  are redistributed at equal arc length; the highest image is refined by ``newton`` into
  the saddle on the path.

- ``PathCoordinate(images)``: the arc length along a path (e.g. ``string_path``'s images)
  of a point's projection onto it — a reaction coordinate for any landscape, usable as a
  splitting score (``sd.escape_ams(score=...)``) and, with ``exits.LevelSet``, as the exit
  "past the saddle along the path".

- ``escape_path(loss, theta0)``: the minimum-energy path out of a basin over its lowest
  saddle (``escape_ams``'s score where the exit gives none).
- ``basin_exit(loss, theta0)``: a basin's minimum and an exit for any landscape: past any
  of the saddles bounding it, a fraction ``commit`` of the way down its minimum-energy
  path (``Committed``, also the splitting score).

All of them take a vector ``x`` (``(d,)``) and run in the default float dtype (use
``JAX_ENABLE_X64=1`` for saddles to 1e-8 in the gradient). Above ``DENSE_MAX`` (1 000)
parameters no Hessian is formed: the softest modes and the index come from Lanczos on
Hessian-vector products, Newton's step from GMRES.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks

DENSE_MAX = 1000  # above this many parameters: Hessian-vector products only (Lanczos,
# GMRES), never a d × d matrix


def _vec(x):
    x = jnp.asarray(x, jnp.result_type(float))
    if x.ndim != 1:
        raise ValueError(f"expected a point of shape (d,), got shape {x.shape}")
    return x


@eqx.filter_jit
def _newton(loss, x, steps):
    g = jax.grad(loss)

    def body(x, _):
        dx = jnp.linalg.solve(jax.hessian(loss)(x), g(x))
        return jnp.where(jnp.all(jnp.isfinite(dx)), x - dx, x), None

    return jax.lax.scan(body, x, None, length=steps)[0]


@eqx.filter_jit
def _newton_hvp(loss, x, steps):
    """Newton with the step solved by GMRES on Hessian-vector products (indefinite
    Hessians: saddles), for large d."""
    g = jax.grad(loss)

    def body(x, _):
        hvp = lambda v: jax.jvp(g, (x,), (v,))[1]
        dx, _ = jax.scipy.sparse.linalg.gmres(hvp, g(x), tol=1e-12, restart=60, maxiter=10)
        return jnp.where(jnp.all(jnp.isfinite(dx)), x - dx, x), None

    return jax.lax.scan(body, x, None, length=steps)[0]


def newton(loss, x, *, steps: int = 30):
    """``steps`` Newton steps on ``∇L(x) = 0`` from ``x`` (a step that is not finite, at a
    singular Hessian, is skipped): the dense Hessian up to ``DENSE_MAX`` parameters, GMRES
    on Hessian-vector products above. Returns the refined point."""
    steps = _checks.integer("steps", steps, minimum=1)
    x = _vec(x)
    return (_newton if x.shape[0] <= DENSE_MAX else _newton_hvp)(loss, x, steps)


@eqx.filter_jit
def _lanczos_lowest(loss, x, k, m, key):
    from .diagnostics import _lanczos

    hvp = lambda v: jax.jvp(jax.grad(loss), (x,), (v,))[1]
    vals, vecs = _lanczos(hvp, x.shape[0], m, key, x.dtype)
    return vals[:k], vecs[:k]


def lowest_modes(loss, x, k: int = 1):
    """The ``k`` smallest Hessian eigenvalues at ``x`` (ascending) and their eigenvectors
    (rows): dense ``eigh`` up to ``DENSE_MAX`` parameters, Lanczos on Hessian-vector
    products (``max(3k + 20, 60)`` of them) above."""
    x = _vec(x)
    d = x.shape[0]
    k = _checks.integer("k", k, minimum=1)
    if d <= DENSE_MAX:
        lam, vec = np.linalg.eigh(np.asarray(jax.hessian(loss)(x), np.float64))
        return lam[:k], vec[:, :k].T
    vals, vecs = _lanczos_lowest(loss, x, min(k, d), min(d, max(3 * k + 20, 60)),
                                 jax.random.key(0))
    return np.asarray(vals, np.float64), np.asarray(vecs, np.float64)


def morse_index(loss, x) -> int:
    """Number of negative eigenvalues of the Hessian at ``x`` (above ``DENSE_MAX``
    parameters: among the 6 lowest, by Lanczos — a count of 6 means "6 or more")."""
    x = _vec(x)
    if x.shape[0] <= DENSE_MAX:
        lam = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(x), np.float64))
        scale = max(1.0, float(np.abs(lam).max()))
    else:
        lam, _ = lowest_modes(loss, x, 6)
        top = float(np.asarray(_lanczos_lowest(lambda v: -loss(v), x, 1, 40,
                                               jax.random.key(1))[0])[0])
        scale = max(1.0, abs(top), float(np.abs(lam).max()))
    return int(np.sum(lam < -1e-9 * scale))


def grad_norm(loss, x) -> float:
    return float(jnp.linalg.norm(jax.grad(loss)(_vec(x))))


@eqx.filter_jit
def _flow(loss, x, dt, steps):
    g = jax.grad(loss)
    return jax.lax.scan(lambda x, _: (x - dt * g(x), None), x, None, length=steps)[0]


def descend(loss, x, *, dt: float = 1e-4, steps: int = 20_000):
    """Steepest descent ``ẋ = −∇L`` (explicit Euler, ``steps`` steps of ``dt``): unlike a
    quasi-Newton minimizer, which may jump over a ridge, it stays in the basin of
    attraction of the gradient flow — the basin an escape leaves."""
    _checks.real("dt", dt, positive=True)
    steps = _checks.integer("steps", steps, minimum=1)
    x = _vec(x)
    return _flow(loss, x, jnp.asarray(dt, x.dtype), steps)


def minimize(loss, x0, *, rtol: float = 1e-8, atol: float = 1e-8, max_steps: int = 10_000):
    """The minimum reached downhill from ``x0``: optimistix BFGS (L-BFGS above
    ``DENSE_MAX`` parameters: no d × d matrix), then ``newton``. Raises ``RuntimeError``
    if the result is not a minimum (index > 0) or not critical."""
    import optimistix as optx

    x0 = _vec(x0)
    solver = (optx.BFGS if x0.shape[0] <= DENSE_MAX else optx.LBFGS)(rtol=rtol, atol=atol)
    sol = optx.minimise(lambda x, _: loss(x), solver, x0, max_steps=max_steps, throw=False)
    x = newton(loss, sol.value)
    if morse_index(loss, x) != 0:
        raise RuntimeError(f"minimize from {np.asarray(x0)} ended at {np.asarray(x)}, a "
                           f"critical point of index {morse_index(loss, x)}, not a minimum")
    return x


@eqx.filter_jit
def _gad(loss, x, v, dt, steps):
    g = jax.grad(loss)
    hvp = lambda x, v: jax.jvp(g, (x,), (v,))[1]

    def body(c, _):
        x, v = c
        gx = g(x)
        x = x - dt * (gx - 2 * (gx @ v) * v)
        hv = hvp(x, v)
        v = v - dt * (hv - (v @ hv) * v)
        return (x, v / jnp.linalg.norm(v)), None

    return jax.lax.scan(body, (x, v / jnp.linalg.norm(v)), None, length=steps)[0]


def saddle_from_minimum(loss, x_min, direction=None, *, dt: float = 1e-3,
                        steps: int = 20_000, kick: float = 1e-2):
    """An index-1 saddle reached from the minimum ``x_min`` by gentlest-ascent dynamics
    ``ẋ = −∇L + 2(∇L·v)v``, ``v̇ = −Hv + (vᵀHv)v`` (``|v| = 1``), started at
    ``x_min + kick·v₀`` with ``v₀ = direction`` (its sign chooses the side; default: the
    softest Hessian mode, both sides tried, the first that ends at a saddle kept), then
    ``newton``. ``dt`` must be small against ``1/λ_max``.
    Raises ``RuntimeError`` if the end point is not an index-1 critical point."""
    x_min = _vec(x_min)
    given_direction = direction
    if direction is None:
        direction = lowest_modes(loss, x_min, 1)[1][0]
    v = _vec(direction)
    _checks.real("dt", dt, positive=True)
    steps = _checks.integer("steps", steps, minimum=1)
    ends = []
    for sign in (1.0, -1.0) if given_direction is None else (1.0,):
        w = sign * v / jnp.linalg.norm(v)
        x, _ = _gad(loss, x_min + kick * w, w, jnp.asarray(dt, x_min.dtype), steps)
        if bool(jnp.all(jnp.isfinite(x))):
            x = newton(loss, x)
            if morse_index(loss, x) == 1 and bool(jnp.all(jnp.isfinite(x))):
                return x
        ends.append(np.asarray(x))
    raise RuntimeError(f"gentlest ascent from {np.asarray(x_min)} ended at "
                       f"{ends}, not at an index-1 saddle; try another direction or dt")


@eqx.filter_jit
def _string(loss, images, dt, steps):
    g = jax.vmap(jax.grad(loss))
    n = images.shape[0]

    def reparam(p):
        seg = jnp.linalg.norm(jnp.diff(p, axis=0), axis=1)
        s = jnp.concatenate([jnp.zeros(1, p.dtype), jnp.cumsum(seg)])
        s = s / s[-1]
        t = jnp.linspace(0, 1, n, dtype=p.dtype)
        return jax.vmap(lambda col: jnp.interp(t, s, col), in_axes=1, out_axes=1)(p)

    def body(p, _):
        q = p - dt * g(p)
        q = q.at[0].set(p[0]).at[-1].set(p[-1])  # the end points are the minima
        return reparam(q), None

    return jax.lax.scan(body, images, None, length=steps)[0]


@dataclasses.dataclass(frozen=True)
class Path:
    """A minimum-energy path: ``images`` (n, d), their ``energies``, the refined
    ``saddle`` (None if the top image does not refine to an index-1 point), its
    ``barrier`` from the first end, and the cost (images × steps, seconds)."""

    images: np.ndarray
    energies: np.ndarray
    saddle: np.ndarray | None
    barrier: float | None
    evaluations: int
    seconds: float


def string_path(loss, a, b, *, n_images: int = 32, dt: float = 1e-4,
                steps: int = 20_000) -> Path:
    """The minimum-energy path between minima ``a`` and ``b`` by the string method:
    ``n_images`` images, ``steps`` gradient steps of ``dt`` with equal-arc-length
    redistribution after each, every image stepped together in one jitted program; the
    highest image refined by ``newton`` (kept if it is an index-1 saddle)."""
    import time

    a, b = _vec(a), _vec(b)
    n = _checks.integer("n_images", n_images, minimum=3)
    steps = _checks.integer("steps", steps, minimum=1)
    t0 = time.perf_counter()
    init = a + jnp.linspace(0, 1, n, dtype=a.dtype)[:, None] * (b - a)
    p = _string(loss, init, jnp.asarray(dt, a.dtype), steps)
    e = jax.vmap(loss)(p)
    top = int(jnp.argmax(e))
    s = newton(loss, p[top])
    ok = 0 < top < n - 1 and morse_index(loss, s) == 1
    seconds = time.perf_counter() - t0
    return Path(np.asarray(p), np.asarray(e), np.asarray(s) if ok else None,
                float(loss(s) - loss(a)) if ok else None, n * steps, seconds)


_SHORT = 16  # PathCoordinate works coordinate by coordinate up to this dimension


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PathCoordinate:
    """``s(θ)``: the arc length, from the first image, of the point nearest to ``θ`` on the
    piecewise-linear path through ``images`` ((n, d)), minus ``offset`` (e.g. the saddle's
    arc length, so that ``s < 0`` before the saddle and ``s = 0`` at it). Continuous, and
    increasing along the path; before the first image the path goes on along the line of
    its first segment (negative arc length), so the coordinate does not stop at the
    minimum the path starts from. A pytree (the images are traced)."""

    images: jax.Array
    offset: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros(()))

    @property
    def length(self):
        seg = jnp.linalg.norm(jnp.diff(self.images, axis=0), axis=1)
        return float(jnp.sum(seg))

    def __call__(self, theta):
        p = self.images.astype(theta.dtype)
        a, b = p[:-1], p[1:]
        ab = b - a
        d = theta.shape[0]
        if d <= _SHORT:
            # coordinate by coordinate: the arithmetic then runs along the segments; a
            # sum over a short last axis (d = 2) runs element by element (5-7x slower,
            # and this is evaluated at every step of every path when it is an exit)
            dot = lambda u, v: sum(u[:, k] * v[:, k] for k in range(d))
            dot_t = lambda v: sum((theta[k] - a[:, k]) * v[:, k] for k in range(d))
        else:
            dot = lambda u, v: jnp.sum(u * v, axis=1)
            dot_t = lambda v: jnp.sum((theta - a) * v, axis=1)
        den = jnp.maximum(dot(ab, ab), jnp.finfo(theta.dtype).tiny)
        # before the first image the coordinate goes on along the first segment's line
        # (t < 0 there): it keeps increasing through the minimum, so a phase-space
        # replica swinging out behind the minimum is not scored as sitting at it
        lo = jnp.where(jnp.arange(ab.shape[0]) == 0, -jnp.inf, 0.0).astype(theta.dtype)
        t = jnp.clip(dot_t(ab) / den, lo, 1.0)
        r = a + t[:, None] * ab - theta
        dist = dot(r, r)
        seg = jnp.sqrt(den)
        start = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(seg)[:-1]])
        # the arc length at the nearest segment (the smallest if several are nearest:
        # arc length grows along the path); a min, not an argmin and a gather (an
        # argmin is a variadic reduction XLA CPU does not vectorize); NaN stays NaN.
        # Not ``dist == min(dist)``: inside a jitted, vmapped step XLA may evaluate
        # ``dist`` in the comparison's fusion rounded differently from the reduction's,
        # and then no segment matched and the coordinate was +inf — a spurious exit
        # (seen in Momentum's step on Müller–Brown: 43 of 64 paths at ΔL/T ≈ 700 within
        # one time unit; tests/test_critical.py). The slack costs no measurable time
        # (rotated-well Langevin, 2 000 paths × 2·10⁴ steps: 7.4–7.7 s against
        # 7.5–9.5 s before, ad hoc, alternating, one core).
        # Any segment within the rounding of ``dist`` counts as nearest: each coordinate
        # of ``r`` is a sum of a few terms bounded by ``S = max|θ| + max|images|``,
        # rounded to within a few ulps of ``S``, so ``|r|`` to within ``δ`` (64 ulps of
        # ``S``, times sqrt(d)) and ``dist`` to within ``δ(2|r| + δ)``.
        dmin = jnp.min(dist)
        delta = 64 * jnp.finfo(theta.dtype).eps * math.sqrt(d) * (
            jnp.max(jnp.abs(theta)) + jnp.max(jnp.abs(p)))
        near = dist <= dmin + delta * (2 * jnp.sqrt(dmin) + delta)
        s = jnp.min(jnp.where(near, start + t * seg, jnp.inf))
        return jnp.where(jnp.isnan(dmin), dmin, s) - self.offset.astype(theta.dtype)


def path_coordinate(path: Path | np.ndarray, *, at_saddle: bool = True) -> PathCoordinate:
    """``PathCoordinate`` of a ``Path`` (or an array of images); ``at_saddle``: measured
    from the path's highest image (the saddle), so negative in the first basin."""
    images = jnp.asarray(path.images if isinstance(path, Path) else path,
                         jnp.result_type(float))
    pc = PathCoordinate(images)
    if not at_saddle:
        return pc
    if isinstance(path, Path) and path.saddle is not None:
        s0 = pc(jnp.asarray(path.saddle, images.dtype))
    else:
        energies = None if not isinstance(path, Path) else path.energies
        if energies is None:
            raise ValueError("at_saddle needs a Path (images with energies)")
        s0 = pc(images[int(np.argmax(energies))])
    return PathCoordinate(images, jnp.asarray(s0, images.dtype))


def escape_path(loss, theta0, *, n_images: int = 32, n_modes: int = 2) -> Path:
    """The minimum-energy path out of the basin of the minimum downhill from ``theta0``,
    over its lowest saddle (gentlest ascent along ± the ``n_modes`` softest modes, as
    ``sd.theory.predict`` searches; a saddle counts if it bounds the basin), to the
    minimum on the other side; ``path_coordinate`` of it is ``escape_ams``'s default
    score where the exit gives none. Raises if no saddle is found."""
    from .theory import landscape as _land

    x_min = np.asarray(minimize(loss, theta0), np.float64)
    saddles = _land._find_saddles(loss, x_min, n_modes, 1e-4, 20_000)
    if not saddles:
        raise ValueError("no index-1 saddle found from the minimum near theta0: pass "
                         "score= (a callable) to escape_ams")
    fx = float(loss(_vec(x_min)))
    s = min(saddles, key=lambda p: float(loss(_vec(p))) - fx)
    return string_path(loss, x_min, minimum_beyond(loss, s, x_min), n_images=n_images)


def saddle_directions(loss, theta0, *, n_modes: int | None = None) -> np.ndarray:
    """The unstable directions (unit rows ``(K, d)``) of the index-1 saddles bounding the
    basin of the minimum downhill from ``theta0``, found as ``sd.theory.predict`` finds
    them (gentlest ascent along ± the ``n_modes`` softest modes; default ``min(d, 10)``,
    so that a separable landscape's saddles, one per coordinate, are all found in up to
    ten coordinates). ``escape_ams(directions="saddles")`` takes them. Raises if no
    saddle is found."""
    from .theory import landscape as _land

    x_min = np.asarray(minimize(loss, theta0), np.float64)
    k = min(x_min.size, 10) if n_modes is None else _checks.integer("n_modes", n_modes,
                                                                     minimum=1)
    saddles = _land._find_saddles(loss, x_min, k, 1e-4, 20_000)
    if not saddles:
        raise ValueError("no index-1 saddle found from the minimum near theta0: pass the "
                         "escape directions as vectors")
    return np.stack([lowest_modes(loss, s, 1)[1][0] for s in saddles])


def minimum_beyond(loss, saddle, x_min, direction=None):
    """The minimum on the far side of ``saddle`` from ``x_min``: a small step along the
    saddle's unstable direction (``direction``, default its softest Hessian mode), turned
    away from ``x_min``, then the gradient flow and ``minimize``."""
    s = np.asarray(saddle, np.float64)
    e = lowest_modes(loss, s, 1)[1][0] if direction is None else np.asarray(direction)
    e = e * np.sign(e @ (s - x_min) or 1.0)  # away from x_min
    step = 1e-2 * max(1.0, float(np.linalg.norm(s)))
    return np.asarray(minimize(loss, descend(loss, _vec(s + step * e))), np.float64)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Committed:
    """``max_i (s_i(θ) − level_i)``: > 0 once a path is past any saddle ``i`` by its
    ``level_i`` along that saddle's path coordinate ``s_i`` (``PathCoordinate``, 0 at the
    saddle). With ``exits.LevelSet(committed, 0.0)`` it is an exit and a splitting score."""

    coords: tuple
    levels: jax.Array

    def __call__(self, theta):
        s = jnp.stack([pc(theta) for pc in self.coords])
        return jnp.max(s - self.levels.astype(theta.dtype))


def basin_exit(loss, theta0, *, commit: float = 0.8, n_modes: int = 2,
               n_images: int = 48):
    """The minimum downhill from ``theta0`` and an exit from its basin, for any landscape:
    the index-1 saddles bounding the basin (gentlest ascent along ± the ``n_modes`` softest
    modes, as ``sd.theory.predict`` finds them), for each the minimum on its other side and
    the minimum-energy path there (``string_path``), and the exit once a path is a fraction
    ``commit`` (0 < commit < 1) of the way from any saddle down to its other minimum
    (measured along the path). Past the saddle a path has committed to the other basin, so
    the mean time to this exit is the transition time Eyring–Kramers speaks of (an exit at
    the saddle itself is reached in about half that time). Returns ``(x_min, exit)``, the
    exit an ``exits.LevelSet`` of a :class:`Committed` (its own splitting score). Raises if
    no saddle is found."""
    from . import exits as _exits
    from .theory import landscape as _land

    _checks.real("commit", commit, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    x_min = np.asarray(minimize(loss, theta0), np.float64)
    saddles = _land._find_saddles(loss, x_min, n_modes, 1e-4, 20_000)
    if not saddles:
        raise ValueError("basin_exit: no index-1 saddle found from the minimum near theta0 "
                         "(raise n_modes, or give the exit yourself)")
    coords, levels = [], []
    for s in saddles:
        other = minimum_beyond(loss, s, x_min)
        path = string_path(loss, x_min, other, n_images=n_images)
        pc = path_coordinate(path)
        coords.append(pc)
        levels.append(commit * float(pc(_vec(other))))
    dtype = jnp.result_type(float)
    score = Committed(tuple(coords), jnp.asarray(levels, dtype))
    return x_min, _exits.LevelSet(score, 0.0)

