"""The CLI's figures explain themselves: the experiment in the title, axes in words with
units, the closed form named in the legend, 95% intervals, Arrhenius axes over the
temperature, clean ticks, and closed forms outside their range drawn hollow and grey (and
flagged in the result line). Synthetic results only: no simulation, no compilation."""

import importlib
import json
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from sdesim.cli import plots  # noqa: E402
from sdesim.cli import results as R  # noqa: E402
from sdesim.stats import EscapeResult  # noqa: E402

predict = importlib.import_module("sdesim.theory.predict")  # (sdesim.theory.predict: a function)

KRAMERS = {"landscape": {"name": "double_well", "barrier": 1.0, "width": 1.0,
                         "side": "left"},
           "model": {"name": "langevin", "temperature": 0.25},
           "run": {"n_paths": 2000, "dt": 0.001, "t_max": 2000.0, "seed": 0}}
SWEEP_T = {**KRAMERS, "sweep": {"model.temperature": [0.5, 0.25, 0.2]}}
ZHOU = {"landscape": {"name": "quadratic", "hessian": [1.0, 1.0], "height": 0.5},
        "model": {"name": "sgd_levy", "lr": 1.25e-4, "alpha": 1.5,
                  "noise": {"kind": "hessian", "batch_size": 2.0}},
        "run": {"n_paths": 40, "dt": 0.01, "t_max": 300.0, "seed": 0},
        "sweep": {"model.name": ["sgd_levy", "adam_levy"],
                  "landscape.hessian": [[1.0, 1.0], [1.0, 4.0], [1.0, 16.0], [1.0, 64.0]],
                  "cross": ["model.name"]}}
F4 = {"formula": predict._F4, "mean_time": 40.0, "assumptions": "exact"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def result(mean=40.0, n=200, dt=0.01, t_max=200.0, lr=None, seed=0):
    """Exponential exit times of mean ``mean`` on a grid of ``dt``, censored at t_max."""
    t = np.random.default_rng(seed).exponential(mean, n)
    steps = np.ceil(np.minimum(t, t_max) / dt).astype(np.int64)
    status = np.where(t < t_max, 1, 2)
    return EscapeResult.from_steps(steps, status, dt=dt, t_max=t_max, lr=lr)


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# -- words ---------------------------------------------------------------------------------


def test_axis_labels_known_keys_indexed_keys_and_fallback():
    assert plots.axis_label("model.temperature") == "temperature T"
    assert plots.axis_label("model.lr") == "learning rate η"
    assert plots.axis_label("landscape.hessian[1]") == "Hessian eigenvalue h₂"
    assert plots.axis_label("landscape.barrier") == "barrier height ΔU"
    assert plots.axis_label("run.dt") == "time step dt (SDE time)"
    # not in the table: the key's name in words, with its section
    assert plots.axis_label("landscape.some_knob") == "some knob (landscape)"
    assert plots.axis_label("model.noise.k_max") == "k max (model noise)"
    assert plots.axis_label("landscape.center[0]") == "center (landscape), coordinate 1"


def test_experiment_title_names_model_landscape_and_run():
    text = plots.title("Survival in the basin", KRAMERS)
    assert text.splitlines() == [
        "Survival in the basin",
        "Langevin (T = 0.25) in double well (barrier 1, width 1, left well)",
        "2000 paths, dt = 0.001, t_max = 2000"]
    # a sweep: the swept temperature leaves the title; the paths are per point
    sweep = plots.title("x", SWEEP_T)
    assert "Langevin in double well (barrier 1, width 1, left well)" in sweep
    assert "T =" not in sweep and "2000 paths per point" in sweep
    # a crossed model name lists the models; the swept Hessian is left out
    z = plots.experiment(ZHOU)
    assert z == ("Lévy SGD vs Lévy Adam (η = 0.000125, α = 1.5, Hessian noise, B = 2) "
                 "on quadratic basin (height 0.5)")
    assert "model.name" not in plots.title("x", ZHOU)  # no raw config keys
    ams = {**KRAMERS, "run": {"method": "ams", "n_replicas": 200, "n_runs": 8, "dt": 0.01,
                              "t_max": 1000.0}}
    assert plots.run_settings(ams) == "AMS: 8 runs × 200 replicas, dt = 0.01, t_max = 1000"


def test_formula_labels_name_the_closed_form():
    assert plots.formula_label({"formula": predict._F4}) == "exact 1-D MFPT (F4)"
    assert plots.formula_label({"formula": predict._F7}).startswith("F7 per coordinate")
    assert plots.formula_label({"formula": predict._F21}) == "Zhou et al. Thm 1 (F21)"
    assert plots.formula_label({"formula": "F99 something new; with details"}) == \
        "F99 something new"


def test_outside_range_steps_iterations_and_barrier():
    assert plots.outside_range(None) is None
    assert plots.outside_range(F4, None, 0.001) is None  # 40 000 steps
    why = plots.outside_range({**F4, "mean_time": 0.1}, None, 0.01)  # 10 steps
    assert why is not None and "10 steps" in why and f"under {plots.MIN_STEPS}" in why
    # with a learning rate: iterations of the optimizer, not steps of the simulation
    assert "iterations" in plots.outside_range({**F4, "mean_time": 0.5}, 0.05, 0.001)
    assert plots.outside_range({**F4, "mean_time": 0.5}, 0.01, 0.001) is None  # 50 its
    low = {**F4, "barrier_over_noise": 2.0}
    assert "ΔU/T = 2" in plots.outside_range(low, None, 0.001)
    assert plots.outside_range({**F4, "barrier_over_noise": 5.0}, None, 0.001) is None


# -- one run ---------------------------------------------------------------------------


def test_survival_figure_title_axes_legend_and_band():
    res = result()
    fig = plots.survival_figure(res, F4, KRAMERS)
    ax = fig.axes[0]
    assert "Langevin (T = 0.25) in double well" in ax.get_title()
    assert ax.get_xlabel() == "SDE time t" and ax.get_yscale() == "log"
    texts = legend_texts(ax)
    assert any(t.startswith("exact 1-D MFPT (F4)") for t in texts)
    assert any(t.startswith("95% interval of λ̂") for t in texts)
    assert not any(plots.OUTSIDE in t for t in texts)
    assert not ax.child_axes  # Langevin: no learning rate, no iterations axis
    # clean log ticks: no long decimals
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"[0-9.]{1,5}|.*10.*", s) for s in labels), labels


