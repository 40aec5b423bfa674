"""Several devices and several processes give the per-path results of one device.

The main test process has JAX initialized on one CPU device (conftest), so the 4-device and
2-process runs happen in subprocesses: 4 host devices via
``XLA_FLAGS=--xla_force_host_platform_device_count=4``, 2 processes via
``jax.distributed.initialize`` on loopback. Each writes its per-path steps/status to an
``.npz`` that is compared here, element for element, with the same paths run in this
process on one device.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import sdesim as sd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Worker: runs the CASES below with the arguments in argv[1] (JSON) and saves the results.
WORKER = r"""
import json, os, sys
args = json.loads(sys.argv[1])
import jax
if args.get("process_id") is not None:
    jax.distributed.initialize(coordinator_address=args["coordinator"], num_processes=2,
                               process_id=args["process_id"],
                               initialization_timeout=120)
import numpy as np
sys.path.insert(0, args["tests"])
from test_devices import CASES
out = {}
for name, (n, first) in args["runs"].items():
    res = CASES[name](n, first, **args.get("kw", {}))
    out[name + "_steps"], out[name + "_status"] = res.steps, res.status
    out[name + "_info"] = np.array([res.info.devices, res.info.processes])
out["local_devices"] = np.array(len(jax.local_devices()))
np.savez(args["out"], **out)
"""


def _double_well(n, first, **kw):
    # T = 0.3, t_max = 40: about half the paths escape, the rest are censored.
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    return sd.escape(sd.models.Langevin(0.3), dw, th0, ex, n_paths=n, dt=0.01, t_max=40.0,
                     key=jax.random.key(3), first_path=first, progress=False, **kw)


def _underdamped(n, first, **kw):
    # Phase-space state (position, velocity): a pytree state split over devices.
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    return sd.escape(sd.models.Underdamped(1.0, 1.0, 0.3), dw, th0, ex, n_paths=n, dt=0.02,
                     t_max=40.0, key=jax.random.key(4), first_path=first, progress=False, **kw)


def _levy(n, first, **kw):
    # SαS noise: drawn by the model from a split key, not by the engine's normal sampler.
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    return sd.escape(sd.models.SGDLevy(0.1, 1.5, 0.3), dw, th0, ex, n_paths=n, dt=0.1,
                     t_max=200.0, key=jax.random.key(5), first_path=first, progress=False,
                     **kw)


CASES = {"dw": _double_well, "ud": _underdamped, "levy": _levy}
# 1 001 paths over 4 devices: blocks of 251, 251, 251, 248; 3 paths: fewer paths than
# devices; a block further along the stream (first_path).
RUNS = {"dw": (1001, 0), "ud": (203, 0), "levy": (101, 0), "dw_block": (350, 250),
        "dw_tiny": (3, 7)}
CASES["dw_block"] = CASES["dw_tiny"] = _double_well


def _env(**extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **extra)
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def _worker(args, env):
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait(proc, timeout=400):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def _reference():
    return {name: CASES[name](n, first) for name, (n, first) in RUNS.items()}


def _assert_same(got, ref):
    for name, res in ref.items():
        np.testing.assert_array_equal(got[name + "_steps"], res.steps, err_msg=name)
        np.testing.assert_array_equal(got[name + "_status"], res.status, err_msg=name)


def test_four_devices_give_the_one_device_paths(tmp_path):
    # The RUNS on 4 devices (and devices=3 inside the 4-device process) equal one device:
    # Gaussian, phase-space and SαS models, uneven blocks, first_path, n < devices.
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
    procs = []
    for tag, kw in (("all", {}), ("three", {"devices": 3})):
        args = dict(runs=RUNS, out=str(tmp_path / f"{tag}.npz"), tests=os.path.join(ROOT,
                    "tests"), kw=kw)
        procs.append((tag, _worker(args, env)))
    ref = _reference()
    assert ref["dw"].escaped.any() and not ref["dw"].escaped.all()
    for tag, proc in procs:
        _wait(proc)
        got = np.load(tmp_path / f"{tag}.npz")
        assert int(got["local_devices"]) == 4
        assert got["dw_info"][0] == (4 if tag == "all" else 3)
        _assert_same(got, ref)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_process_paths(tmp_path):
    # Two JAX processes on loopback: each runs its half of the path indices, then every
    # process holds all of them.
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = []
    for pid in (0, 1):
        args = dict(runs=RUNS, out=str(tmp_path / f"p{pid}.npz"), process_id=pid,
                    coordinator=coordinator, tests=os.path.join(ROOT, "tests"))
        procs.append(_worker(args, _env()))
    ref = _reference()
    for pid, proc in enumerate(procs):
        _wait(proc)
        got = np.load(tmp_path / f"p{pid}.npz")
        assert tuple(got["dw_info"]) == (1, 2)  # one device each, two processes
        _assert_same(got, ref)


def test_devices_and_progress_arguments_are_checked():
    with pytest.raises(ValueError, match="devices"):
        _double_well(10, 0, devices=0)
    with pytest.raises(ValueError, match="devices=2"):
        _double_well(10, 0, devices=len(jax.local_devices()) + 1)
    with pytest.raises(TypeError, match="devices"):
        _double_well(10, 0, devices="cpu")
    with pytest.raises(TypeError, match="distributed"):
        _double_well(10, 0, distributed="yes")
    with pytest.raises(TypeError, match="progress"):
        _double_well(10, 0, progress=3)
    # a list of devices is accepted
    r = _double_well(20, 0, devices=jax.local_devices())
    assert r.info.devices == 1


def test_progress_callable_sees_every_path_finish():
    calls = []
    dw = sd.landscapes.DoubleWell(barrier=1.0)
    th0, ex = dw.basin("left")
    r = sd.escape(sd.models.Langevin(0.3), dw, th0, ex, n_paths=300, dt=0.01, t_max=40.0,
                  key=jax.random.key(3), lanes=16,
                  progress=lambda done, esc, total: calls.append((done, esc, total)))
    assert len(calls) == r.info.chunks >= 2
    done, esc, total = np.array(calls).T
    assert np.all(np.diff(done) >= 0) and np.all(np.diff(esc) >= 0)
    assert np.all(total == 300) and np.all(esc <= done)
    assert calls[-1] == (300, r.n_escaped - r.n_nonfinite, 300)
