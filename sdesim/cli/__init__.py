"""The ``sdesim`` command: ``sdesim run``, ``sdesim sweep``, ``sdesim figures``.

A TOML config names a landscape (and its basin), a model with its noise, optionally an exit
and a start, and the run settings; ``[sweep]`` lists parameter values. The keys each
section accepts come from the package's constructors (:mod:`sdesim.cli.registry`), so a
new model, landscape, exit or covariance model needs no change here. ``sdesim run`` with
no file runs the built-in default experiment: Gaussian SGD with exact minibatch noise
escaping the local valley of the 10-D data-shifted Styblinski–Tang function, compared with
the exact 1-D mean first-passage time (F7) of one coordinate (landscape and noise are
separable, so the 10-D escape is the first of 10 independent coordinate escapes: mean time
≈ τ_1D/10 once escape is metastable).

Modules: ``registry`` (section entries and keys, from the constructors), ``config``
(default config, loading, ``--set``, validation, sweep points), ``build`` (config ->
objects, every check a run does, the closed-form reference), ``results`` (run record,
blocks and resume, summary, CSV), ``plots`` (the figures: the experiment in the title,
axes in words, the closed form named and drawn grey outside its range, Arrhenius axes
over the temperature), ``main`` (argparse, commands, error lines).

Results folder (one per run; a sweep has one per point under ``points/``):
``run.json`` (the resolved config, seed, precision and the run's hash, written once every
input is checked: ``--resume`` refuses another config), ``blocks/paths-FIRST-LAST.npz``
(per-path steps and status of paths FIRST..LAST-1 and the run's hash, each written
atomically when its block finishes — the resume points), then ``summary.json`` (strict
JSON), ``paths.csv``, ``survival.png``, ``histogram.png`` (and for a sweep ``sweep.json``,
``sweep.csv``, ``rate_vs_<param>.png``). Paths are global indices of the seed's stream
(``escape(first_path=...)``), so the blocks of a resumed run equal one uninterrupted run.
With ``[run] method = "ams"`` (``sd.escape_ams``, one call) the folder holds ``run.json``,
``ams.npz`` (the result and the run's hash) and ``summary.json`` (``"method": "ams"``).
"""

from .build import build
from .config import DEFAULT_CONFIG, ConfigError, load_config, points, validate
from .main import _bar, figure_scripts, main  # noqa: F401 (_bar: benchmarks/)
from .registry import registry
from .results import simulate_blocks

__all__ = ["main", "build", "load_config", "validate", "points", "ConfigError",
           "DEFAULT_CONFIG", "figure_scripts", "simulate_blocks", "registry"]
