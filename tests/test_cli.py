"""The command line: configs and their errors, example configs, results folders, sweeps
reusing one compiled program, resume after SIGKILL/SIGINT, figures mapping."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest

import sdesim as sd
from sdesim import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))

SMALL = """\
[landscape]
name = "double_well"
barrier = 1.0

[model]
name = "langevin"
temperature = 0.5

[run]
n_paths = 60
dt = 0.01
t_max = 200.0
seed = 3
block = 25
"""


def write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def read_csv(path):
    return np.genfromtxt(path, delimiter=",", names=True)


# -- errors: one line naming the key and what is allowed, exit status 2 ---------------------


@pytest.mark.parametrize("edit, needle", [
    (("temperature = 0.5", "temperature = 0.5\ntemprature = 1"),
     "unknown key 'temprature' in [model]; allowed: name, temperature"),
    (("temperature = 0.5", 'temperature = "hot"'),
     "[model] temperature = 'hot': expected a number"),
    (("temperature = 0.5", ""), "[model] is missing 'temperature' (a number)"),
    (('name = "langevin"', 'name = "rmsprop"'), "[model] name = 'rmsprop'; allowed: langevin"),
    (("n_paths = 60", "n_paths = 60.5"), "[run] n_paths = 60.5: expected an integer"),
    (("dt = 0.01", ""), "[run] is missing 'dt' (a number)"),
    (("[run]", "[runs]"), "unknown section [runs]; allowed: landscape, model, exit, run, sweep"),
    (('name = "double_well"', 'name = "double_well"\nside = "middle"'),
     "[landscape] side = 'middle': expected one of \"left\", \"right\""),
    (("temperature = 0.5", "temperature = -0.5"), "temperature must be"),
])
def test_config_errors_one_line_exit_2(tmp_path, capsys, edit, needle):
    path = write(tmp_path, SMALL.replace(*edit))
    assert cli.main(["run", path, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sdesim: error: ")
    assert needle in err
    assert not (tmp_path / "o").exists()


def test_sweep_errors(tmp_path, capsys):
    bad = [('[sweep]\n"model.temperature" = [0.5, 0.4]\n"run.dt" = [0.01]\n', "equal lengths"),
           ('[sweep]\n"model.temprature" = [0.5]\n', "sweep point 0 (model.temprature=0.5): "
            "unknown key 'temprature' in [model]"),
           ('[sweep]\n"model.temperature" = ["a"]\n', "expected a number"),
           ('[sweep]\n"temperature" = [0.5]\n', "expected SECTION.KEY")]
    for extra, needle in bad:
        path = write(tmp_path, SMALL + extra)
        assert cli.main(["sweep", path, "--check"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and needle in err, err
    assert cli.main(["sweep", write(tmp_path, SMALL), "--check"]) == 2
    assert "no [sweep] section" in capsys.readouterr().err


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    path = write(tmp_path, SMALL.replace("dt = 0.01", "dt = [0.01]"))
    p = subprocess.run([sys.executable, "-m", "sdesim.cli", "run", path], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == ("sdesim: error: [run] dt = [0.01]: expected a number")


def test_help_has_examples(capsys):
    for argv in (["--help"], ["run", "--help"], ["sweep", "--help"], ["figures", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out
        # an example command names the right subcommand for its config (run vs sweep)
        for cmd, name in re.findall(r"sdesim (run|sweep) examples/(\w+)\.toml", out):
            has_sweep = "sweep" in cli.load_config(ROOT / "examples" / f"{name}.toml")
            assert (cmd == "sweep") == has_sweep, (cmd, name)


# -- example configs: every one validates and runs (tiny) --------------------------------


def test_examples_cover_the_seed_experiments():
    names = {p.stem for p in EXAMPLES}
    assert {"zhou_sgd_vs_adam", "adai_sharpness", "adal_vs_adam"} <= names
    for p in EXAMPLES:  # validates every sweep point (the tiny runs below build them)
        assert cli.main(["sweep" if "sweep" in cli.load_config(p) else "run", str(p),
                         "--check"]) == 0


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_tiny(tmp_path, path, capsys):
    cfg = tomllib.loads(path.read_text())
    sets = ["run.n_paths=16", "run.t_max=5.0", "run.block=8"]
    cmd = "run"
    if "sweep" in cfg:  # first and last value of every swept list
        cmd = "sweep"
        for k, v in cfg["sweep"].items():
            if k != "cross":
                sets.append(f'sweep."{k}"={json.dumps([v[0], v[-1]] if len(v) > 1 else v)}')
    out = tmp_path / "out"
    argv = [cmd, str(path), "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 0, capsys.readouterr().err
    folders = sorted((out / "points").glob("*")) if cmd == "sweep" else [out]
    for f in folders:
        s = json.loads((f / "summary.json").read_text())
        assert s["n_paths"] == 16 and s["t_max"] == 5.0
        assert (f / "survival.png").stat().st_size > 0
    if cmd == "sweep":
        rows = json.loads((out / "sweep.json").read_text())["points"]
        assert len(rows) == len(folders) >= 2
        assert list(out.glob("rate_vs_*.png"))


# -- results folder --------------------------------------------------------------------


def test_results_folder_contents_and_identity_with_one_escape_call(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, SMALL), "--out", str(out), "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert "closed form (F4 exact 1-D MFPT)" in stdout
    s = json.loads((out / "summary.json").read_text())
    for key in ("config", "seed", "versions", "device", "rate", "rate_ci95", "mean_time",
                "mean_time_ci95", "cv", "wall_time_s", "simulation_seconds", "reference",
                "ratio_to_reference"):
        assert key in s, key
    assert s["seed"] == 3 and s["config"]["run"]["block"] == 25
    assert {"jax", "numpy", "sdesim"} <= set(s["versions"])
    for f in ("paths.csv", "survival.png", "histogram.png", "run.json"):
        assert (out / f).stat().st_size > 0
    assert sorted(p.name for p in (out / "blocks").iterdir()) == [
        "paths-000000000-000000025.npz", "paths-000000025-000000050.npz",
        "paths-000000050-000000060.npz"]
    rows = read_csv(out / "paths.csv")
    assert rows.dtype.names == ("path", "time", "iterations", "escaped", "status")
    # three blocks of the path stream = one escape call with all 60 paths
    loss = sd.landscapes.DoubleWell(1.0)
    th0, ex = loss.basin("left")
    ref = sd.escape(sd.models.Langevin(0.5), loss, th0, ex, n_paths=60, dt=0.01,
                    t_max=200.0, key=jax.random.key(3), progress=False)
    np.testing.assert_array_equal(rows["path"], np.arange(60))
    np.testing.assert_array_equal(rows["time"], np.float64([f"{t:.9g}" for t in ref.times]))
    np.testing.assert_array_equal(rows["escaped"], ref.escaped)
    assert s["rate"] == pytest.approx(ref.rate(), rel=1e-12)


def test_existing_folder_needs_resume_and_same_config(tmp_path, capsys):
    path, out = write(tmp_path, SMALL), str(tmp_path / "o")
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20"]) == 0
    capsys.readouterr()
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20",
                     "--seed", "4", "--resume"]) == 2
    assert "run.seed: 3 -> 4" in capsys.readouterr().err
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20",
                     "--resume"]) == 0


# -- sweeps ----------------------------------------------------------------------------

SWEEP = """\
[landscape]
name = "quadratic"
hessian = [1.0, 2.0]
height = 0.5

