"""Why M dwarfs are faint in the mirroring scenario (docs/lowmass.md): the magnetic column
inside the gamma-ray skin.

Structures come from the built-in envelope generator (grey atmosphere + MLT). Stellar
parameters: the 0.3 Msun, Z = 0.02 main-sequence template of the quick preset at 8.2 Gyr
(SSE via COSMIC: R = 0.306 Rsun, Teff = 3504 K) and the Sun (R = 1 Rsun, Teff = 5772 K,
IAU 2015 B3 nominal values). L follows from R and Teff.
"""

import numpy as np
import pytest
from astropy import constants as ac

from catalogs.stellar.envelope import envelope_profiles
from catalogs.xsec import interaction_length
from catalogs.stellar.grid import radius_grid
from tasks.kernels.ballistic import lambda_pair
from tasks.kernels.mirroring import mirror_efficiency, slab_nodes
from tasks.kernels.surface import f_B, surface_fraction
from .quadrature import fine_quad

R_SUN = ac.R_sun.cgs.value
STARS = {  # M [Msun]: (R [Rsun], Teff [K], age [yr])
    0.3: (0.306, 3504.0, 8.2e9),
    1.0: (1.0, 5772.0, 4.57e9),
}


@pytest.fixture(scope="module")
def slabs():
    radius = radius_grid(300)
    out = {}
    for M, (R, T, age) in STARS.items():
        L = (R**2) * (T / 5772.0) ** 4
        p = envelope_profiles(M, R * R_SUN, L, T, 0.70, 0.02, radius)
        assert p.converged[0]
        fb = f_B(np.array([M]))
        out[M] = dict(radius=radius, rho=p.rho, v=p.v_conv, column=p.column, R=np.array([R * R_SUN]), fb=fb, age=age)
    return out


def test_m_dwarf_magnetic_column_in_the_gamma_ray_skin_is_small(slabs):
    """Phi(Y = lambda_pair) = int sqrt(4 pi f_B / rho) v_conv dY falls with v_conv sqrt(T/g):
    the 0.3 Msun star turns only protons of <~ 1-2 TeV inside the skin, the Sun ~10 TeV
    (docs/lowmass.md: 3.3e9 vs 3.6e10 G cm on the quick library)."""
    lam = float(lambda_pair(0.70))
    phi = {}
    for M, s in slabs.items():
        Y, P = slab_nodes(s["radius"], s["rho"], s["v"], s["column"], s["R"], s["fb"])
        phi[M] = float(np.interp(lam, Y[0], P[0]))
    assert phi[0.3] < 0.25 * phi[1.0]
    e_turn = {M: p * 299.792458 / 1e12 for M, p in phi.items()}  # TeV
    assert e_turn[0.3] < 3.0 < 5.0 < e_turn[1.0]


def test_per_area_efficiency_not_surface_fraction_reverses_the_trend(slabs):
    """At E_p = 10 TeV (parents of ~1 TeV gamma rays) the M dwarf's per-area <Gamma_gamma> is
    < 1e-2 of the Sun's, while its F_sur is > 10x the Sun's: the efficiency per area, not F_sur,
    makes M dwarfs faint."""
    E_p = np.array([10.0])
    lam_pp = np.atleast_1d(interaction_length(E_p))  # m_p / sigma_inel, Kafexhiu et al. 2014 Eq. 1
    g = {}
    for M, s in slabs.items():
        gg, _ = mirror_efficiency(s["radius"], s["rho"], s["v"], s["column"], s["R"], s["fb"], E_p, lam_pp,
                                  float(lambda_pair(0.70)), **fine_quad(n_mu_b=6, n_gamma=24, u_min=-5.0, u_max=6.0))
        g[M] = float(gg[0, 0])
    assert g[1.0] > 0
    assert g[0.3] < 1e-2 * g[1.0]
    F = {M: float(surface_fraction(np.array([M]), np.array([s["age"]]))[0]) for M, s in slabs.items()}
    assert F[0.3] > 10 * F[1.0]
