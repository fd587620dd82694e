"""Gamma-ray absorption on the cosmic microwave background (pair production, docs/physics.md P7 [choice, beyond the paper]).

The absorption coefficient of a gamma ray of energy E in an isotropic photon field n(eps)
(Gould & Schreder 1967, Phys. Rev. 155, 1404):

    kappa(E) = 1 / (8 E^2) integral_{m^2/E}^inf deps n(eps) / eps^2 integral_{4 m^2}^{4 E eps} ds s sigma(s),

with the Breit-Wheeler cross section (m = m_e c^2, beta = sqrt(1 - 4 m^2 / s))

    sigma(s) = 3/16 sigma_T (1 - beta^2) [(3 - beta^4) ln((1 + beta)/(1 - beta)) - 2 beta (2 - beta^2)],

and the CMB a blackbody of T = 2.7255 K (Fixsen 2009, ApJ 707, 916).  Computed here by
quadrature, not tabulated.  The shortest mean free path, ~8 kpc near 2 PeV, is the textbook
number (e.g. Moskalenko, Porter & Strong 2006, ApJ 640, L155, Fig. 1).  Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["T_CMB", "breit_wheeler", "cmb_photon_density", "absorption_per_kpc"]

#: CMB temperature [K] (Fixsen 2009).
T_CMB: float = 2.7255


def _constants() -> tuple[float, float, float, float, float]:
    """m_e c^2 [eV], sigma_T [cm^2], hbar c [eV cm], k_B [eV K^-1] (CODATA 2018), kpc [cm] (IAU).

    The values astropy.constants (v8) gives after unit conversion (hence the last digits),
    written out so that planning the sky does not import astropy.
    """
    return 510998.9506917531, 6.6524587051e-25, 1.9732698045930253e-05, 8.617333262145179e-05, 3.0856775814913673e21


def breit_wheeler(s: ArrayLike) -> np.ndarray:
    """Pair-production cross section [cm^2] at squared centre-of-mass energy ``s`` [eV^2]."""
    me, sigma_T, *_ = _constants()
    s = np.asarray(s, float)
    x = np.clip(1.0 - 4.0 * me**2 / np.where(s > 0, s, np.inf), 0.0, 1.0)
    b = np.sqrt(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = 3.0 / 16.0 * sigma_T * (1 - b**2) * ((3 - b**4) * np.log((1 + b) / (1 - b)) - 2 * b * (2 - b**2))
    return np.where((b > 0) & (b < 1), val, 0.0)


def cmb_photon_density(eps: ArrayLike, T: float = T_CMB) -> np.ndarray:
    """Blackbody photon number density per energy [cm^-3 eV^-1] at photon energy ``eps`` [eV]."""
    *_, hbar_c, k_B, _ = _constants()
    eps = np.asarray(eps, float)
    with np.errstate(over="ignore"):  # exp overflows far in the Wien tail: the density is 0 there
        return eps**2 / (np.pi**2 * hbar_c**3) / np.expm1(eps / (k_B * T))


def absorption_per_kpc(E_TeV: ArrayLike, T: float = T_CMB, n_s: int = 1000, n_eps: int = 1000) -> np.ndarray:
    """Absorption coefficient kappa(E) [kpc^-1] of gamma rays of energy ``E_TeV`` [TeV] on the CMB."""
    me, _, _, k_B, kpc = _constants()
    E = np.atleast_1d(np.asarray(E_TeV, float)) * 1e12  # eV
    kT = k_B * T
    # phi(s0) = int_{4 m^2}^{s0} s sigma(s) ds on a log grid in (s / 4 m^2 - 1)
    u = np.concatenate([[0.0], np.geomspace(1e-8, 1e8, n_s)])
    s = 4 * me**2 * (1 + u)
    f = s * breit_wheeler(s)
    phi = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(s))])
    out = np.empty(E.size)
    for i, e in enumerate(E):
        eps_min = me**2 / e
        eps = np.geomspace(eps_min * (1 + 1e-9), max(eps_min, kT) * 60.0, n_eps)
        s0 = 4 * e * eps
        ph = np.interp(np.log(s0 / (4 * me**2) - 1 + 1e-300), np.log(np.maximum(u, 1e-300)), phi)
        integrand = cmb_photon_density(eps, T) / eps**2 * ph
        out[i] = np.trapezoid(integrand * eps, np.log(eps)) / (8 * e**2)
    return out * kpc
