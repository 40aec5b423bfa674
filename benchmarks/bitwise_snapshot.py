"""Per-path results of a fixed set of runs, saved or compared bit for bit.

Used to show that a refactor leaves every path's result unchanged: run ``save`` on the
commit before, ``compare`` after (same machine, same JAX, same ``JAX_ENABLE_X64``)::

    python benchmarks/bitwise_snapshot.py save /tmp/before.npz
    python benchmarks/bitwise_snapshot.py compare /tmp/before.npz

Covers every model, every exit kind, every noise kind, the bridge on and off, the
discrete algorithms and both ``simulate`` methods. Each case is small (a few seconds in
all on 2 CPU cores after compilation). Cases whose behaviour is *meant* to change (a
diverging run is no longer an escape) compare their per-path exit steps and the
non-finite flag, not the status code's number.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdesim as sd  # noqa: E402

L, M, N = sd.landscapes, sd.models, sd.noise


def cases():
    dw = L.DoubleWell(barrier=1.0)
    th_dw, ex_dw = dw.basin("left")
    dw2 = L.DoubleWell(barrier=1.0, dim=2, stiffness=2.0)
    th_dw2, ex_dw2 = dw2.basin("left")
    st = L.StyblinskiTang(3, 1.0, 1.0)
    th_st, ex_st = st.basin("local")
    st0 = L.StyblinskiTang(2, 1.0, 0.0)
    th_st0, ex_st0 = st0.basin("local")
    quad = L.Quadratic(jnp.array([[2.0, 0.3], [0.3, 1.0]]))
    th_q, ex_q = quad.basin(0.6)
    quad_d = L.Quadratic(np.array([1.0, 3.0]))
    th_qd, ex_qd = quad_d.basin(0.3)
    data = st.sample_data(jax.random.key(5), 200)
    box_dw2 = sd.exits.Box([-np.inf, -1.5], [0.0, 1.5])
    pred = lambda th: th[0] > 0.0
    levy_ex = sd.exits.Box([-1.0, -1.0], [1.0, 1.0])
    sig_m = np.array([[0.3, 0.05], [0.0, 0.2]])
    c = {
        "langevin_halfspace": (M.Langevin(0.3), dw, th_dw, ex_dw, 0.01, 300.0),
        "langevin_halfspace_nobridge": (M.Langevin(0.3), dw, th_dw, ex_dw, 0.01, 300.0,
                                        dict(bridge=False)),
        "langevin_box2": (M.Langevin(0.3), dw2, th_dw2, box_dw2, 0.01, 300.0),
        "langevin_predicate": (M.Langevin(0.3), dw, th_dw, pred, 0.01, 300.0),
        "langevin_ellipsoid": (M.Langevin(0.1), quad, th_q, ex_q, 0.01, 300.0),
        "langevin_levelset": (M.Langevin(0.1), quad_d, th_qd, ex_qd, 0.01, 300.0),
        "sgd_hessian_diag": (M.SGD(0.1, N.hessian(2.0, 0.5)), st, th_st, ex_st, 0.01, 200.0),
        "sgd_hessian_dense": (M.SGD(0.3, N.hessian(1.0)), lambda th: quad(th), th_q, ex_q, 0.01,
                              200.0),
        "sgd_minibatch_pop": (M.SGD(0.06, N.minibatch(None, 4)), st, th_st, ex_st, 0.002,
                              100.0),
        "sgd_minibatch_data": (M.SGD(0.06, N.minibatch(data, 4)), st, th_st, ex_st, 0.002,
                               20.0),
        "sgd_fixed_matrix": (M.SGD(0.2, N.fixed(np.array([[2.0, 0.5], [0.5, 1.0]]))), dw2,
                             th_dw2, ex_dw2, 0.01, 200.0),
        "sgd_isotropic": (M.SGD(0.2, N.isotropic(2.0)), dw, th_dw, ex_dw, 0.01, 200.0),
        "underdamped_semi": (M.Underdamped(1.0, 2.0, 0.3), dw, th_dw, ex_dw, 0.01, 200.0),
        "underdamped_euler": (M.Underdamped(1.0, 2.0, 0.3, scheme="euler"), dw, th_dw, ex_dw,
                              0.01, 200.0),
        "underdamped_v0": (M.Underdamped(1.0, 1.0, 0.3, velocity0=[0.5]), dw, th_dw, ex_dw,
                           0.01, 200.0),
        "momentum_exp": (M.Momentum(0.1, 0.9, N.hessian(1.0, 0.5)), st, th_st, ex_st, 0.01,
                         100.0),
        "momentum_euler_b3": (M.Momentum(0.1, 0.5, N.isotropic(2.0), beta3=1.0,
                                         scheme="euler"), dw, th_dw, ex_dw, 0.005, 100.0),
        "momentum_levy": (M.Momentum(0.1, 0.9, N.isotropic(1.0), alpha=1.5), dw, th_dw, ex_dw,
                          0.01, 100.0),
        "adam": (M.Adam(0.05, N.hessian(1.0, 0.5)), st, th_st, ex_st, 0.005, 50.0),
        "adam_euler_levy": (M.Adam(0.05, N.isotropic(1.0), alpha=1.7, scheme="euler"), dw,
                            th_dw, ex_dw, 0.005, 50.0),
        "adai": (M.Adai(0.1, N.hessian(1.0, 0.5)), st, th_st, ex_st, 0.01, 100.0),
        "sgdlevy_scalar": (M.SGDLevy(0.1, 1.5, 0.3), quad_d, th_qd, levy_ex, 0.01, 100.0),
        "sgdlevy_vector": (M.SGDLevy(0.1, 1.2, [0.3, 0.2]), quad_d, th_qd, levy_ex, 0.01,
                           100.0),
        "sgdlevy_matrix": (M.SGDLevy(0.1, 1.5, sig_m), quad_d, th_qd, levy_ex, 0.01, 100.0),
        "sgdlevy_noise": (M.SGDLevy(0.1, 1.5, N.hessian(4.0)), quad_d, th_qd, levy_ex, 0.01,
                          100.0),
        "sgdlevy_overflow": (M.SGDLevy(1.0, 0.4, 1.0), quad_d, th_qd, levy_ex, 0.01, 20.0),
        "adamlevy": (M.AdamLevy(0.1, 1.5, 0.3), quad_d, th_qd, levy_ex, 0.01, 100.0),
        "adal": (M.AdaL(0.01, 1.5, 0.3), quad_d, th_qd, levy_ex, 0.01, 10.0),
        "adal_decay": (M.AdaL(0.01, 1.5, 0.3, decay=True), quad_d, th_qd, levy_ex, 0.01,
                       10.0),
        "diverge_stiff": (M.Langevin(0.01), L.Quadratic(np.array([100.0])), np.zeros(1),
                          sd.exits.Box([-1.0], [1.0]), 0.05, 10.0),
    }
    return c


def algorithm_cases():
    st = L.StyblinskiTang(3, 1.0, 1.0)
    th_st, ex_st = st.basin("local")
    data = st.sample_data(jax.random.key(5), 500)
    dw = L.DoubleWell(barrier=1.0)
    th_dw, ex_dw = dw.basin("left")
    O = sd.optim
    return {
        "alg_sgd_minibatch": (O.sgd(0.06), st, th_st, ex_st, 0.06,
                              dict(data=data, batch_size=4, n_iters=2000)),
        "alg_adam_injected": (O.adam(0.05), dw, th_dw, ex_dw, 0.05,
                              dict(noise=N.isotropic(2.0), n_iters=2000)),
        "alg_adai_injected": (O.adai(0.1), dw, th_dw, ex_dw, 0.1,
                              dict(noise=N.isotropic(2.0), n_iters=2000)),
        "alg_momentum_levy": (O.momentum(0.1, 0.9), dw, th_dw, ex_dw, 0.1,
                              dict(noise=N.isotropic(1.0), alpha=1.5, n_iters=2000)),
        "alg_adal": (O.adal(0.01), dw, th_dw, ex_dw, 0.01,
                     dict(noise=N.isotropic(1.0), n_iters=2000)),
    }


def run_all():
    out = {}
    key = jax.random.key(11)
    for name, case in cases().items():
        model, loss, th, ex, dt, t_max, *kw = case
        kw = kw[0] if kw else {}
        r = sd.escape(model, loss, th, ex, n_paths=64, dt=dt, t_max=t_max, key=key,
                      progress=False, **kw)
        out[name + ".steps"] = np.asarray(r.steps)
        out[name + ".nonfinite"] = np.asarray(r.status) == 3
        out[name + ".censored"] = np.asarray(r.status) == 2
    for name, (opt, loss, th, ex, lr, kw) in algorithm_cases().items():
        n_iters = kw.pop("n_iters")
        r = sd.escape_algorithm(opt, loss, th, ex, lr=lr, n_iters=n_iters, n_paths=64,
                                key=key, progress=False, **kw)
        out[name + ".steps"] = np.asarray(r.steps)
        out[name + ".nonfinite"] = np.asarray(r.status) == 3
        out[name + ".censored"] = np.asarray(r.status) == 2
    dw = L.DoubleWell(barrier=1.0)
    th_dw, _ = dw.basin("left")
    for mname, model in [("langevin", M.Langevin(0.3)),
                         ("sgd", M.SGD(0.2, N.hessian(1.0, 0.5))),
                         ("underdamped", M.Underdamped(1.0, 2.0, 0.3)),
                         ("adai", M.Adai(0.1, N.isotropic(1.0)))]:
        methods = ["engine"] + (["diffrax"] if mname != "adai" else [])
        for method in methods:
            tr = sd.simulate(model, dw, th_dw, n_paths=8, dt=0.01, t_max=2.0, key=key,
                             save_every=10, method=method)
            out[f"simulate_{mname}_{method}.paths"] = np.asarray(tr.paths)
            if tr.velocities is not None:
                out[f"simulate_{mname}_{method}.velocities"] = np.asarray(tr.velocities)
    return out


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "compare"):
        print(__doc__)
        return 2
    res = run_all()
    if sys.argv[1] == "save":
        np.savez(sys.argv[2], **res)
        print(f"saved {len(res)} arrays to {sys.argv[2]}")
        return 0
    ref = np.load(sys.argv[2])
    bad = []
    for k in sorted(set(ref.files) | set(res)):
        if k not in ref.files or k not in res:
            bad.append(f"{k}: missing on one side")
        elif not np.array_equal(ref[k], res[k], equal_nan=True):
            diff = np.sum(ref[k] != res[k])
            bad.append(f"{k}: {diff} entries differ")
    for b in bad:
        print("DIFFERS", b)
    print(f"{len(res) - len(bad)}/{len(set(ref.files) | set(res))} arrays bit-identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
