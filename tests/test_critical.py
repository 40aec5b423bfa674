"""Critical points (sdesim.critical) on the Müller–Brown potential, against the published
coordinates and energies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim as sd
from sdesim import critical as cr

MB = sd.landscapes.MullerBrown()
X64 = jnp.result_type(float) == jnp.float64
# published to 3 decimals in coordinates and 2 in energy (e.g. Müller & Brown 1979 and the
# string-method literature): minima A, B, C and the saddles A–C and C–B
MINIMA = [((-0.558, 1.442), -146.70), ((0.623, 0.028), -108.17), ((-0.050, 0.467), -80.77)]
SADDLES = [((-0.822, 0.624), -40.66), ((0.212, 0.293), -72.25)]
GRAD_TOL = 1e-8 if X64 else 2e-3  # float32: the gradient of energies ~100 to ~1e-5 relative


def test_minima_of_muller_brown():
    for (xy, e) in MINIMA:
        m = cr.minimize(MB, np.asarray(xy) + 0.05)
        np.testing.assert_allclose(np.asarray(m), xy, atol=6e-4)
        assert abs(float(MB(m)) - e) < 6e-3
        assert cr.morse_index(MB, m) == 0 and cr.grad_norm(MB, m) < GRAD_TOL


def test_string_method_finds_both_saddles():
    mins = [cr.minimize(MB, xy) for xy, _ in MINIMA]
    for (a, b), ((xy, e)) in zip(((0, 2), (2, 1)), SADDLES, strict=True):
        p = cr.string_path(MB, mins[a], mins[b], n_images=32, dt=1e-4, steps=5000)
        assert p.saddle is not None, (a, b)
        np.testing.assert_allclose(p.saddle, xy, atol=6e-4)
        assert abs(float(MB(p.saddle)) - e) < 6e-3
        assert cr.morse_index(MB, p.saddle) == 1 and cr.grad_norm(MB, p.saddle) < GRAD_TOL
        assert p.evaluations == 32 * 5000 and p.barrier > 0
        assert np.all(np.isfinite(p.energies))


def test_gentlest_ascent_from_a_minimum_alone():
    m_b = cr.minimize(MB, (0.6, 0.0))
    s = cr.saddle_from_minimum(MB, m_b, dt=1e-4, steps=20_000)
    np.testing.assert_allclose(np.asarray(s), SADDLES[1][0], atol=6e-4)
    m_c = cr.minimize(MB, (0.0, 0.5))
    s = cr.saddle_from_minimum(MB, m_c, dt=1e-4, steps=20_000)
    np.testing.assert_allclose(np.asarray(s), SADDLES[0][0], atol=6e-4)


def test_styblinski_tang_critical_points_from_generic_starts():
    # 2-D Styblinski–Tang: every coordinate at a root of the 1-D derivative; the minimum
    # found from a generic start and the saddle from it agree with root-finding values
    st = sd.landscapes.StyblinskiTang(2, 1.0, 0.0)
    th_local, _ = st.basin("local")
    m = cr.minimize(st, np.asarray(th_local) + np.array([0.3, -0.2]))
    np.testing.assert_allclose(np.asarray(m), np.asarray(th_local), atol=1e-3)
    s = cr.saddle_from_minimum(st, m, dt=1e-3, steps=20_000)
    assert cr.morse_index(st, s) == 1
    g = jax.grad(st)(s)
    assert float(jnp.linalg.norm(g)) < (1e-8 if X64 else 1e-3)


def test_errors():
    with pytest.raises(ValueError, match="shape"):
        cr.newton(MB, np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="index"):
        cr.minimize(lambda x: -jnp.sum(x**2) + 0.0 * x[0], np.array([0.0, 0.0]))
