"""EOS: Saha ionisation, mean molecular weight, adiabatic gradient."""
import numpy as np
import pytest
from astropy import constants as c
from astropy import units as u

from catalogs.stellar.eos import (A_H, A_HE, A_Z, eos_from_P_T, eos_from_rho_T,
                                  ionisation_fractions, mean_molecular_weight, nabla_ad)

K_B = c.k_B.cgs.value
EV = (1 * u.eV).to(u.erg).value


def test_neutral_and_ionised_limits():
    X, Z = 0.7, 0.02
    Y = 1 - X - Z
    mu_neutral = 1.0 / (X / A_H + Y / A_HE + Z / A_Z)
    mu_ionised = 1.0 / (2 * X / A_H + 3 * Y / A_HE + Z / A_Z)
    assert mean_molecular_weight(1e-6, 2500.0, X, Z) == pytest.approx(mu_neutral, rel=1e-3)
    assert mean_molecular_weight(1e-6, 1e6, X, Z) == pytest.approx(mu_ionised, rel=1e-3)
    # monatomic ideal gas, negligible radiation
    assert nabla_ad(1e-6, 2500.0, X, Z) == pytest.approx(0.4, abs=2e-3)
    # fully ionised gas + 1.5 % radiation pressure: the classical beta formula
    s = eos_from_rho_T(1e-3, 1e6, X, Z)
    b = s.P_gas / s.P
    f = (1 - b) * (4 + b) / b ** 2
    assert 0.97 < b < 0.995
    assert s.nabla_ad == pytest.approx((1 + f) / (2.5 + 4 * f), rel=2e-3)


def test_radiation_dominated_limit():
    # P_rad >> P_gas: nabla_ad -> 1/4, Gamma_1 -> 4/3
    s = eos_from_rho_T(1e-14, 1e6, 0.7, 0.02)
    assert s.P_gas / s.P < 1e-3
    assert s.nabla_ad == pytest.approx(0.25, abs=2e-3)
    assert s.gamma1 == pytest.approx(4 / 3, abs=2e-3)


def test_pure_hydrogen_saha_and_nabla_ad():
    """Pure H: Saha x^2/(1-x) = Phi/n and KWW Eq. 14.23 for nabla_ad."""
    T = np.array([8e3, 1e4, 1.2e4, 1.5e4, 2e4])
    rho = np.full(T.shape, 1e-7)
    s = eos_from_rho_T(rho, T, 1.0, 0.0)
    n = rho / (A_H * c.u.cgs.value)
    phi = (2 * np.pi * c.m_e.cgs.value * K_B * T / c.h.cgs.value ** 2) ** 1.5 \
        * np.exp(-13.598 * EV / (K_B * T))
    x = s.x_H
    np.testing.assert_allclose(x ** 2 / (1 - x), phi / n, rtol=1e-8)
    assert 0.005 < x.min() and x.max() < 0.999
    chi = 13.598 * EV / (K_B * T)
    q = x * (1 - x) * (2.5 + chi)
    kww = (2 + x * (1 - x) * (2.5 + chi)) / (5 + q * (2.5 + chi))
    np.testing.assert_allclose(s.nabla_ad, kww, rtol=3e-3)     # radiation ~1e-4 of P
    assert s.nabla_ad.min() < 0.12                             # deep in the ionisation zone


def test_P_and_rho_modes_agree():
    rng = np.random.default_rng(3)
    T = 10 ** rng.uniform(3.4, 6.5, 200)
    rho = 10 ** rng.uniform(-10, -1, 200)
    s = eos_from_rho_T(rho, T, 0.7, 0.02)
    s2 = eos_from_P_T(s.P, T, 0.7, 0.02)
    np.testing.assert_allclose(s2.rho, rho, rtol=1e-8)
    np.testing.assert_allclose(s2.nabla_ad, s.nabla_ad, rtol=1e-6)


def test_specific_heat_matches_finite_difference_of_pressure_derivatives():
    """chi_T from the analytic Saha derivative equals a numerical d lnP / d lnT."""
    T = np.array([6e3, 1e4, 1.3e4, 3e4, 1e5])
    rho = np.full(T.shape, 1e-7)
    eps = 1e-5
    s = eos_from_rho_T(rho, T, 0.7, 0.02)
    sp = eos_from_rho_T(rho, T * np.exp(eps), 0.7, 0.02)
    sm = eos_from_rho_T(rho, T * np.exp(-eps), 0.7, 0.02)
    np.testing.assert_allclose(s.chi_T, (np.log(sp.P) - np.log(sm.P)) / (2 * eps), rtol=1e-4)
    sp = eos_from_rho_T(rho * np.exp(eps), T, 0.7, 0.02)
    sm = eos_from_rho_T(rho * np.exp(-eps), T, 0.7, 0.02)
    np.testing.assert_allclose(s.chi_rho, (np.log(sp.P) - np.log(sm.P)) / (2 * eps), rtol=1e-4)


def test_helium_ionisation_order():
    xh, y1, y2 = ionisation_fractions(np.full(3, 1e-7), np.array([1.2e4, 3e4, 1e5]), 0.7, 0.02)
    assert y1[0] < 0.1 and y1[1] > 0.5 and y2[2] > 0.9