[model]
name = "sgd"
lr = 0.1

[model.noise]
kind = "isotropic"
variance = 1.0

[run]
n_paths = 32
dt = 0.01
t_max = 20.0
"""


def test_sweep_reuses_one_compiled_program(tmp_path, count_compiles, capsys):
    """Traced hyperparameters: new lr / Hessian values compile nothing once one point ran."""
    warm = SWEEP + '[sweep]\n"model.lr" = [0.1]\n'
    assert cli.main(["sweep", write(tmp_path, warm, "w.toml"), "--out",
                     str(tmp_path / "w"), "--no-progress"]) == 0
    sweep = SWEEP + ('[sweep]\n"model.lr" = [0.05, 0.2, 0.3]\n'
                     '"landscape.hessian" = [[1.0, 3.0], [2.0, 2.0], [1.0, 1.0]]\n')
    with count_compiles() as c:
        assert cli.main(["sweep", write(tmp_path, sweep), "--out", str(tmp_path / "s"),
                         "--no-progress"]) == 0
    assert c.n == 0
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [r["model.lr"] for r in data["points"]] == [0.05, 0.2, 0.3]
    assert data["x"] == "model.lr" and (tmp_path / "s" / "rate_vs_lr.png").exists()
    # more noise (larger lr) and flatter basin escape faster
    rates = [r["rate"] for r in data["points"]]
    assert rates[0] < rates[1] < rates[2]
    assert "[3/3] model.lr=0.3" in capsys.readouterr().out


def test_sweep_cross_takes_all_combinations(tmp_path):
    # momentum needs beta1, sgd rejects it: the error names the point
    with pytest.raises(cli.ConfigError, match="sweep point 0 .*unknown key 'beta1'"):
        cli.load_config(write(tmp_path, SWEEP + '[sweep]\n"model.lr" = [0.1, 0.2]\n'
                              '"model.name" = ["sgd", "momentum"]\n"model.beta1" = [0.9]\n'
                              'cross = ["model.name", "model.beta1"]\n'))
    cfg = cli.load_config(write(tmp_path, SWEEP + '[sweep]\n"model.lr" = [0.1, 0.2, 0.3]\n'
                                '"model.name" = ["sgd", "adam"]\ncross = ["model.name"]\n'))
    pts = [over for over, _ in cli.points(cfg)]
    assert pts == [{"model.name": m, "model.lr": lr} for m in ("sgd", "adam")
                   for lr in (0.1, 0.2, 0.3)]


# -- resume after a kill -----------------------------------------------------------------

RESUME = """\
[landscape]
name = "double_well"
barrier = 1.0

