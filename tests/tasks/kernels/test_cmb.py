"""Pair production on the CMB against independent numbers."""

import numpy as np
import pytest
from scipy.integrate import quad

from tasks.kernels.cmb import absorption_per_kpc, breit_wheeler, cmb_photon_density

ME = 0.51099895e6  # eV
SIGMA_T = 6.6524587e-25  # cm^2
KPC = 3.0856775814913673e21  # cm


def test_breit_wheeler_threshold_and_peak():
    assert breit_wheeler(4 * ME**2 * 0.999) == 0.0
    s = 4 * ME**2 * np.geomspace(1.0001, 1e4, 200001)
    sig = breit_wheeler(s)
    # textbook: the maximum is 0.256 sigma_T at s ~ 2 x threshold, falling as ln(s)/s far above
    assert sig.max() / SIGMA_T == pytest.approx(0.2556, abs=0.002)
    assert s[np.argmax(sig)] / (4 * ME**2) == pytest.approx(1.97, abs=0.05)
    far = breit_wheeler(4 * ME**2 * np.array([1e3, 1e4]))
    assert 0.1 < far[1] / far[0] < 0.15  # ~ ln(s) / s


def test_cmb_photon_number_density():
    # 410.7 photons per cm^3 for T = 2.7255 K (Fixsen 2009)
    n = quad(lambda le: np.exp(le) * cmb_photon_density(np.exp(le)), np.log(1e-7), np.log(1e-1), limit=200)[0]
    assert n == pytest.approx(410.7, rel=2e-3)


def test_absorption_matches_the_angle_integral_and_the_known_peak():
    E = 2e15  # eV

    def inner(eps):
        mu_max = 1 - 2 * ME**2 / (E * eps)
        if mu_max <= -1:
            return 0.0
        return quad(lambda mu: 0.5 * (1 - mu) * breit_wheeler(2 * E * eps * (1 - mu)), -1, mu_max, limit=200)[0]

    kT = 8.617333e-5 * 2.7255
    direct = quad(lambda le: np.exp(le) * cmb_photon_density(np.exp(le)) * inner(np.exp(le)), np.log(ME**2 / E), np.log(60 * kT), limit=200)[0]
    assert absorption_per_kpc([2000.0])[0] == pytest.approx(direct * KPC, rel=3e-3)
    E_grid = np.geomspace(100, 1e5, 61)
    k = absorption_per_kpc(E_grid)
    # the shortest mean free path, ~7-8 kpc near 2 PeV (the Galactic "PeV horizon")
    assert 1.5e3 < E_grid[np.argmax(k)] < 3e3
    assert 6.5 < 1 / k.max() < 8.5
    # transparent at TeV energies: below 1e-6 over the whole Galaxy at 30 TeV
    assert absorption_per_kpc([30.0])[0] * 40 < 1e-6
