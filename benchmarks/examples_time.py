"""Wall time of every shipped example, run as a user runs it: ``sdesim run --example NAME``
(or ``sweep``) in a fresh process, into a fresh folder, without the progress bar; the
time includes start-up, JAX's import and compilation. Written to figures/examples_time.json
with the machine; README's table quotes it.

    python benchmarks/examples_time.py [NAME ...]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    from sdesim.cli import load_config
    from sdesim.cli.main import example_files

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    found = example_files()
    rows = {}
    for name, path in found.items():
        if args.names and name not in args.names:
            continue
        cmd = "sweep" if "sweep" in load_config(path) else "run"
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "sdesim.cli", cmd, "--example", name,
                                "--out", str(Path(d) / name), "--no-progress"],
                               capture_output=True, text=True, cwd=d)
            wall = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(f"{name}: exit {p.returncode}\n{p.stderr}")
        last = [ln for ln in p.stdout.splitlines() if ln.strip()][-1]
        rows[name] = {"command": f"sdesim {cmd} --example {name}", "wall_s": round(wall, 1),
                      "last_line": last}
        print(f"{name:24s} {wall:7.1f} s   {last}", flush=True)
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU "
                      f"(JAX {__import__('jax').__version__})",
           "note": "fresh process per example: start-up, import, compilation included",
           "examples": rows}
    path = ROOT / "figures" / "examples_time.json"
    old = json.loads(path.read_text()) if path.exists() and args.names else {}
    if old:
        old["examples"].update(rows)
        out["examples"] = old["examples"]
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
