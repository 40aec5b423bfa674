"""sdesim: simulate the SDEs of deep-learning optimizers and measure how fast they escape
from loss basins.

Submodules and the top-level names are imported on first use (PEP 562), so ``import
sdesim`` and the ``sdesim`` command's ``--help`` do not pay for JAX, SciPy and optax until
something needs them; ``sd.escape`` and friends behave exactly as eager imports would.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = ("critical", "diagnostics", "exits", "integrators", "landscapes", "model",
               "models", "networks", "noise", "optim", "pytrees", "rare", "stats", "theory")
# top-level name -> the submodule that defines it
_NAMES = {
    "escape": "engine", "simulate": "engine", "Trajectories": "engine",
    "DivergenceWarning": "engine", "NoiseWarning": "engine", "StabilityWarning": "engine",
    "escape_algorithm": "optim", "escape_ams": "rare", "AMSResult": "rare",
    "EscapeResult": "stats",
}

__all__ = ["escape", "escape_algorithm", "escape_ams", "simulate", "EscapeResult",
           "AMSResult", "Trajectories", "rare",
           "DivergenceWarning", "NoiseWarning", "StabilityWarning", "integrators", "model", "exits",
           "landscapes", "models", "noise", "optim", "stats", "theory", "pytrees",
           "diagnostics", "networks", "critical"]


def __getattr__(name):
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools (type checkers, IDEs) see
    from . import (  # noqa: F401
        critical,
        diagnostics,
        exits,
        integrators,
        landscapes,
        model,
        models,
        networks,
        noise,
        optim,
        pytrees,
        rare,
        stats,
        theory,
    )
    from .engine import (  # noqa: F401
        DivergenceWarning,
        NoiseWarning,
        StabilityWarning,
        Trajectories,
        escape,
        simulate,
    )
    from .optim import escape_algorithm  # noqa: F401
    from .rare import AMSResult, escape_ams  # noqa: F401
    from .stats import EscapeResult  # noqa: F401