def test_survival_and_histogram_outside_range_are_grey_and_say_so():
    res = result(mean=0.1, dt=0.01, t_max=5.0)
    ref = {**F4, "mean_time": 0.1}
    for make in (plots.survival_figure, plots.histogram_figure):
        ax = make(res, ref, KRAMERS).axes[0]
        line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("exact 1-D"))
        assert plots.OUTSIDE in line.get_label()
        assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx((0.55,) * 3)


def test_iterations_axis_where_the_model_has_a_learning_rate():
    res = result(mean=5.0, dt=0.01, t_max=50.0, lr=0.05)
    for make in (plots.survival_figure, plots.histogram_figure):
        ax = make(res, None, {**KRAMERS, "model": {"name": "sgd", "lr": 0.05}}).axes[0]
        assert any("iterations" in c.get_xlabel() for c in ax.child_axes)
    ax = plots.histogram_figure(res, None, KRAMERS).axes[0]
    assert ax.get_xlabel() == "escape time τ (SDE time)"


# -- sweeps ----------------------------------------------------------------------------


def rows_for(pts, refs, outside=None, **kw):
    """Sweep rows as results.sweep_row writes them, from synthetic results."""
    rows = []
    for i, ((over, _), tau) in enumerate(zip(pts, refs, strict=True)):
        res = result(mean=tau or 100.0, seed=i, **kw)
        ref = None if tau is None else {**F4, "mean_time": tau}
        row = R.sweep_row(i, over, res, ref, 0.0)
        if outside is not None and outside[i]:
            row["reference_outside_range"] = "forced"
        rows.append(row)
    return rows


def test_temperature_sweep_on_arrhenius_axes_with_intervals_and_out_of_range():
    temps = [0.5, 0.25, 0.2]
    pts = [({"model.temperature": t}, {**KRAMERS, "model": {"name": "langevin",
                                                             "temperature": t}})
           for t in temps]
    rows = rows_for(pts, [4.0, 30.0, 90.0], outside=[True, False, False], t_max=2000.0)
    fig = plots.sweep_figure(rows, np.array(temps), "model.temperature", pts, [], SWEEP_T)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert "1/T" in ax.get_xlabel() and "per unit SDE time" in ax.get_ylabel()
    assert "Arrhenius" in ax.get_title() and "2000 paths per point" in ax.get_title()
    assert any("temperature T" == c.get_xlabel() for c in ax.child_axes)  # T on top
    # the simulated rates: x = 1/T, y = the rates, with 95% error bars and caps
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1
    line, caps, _ = bars[0].lines
    np.testing.assert_allclose(line.get_xdata(), 1 / np.array(temps))
    np.testing.assert_allclose(line.get_ydata(), [r["rate"] for r in rows])
    assert caps and bars[0].has_yerr
    texts = legend_texts(ax)
    assert "simulated (95% interval)" in texts
    assert "closed form: exact 1-D MFPT (F4)" in texts
    assert any(t.startswith(f"closed form {plots.OUTSIDE}") for t in texts)
    # in range: the two colder points; outside: the hot one, hollow and grey
    by_label = {ln.get_label(): ln for ln in ax.get_lines()}
    inside = by_label["closed form: exact 1-D MFPT (F4)"]
    np.testing.assert_allclose(inside.get_xdata(), [4.0, 5.0])
    np.testing.assert_allclose(inside.get_ydata(), [1 / 30.0, 1 / 90.0])
    grey = next(ln for k, ln in by_label.items() if k.startswith("closed form " + plots.OUTSIDE))
    np.testing.assert_allclose(grey.get_xdata(), [2.0])
    assert grey.get_markerfacecolor() == "none"
    assert matplotlib.colors.to_rgb(grey.get_markeredgecolor()) == pytest.approx((0.55,) * 3)
    # the straight-line fit uses the points inside the range only when 3 remain: here all
    assert any(t.startswith("fit λ ∝ exp(−ΔE/T)") for t in texts)


