"""Stellar density model of the Milky Way (docs/physics.md P6; paper Sec. II E).

Three components, densities in Msun pc^-3, positions in kpc (galactocentric cylindrical R
and height z):

* bulge: rho0 / (1 + r'/r0)^alpha exp(-(r'/r_cut)^2), r' = sqrt(R^2 + (z/q)^2);
* thin and thick disks: Sigma0 / (2 z_d) exp(-|z|/z_d - R/R_d).

The bulge is split into its old stars and the young ones (``young_fraction`` of the bulge
inside the box ``young_R`` x ``|z| < young_abs_z``), so that each component has one age
distribution.  Number densities divide by the mean stellar mass (0.41 Msun).
Pure numpy/scipy: no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "COMPONENTS",
    "PC_CM",
    "bulge_density",
    "disk_density",
    "young_box",
    "component_densities",
    "component_mass",
    "density_parameters",
]

#: Population components, in the order of the cubes' ``component`` coordinate.
COMPONENTS: tuple[str, ...] = ("bulge", "bulge_young", "thin", "thick")


#: One parsec in cm: 648000 / pi au (IAU 2015 Resolution B2), with the au of IAU 2012
#: Resolution B2 (1.495978707e13 cm exactly); the value astropy.units gives, as a number so
#: that no caller imports astropy for it.
PC_CM: float = 3.085677581491367e18


def bulge_density(R: ArrayLike, z: ArrayLike, rho0: float, q: float, alpha: float, r0: float, r_cut: float) -> np.ndarray:
    """Bulge mass density [Msun pc^-3] at (R, z) [kpc]; ``r0`` and ``r_cut`` in pc."""
    R_pc = np.asarray(R, float) * 1e3
    z_pc = np.asarray(z, float) * 1e3
    r = np.sqrt(R_pc**2 + (z_pc / q) ** 2)
    return rho0 * (1.0 + r / r0) ** (-alpha) * np.exp(-((r / r_cut) ** 2))


def disk_density(R: ArrayLike, z: ArrayLike, sigma0: float, z_d: float, R_d: float) -> np.ndarray:
    """Exponential disk mass density [Msun pc^-3] at (R, z) [kpc]; ``sigma0`` in Msun pc^-2, ``z_d`` in pc, ``R_d`` in kpc."""
    R = np.asarray(R, float)
    z_pc = np.abs(np.asarray(z, float)) * 1e3
    return sigma0 / (2.0 * z_d) * np.exp(-z_pc / z_d - R / R_d)


def young_box(R: ArrayLike, z: ArrayLike, bulge) -> np.ndarray:
    """True where the bulge has its young stars (``bulge.young_R`` [kpc], ``|z| < bulge.young_abs_z`` [kpc])."""
    R = np.asarray(R, float)
    z = np.asarray(z, float)
    lo, hi = bulge.young_R
    return (R >= lo) & (R <= hi) & (np.abs(z) < bulge.young_abs_z)


def component_densities(R: ArrayLike, z: ArrayLike, galaxy) -> dict[str, np.ndarray]:
    """Mass density [Msun pc^-3] of each of :data:`COMPONENTS` at (R, z) [kpc] (broadcast).

    Parameters
    ----------
    R, z : array_like
        Galactocentric radius and height [kpc].
    galaxy : tasks.config.Galaxy
        The ``galaxy`` configuration section.
    """
    b = galaxy.bulge
    bulge = bulge_density(R, z, b.rho0, b.q, b.alpha, b.r0, b.r_cut)
    young = np.where(young_box(R, z, b), b.young_fraction, 0.0) * bulge
    return {
        "bulge": bulge - young,
        "bulge_young": young,
        "thin": disk_density(R, z, galaxy.thin.sigma0, galaxy.thin.z_d, galaxy.thin.R_d),
        "thick": disk_density(R, z, galaxy.thick.sigma0, galaxy.thick.z_d, galaxy.thick.R_d),
    }


def component_mass(name: str, galaxy) -> float:
    """Total stellar mass [Msun] of a density component over all space.

    Disks: 2 pi Sigma0 R_d^2.  Bulge: 4 pi q int r'^2 rho(r') dr' (the oblate
    substitution z = q z'), by adaptive quadrature.  ``bulge`` is the whole bulge here
    (old and young stars).
    """
    if name in ("thin", "thick"):
        d = getattr(galaxy, name)
        return float(2.0 * np.pi * d.sigma0 * (d.R_d * 1e3) ** 2)
    if name == "bulge":
        from scipy.integrate import quad

        b = galaxy.bulge
        f = lambda r: r * r * (1.0 + r / b.r0) ** (-b.alpha) * np.exp(-((r / b.r_cut) ** 2))  # noqa: E731
        inner, _ = quad(f, 0.0, b.r_cut, limit=200)
        outer, _ = quad(f, b.r_cut, np.inf, limit=200)
        return float(4.0 * np.pi * b.q * b.rho0 * (inner + outer))
    raise ValueError(f"unknown density component {name!r}; components: bulge, thin, thick")


def density_parameters(galaxy) -> dict:
    """The configuration values the densities depend on (not the ages or metallicities)."""
    b, thin, thick = galaxy.bulge, galaxy.thin, galaxy.thick
    return {
        "bulge": b.model_dump(include={"rho0", "q", "alpha", "r0", "r_cut", "young_fraction", "young_R", "young_abs_z"}),
        "thin": thin.model_dump(include={"sigma0", "z_d", "R_d"}),
        "thick": thick.model_dump(include={"sigma0", "z_d", "R_d"}),
        "mean_stellar_mass": galaxy.mean_stellar_mass,
    }
