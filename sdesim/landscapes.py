"""Loss landscapes. Any JAX function ``θ (d,) -> scalar`` is a landscape; the
built-ins are pytrees (their numeric parameters are traced, so a sweep over sharpness
compiles once) that add metadata: critical points, basin exits, separability and, where it
exists, the per-sample loss and the closed-form gradient-noise covariance.

Optional methods the rest of the package uses when present:
``hessian_diag(θ)`` (separable landscapes: the diagonal fast path of ``noise.hessian``),
``per_sample(θ, x)`` and ``grad_cov(θ)`` (``noise.minibatch``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from . import exits as _exits

# Gauss–Hermite rule (physicists'): E[p(a + sZ)] = Σ w_j p(a + s·sqrt(2)·ξ_j)/sqrt(π),
# exact for polynomials p of degree <= 2·8 - 1 = 15 (quartic losses, their squared
# gradients: degree 6).
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(8)


class Landscape:
    """Base of the built-in landscapes: parameters are coerced to arrays and checked at
    construction (ValueError/TypeError naming the parameter); ``check_dim(d)`` checks a
    start point's dimension against the landscape's."""

    def __post_init__(self):
        _checks.coerce_fields(self)
        self.check()

    def check(self):
        pass

    def check_dim(self, d):
        dim = getattr(self, "dim", None)
        if dim is not None and int(dim) != d:
            raise ValueError(f"theta0 has dimension {d} but the {type(self).__name__} "
                             f"landscape has dim={dim}")


def _st_1d(y):
    return 0.5 * (y**4 - 16.0 * y**2 + 5.0 * y)


def _st_1d_grad(y):
    return 2.0 * y**3 - 16.0 * y + 2.5


def _st_1d_hess(y):
    return 6.0 * y**2 - 16.0


@_checks.pytree_dataclass
class StyblinskiTang(Landscape):
    """Styblinski–Tang ``f(y) = ½ Σ (y_i⁴ − 16 y_i² + 5 y_i)`` [Adai App. E], sharpness-
    rescaled and optionally data-shifted:

    ``L_k(θ) = E_x f(sqrt(k)·θ − x)``, ``x ~ N(0, s² I)`` (``s = data_std``; ``s = 0`` is the
    plain function). The Hessian scales by ``k``, critical points by ``1/sqrt(k)``. The
    data average is exact (Gauss–Hermite on a polynomial), and so is the per-sample
    gradient covariance ``grad_cov`` (diagonal: coordinates of x are independent).
    Separable: ``hessian_diag`` is exact.
    """

    dim: int = dataclasses.field(metadata=dict(static=True))
    sharpness: jax.Array = 1.0
    data_std: jax.Array = 0.0

    separable = True

    def check(self):
        _checks.integer("dim", self.dim, minimum=1)
        _checks.scalar("sharpness", self.sharpness)
        _checks.scalar("data_std", self.data_std)
        _checks.real("sharpness", self.sharpness, positive=True)
        _checks.real("data_std", self.data_std, nonnegative=True)

    def _a(self, theta):
        return jnp.sqrt(jnp.asarray(self.sharpness, theta.dtype)) * theta

    def coordinate_loss(self, theta):
        """Per-coordinate population loss (the loss is their sum). Gaussian moments of
        ``y = a − x``: E y = a, E y² = a² + s², E y⁴ = a⁴ + 6a²s² + 3s⁴ (closed form: the
        hot path of every step, so no quadrature here)."""
        a = self._a(theta)
        s2 = jnp.asarray(self.data_std, theta.dtype) ** 2
        a2 = a * a
        return 0.5 * (a2 * a2 + 6 * a2 * s2 + 3 * s2 * s2 - 16 * (a2 + s2) + 5 * a)

    def __call__(self, theta):
        return jnp.sum(self.coordinate_loss(theta))

    def per_sample(self, theta, x):
        """``ℓ(θ; x) = f(sqrt(k)θ − x)`` for one data point ``x`` of shape ``(d,)``."""
        return jnp.sum(_st_1d(self._a(theta) - x))

    def hessian_diag(self, theta):
        a = self._a(theta)
        s2 = jnp.asarray(self.data_std, theta.dtype) ** 2
        return jnp.asarray(self.sharpness, theta.dtype) * (6 * (a * a + s2) - 16)

    def grad_cov(self, theta):
        """Diagonal of ``Cov_x[∇_θ ℓ(θ; x)]`` (population): ``k·Var[g(a − x)]`` with
        ``g(y) = 2y³ − 16y + 2.5``. Writing ``y = a + ξ``, the random part is
        ``Aξ + Bξ² + 2ξ³`` (A = 6a² − 16, B = 6a), whose variance is
        ``A²s² + 2B²s⁴ + 12A s⁴ + 60 s⁶`` (Gaussian moments; checked against per-sample
        averages in the tests)."""
        a = self._a(theta)
        s2 = jnp.asarray(self.data_std, theta.dtype) ** 2
        big_a = 6 * a * a - 16
        var = s2 * (big_a * big_a + s2 * (72 * a * a + 12 * big_a + 60 * s2))
        return jnp.asarray(self.sharpness, theta.dtype) * var

    def sample_data(self, key, n):
        """``n`` data points ``x ~ N(0, s² I)`` (the paper uses 50 000)."""
        return self.data_std * jax.random.normal(key, (n, self.dim))

    # -- metadata (numpy, float64) ------------------------------------------------------
    def critical_points(self):
        """1-D critical points in θ units: dict with ``global_min``, ``saddle``,
        ``local_min`` (root-finding on the exact cubic derivative of the population loss)."""
        s = float(self.data_std)
        k = float(self.sharpness)
        # dE f(a - x)/da is a cubic in a: recover it exactly from 4 values, then roots.
        a_pts = np.array([-2.0, -1.0, 1.0, 2.0])
        nodes, w = _GH_X * np.sqrt(2.0), _GH_W / np.sqrt(np.pi)
        vals = [np.sum(w * _st_1d_grad(ai - s * nodes)) for ai in a_pts]
        coef = np.polyfit(a_pts, vals, 3)  # exact: 4 points, a cubic, float64
        real = _cubic_roots_real(coef)
        if real.size != 3:
            raise ValueError(f"data_std={s} is so large that the Styblinski–Tang coordinate "
                             f"loss has a single minimum (no barrier to escape)")
        return {"global_min": real[0] / np.sqrt(k), "saddle": real[1] / np.sqrt(k),
                "local_min": real[2] / np.sqrt(k)}

    def potential_1d(self, x):
        """The coordinate loss as a numpy function of one coordinate (for theory.*)."""
        x = np.asarray(x, np.float64)
        a = np.sqrt(float(self.sharpness)) * x
        nodes, w = _GH_X * np.sqrt(2.0), _GH_W / np.sqrt(np.pi)
        return np.sum(w * _st_1d(a[..., None] - float(self.data_std) * nodes), axis=-1)

    def basin(self, valley="local"):
        """``(theta0, exit)`` for escaping a valley: start at its minimum in every
        coordinate; exit when any coordinate crosses the saddle."""
        cp = self.critical_points()
        if valley not in ("local", "global"):
            raise ValueError(f"valley must be 'local' or 'global', got {valley!r}")
        theta0 = np.full(self.dim, cp[f"{valley}_min"])
        inf = np.full(self.dim, np.inf)
        sad = np.full(self.dim, cp["saddle"])
        ex = _exits.Box(sad, inf) if valley == "local" else _exits.Box(-inf, sad)
        return theta0, ex


@_checks.pytree_dataclass
class Quadratic(Landscape):
    """Quadratic valley ``½ (θ − θ*)ᵀ H (θ − θ*)``; ``hessian`` a vector (diagonal) or a
    matrix. Asymmetric: ``hessian_neg`` (vector) is the curvature used on the negative side
    of each coordinate (diagonal Hessians only)."""

    hessian: jax.Array
    center: jax.Array = 0.0
    hessian_neg: jax.Array | None = None

    def check(self):
        h = self.hessian
        if isinstance(h, jax.core.Tracer):
            return
        if np.ndim(h) == 1:
            _checks.real("hessian", h, positive=True)
        elif np.ndim(h) == 2:
            _checks.symmetric_pd("hessian", h)
        else:
            raise ValueError(f"hessian must be a vector (diagonal) or a square matrix, got "
                             f"shape {np.shape(h)}")
        _checks.real("center", self.center)
        if np.ndim(self.center) not in (0, 1) or (np.ndim(self.center) == 1
                                                  and np.shape(self.center) != (self.dim,)):
            raise ValueError(f"center must be a number or a vector of shape ({self.dim},), "
                             f"got shape {np.shape(self.center)}")
        if self.hessian_neg is not None:
            if np.ndim(h) != 1:
                raise ValueError("hessian_neg is only for diagonal (vector) Hessians")
            _checks.shape("hessian_neg", self.hessian_neg, np.shape(h), " to match hessian")
            _checks.real("hessian_neg", self.hessian_neg, positive=True)

    @property
    def dim(self):
        return int(np.shape(self.hessian)[0])

    @property
    def separable(self):
        return np.ndim(self.hessian) == 1

    def _y(self, theta):
        return theta - jnp.broadcast_to(jnp.asarray(self.center, theta.dtype), theta.shape)

    def __call__(self, theta):
        y = self._y(theta)
        h = jnp.asarray(self.hessian, theta.dtype)
        if h.ndim == 2:
            return 0.5 * y @ (h @ y)
        if self.hessian_neg is not None:
            h = jnp.where(y < 0, jnp.asarray(self.hessian_neg, theta.dtype), h)
        return 0.5 * jnp.sum(h * y**2)

    def hessian_diag(self, theta):
        h = jnp.asarray(self.hessian, theta.dtype)
        if h.ndim == 2:
            raise AttributeError("hessian_diag is only for diagonal Hessians")
        if self.hessian_neg is not None:
            h = jnp.where(self._y(theta) < 0, jnp.asarray(self.hessian_neg, theta.dtype), h)
        return h

    def basin(self, height):
        """``(theta0, exit)``: start at the centre, exit when the loss exceeds ``height``
        (Ω = {½ yᵀHy ≤ height})."""
        _checks.real("height", height, positive=True)
        c = np.broadcast_to(np.asarray(self.center, float), (self.dim,)).copy()
        if np.ndim(self.hessian) == 2:
            return c, _exits.Ellipsoid(c, np.asarray(self.hessian, float), float(height))
        return c, _exits.LevelSet(self, float(height), dim=self.dim)


def _cubic_roots_real(coef):
    r = np.roots(coef)
    return np.sort(r[np.abs(r.imag) < 1e-9].real)


@_checks.pytree_dataclass
class DoubleWell(Landscape):
    """Double well along θ₀, harmonic across: ``U(θ) = ΔU((θ₀/w)² − 1)² + c·θ₀/w +
    ½ Σ_{i≥1} κ_i θ_i²``. Symmetric (``tilt = 0``): minima at ``±w``, saddle at 0, barrier
    ``ΔU``; ``U''(±w) = 8ΔU/w²``, ``U''(0) = −4ΔU/w²``. ``stiffness`` κ (scalar or
    vector of length d−1) sets the transverse curvatures (d = ``dim``)."""

    barrier: jax.Array = 1.0
    width: jax.Array = 1.0
    tilt: jax.Array = 0.0
    stiffness: jax.Array = 1.0
    dim: int = dataclasses.field(default=1, metadata=dict(static=True))

    separable = True

    def check(self):
        _checks.integer("dim", self.dim, minimum=1)
        for name in ("barrier", "width", "tilt"):
            _checks.scalar(name, getattr(self, name))
        _checks.real("barrier", self.barrier, positive=True)
        _checks.real("width", self.width, positive=True)
        _checks.real("tilt", self.tilt)
        _checks.real("stiffness", self.stiffness, positive=True)
        if np.ndim(self.stiffness) > 1 or (np.ndim(self.stiffness) == 1
                                           and np.size(self.stiffness) != self.dim - 1):
            raise ValueError(f"stiffness must be a number or a vector of dim - 1 = "
                             f"{self.dim - 1} transverse curvatures, got shape "
                             f"{np.shape(self.stiffness)}")

    def well(self, x):
        """The 1-D double-well profile along θ₀ (numpy or JAX)."""
        u = x / self.width
        return self.barrier * (u**2 - 1.0) ** 2 + self.tilt * u

    def __call__(self, theta):
        out = self.well(theta[0])
        if self.dim > 1:
            k = jnp.broadcast_to(jnp.asarray(self.stiffness, theta.dtype), (self.dim - 1,))
            out = out + 0.5 * jnp.sum(k * theta[1:] ** 2)
        return out

    def hessian_diag(self, theta):
        u = theta[0] / self.width
        h0 = self.barrier * (12 * u**2 - 4) / self.width**2
        k = jnp.broadcast_to(jnp.asarray(self.stiffness, theta.dtype), (self.dim - 1,))
        return jnp.concatenate([h0[None], k])

    def critical_points(self):
        """θ₀ of the left minimum, the saddle and the right minimum (roots of U')."""
        b, w, c = float(self.barrier), float(self.width), float(self.tilt)
        # U'(x) = (4b/w)(u³ − u) + c/w in u = x/w
        r = _cubic_roots_real([4 * b, 0.0, -4 * b, c])
        if r.size != 3:
            raise ValueError(f"tilt={c} is too large: the well has a single minimum")
        return {"left_min": r[0] * w, "saddle": r[1] * w, "right_min": r[2] * w}

    def basin(self, side="left", past=0.0):
        """``(theta0, exit)`` starting in the ``side`` minimum, exit when θ₀ crosses the
        saddle plus ``past`` (towards the other well)."""
        cp = self.critical_points()
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        theta0 = np.zeros(self.dim)
        theta0[0] = cp[f"{side}_min"]
        n = np.zeros(self.dim)
        n[0] = 1.0 if side == "left" else -1.0
        off = cp["saddle"] + past if side == "left" else -(cp["saddle"] - past)
        return theta0, _exits.Halfspace(n, off)


@_checks.pytree_dataclass
class Rastrigin(Landscape):
    """``A d + Σ (θ_i² − A cos 2πθ_i)``: a lattice of minima near the integers."""

    amplitude: jax.Array = 10.0

    separable = True

    def check(self):
        _checks.scalar("amplitude", self.amplitude)
        _checks.real("amplitude", self.amplitude, nonnegative=True)

    def __call__(self, theta):
        a = jnp.asarray(self.amplitude, theta.dtype)
        return a * theta.shape[0] + jnp.sum(theta**2 - a * jnp.cos(2 * jnp.pi * theta))

    def hessian_diag(self, theta):
        a = jnp.asarray(self.amplitude, theta.dtype)
        return 2.0 + a * (2 * jnp.pi) ** 2 * jnp.cos(2 * jnp.pi * theta)


@_checks.pytree_dataclass
class Rosenbrock(Landscape):
    """``Σ b(θ_{i+1} − θ_i²)² + (a − θ_i)²`` (minimum at ``(a, a², ...)``; [Zhang])."""

    a: jax.Array = 1.0
    b: jax.Array = 100.0

    def check(self):
        _checks.scalar("a", self.a)
        _checks.scalar("b", self.b)
        _checks.real("a", self.a)
        _checks.real("b", self.b, nonnegative=True)

    def check_dim(self, d):
        if d < 2:
            raise ValueError(f"Rosenbrock needs theta0 of dimension >= 2, got {d}")

    def __call__(self, theta):
        x, y = theta[:-1], theta[1:]
        return jnp.sum(self.b * (y - x**2) ** 2 + (self.a - x) ** 2)


# Müller & Brown (Theor. Chim. Acta 53, 75, 1979): four Gaussians
_MB_A = (-200.0, -100.0, -170.0, 15.0)
_MB_a = (-1.0, -1.0, -6.5, 0.7)
_MB_b = (0.0, 0.0, 11.0, 0.6)
_MB_c = (-10.0, -10.0, -6.5, 0.7)
_MB_X = (1.0, 0.0, -0.5, -1.0)
_MB_Y = (0.0, 0.5, 1.5, 1.0)


@_checks.pytree_dataclass
class MullerBrown(Landscape):
    """The Müller–Brown potential ``scale · Σ_k A_k exp(a_k Δx² + b_k Δx Δy + c_k Δy²)``
    (Δx = x − x_k, Δy = y − y_k): three minima, two saddles, a curved minimum-energy
    path — the standard test of saddle and path finders (``sdesim.critical``). ``scale``
    multiplies the energy (barriers of tens of units at scale 1)."""

    scale: jax.Array = 1.0
    dim = 2
    # the published minima (Müller & Brown 1979), refined by ``basin``
    MINIMA = {"A": (-0.558, 1.442), "B": (0.623, 0.028), "C": (-0.050, 0.467)}

    def check(self):
        _checks.scalar("scale", self.scale)
        _checks.real("scale", self.scale, positive=True)

    def basin(self, minimum="B", commit=0.8):
        """``(theta0, exit)``: start at minimum ``A``, ``B`` or ``C`` (refined), exit once a
        path is ``commit`` of the way from any saddle bounding that basin down to the
        minimum beyond, along the minimum-energy path — all found, not given, by
        ``sdesim.critical.basin_exit`` (B: the B–C saddle; C: both saddles; a few seconds,
        compilation included)."""
        from . import critical

        if minimum not in self.MINIMA:
            raise ValueError(f"minimum must be 'A', 'B' or 'C', got {minimum!r}")
        return critical.basin_exit(self, np.asarray(self.MINIMA[minimum]), commit=commit)

    def __call__(self, theta):
        dt = theta.dtype
        x, y = theta[0], theta[1]
        c = lambda v: jnp.asarray(v, dt)
        dx, dy = x - c(_MB_X), y - c(_MB_Y)
        e = c(_MB_A) * jnp.exp(c(_MB_a) * dx**2 + c(_MB_b) * dx * dy + c(_MB_c) * dy**2)
        return jnp.asarray(self.scale, dt) * jnp.sum(e)
