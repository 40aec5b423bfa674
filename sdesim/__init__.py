"""sdesim: simulate the SDEs of deep-learning optimizers and measure how fast they escape
from loss basins. See README.md and SPEC.md."""

from . import (
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
from .engine import (
               DivergenceWarning,
               NoiseWarning,
               StabilityWarning,
               Trajectories,
               escape,
               simulate,
)
from .optim import escape_algorithm
from .rare import AMSResult, escape_ams
from .stats import EscapeResult

__version__ = "0.1.0"
__all__ = ["escape", "escape_algorithm", "escape_ams", "simulate", "EscapeResult",
           "AMSResult", "Trajectories", "rare",
           "DivergenceWarning", "NoiseWarning", "StabilityWarning", "integrators", "model", "exits",
           "landscapes", "models", "noise", "optim", "stats", "theory", "pytrees",
           "diagnostics", "networks", "critical"]