[model]
name = "langevin"
temperature = 0.25

[run]
n_paths = 3000
dt = 0.002
t_max = 400.0
seed = 11
block = 100
"""
N_BLOCKS = 30  # enough work after the first block (~2 s) that the signal lands mid-run


def _kill_after_first_block(tmp_path, cfg_path, out, sig):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # A test runner started in the background (`cmd &`) inherits SIGINT ignored, and so
    # would the child: it restores Python's handler so SIGINT acts as Ctrl-C in a terminal.
    launch = ("import runpy, signal, sys; "
              "signal.signal(signal.SIGINT, signal.default_int_handler); "
              "sys.argv = ['sdesim'] + sys.argv[1:]; "
              "runpy.run_module('sdesim.cli', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", launch, "run", cfg_path, "--out",
                             str(out), "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((out / "blocks").glob("*.npz")) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, sig, capsys):
    cfg = write(tmp_path, RESUME)
    out = tmp_path / "killed"
    rc, err = _kill_after_first_block(tmp_path, cfg, out, sig)
    if sig == signal.SIGINT:
        assert rc == 130 and "--resume" in err and "Traceback" not in err
    else:
        assert rc == -signal.SIGKILL
    saved = {p.name: p.stat().st_mtime_ns for p in (out / "blocks").glob("*.npz")}
    assert 1 <= len(saved) < N_BLOCKS
    assert not list(out.rglob("*.tmp")) or sig == signal.SIGKILL
    assert not (out / "summary.json").exists()
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress", "--resume"]) == 0
    # blocks saved before the kill were loaded, not simulated again
    for name, mtime in saved.items():
        assert (out / "blocks" / name).stat().st_mtime_ns == mtime
    assert len(list((out / "blocks").glob("*.npz"))) == N_BLOCKS
    full = tmp_path / "full"
    assert cli.main(["run", cfg, "--out", str(full), "--no-progress"]) == 0
    assert (out / "paths.csv").read_bytes() == (full / "paths.csv").read_bytes()
    a = json.loads((out / "summary.json").read_text())
    b = json.loads((full / "summary.json").read_text())
    assert (a["rate"], a["rate_ci95"], a["cv"]) == (b["rate"], b["rate_ci95"], b["cv"])


# -- figures -----------------------------------------------------------------------------


def test_figures_mapping_covers_every_figure(tmp_path, capsys):
    scripts = cli.figure_scripts()
    for png in (ROOT / "figures").glob("*.png"):
        assert scripts.get(png.stem) is not None, f"no benchmark writes {png.name}"
    assert scripts["levy_escape"].name == "levy_escape.py"
    assert cli.main(["figures", "--list"]) == 0
    assert "figures/kramers_validation.png  <-  python benchmarks/kramers_validation.py" in \
        capsys.readouterr().out
    assert cli.main(["figures", "no_such_figure"]) == 2
    assert "unknown figure no_such_figure" in capsys.readouterr().err
    # discovery: a new benchmark that writes figures/NAME.png is found by name
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "benchmarks" / "new.py").write_text('fig.savefig(OUT / "scaling.png")\n')
    (tmp_path / "figures" / "orphan.png").write_bytes(b"")
    assert cli.figure_scripts(tmp_path) == {"orphan": None,
                                            "scaling": tmp_path / "benchmarks" / "new.py"}


# -- discrete optimizers (sdesim.optim) ---------------------------------------------------

ALGORITHM = """\
[landscape]
name = "styblinski_tang"
dim = 2
sharpness = 1.0
data_std = 1.0

