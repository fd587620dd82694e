"""Proton-proton cross sections (docs/physics.md P2).

* :func:`sigma_inel` -- total inelastic pp cross section, Kafexhiu et al. 2014
  (PRD 90, 123014), Eq. 1.
* :func:`dsigma_dE` -- differential production cross sections of gamma rays and
  all-flavour neutrinos from the AAfrag tables (package ``aafragpy``, MIT).

Units: energies are *total* energies in TeV, cross sections in mb and
differential cross sections in mb TeV^-1.

Range of validity of the AAfrag p-p tables (``aafragpy`` 2.0.4,
``Tables/aafrag_p_data.npz``): primary total energy 4 GeV -- 3.97e11 GeV
(4e-3 -- 3.97e8 TeV, 60 nodes), secondary energy 1e-4 GeV -- 3.3e11 GeV.
``aafragpy`` raises ``ValueError`` for primaries outside that range by
default; here such rows are returned as exact zeros (never NaN), as are
secondary energies outside the tables and every secondary energy above the
primary energy.  Callers needing a wider primary range must extend the physics,
not rely on these zeros; :data:`AAFRAG_EP_RANGE_TEV` exposes the range.
"""

from __future__ import annotations

import sys
import threading
import warnings

import numpy as np
import scipy.constants as sc
from numpy.typing import ArrayLike

__all__ = [
    "MESSENGERS",
    "AAFRAG_SECONDARY",
    "AAFRAG_EP_RANGE_TEV",
    "NU_FLAVOURS",
    "M_P_GEV",
    "M_PI0_GEV",
    "pion_threshold",
    "sigma_inel",
    "interaction_length",
    "dsigma_dE",
]

#: Messengers produced by this module, in cube order (the shared names of :mod:`cube.axes`).
from cube.axes import MESSENGERS  # noqa: E402

#: aafragpy secondary name per messenger. 'nu_all' is summed by aafragpy from
#: the tabulated nu_e + anti-nu_e + nu_mu + anti-nu_mu columns (no nu_tau at
#: production in AAfrag).
AAFRAG_SECONDARY: dict[str, str] = {"gamma": "gam", "nu": "nu_all"}

#: Individual neutrino flavours whose sum is 'nu_all' (used by the tests).
NU_FLAVOURS: tuple[str, ...] = ("nu_e", "anu_e", "nu_mu", "anu_mu")

#: Primary total-energy range of the AAfrag p-p tables (TeV), inclusive.
AAFRAG_EP_RANGE_TEV: tuple[float, float] = (4.0e-3, 3.96868e8)

#: Proton rest energy in GeV (CODATA via scipy.constants).
M_P_GEV: float = sc.physical_constants["proton mass energy equivalent in MeV"][0] * 1e-3

#: Neutral pion rest energy in GeV. Neither scipy.constants nor astropy.constants
#: carries meson masses, so this is the PDG 2024 value (134.9768 MeV), the one
#: Kafexhiu et al. use for the threshold (T_th = 0.2797 GeV).
M_PI0_GEV: float = 0.1349768

_GEV_PER_TEV = 1.0e3


def pion_threshold(m_p: float = M_P_GEV, m_pi: float = M_PI0_GEV) -> float:
    """Kinetic-energy threshold of pi0 production, ``2 m_pi + m_pi^2 / (2 m_p)`` (GeV).

    Parameters
    ----------
    m_p, m_pi : float
        Proton and neutral-pion rest energies (GeV).

    Returns
    -------
    float
        Threshold kinetic energy T_th in GeV (0.2797 GeV with the defaults).
    """
    return 2.0 * m_pi + m_pi**2 / (2.0 * m_p)


def sigma_inel(E_p: ArrayLike, m_p: float = M_P_GEV, m_pi: float = M_PI0_GEV) -> np.ndarray:
    """Total inelastic pp cross section, Kafexhiu et al. 2014 Eq. 1.

    ``sigma = [30.7 - 0.96 L + 0.18 L^2] [1 - (T_th/T_p)^1.9]^3`` mb with
    ``L = ln(T_p/T_th)`` and ``T_p = E_p - m_p c^2``.

    Parameters
    ----------
    E_p : array_like
        Proton *total* energy (TeV).
    m_p, m_pi : float
        Proton and neutral-pion rest energies (GeV); defaults as in the paper.

    Returns
    -------
    numpy.ndarray
        Cross section in mb, same shape as ``E_p``; 0 at and below threshold.
    """
    E_gev = np.asarray(E_p, dtype=float) * _GEV_PER_TEV
    T_p = E_gev - m_p
    T_th = pion_threshold(m_p, m_pi)
    above = T_p > T_th
    # Evaluate only above threshold: the log and the power are undefined below.
    x = np.where(above, T_p, 2.0 * T_th) / T_th
    L = np.log(x)
    sigma = (30.7 - 0.96 * L + 0.18 * L**2) * (1.0 - x**-1.9) ** 3
    return np.where(above, sigma, 0.0)


