"""Cosmic-ray proton intensity (docs/physics.md P1).

Continuous broken power law (paper Eq. 1): spectral indices 2.60 / 2.85 / 2.51 / 3.50 with
breaks at E_s = 10 TeV (softening, DAMPE 2019, Sci. Adv. 5, eaax3793), E_b = 340 TeV
(hardening) and E_k = 3300 TeV (proton knee, LHAASO). The normalisation
I_p(1 TeV) = 8.63e-6 cm^-2 s^-1 sr^-1 TeV^-1 is the project's log-interpolation of the DAMPE
2019 table (8.63e-5 m^-2 s^-1 sr^-1 GeV^-1).

Units: energy is the proton *total* energy in TeV (equal to the kinetic energy above 1 TeV to
0.1%); intensity in cm^-2 s^-1 sr^-1 TeV^-1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DEFAULT_INDICES",
    "DEFAULT_BREAKS_TEV",
    "DEFAULT_NORM",
    "proton_intensity",
    "primary_energy_grid",
]

#: Spectral indices below E_s, E_s-E_b, E_b-E_k, above E_k.
DEFAULT_INDICES: tuple[float, float, float, float] = (2.60, 2.85, 2.51, 3.50)
#: Break energies E_s, E_b, E_k in TeV.
DEFAULT_BREAKS_TEV: tuple[float, float, float] = (10.0, 340.0, 3300.0)
#: I_p(E_norm) in cm^-2 s^-1 sr^-1 TeV^-1 (E_norm = 1 TeV).
DEFAULT_NORM: float = 8.63e-6


def proton_intensity(
    energy: ArrayLike,
    norm: float = DEFAULT_NORM,
    indices: Sequence[float] = DEFAULT_INDICES,
    breaks: Sequence[float] = DEFAULT_BREAKS_TEV,
    e_norm: float = 1.0,
) -> np.ndarray:
    """Local proton intensity I_p(E) of a continuous broken power law.

    Parameters
    ----------
    energy : array_like
        Proton total energy (TeV), any shape, > 0.
    norm : float
        Intensity at ``e_norm`` (cm^-2 s^-1 sr^-1 TeV^-1); ``e_norm`` must lie below the first
        break.
    indices : sequence of float
        Spectral indices, one more than ``breaks``.
    breaks : sequence of float
        Break energies (TeV), ascending.
    e_norm : float
        Normalisation energy (TeV).

    Returns
    -------
    np.ndarray
        I_p(E) in cm^-2 s^-1 sr^-1 TeV^-1, same shape as ``energy``. Continuous at the breaks
        (the continuity constants C_i of paper Eq. 1 are built in).
    """
    e = np.asarray(energy, dtype=float)
    idx = np.asarray(indices, dtype=float)
    brk = np.asarray(breaks, dtype=float)
    if idx.size != brk.size + 1:
        raise ValueError("need len(indices) == len(breaks) + 1")
    if np.any(np.diff(brk) <= 0) or (brk.size and e_norm >= brk[0]):
        raise ValueError("breaks must be ascending and above e_norm")
    # log I = log norm - a_0 log(E/E_n) - sum_i (a_{i+1} - a_i) log(E/E_b,i) for E > E_b,i:
    # one expression that is continuous by construction.
    with np.errstate(divide="ignore"):
        log_e = np.log(e)
    log_i = np.log(norm) - idx[0] * (log_e - np.log(e_norm))
    for i, eb in enumerate(brk):
        log_i = log_i - (idx[i + 1] - idx[i]) * np.maximum(log_e - np.log(eb), 0.0)
    return np.exp(log_i)


def primary_energy_grid(
    e_min: float = 0.1, e_max: float = 1.0e5, per_decade: int = 10
) -> np.ndarray:
    """Log-spaced primary (proton) energy grid in TeV, ``per_decade`` points per decade.

    docs/physics.md P1: at least 0.1 TeV - 100 PeV with >= 10 points per decade.
    """
    n = int(round(np.log10(e_max / e_min) * per_decade)) + 1
    return np.logspace(np.log10(e_min), np.log10(e_max), n)