[model]
name = "algorithm"
optimizer = "adai"
lr = 0.05
beta0 = 0.2
batch_size = 2
n_data = 500
data_seed = 7

[run]
n_paths = 24
t_max = 20.0
seed = 5
"""


def test_algorithm_section_equals_escape_algorithm(tmp_path):
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, ALGORITHM), "--out", str(out),
                     "--no-progress"]) == 0
    rows = read_csv(out / "paths.csv")
    st = sd.landscapes.StyblinskiTang(2, 1.0, 1.0)
    th0, ex = st.basin("local")
    ref = sd.optim.escape_algorithm(sd.optim.adai(0.05, beta0=0.2), st, th0, ex, lr=0.05,
                                    n_iters=400, n_paths=24, key=jax.random.key(5),
                                    data=st.sample_data(jax.random.key(7), 500), batch_size=2,
                                    progress=False)
    np.testing.assert_array_equal(rows["time"], np.float64([f"{t:.9g}" for t in ref.times]))
    np.testing.assert_array_equal(rows["iterations"],
                                  np.float64([f"{t:.9g}" for t in ref.iterations]))


@pytest.mark.parametrize("edit, needle", [
    (("beta0 = 0.2", "beta1 = 0.9"), "[model] beta1 is not a hyperparameter of optimizer = "
                                     "\"adai\"; its hyperparameters: lr, beta0, beta2, eps"),
    (("t_max = 20.0", "t_max = 20.0\ndt = 0.01"), "[run] dt = 0.01 but [model] lr = 0.05"),
    (('optimizer = "adai"', 'optimizer = "lion"'), "[model] optimizer = 'lion': expected one "
                                                   "of \"sgd\", \"momentum\""),
    (("batch_size = 2", "batch_size = 2\nalpha = 1.5"), "not both"),
])
def test_algorithm_errors(tmp_path, capsys, edit, needle):
    assert cli.main(["run", write(tmp_path, ALGORITHM.replace(*edit)), "--check"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_progress_bar_counts_paths_and_escapes(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, SMALL), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    n_escaped = json.loads((out / "summary.json").read_text())["n_escaped"]
    assert "60/60" in err and f"escaped={n_escaped}" in err
