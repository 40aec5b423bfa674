"""Statistics: the censored rate MLE and the coverage of its exact χ² interval."""

import numpy as np
import pytest

from sdesim import stats


def test_rate_mle_with_censoring():
    t = np.array([1.0, 2.0, np.inf, 3.0, np.inf])
    assert stats.rate_mle(t, t_max=4.0) == pytest.approx(3 / (1 + 2 + 3 + 4 + 4))


def test_interval_coverage():
    # 4000 replicate experiments of 40 exponential times censored at t_max = 1/λ
    # (≈ 37% censored). Coverage of a 95% interval must be 0.95 within 3 binomial standard
    # errors (3·sqrt(.95·.05/4000) = 1.0%); the χ²(2d+2) upper limit makes it slightly
    # conservative, so we allow [0.94, 0.97].
    rng = np.random.default_rng(1)
    lam, n, reps, t_max = 0.7, 40, 4000, 1 / 0.7
    hits = 0
    for _ in range(reps):
        t = rng.exponential(1 / lam, n)
        t[t > t_max] = np.inf
        d = int(np.isfinite(t).sum())
        lo, hi = stats.rate_interval(d, np.minimum(t, t_max).sum(), 0.95)
        hits += lo <= lam <= hi
    assert 0.94 <= hits / reps <= 0.97


def test_interval_without_events_and_bad_level():
    lo, hi = stats.rate_interval(0, 10.0)
    assert lo == 0.0 and hi == pytest.approx(-np.log(0.025) / 10.0, rel=1e-6)
    with pytest.raises(ValueError, match="level"):
        stats.rate_interval(3, 1.0, level=1.5)


def test_escape_result_estimates():
    r = stats.EscapeResult.from_steps(np.array([10, 20, 30, 100]), np.array([1, 1, 1, 2]),
                                      dt=0.1, t_max=10.0, lr=0.1)
    assert r.n_escaped == 3 and r.escaped_fraction == 0.75
    assert r.rate() == pytest.approx(3 / (1 + 2 + 3 + 10))
    assert r.mean_time() == pytest.approx(16 / 3)
    t, s = r.survival([0.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(s, [1.0, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(r.iterations[:3], [10, 20, 30])
    assert r.summary()["n_paths"] == 4
