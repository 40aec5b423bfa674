"""How fast the front door answers: ``import sdesim``, ``sdesim --help``, ``sdesim run
--help``, ``sdesim examples``, and, for scale, ``import jax`` and ``import sdesim.engine``
(what the first simulation pays on top). Each command is a fresh process; the median of
``--repeats`` runs after one warm-up (the file-system cache), written to
figures/startup.json.

    python benchmarks/startup.py [--repeats 7]
"""

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "import sdesim": [sys.executable, "-c", "import sdesim"],
    "sdesim --help": [sys.executable, "-m", "sdesim.cli", "--help"],
    "sdesim run --help": [sys.executable, "-m", "sdesim.cli", "run", "--help"],
    "sdesim examples": [sys.executable, "-m", "sdesim.cli", "examples"],
    "python -c pass (interpreter alone)": [sys.executable, "-c", "pass"],
    "import jax": [sys.executable, "-c", "import jax"],
    "import sdesim.engine (first use of sd.escape)": [sys.executable, "-c",
                                                       "import sdesim.engine"],
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    rows = {}
    for name, cmd in COMMANDS.items():
        subprocess.run(cmd, check=True, capture_output=True)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times),
                      "max_s": max(times)}
        print(f"{name:48s} median {rows[name]['median_s']:.3f} s  (min {min(times):.3f}, "
              f"max {max(times):.3f})", flush=True)
    out = {"machine": f"{platform.machine()}, {shutil.os.cpu_count()} cores, "
                      f"{platform.python_implementation()} {platform.python_version()}",
           "repeats": args.repeats, "commands": rows,
           "command": "python benchmarks/startup.py"}
    path = ROOT / "figures" / "startup.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
