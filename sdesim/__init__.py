"""sdesim: simulate the SDEs of deep-learning optimizers and measure how fast they escape
from loss basins. See README.md and SPEC.md."""

from . import exits, landscapes, models, noise, optim, stats, theory
from .engine import Trajectories, escape, simulate
from .optim import escape_algorithm
from .stats import EscapeResult

__version__ = "0.1.0"
__all__ = ["escape", "escape_algorithm", "simulate", "EscapeResult", "Trajectories", "exits",
           "landscapes", "models", "noise", "optim", "stats", "theory"]