def test_crossed_hessian_sweep_labels_log_axis_and_clean_ticks():
    hs = [1.0, 4.0, 16.0, 64.0]
    pts = [({"model.name": m, "landscape.hessian": [1.0, h]},
            {**ZHOU, "model": {**ZHOU["model"], "name": m}}) for m in ("sgd_levy", "adam_levy")
           for h in hs]
    rows = rows_for(pts, [300.0, 70.0, 10.0, 1.2, 190.0, 98.0, 42.0, None], t_max=300.0,
                    lr=1.25e-4)
    x = np.array(hs * 2)
    fig = plots.sweep_figure(rows, x, "landscape.hessian[1]", pts, ["model.name"], ZHOU)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Hessian eigenvalue h₂" and ax.get_xscale() == "log"
    assert ax.get_title().startswith("Escape rate vs Hessian eigenvalue h₂\nLévy SGD vs Lévy")
    texts = legend_texts(ax)
    assert {"Lévy SGD: simulated (95% interval)", "Lévy Adam: simulated (95% interval)",
            "Lévy SGD: closed form: exact 1-D MFPT (F4)"} <= set(texts)
    # one learning rate: the rate per iteration on the right
    assert any("per iteration" in c.get_ylabel() for c in ax.child_axes)
    # clean ticks: 1-2-5 in plain numbers, not the swept values (nor 1.2585-like labels)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    ticks = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert ticks == ["1", "2", "5", "10", "20", "50"], ticks


def test_no_escape_is_an_upper_bound_and_point_axis_is_named():
    pts = [({"run.method": m}, KRAMERS) for m in ("direct", "ams")]
    rows = rows_for(pts, [40.0, 40.0])
    rows[1] = {**rows[1], "rate": 0.0, "rate_ci95": [0.0, 0.02], "method": "ams"}
    fig = plots.sweep_figure(rows, np.arange(2.0), "point", pts, [],
                             {**KRAMERS, "sweep": {"run.method": ["direct", "ams"]}})
    ax = fig.axes[0]
    texts = legend_texts(ax)
    assert "no escape: 95% upper bound of the rate" in texts
    assert "simulated, direct (95% interval)" in texts
    assert ax.get_xlabel() == "sweep point (method)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["direct", "ams"]
    bound = next(ln for ln in ax.get_lines() if ln.get_marker() == "v")
    assert (bound.get_xdata()[0], bound.get_ydata()[0]) == (1.0, 0.02)


# -- the result line and the files -------------------------------------------------------


def test_report_flags_a_ratio_outside_the_range(tmp_path):
    res = result(mean=0.1, dt=0.01, t_max=5.0)
    ref = {**F4, "mean_time": 0.1}
    summary = R.write_results(tmp_path, KRAMERS, res, ref, 0.0, 0.0)
    line = R.report(res, ref, summary)
    assert "closed form (F4 exact 1-D MFPT)" in line
    assert f"({plots.OUTSIDE}: predicted mean escape 10 steps, under 20)" in line
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["reference_outside_range"].startswith("predicted mean escape 10 steps")
    assert (tmp_path / "survival.png").stat().st_size > 0
    res = result(mean=40.0, dt=0.01, t_max=200.0)
    ok = R.report(res, F4, R.write_results(tmp_path, KRAMERS, res, F4, 0.0, 0.0))
    assert plots.OUTSIDE not in ok


def test_reference_exposes_the_barrier_over_the_noise(monkeypatch):
    """F7 (metastable: τ_1D/d) gives ΔU/T of one coordinate; F4 (exact) gives None."""
    import jax.numpy as jnp

    import sdesim as sd

    monkeypatch.setattr(predict, "mfpt_1d_ito", lambda *a, **kw: 100.0)  # no quadrature
    loss = sd.landscapes.StyblinskiTang(3, 1.0, 1.0)
    ref = sd.theory.reference(sd.models.Langevin(2.0), loss, *loss.basin("local"))
    one = sd.landscapes.StyblinskiTang(1, 1.0, 1.0)
    cp = one.critical_points()
    u = lambda x: float(one(jnp.asarray([x], jnp.result_type(float))))
    assert ref.barrier_over_noise == pytest.approx((u(cp["saddle"]) - u(cp["local_min"]))
                                                   / 2.0, rel=1e-6)
    well = sd.landscapes.DoubleWell(1.0)
    assert sd.theory.reference(sd.models.Langevin(0.5), well,
                               *well.basin("left")).barrier_over_noise is None
