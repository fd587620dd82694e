"""Chord columns T(b) (docs/physics.md P3)."""


import numpy as np
import pytest

from .solar_fixture import radius_grid, solar_template

from tasks.kernels.chords import chord_columns, chord_weights, impact_grid
from tasks.kernels.reference import chord_column_quad


def test_uniform_sphere_exact():
    # rho = const: T(b) = 2 rho sqrt(R^2 - b^2); linear interpolation is exact
    r = radius_grid(300)
    d = impact_grid(64)
    R = np.array([7e10, 3e12])
    rho = np.array([np.full(r.size, 1.3), np.full(r.size, 2e-3)])
    T = chord_columns(rho, R, r, d)
    beta = 1 - d
    exact = 2 * rho[:, :1] * R[:, None] * np.sqrt((1 - beta) * (1 + beta))[None, :]
    np.testing.assert_allclose(T, exact, rtol=1e-10, atol=0)
    assert np.all(T[:, 0] == 0)  # grazing chord


def test_linear_in_density_and_radius():
    r = radius_grid(120)
    d = impact_grid(16)
    rho = np.random.default_rng(1).random((3, r.size))
    T = chord_columns(rho, np.ones(3), r, d)
    T2 = chord_columns(2 * rho, 3 * np.ones(3), r, d)
    np.testing.assert_allclose(T2, 6 * T, rtol=1e-13)
    assert chord_weights(r, d).shape == (16, 120)


def test_against_quad_solar():
    s = solar_template()
    d = np.array([0.0, 1e-7, 3e-6, 1e-4, 1e-3, 0.02, 0.3, 1.0])
    T = chord_columns(s["rho"], s["R_star"], s["radius"], d)[0]
    Tq = np.array([chord_column_quad(s["radius"], s["rho"][0], s["R_star"][0], 1 - di) for di in d])
    np.testing.assert_allclose(T, Tq, rtol=1e-8, atol=1e-12)
    # limb: a grazing chord through the photospheric layer is ~ 2 rho sqrt(2 R h) h-scale
    assert 10 < T[2] < 1e3


@pytest.mark.parametrize("n", [8, 40])
def test_impact_grid(n):
    d = impact_grid(n, 1e-8)
    assert d[0] == 0 and d[-1] == 1 and d.size == n and np.all(np.diff(d) > 0)
