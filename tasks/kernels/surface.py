"""Magnetic-activity parameters of main-sequence stars (docs/physics.md P4; paper Eqs. 7, 11-13).

The OCR of the paper lost parts of Eqs. 7 and 12-13; the continuous versions below are the
project's **[choice]** (docs/physics.md P4). All masses in Msun, times in yr.

Saturation time t_sat(M) **[choice]**: log-log interpolation through
(0.1, 5.0), (0.35, 2.0), (0.5, 0.6), (0.7, 0.25), (1.0, 0.1), (1.41, 0.05) (Msun, Gyr). The node
values are the project's choice, guided by the literature on the saturated-activity phase:
~0.1 Gyr for solar-type stars and a steep rise to Gyr for M dwarfs (Jackson, Davis & Wheatley
2012, MNRAS 422, 2024; Matt et al. 2015, ApJL 799, L23, rotational saturation ending at
Ro ~ 0.1 as in Wright et al. 2011, ApJ 743, 48; activity lifetimes of M dwarfs, West et al.
2008, AJ 135, 785). They are not a fit to any of these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "KRAFT_MASS",
    "T_SAT_NODES",
    "smooth_step",
    "f_B",
    "f_struct",
    "t_sat",
    "f_age",
    "surface_fraction",
    "is_main_sequence",
]

#: Kraft break (Msun): no convective envelope, no dynamo above it.
KRAFT_MASS: float = 1.41
#: (mass [Msun], t_sat [Gyr]) nodes, **[choice]** (see module doc).
T_SAT_NODES: tuple[tuple[float, float], ...] = (
    (0.1, 5.0), (0.35, 2.0), (0.5, 0.6), (0.7, 0.25), (1.0, 0.1), (1.41, 0.05),
)


def smooth_step(x: ArrayLike) -> np.ndarray:
    """S(x) = 0.5 + 0.5 cos(pi x): 1 at x = 0, 0 at x = 1."""
    return 0.5 + 0.5 * np.cos(np.pi * np.asarray(x, dtype=float))


def is_main_sequence(stage: ArrayLike, ms_label: str = "MS") -> np.ndarray:
    """Boolean mask of main-sequence templates from stage labels (docs/physics.md P5 names)."""
    return np.asarray(stage).astype(str) == ms_label


def f_B(
    mass: ArrayLike,
    main_sequence: ArrayLike = True,
    f_low: float = 1.0,
    f_high: float = 0.7,
    m_full: float = 0.30,
    m_sun: float = 1.0,
    m_kraft: float = KRAFT_MASS,
) -> np.ndarray:
    """Magnetic/kinetic energy-density fraction f_B(M) (paper Eq. 7, continuous [choice]).

    1.0 below 0.30 Msun, linear 1.0 -> 0.7 over 0.30-1.0, 0.7 up to 1.41, 0 above; 0 off the
    main sequence.
    """
    m = np.asarray(mass, dtype=float)
    out = np.interp(m, [m_full, m_sun], [f_low, f_high])
    out = np.where(m > m_kraft, 0.0, out)
    return np.where(np.asarray(main_sequence, dtype=bool), out, 0.0)


def f_struct(
    mass: ArrayLike,
    nodes: Sequence[float] = (0.35, 0.5, 0.85, 1.32, KRAFT_MASS),
    levels: Sequence[float] = (0.95, 0.45, 0.30),
) -> np.ndarray:
    """Structural surface filling factor f_struct(m) (paper Eq. 12, continuous [choice]).

    0.95 (m < 0.35); 0.45 + 0.50 S((m-0.35)/0.15); 0.30 + 0.15 S((m-0.5)/0.35); 0.30 (0.85-1.32);
    0.30 S((m-1.32)/0.09) (1.32-1.41); 0 above.
    """
    m = np.asarray(mass, dtype=float)
    m1, m2, m3, m4, m5 = nodes
    hi, mid, lo = levels
    out = np.select(
        [m < m1, m < m2, m < m3, m < m4, m <= m5],
        [
            np.full_like(m, hi),
            mid + (hi - mid) * smooth_step((m - m1) / (m2 - m1)),
            lo + (mid - lo) * smooth_step((m - m2) / (m3 - m2)),
            np.full_like(m, lo),
            lo * smooth_step((m - m4) / (m5 - m4)),
        ],
        0.0,
    )
    return out


def t_sat(mass: ArrayLike, nodes: Sequence[Sequence[float]] = T_SAT_NODES) -> np.ndarray:
    """Saturation time t_sat(M) in yr: log-log interpolation through ``nodes`` (Msun, Gyr).

    Constant extrapolation outside the node range.
    """
    nm = np.log(np.array([n[0] for n in nodes], dtype=float))
    nt = np.log(np.array([n[1] for n in nodes], dtype=float))
    m = np.asarray(mass, dtype=float)
    return np.exp(np.interp(np.log(m), nm, nt)) * 1e9


def f_age(
    age: ArrayLike,
    mass: ArrayLike,
    index: float = -0.5,
    nodes: Sequence[Sequence[float]] = T_SAT_NODES,
) -> np.ndarray:
    """Activity decay f_age = 1 for t < t_sat(M), (t/t_sat)^index after (Skumanich, -0.5).

    age in yr, mass in Msun.
    """
    t = np.asarray(age, dtype=float)
    ts = t_sat(mass, nodes)
    return np.where(t < ts, 1.0, (np.maximum(t, ts) / ts) ** index)


def surface_fraction(
    mass: ArrayLike,
    age: ArrayLike,
    main_sequence: ArrayLike = True,
    m_kraft: float = KRAFT_MASS,
    age_index: float = -0.5,
    t_sat_nodes: Sequence[Sequence[float]] = T_SAT_NODES,
) -> np.ndarray:
    """F_sur = min(f_struct f_age, 1) (paper Eq. 11); 0 off the MS and above the Kraft break."""
    m = np.asarray(mass, dtype=float)
    out = np.minimum(f_struct(m) * f_age(age, m, age_index, t_sat_nodes), 1.0)
    out = np.where(m > m_kraft, 0.0, out)
    return np.where(np.asarray(main_sequence, dtype=bool), out, 0.0)
