"""Tests of the cosmic-ray proton spectrum (docs/physics.md P1)."""

import numpy as np
import pytest

from catalogs.cr_spectrum import (
    DEFAULT_BREAKS_TEV,
    DEFAULT_INDICES,
    primary_energy_grid,
    proton_intensity,
)


def test_normalisation():
    assert proton_intensity(1.0) == pytest.approx(8.63e-6, rel=1e-12, abs=0)


def test_continuous_at_breaks():
    for eb in DEFAULT_BREAKS_TEV:
        lo, hi = proton_intensity(eb * (1 - 1e-9)), proton_intensity(eb * (1 + 1e-9))
        assert hi == pytest.approx(lo, rel=1e-7, abs=0)


@pytest.mark.parametrize(
    "e, index",
    [(1.0, 2.60), (50.0, 2.85), (1000.0, 2.51), (1.0e4, 3.50)],
)
def test_local_slopes(e, index):
    e1, e2 = e / 1.01, e * 1.01
    slope = -np.log(proton_intensity(e2) / proton_intensity(e1)) / np.log(e2 / e1)
    assert slope == pytest.approx(index, abs=1e-9)


def test_dampe_points():
    # DAMPE 2019 (Sci. Adv. 5, eaax3793, proton flux table; cited in docs/physics.md P1),
    # m^-2 s^-1 sr^-1 GeV^-1 -> cm^-2 s^-1 sr^-1 TeV^-1 is a factor 1e-4 * 1e3 = 0.1.
    gev = np.array([789.5, 1251.0, 1983.0, 49812.0, 78946.0])
    flux = np.array([1.60e-4, 4.81e-5, 1.45e-5, 2.47e-9, 6.50e-10]) * 0.1
    model = proton_intensity(gev / 1e3)
    np.testing.assert_allclose(model, flux, rtol=0.2)


def test_primary_grid():
    g = primary_energy_grid()
    assert g[0] == pytest.approx(0.1) and g[-1] == pytest.approx(1e5)
    assert len(g) == 61
    assert DEFAULT_INDICES[0] == 2.60
