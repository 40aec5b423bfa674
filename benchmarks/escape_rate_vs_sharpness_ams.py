"""The seeds' sharpness exponents in their own regime: ``escape_rate_vs_sharpness.py
--method ams`` with README's settings (ΔL/T from 40 at k = 1 down to ~5, 1 000 replicas
× 12 independent AMS runs per point).

    python benchmarks/escape_rate_vs_sharpness_ams.py
    -> figures/escape_rate_vs_sharpness_ams.{png,json}   (~14 min on 2 CPU cores)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import escape_rate_vs_sharpness  # noqa: E402

if __name__ == "__main__":
    escape_rate_vs_sharpness.main(["--method", "ams", "--replicas", "1000", "--runs", "12"]
                                  + sys.argv[1:])
