"""Magnetic-activity parameters (docs/physics.md P4)."""

import numpy as np
import pytest

from tasks.kernels.surface import f_age, f_B, f_struct, is_main_sequence, surface_fraction, t_sat


def test_f_B():
    np.testing.assert_allclose(f_B([0.1, 0.3, 0.65, 1.0, 1.2, 1.41, 1.42]),
                               [1.0, 1.0, 0.85, 0.7, 0.7, 0.7, 0.0])
    assert f_B(0.5, main_sequence=False) == 0.0


def test_f_struct_nodes_and_continuity():
    np.testing.assert_allclose(f_struct([0.2, 0.35, 0.425, 0.5, 0.85, 1.0, 1.32, 1.41, 1.5]),
                               [0.95, 0.95, 0.70, 0.45, 0.30, 0.30, 0.30, 0.0, 0.0], atol=1e-12)
    m = np.linspace(0.1, 1.409, 20001)
    assert np.max(np.abs(np.diff(f_struct(m)))) < 1e-3  # continuous


def test_t_sat_and_f_age():
    np.testing.assert_allclose(t_sat([0.1, 0.35, 0.5, 0.7, 1.0, 1.41]),
                               np.array([5.0, 2.0, 0.6, 0.25, 0.1, 0.05]) * 1e9, rtol=1e-12)
    # log-log: midpoint in log mass is the geometric mean
    assert t_sat(np.sqrt(0.7)) == pytest.approx(np.sqrt(0.25 * 0.1) * 1e9, rel=1e-12)
    assert f_age(5e7, 1.0) == 1.0
    assert f_age(4e8, 1.0) == pytest.approx(0.5)  # Skumanich t^-1/2


def test_surface_fraction_sun_and_cuts():
    F = surface_fraction(1.0, 4.57e9)
    assert F == pytest.approx(0.30 * np.sqrt(0.1 / 4.57), rel=1e-12)  # ~0.044 (docs/physics.md)
    assert surface_fraction(0.2, 1e6) == pytest.approx(0.95)
    assert surface_fraction(1.5, 1e6) == 0.0
    assert surface_fraction(1.0, 1e6, main_sequence=False) == 0.0
    assert np.all(surface_fraction(np.linspace(0.1, 2, 50), 1e5) <= 1.0)
    np.testing.assert_array_equal(is_main_sequence(["MS", "CHeB", "HG+RGB"]), [True, False, False])
