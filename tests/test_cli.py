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
    (("temperature = 0.5", ""),
     "[model] is missing 'temperature' (a number or a list of numbers)"),
    (('name = "langevin"', 'name = "rmsprop"'), "[model] name = 'rmsprop'; allowed: langevin"),
    (("n_paths = 60", "n_paths = 60.5"), "[run] n_paths = 60.5: expected an integer"),
    (("dt = 0.01", ""), "[run] is missing 'dt' (a number)"),
    (("[run]", "[runs]"), "unknown section [runs]; allowed: landscape, model, exit, run, sweep"),
    (('name = "double_well"', 'name = "double_well"\nside = "middle"'),
     "[landscape] side = 'middle': expected one of \"left\", \"right\""),
    (("temperature = 0.5", "temperature = -0.5"),
     "[model] temperature = -0.5: temperature must be >= 0, got -0.5"),
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
        named = re.findall(r"sdesim (run|sweep) examples/(\w+)\.toml", out)
        named += re.findall(r"sdesim (run|sweep) --example (\w+)", out)
        for cmd, name in named:
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
    ams = cfg["run"].get("method") == "ams"
    sets = ["run.n_paths=16", "run.t_max=5.0", "run.block=8"]
    if ams:  # few replicas (an AMS run has no paths or blocks)
        sets = ["run.n_replicas=16", "run.k=8", "run.n_runs=4", "run.t_max=5.0"]
    cmd = "run"
    if "sweep" in cfg:  # first and last value of every swept list
        cmd = "sweep"
        for k, v in cfg["sweep"].items():
            if k != "cross":
                sets.append(f'sweep."{k}"={json.dumps([v[0], v[-1]] if len(v) > 1 else v)}')
    if "steps" in cfg["landscape"].get("args", {}):  # a target that trains a network
        sets.append("landscape.args.steps=50")
    out = tmp_path / "out"
    argv = [cmd, str(path), "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 0, capsys.readouterr().err
    folders = sorted((out / "points").glob("*")) if cmd == "sweep" else [out]
    for f in folders:
        s = json.loads((f / "summary.json").read_text())
        assert s["t_max"] == 5.0
        if ams:
            assert s["method"] == "ams" and s["n_replicas"] == 16
            continue
        assert s["n_paths"] == 16
        assert (f / "survival.png").stat().st_size > 0
    if cmd == "sweep":
        rows = json.loads((out / "sweep.json").read_text())["points"]
        assert len(rows) == len(folders) >= 2
        assert list(out.glob("rate_vs_*.png"))


# -- [landscape] target: the user's own problem from a factory function ----------------

TARGET_PY = """\
import jax.numpy as jnp

def loss_of(p):  # a 2-D double well in x = p["w"][0] (minima at +-1), a bowl in p["b"]
    return (p["w"][0] ** 2 - 1.0) ** 2 + 2.0 * p["b"] ** 2

def make(shift=0.0):
    f = jnp.result_type(float)  # the run's float dtype (float64 under JAX_ENABLE_X64)
    params = {"b": jnp.asarray(shift, f), "w": jnp.array([-1.0], f)}
    data = jnp.linspace(-1.0, 1.0, 8, dtype=f)[:, None]
    return dict(loss=loss_of, params=params, data=data,
                per_sample=lambda p, x: loss_of(p) + p["w"][0] * x[0],
                eval_loss=lambda p: (p["w"][0] ** 2 - 1.0) ** 2)

def make_vector():
    return {"loss": lambda th: (th[0] ** 2 - 1.0) ** 2, "theta0": [-1.0]}

def make_typo():
    return {"loss": loss_of, "parms": {"w": jnp.zeros(1)}}
"""

TARGET_TOML = """\
[landscape]
target = "prob.py:make"

[model]
name = "langevin"
temperature = 0.3

[exit]
kind = "ball"
radius = 0.8

[run]
n_paths = 40
dt = 0.01
t_max = 100.0
seed = 5
block = 16
"""


def test_target_factory_runs_as_the_flattened_problem(tmp_path, capsys):
    """A config's target (a file beside it, a dict of parameters) runs bit for bit as
    sd.escape on the hand-flattened problem; the ball is centred at the start."""
    (tmp_path / "prob.py").write_text(TARGET_PY)
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, TARGET_TOML), "--out", str(out),
                     "--no-progress"]) == 0, capsys.readouterr().err
    rows = read_csv(out / "paths.csv")
    # ravel order: the dict's keys sorted, "b" then "w"
    flat_loss = lambda th: (th[1] ** 2 - 1.0) ** 2 + 2.0 * th[0] ** 2  # noqa: E731
    th0 = jax.numpy.array([0.0, -1.0], jax.numpy.result_type(float))
    ref = sd.escape(sd.models.Langevin(0.3), flat_loss, th0, sd.exits.Ball(th0, 0.8),
                    n_paths=40, dt=0.01, t_max=100.0, key=jax.random.key(5), progress=False)
    assert ref.escaped.sum() >= 20  # the comparison is about escapes, not censoring
    np.testing.assert_array_equal(rows["time"], np.float64([f"{t:.9g}" for t in ref.times]))
    np.testing.assert_array_equal(rows["escaped"], ref.escaped)


