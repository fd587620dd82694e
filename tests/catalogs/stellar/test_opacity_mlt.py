"""Opacity lookup (against rm-tables itself) and the MLT cubic (analytic limits)."""
import numpy as np
import pytest

from catalogs.stellar.mlt import _mlt_d, mlt_solve, solve_mlt_cubic
from catalogs.stellar.opacity import rosseland_opacity


@pytest.mark.parametrize("X,Z", [(0.7, 0.02), (0.6, 0.015), (0.75, 1e-3)])
def test_opacity_matches_rm_tables(X, Z):
    import rm_tables

    k = rm_tables.opacity(X=X, Z=Z, cold="ferguson")
    rng = np.random.default_rng(7)
    T = 10 ** rng.uniform(3.45, 7.0, 500)
    rho = 10 ** (rng.uniform(-7.9, 0.9, 500) + 3 * np.log10(T / 1e6))
    ratio = rosseland_opacity(T, rho, X, Z) / k(T, rho)
    assert np.median(np.abs(np.log(ratio))) < 0.01
    assert np.max(np.abs(np.log(ratio))) < 0.15


def test_opacity_known_features():
    # electron scattering floor at high T, low density: 0.2 (1 + X) cm^2/g
    k = rosseland_opacity(1e7, 1e-5, 0.7, 0.02)
    assert k == pytest.approx(0.2 * 1.7, rel=0.1)
    # H- dominated solar photosphere: kappa ~ 0.3-0.5 cm^2/g
    assert 0.2 < rosseland_opacity(5772.0, 2.5e-7, 0.7, 0.02) < 0.7
    # the H-ionisation opacity peak is orders of magnitude above it
    k_phot = rosseland_opacity(5772.0, 2.5e-7, 0.7, 0.02)
    assert rosseland_opacity(1.5e4, 3e-7, 0.7, 0.02) > 1e2 * k_phot


def test_mlt_cubic_root_and_limits():
    U = np.array([1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3])
    W = np.full(U.shape, 0.5)
    xi = solve_mlt_cubic(U, W)
    d = _mlt_d(U, W)              # xi - U without the cancellation
    np.testing.assert_allclose(xi, U + d, rtol=1e-14)
    f = d ** 3 + 8 * U / 9 * (d * (d + 2 * U) - W)
    assert np.all(np.abs(f) < 1e-10 * (8 * U / 9 * W + W ** 1.5))
    nab = 0.4 + xi ** 2 - U ** 2
    assert nab[0] == pytest.approx(0.4, abs=1e-3)        # efficient: adiabatic
    assert nab[-1] == pytest.approx(0.9, rel=1e-3)       # inefficient: radiative
    assert np.all(np.diff(nab) > 0)


def test_mlt_radiative_region_has_no_velocity():
    nab, v = mlt_solve(np.array([0.2, 1.0]), np.array([0.4, 0.4]), 1.0, 1e-7, 1e4, 1e5,
                       2.7e4, 2e9, 1.0)
    assert v[0] == 0.0 and nab[0] == 0.2
    assert v[1] > 0 and 0.4 < nab[1] < 1.0
