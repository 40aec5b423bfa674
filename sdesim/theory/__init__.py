"""Closed forms and exact quadratures for escape times: the oracle the simulations are held to.

Everything here is plain numpy/scipy on the host, in float64, deterministic (no random
numbers); ``reference`` evaluates a model's noise factor with JAX (under float64). Formula
numbers (F1, F4, ...) are the project's labels for the formulas, listed with their
assumptions in docs/concepts/mathematics.md ("Closed forms").

Conventions
-----------
* Time is SDE time. For an optimizer with learning rate ``eta`` divide by ``eta`` to get
  iterations.
* Itô calculus throughout. The overdamped Langevin SDE is
  ``dX = -U'(X) dt + sqrt(2 T) dW`` (unit mobility, temperature ``T``); a general
  one-dimensional diffusion is ``dX = mu(X) dt + sqrt(v(X)) dW`` with ``D(x) = v(x)/2``.
* Curvatures are signed second derivatives: ``U''(a) > 0`` at a minimum ``a`` and
  ``U''(b) < 0`` at a saddle (barrier top) ``b``. Passing ``|U''(b)|`` is an error, so that a
  sign slip cannot go unnoticed.
* ``barrier`` is ``U(b) - U(a) > 0``.
* Asymptotic formulas (Kramers, Eyring–Kramers, Mel'nikov–Meshkov, Xie et al., Lévy) are
  leading-order estimates for small noise; the exact 1-D quadratures ``mfpt_1d`` and
  ``mfpt_1d_ito`` are what tests should compare simulations with at moderate barriers
  (at ``barrier/T = 5`` Kramers is still ~10% off).

Potentials, drifts and variances are callables of one real variable. They may be numpy
functions (vectorized or not) or JAX functions that accept a scalar or a shape-(1,) array,
such as ``lambda th: landscape(th)`` for a landscape taking ``theta`` of shape ``(1,)``; see
``_vectorize``.

Layout (one module per formula family; everything is re-exported here)
-----------------------------------------------------------------------
* ``mfpt``: exact 1-D mean first-passage times ``mfpt_1d`` (F4, F5), ``mfpt_1d_ito``
  (F7), and the panel quadrature in log space behind them.
* ``kramers``: ``kramers_time`` (F1), ``kramers_kappa``, ``kramers_from_potential``,
  ``eyring_kramers_time`` (F8).
* ``underdamped``: ``kramers_underdamped_rate`` (F10, F12), ``melnikov_meshkov_A``,
  ``weak_friction_rate`` (F11), ``barrier_action``.
* ``levy``: ``levy_exit_time`` (F20), ``levy_constant``, ``levy_jump_rate``,
  ``levy_escaping_measure``, ``levy_exit_time_nd``, ``adam_levy_preconditioner``,
  ``levy_sgd_vs_adam`` (F21).
* ``grid``: ``mfpt_grid`` — the exact mean exit time of overdamped Langevin in 1-3
  dimensions, from the backward equation on a grid (the reference beyond Eyring–Kramers).
* ``landscape``: ``predict`` — minimum, saddles (found by ``sdesim.critical``), barrier,
  Hessians and the model's formula for any loss; ``path_exponent`` — the exponent the
  model's own (state-dependent) noise gives along a minimum-energy path (overdamped: a
  quadrature; phase-space: the least action of the path-restricted dynamics).
* ``action``: ``least_action`` — the least action of a model's escape in all coordinates
  (the Freidlin–Wentzell quasi-potential at the saddle; phase-space and overdamped
  models), with its path.
* ``optimizers``: ``sgd_escape_time`` / ``sgd_escape_exponent`` (F14),
  ``optimizer_dynamics``, ``escape_exponent``, ``momentum_escape_time`` (F15-F18).
* ``predict``: ``reference(model, loss, theta0, exit)``, the closed-form mean escape
  time of a run where one applies (a ``Reference``), else None.
* ``_common``: argument checks (``sdesim._checks`` plus float64 conversion) and
  ``_vectorize`` (callables -> float64 numpy functions).
"""

from .action import LeastAction, least_action
from .grid import GridMFPT, mfpt_grid
from .kramers import eyring_kramers_time, kramers_from_potential, kramers_kappa, kramers_time
from .landscape import Prediction, path_exponent
from .landscape import predict as _predict
from .levy import (
    adam_levy_preconditioner,
    levy_constant,
    levy_escaping_measure,
    levy_exit_time,
    levy_exit_time_nd,
    levy_jump_rate,
    levy_sgd_vs_adam,
)
from .mfpt import mfpt_1d, mfpt_1d_ito
from .optimizers import (
    escape_exponent,
    momentum_escape_time,
    optimizer_dynamics,
    sgd_escape_exponent,
    sgd_escape_time,
)
from .predict import Reference, reference
from .underdamped import (
    barrier_action,
    kramers_underdamped_rate,
    melnikov_meshkov_A,
    weak_friction_rate,
)

# the function, not the submodule sdesim.theory.predict (imported above, same name)
predict = _predict

__all__ = [
    # exact 1-D MFPT (mfpt)
    "mfpt_1d",
    "mfpt_1d_ito",
    # exact mean exit time in d ≤ 3 (grid)
    "mfpt_grid",
    "GridMFPT",
    # Kramers, Eyring–Kramers (kramers)
    "kramers_time",
    "kramers_kappa",
    "kramers_from_potential",
    "eyring_kramers_time",
    # underdamped (underdamped)
    "kramers_underdamped_rate",
    "melnikov_meshkov_A",
    "weak_friction_rate",
    "barrier_action",
    # optimizer mappings (optimizers)
    "sgd_escape_time",
    "sgd_escape_exponent",
    "optimizer_dynamics",
    "escape_exponent",
    "momentum_escape_time",
    # Lévy (levy)
    "levy_exit_time",
    "levy_constant",
    "levy_jump_rate",
    "levy_escaping_measure",
    "levy_exit_time_nd",
    "adam_levy_preconditioner",
    "levy_sgd_vs_adam",
    # the closed form for a run (predict)
    "Prediction",
    "predict",
    "path_exponent",
    "least_action",
    "LeastAction",
    "Reference",
    "reference",
]