def test_target_level_set_watches_eval_loss_above_start_and_lowrank_noise(tmp_path, capsys):
    (tmp_path / "prob.py").write_text(TARGET_PY)
    text = TARGET_TOML.replace('kind = "ball"\nradius = 0.8',
                               'kind = "level_set"\nabove_start = 0.5')
    # level = eval_loss(start) + 0.5 = 0.5: no path has exited at the start; with
    # SGD and the rank-1 local minibatch covariance (the per-sample term w·x moves w only)
    text = text.replace('name = "langevin"\ntemperature = 0.3',
                        'name = "sgd"\nlr = 0.5\n\n[model.noise]\n'
                        'kind = "minibatch_lowrank"\nbatch_size = 1.0\nk = 1')
    path = write(tmp_path, text)
    cfg = cli.load_config(path)
    model, loss, theta0, exit, run, ref = cli.build(cfg)
    assert float(exit.level) == pytest.approx(0.5) and ref is None
    assert model.noise.noise_dim(2) == 1
    # the eigenvector is ±e_w (the data's gradient moves w only), eigenvalue Var(x)/B
    x = np.linspace(-1.0, 1.0, 8)
    np.testing.assert_allclose(np.abs(np.asarray(model.noise.vectors))[:, 0], [0.0, 1.0],
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.noise.values), [x.var()], rtol=1e-5)
    assert cli.main(["run", path, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["n_paths"] == 40 and np.isfinite(s["rate"])


def test_target_sweeps_its_args_and_shares_one_problem(tmp_path, capsys):
    (tmp_path / "prob.py").write_text(TARGET_PY)
    text = TARGET_TOML + '\n[sweep]\n"landscape.args.shift" = [0.0, 0.1]\n'
    out = tmp_path / "o"
    assert cli.main(["sweep", write(tmp_path, text), "--out", str(out), "--no-progress",
                     "--set", "run.n_paths=8"]) == 0, capsys.readouterr().err
    rows = json.loads((out / "sweep.json").read_text())["points"]
    assert len(rows) == 2


@pytest.mark.parametrize("edit, needle", [
    (('target = "prob.py:make"', 'target = "prob.py"'), 'expected "module:function"'),
    (('target = "prob.py:make"', 'target = "nothere.py:make"'), "no file"),
    (('target = "prob.py:make"', 'target = "prob.py:nope"'), "has no function nope"),
    (('target = "prob.py:make"', 'target = "no_such_module_x:make"'), "cannot import"),
    (('target = "prob.py:make"', 'target = "prob.py:make_typo"'),
     "returned unknown key(s) parms"),
    (('target = "prob.py:make"', 'target = "prob.py:make"\nname = "double_well"'),
     "give name (a built-in landscape) or target"),
    (('target = "prob.py:make"', 'target = "prob.py:make"\nargs = {shfit = 1.0}'),
     "[landscape.args]"),
    (('[exit]\nkind = "ball"\nradius = 0.8\n', ""), "returns no exit: add an [exit]"),
    (('radius = 0.8', 'radius = 0.8\ncenter = [0.0, 0.0, 0.0]'), "has dimension 3"),
    (('name = "langevin"\ntemperature = 0.3',
      'name = "algorithm"\noptimizer = "sgd"\nlr = 0.1\nbatch_size = 2\nn_data = 10'),
     "a [landscape] target gives its own data"),
    (('name = "langevin"\ntemperature = 0.3',
      'name = "sgd"\nlr = 0.1\n[model.noise]\nkind = "minibatch_fixed"\nbatch_size = 2.0'),
     'for a target use "minibatch"'),
])
def test_target_errors_name_the_key(tmp_path, capsys, edit, needle):
    (tmp_path / "prob.py").write_text(TARGET_PY)
    path = write(tmp_path, TARGET_TOML.replace(*edit))
    assert cli.main(["run", path, "--out", str(tmp_path / "o"), "--check"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_target_vector_params_and_algorithm_without_data(tmp_path, capsys):
    (tmp_path / "prob.py").write_text(TARGET_PY)
    text = TARGET_TOML.replace("prob.py:make", "prob.py:make_vector").replace(
        'name = "langevin"\ntemperature = 0.3',
        'name = "algorithm"\noptimizer = "sgd"\nlr = 0.1\nbatch_size = 2').replace(
        "dt = 0.01\n", "")
    assert cli.main(["run", write(tmp_path, text), "--check"]) == 2
    assert "returns no per_sample and data" in capsys.readouterr().err
    text = TARGET_TOML.replace("prob.py:make", "prob.py:make_vector")
    model, loss, theta0, exit, run, ref = cli.build(cli.load_config(write(tmp_path, text)))
    np.testing.assert_array_equal(theta0, [-1.0])
    np.testing.assert_array_equal(np.asarray(exit.center), [-1.0])


def test_level_set_above_start_on_a_builtin_landscape(tmp_path):
    text = SMALL + '\n[exit]\nkind = "level_set"\nabove_start = 0.25\n'
    text = text.replace("barrier = 1.0", "barrier = 1.0\ntheta0 = [-1.0]")
    model, loss, theta0, exit, run, ref = cli.build(cli.load_config(write(tmp_path, text)))
    assert float(exit.level) == pytest.approx(float(loss(jax.numpy.array([-1.0]))) + 0.25)
    bad = text.replace("above_start = 0.25", "above_start = 0.25\nlevel = 1.0")
    with pytest.raises(cli.ConfigError, match="give level or above_start"):
        cli.build(cli.load_config(write(tmp_path, bad)))


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
    assert rows.dtype.names == ("path", "time", "iterations", "escaped", "status", "diverged")
    # three blocks of the path stream = one escape call with all 60 paths
    loss = sd.landscapes.DoubleWell(1.0)
    th0, ex = loss.basin("left")
    ref = sd.escape(sd.models.Langevin(0.5), loss, th0, ex, n_paths=60, dt=0.01,
                    t_max=200.0, key=jax.random.key(3), progress=False)
    np.testing.assert_array_equal(rows["path"], np.arange(60))
    np.testing.assert_array_equal(rows["time"], np.float64([f"{t:.9g}" for t in ref.times]))
    np.testing.assert_array_equal(rows["escaped"], ref.escaped)
    assert s["rate"] == pytest.approx(ref.rate(), rel=1e-12)


def test_rerun_shows_the_stored_result_and_another_config_is_refused(tmp_path, capsys,
                                                                     monkeypatch):
    path, out = write(tmp_path, SMALL), str(tmp_path / "o")
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20"]) == 0
    first = capsys.readouterr().out
    summary = (tmp_path / "o" / "summary.json").read_text()

    def no_simulation(*a, **k):
        raise AssertionError("a finished run was simulated again")

    monkeypatch.setattr(sd, "escape", no_simulation)
    # the same command again: the stored result, said so, nothing simulated
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "20"]) == 0
    cap = capsys.readouterr()
    assert "holds this run (same config), finished: its saved result is shown" in cap.err
    assert cap.out.splitlines()[0] == first.splitlines()[0]  # the same result line
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["rate"] == \
        json.loads(summary)["rate"]
    # another config in the same folder: refused, with the way out
    assert cli.main(["run", path, "--out", out, "--no-progress", "--paths", "21"]) == 2
    one_line_error(capsys, f"{out} already holds a run of another config (run.n_paths: 20 "
                           f"-> 21): choose another folder with --out")
    monkeypatch.undo()
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
    saved = {p.name: p.stat().st_mtime_ns for p in (out / "blocks").glob("*.npz")}
    if sig == signal.SIGINT:
        assert rc == 130 and "--resume" in err and "Traceback" not in err
        # the message is true: it counts the blocks on disk
        assert f"{len(saved)} of {N_BLOCKS} blocks are saved in {out}" in err, err
    else:
        assert rc == -signal.SIGKILL
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
    import importlib

    scripts = cli.figure_scripts(ROOT)
    for png in (ROOT / "figures").glob("*.png"):
        assert scripts.get(png.stem) is not None, f"no benchmark writes {png.name}"
    assert scripts["levy_escape"].name == "levy_escape.py"
    if not (importlib.import_module("sdesim.cli.main").ROOT / "benchmarks").is_dir():
        # installed from a wheel or an sdist: `sdesim figures` needs a source checkout
        assert cli.main(["figures", "--list"]) == 2
        one_line_error(capsys, "needs the benchmarks/ folder of a source checkout")
        return
    assert cli.main(["figures", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "figures/kramers_validation.png  <-  python benchmarks/kramers_validation.py" in \
        listed
    assert ("figures/scaling_gpu.png  <-  python benchmarks/scaling.py on a GPU machine "
            "(there it writes the _gpu names)") in listed
    if jax.default_backend() == "cpu":  # a GPU figure is not remade (wrongly named) here
        assert cli.main(["figures", "scaling_gpu"]) == 0
        assert "this one has none: skipped" in capsys.readouterr().out
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


# == issue 12 item 4: the command line never tracebacks and never loses work ==============


def one_line_error(capsys, needle=None):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sdesim: error: "), err
    assert "Traceback" not in err
    if needle is not None:
        assert needle in err, err
    return err


def strict_json(path):
    """json.loads that refuses NaN/Infinity, as strict parsers (JavaScript, jq) do."""
    def refuse(name):
        raise ValueError(f"{path.name} holds {name}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


ST = """\
[landscape]
name = "styblinski_tang"
dim = 2
sharpness = 1.0

[model]
name = "langevin"
temperature = 1.0

[run]
n_paths = 8
dt = 0.01
t_max = 1.0
"""

QUAD = """\
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
n_paths = 8
dt = 0.01
t_max = 1.0
"""

EXIT_HALF = '[exit]\nkind = "halfspace"\nnormal = {}\noffset = 0.0\n'
ELLIPSOID = '[exit]\nkind = "ellipsoid"\ncenter = {}\nmatrix = {}\nlevel = 1.0\n'


# Values the package (or the engine's limits) rejects: `--check` refuses them with one line
# naming the key, and `run` refuses them before it creates anything.
@pytest.mark.parametrize("config, needle", [
    (SMALL.replace("dt = 0.01", "dt = 0"), "[run] dt = 0: dt must be > 0"),
    (SMALL.replace("dt = 0.01", "dt = -0.01"), "[run] dt = -0.01: dt must be > 0"),
    (SMALL.replace("dt = 0.01", "dt = nan"), "[run] dt = nan: dt must be a number (not NaN)"),
    (SMALL.replace("t_max = 200.0", "t_max = inf"), "[run] t_max = inf: t_max must be finite"),
    (SMALL.replace("dt = 0.01", "dt = 500.0"), "[run] dt = 500.0 > t_max = 200.0"),
    (SMALL.replace("dt = 0.01", "dt = 1e-9"), "[run] t_max/dt = 200.0/1e-09 = "),
    (SMALL.replace("n_paths = 60", "n_paths = 3000000000"),
     "[run] n_paths = 3000000000: at most 2147483647 (2**31 - 1) paths"),
    (SMALL.replace("seed = 3", "seed = -1"), "[run] seed = -1: expected an integer in 0 .."),
    (SMALL.replace("block = 25", "block = 0"), "[run] block = 0: expected an integer >= 1"),
    (SMALL.replace("barrier = 1.0", "barrier = 1.0\ntheta0 = [nan]"),
     "[landscape] theta0 = [nan]"),
    (SMALL.replace("barrier = 1.0", "barrier = 1.0\ntheta0 = [[-1.0]]"),
     "[landscape] theta0 = [[-1.0]]: expected a list of numbers"),
    (SMALL.replace("barrier = 1.0", "barrier = 1.0\ntheta0 = [-1.0, 0.0]"),
     "[landscape] theta0 has 2 coordinates but the double_well landscape has dimension 1"),
    (SMALL.replace("barrier = 1.0", "barrier = 1.0\ntheta0 = [1.5]"),
     "[landscape] theta0 [1.5] is already outside the basin"),
    (SMALL.replace("barrier = 1.0", "barrier = -1.0"), "[landscape] barrier = -1.0: barrier"),
    (SMALL.replace("barrier = 1.0", "barrier = 1.0\ndim = -1"), "[landscape] dim = -1: dim"),
    (SMALL + EXIT_HALF.format("[[1.0]]"), "[exit] normal = [[1.0]]: normal must be"),
    (SMALL + EXIT_HALF.format("[1.0, 0.0]"),
     "[exit] halfspace has dimension 2 (normal has 2 coordinates) but theta0 has 1"),
    (SMALL + EXIT_HALF.format("[nan]"), "[exit] normal = [nan]: normal must be a number"),
    (SMALL + ELLIPSOID.format("[0.0, 0.0]", "[[1.0]]"),
     "[exit] matrix = [[1.0]]: matrix must be of shape (2, 2) to match center"),
    (SMALL + ELLIPSOID.format("[0.0, 0.0]", "[[1.0, 0.0], [0.0, 1.0]]"),
     "[exit] ellipsoid has dimension 2 (center has 2 coordinates) but theta0 has 1"),
    (ST.replace("sharpness = 1.0", "sharpness = -1"), "[landscape] sharpness = -1: sharpness"),
    (ST.replace("dim = 2", "dim = -1"), "[landscape] dim = -1: dim must be"),
    (ST.replace("dim = 2", "dim = 2\ntheta0 = [0.0]"),
     "[landscape] theta0 has 1 coordinates but dim = 2"),
    (QUAD.replace("hessian = [1.0, 2.0]", "hessian = [-1.0]"),
     "[landscape] hessian = [-1.0]: hessian must be > 0"),
    (QUAD.replace("height = 0.5", "height = -0.5"), "[landscape] height = -0.5: height must"),
    (QUAD.replace("center", "x").replace("height = 0.5", "height = 0.5\ncenter = [1.0, 2.0, 3.0]"),
     "[landscape] center = [1.0, 2.0, 3.0]: center must be"),
    (QUAD.replace("variance = 1.0", "variance = -1.0"),
     "[model.noise] variance = -1.0: variance must be >= 0"),
    (QUAD.replace("lr = 0.1", "lr = 0"), "[model] lr = 0: lr must be > 0"),
    (SMALL + '[sweep]\n"run.dt" = [0.01, 0]\n',
     "sweep point 1 (run.dt=0): [run] dt = 0: dt must be > 0"),
    (SMALL + '[sweep]\n"model.temperature" = [0.5, -1.0]\n',
     "sweep point 1 (model.temperature=-1.0): [model] temperature = -1.0: temperature must"),
], ids=lambda x: x if len(x) < 40 else None)
def test_rejected_values_one_line_and_nothing_written(tmp_path, capsys, config, needle):
    path = write(tmp_path, config)
    cmd = "sweep" if "[sweep]" in config else "run"
    assert cli.main([cmd, path, "--check"]) == 2
    one_line_error(capsys, needle)
    out = tmp_path / "o"
    assert cli.main([cmd, path, "--out", str(out), "--no-progress"]) == 2
    one_line_error(capsys, needle)
    assert not out.exists()  # run.json only once every input is valid


@pytest.mark.parametrize("argv, needle", [
    (["--seed", str(2**64)], f"--seed {2**64}: expected an integer in 0 .. "),
    (["--seed", "-1"], "--seed -1: expected an integer in 0 .. "),
    (["--paths", "3000000000"], "--paths 3000000000: at most 2147483647 (2**31 - 1) paths"),
    (["--paths", "0"], "--paths 0: expected an integer >= 1"),
    (["--paths", "many"], "argument --paths: invalid int value: 'many'"),
    (["--set", "model.temperature"], "--set 'model.temperature': expected KEY=VALUE"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_one_line(tmp_path, capsys, argv, needle):
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, SMALL), "--out", str(out), *argv]) == 2
    one_line_error(capsys, needle)
    assert not out.exists()


def test_seed_aliases_refused_without_x64(tmp_path, capsys):
    """Without x64, jax.random.key keeps 32 bits of the seed: 2**32 is seed 0's stream."""
    if jax.config.jax_enable_x64:
        pytest.skip("64-bit seeds are distinct under JAX_ENABLE_X64")
    assert cli.main(["run", write(tmp_path, SMALL), "--check", "--seed", str(2**32)]) == 2
    one_line_error(capsys, "without JAX_ENABLE_X64=1 a larger or negative seed gives the "
                           "stream of another seed")
    assert cli.main(["run", write(tmp_path, SMALL), "--check", "--seed", str(2**32 - 1)]) == 0


def test_file_system_errors_one_line(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, SMALL)
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    assert cli.main(["run", cfg, "--out", str(a_file), "--no-progress"]) == 2
    one_line_error(capsys, f"--out {a_file}: is a file, not a folder")
    assert a_file.read_text() == "mine"
    assert cli.main(["run", cfg, "--out", str(a_file / "sub"), "--no-progress"]) == 2
    one_line_error(capsys, f"--out {a_file / 'sub'}: cannot create the folder")
    assert cli.main(["run", str(tmp_path), "--check"]) == 2
    one_line_error(capsys, f"{tmp_path}: is a folder, not a TOML config file")
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(SMALL.replace("double_well", "double_well\" # caf\xe9").encode("latin-1"))
    assert cli.main(["run", str(latin), "--check"]) == 2
    one_line_error(capsys, f"{latin}: not UTF-8 text")
    assert cli.main(["run", str(tmp_path / "missing.toml"), "--check"]) == 2
    one_line_error(capsys, f"{tmp_path / 'missing.toml'}: no such file")

    # a read-only parent folder (tests may run as root, which ignores permissions)
    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    out = tmp_path / "ro" / "o"
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 2
    one_line_error(capsys, f"--out {out}: cannot create the folder (Permission denied)")


def test_check_runs_the_engine_checks_and_says_ok_only_then(tmp_path, capsys):
    assert cli.main(["run", write(tmp_path, SMALL), "--check"]) == 0
    assert capsys.readouterr().out.strip() == "point 0: config: ok"
    # a Lévy step scale that float32 cannot represent passes TOML and the constructors
    # but not the engine's checks: --check must say so, not "ok"
    levy = QUAD.replace('name = "sgd"', 'name = "sgd_levy"\nalpha = 0.05').replace(
        '[model.noise]\nkind = "isotropic"\nvariance = 1.0\n', "sigma = 1.0\n")
    rc = cli.main(["run", write(tmp_path, levy, "levy.toml"), "--check"])
    if jax.config.jax_enable_x64:
        assert rc == 0
    else:
        assert rc == 2
        one_line_error(capsys, "[run] dt = 0.01: dt**(1/alpha)")


# -- never overwrite what the run did not write; tie blocks to their run ------------------


def test_foreign_folder_is_refused_and_untouched(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"my": "results"}')
    (out / "paths.csv").write_text("path,time\n0,1.0\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for extra in ([], ["--resume"]):
        assert cli.main(["run", cfg, "--out", str(out), "--no-progress", *extra]) == 2
        one_line_error(capsys, f"--out {out} is not empty and holds no sdesim run")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert cli.main(["sweep", write(tmp_path, SMALL + '[sweep]\n"run.seed" = [1, 2]\n',
                                    "s.toml"), "--out", str(out), "--no-progress"]) == 2
    one_line_error(capsys, "is not empty and holds no sdesim run")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # an empty folder is fine (nothing to lose); --resume on nothing is an error
    assert cli.main(["run", cfg, "--out", str(tmp_path / "none"), "--resume"]) == 2
    one_line_error(capsys, "does not exist, so there is nothing to resume")
    (tmp_path / "empty").mkdir()
    assert cli.main(["run", cfg, "--out", str(tmp_path / "empty"), "--resume"]) == 2
    one_line_error(capsys, "is empty, so there is nothing to resume")


TINY = SMALL.replace("n_paths = 60", "n_paths = 20").replace("block = 25", "block = 10") \
    .replace("t_max = 200.0", "t_max = 20.0")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished TINY run (two blocks) to corrupt, copy by copy."""
    d = tmp_path_factory.mktemp("finished")
    cfg = d / "c.toml"
    cfg.write_text(TINY)
    assert cli.main(["run", str(cfg), "--out", str(d / "o"), "--no-progress"]) == 0
    return cfg, d / "o"


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _corrupt_truncated(block):
    block.write_bytes(block.read_bytes()[: block.stat().st_size // 2])


def _corrupt_empty(block):
    block.write_bytes(b"")


def _corrupt_no_hash(block):
    with np.load(block) as z:
        steps, status = z["steps"], z["status"]
    np.savez(block, steps=steps, status=status, seconds=1.0)


def _corrupt_renamed(block):
    block.rename(block.with_name("paths-000000000-000000007.npz"))


@pytest.mark.parametrize("corrupt, needle", [
    (_corrupt_truncated, "is unreadable"),
    (_corrupt_empty, "is unreadable"),
    (_corrupt_no_hash, "carries no run hash: it was not written by this run"),
    (_corrupt_renamed, "is not one of this run's block files"),
], ids=["truncated", "empty", "no-hash", "foreign-name"])
def test_corrupted_block_is_named_and_refused(tmp_path, capsys, finished_run, corrupt, needle):
    cfg, done = finished_run
    out = _copy(done, tmp_path / "o")
    block = out / "blocks" / "paths-000000000-000000010.npz"
    corrupt(block)
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 2
    err = one_line_error(capsys, needle)
    assert "blocks/paths-0000000" in err and "delete it" in err
    # deleting it, as the message says, resumes: the block is simulated again, identically
    for p in (out / "blocks").glob("paths-000000000-*"):
        p.unlink()
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert (out / "paths.csv").read_bytes() == (done / "paths.csv").read_bytes()


def test_block_of_another_run_is_refused(tmp_path, capsys, finished_run):
    """A block swapped in from another run (another horizon) is never reused."""
    cfg, done = finished_run
    other = tmp_path / "other"
    assert cli.main(["run", str(cfg), "--out", str(other), "--no-progress",
                     "--set", "run.t_max=10.0"]) == 0
    out = _copy(done, tmp_path / "o")
    name = "paths-000000010-000000020.npz"
    (out / "blocks" / name).write_bytes((other / "blocks" / name).read_bytes())
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 2
    one_line_error(capsys, f"{out / 'blocks' / name} belongs to another run")
    # and a folder of blocks without run.json is not a run: refused, not reused
    (out / "run.json").unlink()
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    one_line_error(capsys, "holds no sdesim run (no run.json)")


@pytest.mark.parametrize("text, needle", [
    ("{", "run.json is unreadable (JSONDecodeError"),
    ("", "run.json is unreadable"),
    ('["a list"]', "run.json is not a run record of sdesim"),
    (None, "has no run hash of this version of sdesim"),
], ids=["truncated", "empty", "foreign", "old-format"])
def test_broken_run_record_is_named(tmp_path, capsys, finished_run, text, needle):
    cfg, done = finished_run
    out = _copy(done, tmp_path / "o")
    rec = out / "run.json"
    if text is None:  # written by an older sdesim: config and x64 only
        old = json.loads(rec.read_text())
        rec.write_text(json.dumps({"config": old["config"], "x64": old["x64"]}))
    else:
        rec.write_text(text)
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 2
    err = one_line_error(capsys, needle)
    assert str(out) in err and ("delete" in err)


def test_summary_and_sweep_json_are_strict(tmp_path, capsys):
    """No path escapes: infinite mean time and undefined CV become null with a reason; the
    config's infinite box bound is the string "-inf"."""
    cold = SMALL.replace("temperature = 0.5", "temperature = 0.05").replace(
        "t_max = 200.0", "t_max = 0.5").replace("barrier = 1.0", "barrier = 1.0\n"
                                                "theta0 = [-1.0]") \
        + '[exit]\nkind = "box"\nlower = [-inf]\nupper = [0.0]\n'
    cold = cold.replace("n_paths = 60", "n_paths = 8")
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, cold), "--out", str(out), "--no-progress"]) == 0
    assert "0/8 escaped" in capsys.readouterr().out
    s = strict_json(out / "summary.json")
    assert s["n_escaped"] == 0 and s["rate"] == 0.0
    assert s["mean_time"] is None and "no path escaped" in s["mean_time_note"]
    assert s["mean_time_ci95"][1] is None and "mean_time_ci95_note" in s
    assert s["cv"] is None and "fewer than 2" in s["cv_note"]
    assert s["config"]["exit"]["lower"] == ["-inf"]
    sweep = cold + '[sweep]\n"model.temperature" = [0.05, 0.04]\n'
    assert cli.main(["sweep", write(tmp_path, sweep, "s.toml"), "--out", str(tmp_path / "s"),
                     "--no-progress"]) == 0
    rows = strict_json(tmp_path / "s" / "sweep.json")["points"]
    assert [r["mean_time"] for r in rows] == [None, None]
    assert all("no path escaped" in r["mean_time_note"] for r in rows)
    for p in (tmp_path / "s" / "points").glob("*/summary.json"):
        strict_json(p)


def test_diverged_paths_are_counted_apart(tmp_path, capsys):
    """Stiff transverse curvature, explicit step far beyond stability: the state overflows.
    The result line, summary.json and paths.csv keep these paths apart from escapes."""
    stiff = SMALL.replace("barrier = 1.0", "barrier = 1.0\ndim = 2\nstiffness = 1000.0") \
        .replace("n_paths = 60", "n_paths = 16").replace("t_max = 200.0", "t_max = 5.0")
    out = tmp_path / "o"
    assert cli.main(["run", write(tmp_path, stiff), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    s = strict_json(out / "summary.json")
    assert s["n_diverged"] > 0
    assert s["n_escaped"] + s["n_diverged"] + s["n_censored"] == 16
    assert (f"{s['n_escaped']}/16 escaped, {s['n_diverged']} diverged (non-finite state; try "
            f"a smaller dt or JAX_ENABLE_X64=1), {s['n_censored']} censored; rate") \
        in captured.out
    rows = read_csv(out / "paths.csv")
    assert int(rows["diverged"].sum()) == s["n_diverged"]
    assert not np.any(rows["escaped"].astype(bool) & rows["diverged"].astype(bool))
    np.testing.assert_array_equal(rows["diverged"] == 1, rows["status"] == 3)
    # warnings (the engine's stability warning) come as single lines, no source dump
    for line in captured.err.strip().splitlines():
        assert line.startswith("sdesim: warning: "), line


def test_ctrl_c_messages_are_true(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, TINY)
    main_mod = sys.modules["sdesim.cli.main"]
    # during start-up, before any folder exists: nothing is claimed saved
    real_build = main_mod.build

    def interrupted_build(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(main_mod, "build", interrupted_build)
    out = tmp_path / "o"
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted before the run started; no block was saved" in err
    assert "--resume" not in err and not out.exists()
    monkeypatch.setattr(main_mod, "build", real_build)
    # after the first of two blocks: "1 of 2 blocks are saved"
    calls = []
    real_escape = sd.escape

    def escape_once(*a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_escape(*a, **k)

    monkeypatch.setattr(sd, "escape", escape_once)
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"1 of 2 blocks are saved in {out}: continue with the same command and --resume" \
        in err
    assert len(list((out / "blocks").glob("*.npz"))) == 1
    # Ctrl-C while a resume starts up: the folder is as it was, and says so
    monkeypatch.setattr(main_mod, "build", interrupted_build)
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress", "--resume"]) == 130
    assert f"before the run resumed; {out} is as it was" in capsys.readouterr().err


# == issue 13 item 3: one registry, read from the constructors ===========================


def test_registry_names_and_keys_come_from_the_classes():
    import dataclasses
    import inspect

    reg = cli.registry()
    assert list(reg.landscapes) == ["styblinski_tang", "quadratic", "double_well",
                                    "rastrigin", "rosenbrock", "muller_brown"]
    assert set(reg.models) == {"langevin", "underdamped", "sgd", "momentum", "adam", "adai",
                               "sgd_levy", "adam_levy", "adal", "algorithm"}
    assert set(reg.noises) == {"isotropic", "fixed", "hessian", "minibatch", "minibatch_fixed",
                               "minibatch_lowrank"}
    assert set(reg.exits) == {"halfspace", "box", "ellipsoid", "ball", "level_set"}
    for name, cls in (("langevin", sd.models.Langevin), ("underdamped", sd.models.Underdamped),
                      ("momentum", sd.models.Momentum), ("adai", sd.models.Adai),
                      ("sgd_levy", sd.models.SGDLevy), ("adal", sd.models.AdaL)):
        # the constructor's arguments: dataclass fields (static ones too) and init-only ones
        params = inspect.signature(cls).parameters
        assert {f.name for f in dataclasses.fields(cls)} <= set(params)
        keys = {k.arg for k in reg.models[name].keys.values()}
        assert keys == set(params), name
        required = {p for p, v in params.items() if v.default is inspect.Parameter.empty}
        assert {k for k, v in reg.models[name].keys.items() if v.required} == \
            required - {reg.models[name].noise_alias}, name
    assert reg.landscapes["double_well"].basin.keys() == {"side", "past"}
    assert reg.noises["hessian"].keys.keys() == {"batch_size", "floor"}


@pytest.fixture
def fresh_registry():
    cli.registry.cache_clear()
    yield
    cli.registry.cache_clear()


def test_a_new_class_needs_no_cli_change(tmp_path, capsys, monkeypatch, fresh_registry):
    """A landscape and a model added to their modules appear in --help and configs."""
    import dataclasses

    import jax.numpy as jnp

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass(frozen=True)
    class TiltedBowl:
        """``½ curvature θ² + tilt θ`` per coordinate."""

        curvature: jax.Array
        tilt: jax.Array = 0.0

        def __call__(self, theta):
            return jnp.sum(0.5 * self.curvature * theta**2 + self.tilt * theta)

        def basin(self, radius=1.0):
            d = np.zeros(1)
            return d, sd.exits.Box(d - radius, d + radius)

    TiltedBowl.__module__ = "sdesim.landscapes"
    monkeypatch.setattr(sd.landscapes, "TiltedBowl", TiltedBowl, raising=False)

    hot_base = sd.models.Langevin

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass(frozen=True)
    class HotLangevin(hot_base):
        boost: jax.Array = 2.0

    HotLangevin.__module__ = "sdesim.models"
    monkeypatch.setattr(sd.models, "HotLangevin", HotLangevin, raising=False)
    # a class added to the source changes the stored key list's digest, so --help computes
    # the list afresh; one added at run time (as here) needs the stored list out of the way
    import importlib

    monkeypatch.setattr(importlib.import_module("sdesim.cli.registry"), "HELP_FILE",
                        tmp_path / "no-keys.txt")

    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "[landscape] name = tilted_bowl: curvature*, tilt; basin (without [exit]): " \
           "radius" in out
    assert "[model] name = hot_langevin: temperature*, boost" in out
    cfg = ('[landscape]\nname = "tilted_bowl"\ncurvature = 2.0\nradius = 1.5\n'
           '[model]\nname = "hot_langevin"\ntemperature = 0.5\nboost = 3.0\n'
           '[run]\nn_paths = 4\ndt = 0.01\nt_max = 1.0\n')
    assert cli.main(["run", write(tmp_path, cfg), "--check"]) == 0
    assert cli.main(["run", write(tmp_path, cfg.replace("boost", "bost")), "--check"]) == 2
    one_line_error(capsys, "unknown key 'bost' in [model]; allowed: boost, name, temperature")


@pytest.mark.parametrize("config", [
    ST + '[exit]\nkind = "level_set"\nlevel = 5.0\n',  # fn = the landscape, dim = theta0's
    '[landscape]\nname = "rastrigin"\ntheta0 = [0.0, 0.0]\n[model]\nname = "langevin"\n'
    'temperature = 1.0\n[exit]\nkind = "box"\nlower = [-0.5, -0.5]\nupper = [0.5, 0.5]\n'
    '[run]\nn_paths = 4\ndt = 0.001\nt_max = 0.1\n',
    QUAD.replace("height = 0.5", "height = 0.5\nhessian_neg = [2.0, 3.0]"),  # a new key
    QUAD.replace("height = 0.5\n", "") + ELLIPSOID.format("[0.0, 0.0]", "[1.0, 1.0]"),
    SMALL.replace('name = "langevin"', 'name = "underdamped"\nmass = 1.0\nfriction = 2.0'),
    QUAD.replace('name = "sgd"', 'name = "adam_levy"\nalpha = 1.5\nepsilon = 1e-6'),
    '[landscape]\nname = "rastrigin"\ntheta0 = [0.0, 0.0]\n[model]\nname = "langevin"\n'
    'temperature = 1.0\n[exit]\nkind = "ball"\ncenter = [0.0, 0.0]\nradius = 0.5\n'
    '[run]\nn_paths = 4\ndt = 0.001\nt_max = 0.1\n',
], ids=["level_set", "rastrigin", "hessian_neg", "ellipsoid-diag", "underdamped", "epsilon",
        "ball"])
def test_valid_configs_check_ok(tmp_path, capsys, config):
    assert cli.main(["run", write(tmp_path, config), "--check"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == "point 0: config: ok"


def test_sweep_crossing_list_values(tmp_path, capsys):
    """Crossed Hessians (list values) group the plot's lines (they used to be dict keys)."""
    sweep = SWEEP.replace("n_paths = 32", "n_paths = 8") + (
        '[sweep]\n"landscape.hessian" = [[1.0, 2.0], [2.0, 2.0]]\n"model.lr" = [0.1, 0.2]\n'
        'cross = ["landscape.hessian"]\n')
    out = tmp_path / "s"
    assert cli.main(["sweep", write(tmp_path, sweep), "--out", str(out), "--no-progress"]) == 0
    rows = strict_json(out / "sweep.json")["points"]
    assert [r["landscape.hessian"] for r in rows] == [[1.0, 2.0]] * 2 + [[2.0, 2.0]] * 2
    assert (out / "rate_vs_lr.png").stat().st_size > 0


# == [run] method = "ams": sd.escape_ams from the command line ===========================

# SMALL's double well at ΔU/T = 2 with few replicas: the AMS programs compile once (the
# bulk of the time); every AMS run below has these settings, so later ones compile nothing
AMS_KEYS = 'method = "ams"\nn_replicas = 16\nk = 8\nn_runs = 4\n'
# ΔU/T = 4: AMS's default levels need paths that stay in the basin while they settle
AMS = SMALL.replace("n_paths = 60\n", AMS_KEYS).replace("block = 25\n", "").replace(
    "temperature = 0.5", "temperature = 0.25")


@pytest.fixture(scope="module")
def ams_run(tmp_path_factory):
    """A finished `sdesim run` of AMS: (config path, folder, stdout)."""
    d = tmp_path_factory.mktemp("ams")
    cfg = d / "c.toml"
    cfg.write_text(AMS)
    out = d / "o"
    code = cli.main(["run", str(cfg), "--out", str(out), "--no-progress"])
    return cfg, out, code


def test_ams_run_writes_its_summary(ams_run, capsys):
    cfg, out, code = ams_run
    assert code == 0
    s = strict_json(out / "summary.json")
    assert s["method"] == "ams" and s["config"]["run"]["method"] == "ams"
    assert (s["n_replicas"], s["k"], s["n_runs"], s["seed"]) == (16, 8, 4, 3)
    assert 0 < s["p_ci95"][0] <= s["p"] <= s["p_ci95"][1] < 1
    lo, hi = s["mean_time_ci95"]
    assert 0 < lo <= s["mean_time"] <= hi < np.inf
    assert s["rate"] == pytest.approx(1 / s["mean_time"])
    assert s["rate_ci95"] == pytest.approx([1 / hi, 1 / lo])
    assert s["reference"]["formula"].startswith("F4")
    assert s["ratio_to_reference"] == pytest.approx(s["mean_time"] / s["reference"]
                                                    ["mean_time"])
    assert s["run_hash"] == json.loads((out / "run.json").read_text())["run_hash"]
    assert sorted(p.name for p in out.iterdir()) == ["ams.npz", "run.json", "summary.json"]
    # the same call from Python: the CLI adds nothing to the estimate
    loss = sd.landscapes.DoubleWell(1.0)
    th0, ex = loss.basin("left")
    ref = sd.escape_ams(sd.models.Langevin(0.25), loss, th0, ex, dt=0.01, t_max=200.0,
                        key=jax.random.key(3), n_replicas=16, k=8, n_runs=4)
    assert (s["p"], s["mean_time"]) == (ref.p, ref.mean_time())


def test_ams_resume_reuses_the_finished_run(ams_run, tmp_path, capsys, monkeypatch):
    import shutil

    cfg, done, code = ams_run
    assert code == 0
    out = tmp_path / "o"
    shutil.copytree(done, out)
    before = json.loads((done / "summary.json").read_text())

    def no_simulation(*a, **k):
        raise AssertionError("a finished AMS run was simulated again")

    monkeypatch.setattr(sd, "escape_ams", no_simulation)
    # without --resume too: the same run is reused
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "finished: its result (ams.npz) is reused" in capsys.readouterr().out
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert "finished: its result (ams.npz) is reused" in capsys.readouterr().out
    after = json.loads((out / "summary.json").read_text())
    assert (after["p"], after["mean_time_ci95"]) == (before["p"], before["mean_time_ci95"])
    # a result of another run is refused, naming it
    (out / "ams.npz").write_bytes(b"not a result")
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 2
    one_line_error(capsys, f"{out / 'ams.npz'} is unreadable")
    # Ctrl-C before the result is saved: the message says so
    (out / "ams.npz").unlink()

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sd, "escape_ams", interrupted)
    assert cli.main(["run", str(cfg), "--out", str(out), "--no-progress", "--resume"]) == 130
    assert (f"interrupted before the first AMS result finished; {out} holds only the run's "
            f"settings") in capsys.readouterr().err


@pytest.mark.parametrize("config, needle", [
    (AMS.replace("k = 8", "k = 16"),
     "[run] k = 16: expected k < n_replicas = 16"),
    (AMS.replace("n_replicas = 16\nk = 8", "k = 200"),
     "[run] k = 200: expected k < n_replicas = 200 (the default)"),
    (AMS.replace("n_runs = 4", "n_runs = 1"), "[run] n_runs = 1: expected an integer >= 2"),
    (AMS.replace("n_replicas = 16", "n_replicas = 1"),
     "[run] n_replicas = 1: expected an integer >= 2"),
    (AMS + "levels = [-0.8, -0.9]\n", "[run] levels = [-0.8, -0.9]: expected [z_A, z_Sigma]"),
    (AMS + "levels = [-0.9]\n", "[run] levels = [-0.9]: expected [z_A, z_Sigma]"),
    (AMS + "levels = [-2.0, -0.8]\n",
     "[run] levels = [-2.0, -0.8]: z_A must be >= score(theta0) = -1"),
    (AMS + "levels = [-0.9, 0.5]\n", "[run] levels = [-0.9, 0.5]: z_Sigma must be < 0"),
    (AMS + "n_direct = 1.5\n", "[run] n_direct = 1.5: expected an integer"),
    (AMS + "phase_score = 1\n", "[run] phase_score = 1: expected true or false"),
    (AMS + "warmup = -1.0\n", "[run] warmup = -1.0: expected a finite SDE time >= 0"),
    (AMS + 'directions = "saddle"\n',
     "[run] directions = 'saddle': expected one of \"saddles\""),
    (AMS.replace('"ams"', '"splitting"'),
     "[run] method = 'splitting': expected one of \"direct\", \"ams\""),
    (SMALL + "n_replicas = 16\n",
     "[run] n_replicas is a key of method = \"ams\" (adaptive multilevel splitting), but "
     "[run] has no method (the default is \"direct\"): set method = \"ams\" or remove "
     "n_replicas"),
    (SMALL.replace("seed = 3", 'method = "direct"\nlevels = [-0.9, -0.8]'),
     "[run] levels is a key of method = \"ams\""),
    (SMALL + '[sweep]\n"run.k" = [4, 8]\n', "sweep point 0 (run.k=4): [run] k is a key of "
                                            "method = \"ams\""),
    (AMS, "--paths 10: sets [run] n_paths, which method = \"ams\" does not use"),
], ids=lambda x: x if len(x) < 40 else None)
def test_ams_config_errors(tmp_path, capsys, config, needle):
    path = write(tmp_path, config)
    cmd = "sweep" if "[sweep]" in config else "run"
    extra = ["--paths", "10"] if needle.startswith("--paths") else []
    assert cli.main([cmd, path, "--check", *extra]) == 2
    one_line_error(capsys, needle)
    out = tmp_path / "o"
    assert cli.main([cmd, path, "--out", str(out), "--no-progress", *extra]) == 2
    one_line_error(capsys, needle)
    assert not out.exists()


def test_ams_keys_reach_escape_ams(tmp_path):
    """[run] warmup and directions are passed to sd.escape_ams as given."""
    cfg = cli.load_config(write(tmp_path, AMS + 'warmup = 2.5\ndirections = "saddles"\n'))
    run = cli.build(cfg, reference=False)[4]
    assert run["warmup"] == 2.5 and run["directions"] == "saddles"


def test_ams_ignores_the_direct_keys(tmp_path, capsys):
    """n_paths, block and lanes are the direct method's: an AMS run does not need them
    (and ignores them, so `--set run.method=ams` switches any config)."""
    assert cli.main(["run", write(tmp_path, AMS), "--check"]) == 0
    assert cli.main(["run", write(tmp_path, SMALL), "--check", "--set", "run.method=ams"]) == 0
    assert cli.main(["run", write(tmp_path, SMALL.replace("n_paths = 60\n", "")),
                     "--check"]) == 2
    one_line_error(capsys, "[run] is missing 'n_paths'")


def test_sweep_mixes_methods(ams_run, tmp_path, capsys):
    """"run.method" swept: the AMS point takes the AMS keys, the direct point ignores
    them; rows, CSV and plot name the method. The AMS point equals the AMS run."""
    _, done, code = ams_run
    assert code == 0
    sweep = SMALL.replace("seed = 3", "seed = 3\n" + AMS_KEYS.replace(
        'method = "ams"\n', "")).replace("temperature = 0.5", "temperature = 0.25") + \
        '[sweep]\n"run.method" = ["direct", "ams"]\n'
    out = tmp_path / "s"
    assert cli.main(["sweep", write(tmp_path, sweep), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "[1/2] run.method=direct: " in printed and "[2/2] run.method=ams: AMS, 4 runs" \
        in printed
    data = strict_json(out / "sweep.json")
    direct, ams = data["points"]
    assert (direct["method"], ams["method"]) == ("direct", "ams")
    assert direct["n_paths"] == 60 and "n_paths" not in ams
    run = json.loads((done / "summary.json").read_text())
    assert (ams["p"], ams["mean_time"], ams["mean_time_ci95"]) == \
        (run["p"], run["mean_time"], run["mean_time_ci95"])
    for r in (direct, ams):
        lo, hi = r["mean_time_ci95"]
        assert 0 < lo <= r["mean_time"] <= hi < np.inf
    rows = read_csv(out / "sweep.csv")
    assert {"method", "mean_time_lo", "mean_time_hi", "p"} <= set(rows.dtype.names)
    assert np.isnan(rows["n_paths"][1]) and rows["mean_time_hi"][1] == pytest.approx(
        ams["mean_time_ci95"][1])
    assert (out / "rate_vs_point.png").stat().st_size > 0
    assert strict_json(out / "points" / "001" / "summary.json")["method"] == "ams"
    assert (out / "points" / "000" / "paths.csv").exists()


# -- a fast front door: help without JAX, the stored key list, the shipped examples -------


def test_help_and_import_do_not_load_jax():
    # `sdesim --help`, `sdesim run --help` and `import sdesim` answer without importing
    # JAX (the heavy part of start-up: benchmarks/startup.py measures the seconds)
    code = ("import sys, contextlib, io\n"
            "import sdesim\n"
            "assert 'jax' not in sys.modules, 'import sdesim loaded jax'\n"
            "from sdesim.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['sweep', '--help'], ['examples']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main(argv)\n"
            "        except SystemExit:\n"
            "            pass\n"
            "    assert 'jax' not in sys.modules, argv\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def test_stored_key_list_is_current():
    import importlib

    reg = importlib.import_module("sdesim.cli.registry")  # the module (cli.registry: a function)

    text = reg.HELP_FILE.read_text(encoding="utf-8").split("\n", 1)
    assert text[0] == reg.sources_digest(), (
        "sdesim/cli/keys.txt is stale: regenerate it with python -c \"from "
        "sdesim.cli.registry import write_help_file; write_help_file()\"")
    assert text[1].rstrip("\n") == "\n".join(reg.help_lines())
    assert reg.help_text() == "\n".join(reg.help_lines())


def test_stale_key_list_is_not_used(tmp_path, monkeypatch):
    import importlib

    reg = importlib.import_module("sdesim.cli.registry")  # the module (cli.registry: a function)

    stale = tmp_path / "keys.txt"
    stale.write_text("0" * 64 + "\n[landscape] name = nothing: (no keys)\n")
    monkeypatch.setattr(reg, "HELP_FILE", stale)
    assert reg.help_text() == "\n".join(reg.help_lines())  # computed, not read


def test_examples_command_lists_prints_copies_and_runs(tmp_path, capsys, monkeypatch):
    from sdesim.cli.main import example_files

    files = example_files()
    assert set(files) == {p.stem for p in EXAMPLES}
    assert cli.main(["examples"]) == 0
    out = capsys.readouterr().out
    for name in files:
        assert re.search(rf"^{name}\s+\S", out, flags=re.M), name
    assert cli.main(["examples", "kramers_double_well"]) == 0
    assert capsys.readouterr().out == (ROOT / "examples" / "kramers_double_well.toml") \
        .read_text(encoding="utf-8")
    assert cli.main(["examples", "nope"]) == 2
    one_line_error(capsys, "unknown example nope; the examples: ")
    # --copy brings the Python file a config names as its target
    assert cli.main(["examples", "--copy", str(tmp_path / "mine"), "digits_mlp"]) == 0
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["digits_mlp.py",
                                                                    "digits_mlp.toml"]
    assert cli.main(["examples", "--copy", str(tmp_path / "mine"), "digits_mlp"]) == 2
    one_line_error(capsys, "digits_mlp.toml is already there")
    # --example NAME runs the shipped config (default folder results/NAME)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--example", "kramers_double_well", "--check"]) == 2
    one_line_error(capsys, "has a [sweep] section: run it with `sdesim sweep`")
    assert cli.main(["sweep", "--example", "kramers_double_well", "--check"]) == 0
    capsys.readouterr()
    assert cli.main(["run", "--example", "nope"]) == 2
    one_line_error(capsys, "--example nope: no such example")
    assert cli.main(["run", "x.toml", "--example", "kramers_ams"]) == 2
    one_line_error(capsys, "give a config file or --example kramers_ams, not both")
    assert cli.main(["sweep"]) == 2
    one_line_error(capsys, "sdesim sweep needs a config file with a [sweep] section")


def test_ams_phase_score_key_reaches_escape_ams():
    # [run] phase_score = false: escape_ams splits on the position alone; left out: its
    # default (true)
    import importlib

    build = importlib.import_module("sdesim.cli.build")
    rc = {"method": "ams", "dt": 0.01, "t_max": 10.0, "phase_score": False}
    assert build._ams_run(rc, {})["phase_score"] is False
    rest = {k: v for k, v in rc.items() if k != "phase_score"}
    assert "phase_score" not in build._ams_run(rest, {})
