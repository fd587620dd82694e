"""Field-free ballistic interaction efficiencies (docs/physics.md P2-P3, paper Sec. II B).

Along a chord of column T a proton interacts at column x with probability
dx/lambda_pp exp(-x/lambda_pp) (one interaction per primary); a gamma ray made there must cross
the remaining T - x with pair-production length lambda_pair; neutrinos escape freely.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as const
from numpy.typing import ArrayLike
from scipy.special import exprel

__all__ = [
    "PAIR_RADIATION_LENGTH_H",
    "PAIR_RADIATION_LENGTH_HE",
    "lambda_pp",
    "lambda_pair",
    "gamma_efficiency",
    "neutrino_efficiency",
]

#: Radiation lengths X0 of hydrogen and helium (g cm^-2, PDG).
PAIR_RADIATION_LENGTH_H: float = 63.04
PAIR_RADIATION_LENGTH_HE: float = 94.32

_M_P_G = const.m_p * 1e3  # proton mass in g
_MB_CM2 = 1e-27


def lambda_pp(sigma_inel_mb: ArrayLike) -> np.ndarray:
    """Hadronic interaction length lambda_pp = m_p / sigma_inel (g cm^-2).

    Parameters
    ----------
    sigma_inel_mb : array_like
        Inelastic pp cross section (mb). 34.9 mb -> 47.9 g cm^-2.
    """
    s = np.asarray(sigma_inel_mb, dtype=float) * _MB_CM2
    with np.errstate(divide="ignore"):
        return np.where(s > 0, _M_P_G / np.where(s > 0, s, 1.0), np.inf)


def lambda_pair(
    X: float = 0.70,
    x0_h: float = PAIR_RADIATION_LENGTH_H,
    x0_he: float = PAIR_RADIATION_LENGTH_HE,
) -> float | np.ndarray:
    """Pair-production mean free path (9/7) X0 with 1/X0 = X/X0_H + (1-X)/X0_He (g cm^-2).

    Energy independent at TeV-PeV (complete screening); 90.0 g cm^-2 for X = 0.70.
    ``X`` may be an array (one H mass fraction per template).
    """
    X = np.asarray(X, dtype=float)
    out = (9.0 / 7.0) / (X / x0_h + (1.0 - X) / x0_he)
    return float(out) if out.ndim == 0 else out


def gamma_efficiency(T: ArrayLike, lam_pp: ArrayLike, lam_pair: ArrayLike) -> np.ndarray:
    """Gamma-ray production-and-escape efficiency along a straight chord (broadcasting).

    Gamma_gamma = lambda_pair/(lambda_pair - lambda_pp) (exp(-T/lambda_pair) - exp(-T/lambda_pp)),
    evaluated as (T/lambda_pp) exp(-T/lambda_pp) exprel(k T), k = 1/lambda_pp - 1/lambda_pair,
    which is exact and finite in the equal-length limit (-> (T/lambda) exp(-T/lambda)).

    Parameters
    ----------
    T : array_like
        Chord column (g cm^-2).
    lam_pp, lam_pair : array_like
        Interaction and pair-production lengths (g cm^-2).
    """
    T, lp, lg = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (T, lam_pp, lam_pair)))
    k = 1.0 / lp - 1.0 / lg
    kt = k * T
    small = np.abs(kt) < 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        near = (T / lp) * np.exp(-T / lp) * exprel(np.where(small, kt, 0.0))
        far = (np.exp(-T / lg) - np.exp(-T / lp)) / (np.where(small, 1.0, k) * lp)
    return np.where(small, near, far)


def neutrino_efficiency(T: ArrayLike, lam_pp: ArrayLike) -> np.ndarray:
    """Neutrino efficiency Gamma_nu = 1 - exp(-T/lambda_pp) (free escape)."""
    return -np.expm1(-np.asarray(T, dtype=float) / np.asarray(lam_pp, dtype=float))