def interaction_length(E_p: ArrayLike, m_p: float = M_P_GEV, m_pi: float = M_PI0_GEV) -> np.ndarray:
    """Hadronic interaction length ``lambda_pp = m_p / sigma_inel`` (g cm^-2).

    Parameters
    ----------
    E_p : array_like
        Proton total energy (TeV); must be above the pion threshold.
    m_p, m_pi : float
        Rest energies (GeV) passed to :func:`sigma_inel`.

    Returns
    -------
    numpy.ndarray
        Interaction length in g cm^-2 (47.9 g cm^-2 at 1 TeV); ``inf`` below threshold.
    """
    sigma_cm2 = sigma_inel(E_p, m_p, m_pi) * 1e-27  # mb -> cm^2
    m_p_g = sc.m_p * 1e3  # kg -> g
    with np.errstate(divide="ignore"):
        return m_p_g / sigma_cm2


_AAFRAG_LOCK = threading.Lock()


def _load_aafragpy():
    """Import aafragpy without letting it alter process-wide state.

    Importing aafragpy appends 'ignore' entries to ``warnings.filters`` (divide
    by zero, invalid value, overflow) and its ``__init__`` appends its own
    directory to ``sys.path``; both would leak into the rest of the pipeline, so
    the (first) import happens inside a saved/restored state. The lock keeps a
    concurrent thread from observing or clobbering the temporary state.
    """
    with _AAFRAG_LOCK:
        if "aafragpy" in sys.modules:
            return sys.modules["aafragpy"]
        saved_err = np.geterr()
        saved_path = list(sys.path)
        with warnings.catch_warnings():
            import aafragpy
        np.seterr(**saved_err)
        sys.path[:] = saved_path
        return aafragpy


def _call_aafrag(secondary: str, E_p_gev: np.ndarray, E_s_gev: np.ndarray) -> np.ndarray:
    """aafragpy.get_cross_section for arrays, returning shape (len(E_p), len(E_s)) in mb/GeV."""
    aafragpy = _load_aafragpy()
    # np.errstate is context-local (thread safe), unlike warnings.catch_warnings;
    # non-finite intermediate values are cleaned by the caller.
    with np.errstate(all="ignore"):
        res = aafragpy.get_cross_section(secondary, "p-p", E_p_gev, E_s_gev, outside_bounds="zeros")
    if res is None:  # aafragpy prints and returns None on unknown names
        raise ValueError(f"aafragpy has no p-p table for secondary {secondary!r}")
    cs = np.asarray(res[0], dtype=float)
    # A single primary comes back with an extra leading axis: (1, 1, N).
    return cs.reshape(E_p_gev.size, E_s_gev.size)


def dsigma_dE(messenger: str, E_p: ArrayLike, energy: ArrayLike) -> np.ndarray:
    """Differential production cross section d sigma / dE of a secondary (AAfrag).

    Parameters
    ----------
    messenger : {'gamma', 'nu'}
        ``'gamma'`` (aafragpy ``'gam'``) or ``'nu'``: all flavours, neutrinos plus
        antineutrinos, nu_e + anti-nu_e + nu_mu + anti-nu_mu (aafragpy ``'nu_all'``).
    E_p : array_like
        Primary proton total energies (TeV), scalar or 1-D.
    energy : array_like
        Secondary total energies (TeV), scalar or 1-D.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(E_p), len(energy))`` in mb TeV^-1; finite and non-negative.
        Zero for primaries outside :data:`AAFRAG_EP_RANGE_TEV`, for secondaries
        outside the tables and for ``energy > E_p``. No nuclear enhancement is
        applied here (docs/physics.md P2: N_nuc multiplies yields downstream).
    """
    if messenger not in AAFRAG_SECONDARY:
        raise ValueError(f"messenger must be one of {MESSENGERS}, got {messenger!r}")
    return _dsigma_dE_secondary(AAFRAG_SECONDARY[messenger], E_p, energy)


def _dsigma_dE_secondary(secondary: str, E_p: ArrayLike, energy: ArrayLike) -> np.ndarray:
    """:func:`dsigma_dE` for a raw aafragpy secondary name (mb TeV^-1)."""
    E_p_tev = np.atleast_1d(np.asarray(E_p, dtype=float)).ravel()
    E_s_tev = np.atleast_1d(np.asarray(energy, dtype=float)).ravel()
    out = np.zeros((E_p_tev.size, E_s_tev.size))
    lo, hi = AAFRAG_EP_RANGE_TEV
    rows = (E_p_tev >= lo) & (E_p_tev <= hi)
    cols = E_s_tev > 0
    if rows.any() and cols.any():
        cs = _call_aafrag(secondary, E_p_tev[rows] * _GEV_PER_TEV, E_s_tev[cols] * _GEV_PER_TEV)
        # mb/GeV -> mb/TeV
        out[np.ix_(rows, cols)] = cs * _GEV_PER_TEV
    # aafragpy lets E_s exceed E_p by up to 1e-5 dex; energy conservation is exact here.
    out[E_s_tev[None, :] > E_p_tev[:, None]] = 0.0
    out[~np.isfinite(out) | (out < 0)] = 0.0
    return out
