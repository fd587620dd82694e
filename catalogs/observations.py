"""Observational data sets the stellar glow is compared with (docs/physics.md P8), as tidy tables with units.

Every loader returns an :class:`astropy.table.QTable` in TeV-based units, with its citation
in ``meta["citation"]``; numbers are the published ones (files in ``catalogs/data/observations``,
copied from the project's reference data with their sources).

* LHAASO-KM2A diffuse gamma rays, inner (15 < l < 125) and outer (125 < l < 235), |b| < 5:
  LHAASO Collaboration, PRL 131, 151001 (2023), arXiv:2305.05372, Suppl. Tables S2, S3.
* HAWC quiet Sun: dN/dE = 1.6e-12 (E/TeV)^-3.62 TeV^-1 cm^-2 s^-1, 0.5-2.6 TeV; HAWC
  Collaboration, PRL 131, 051201 (2023), arXiv:2212.00815.
* IceCube Galactic plane, KRA-gamma with 5 and 50 PeV cutoffs, E^2 F integrated over the sky,
  per flavour (all flavours = 3x, flavour ratio 1:1:1): IceCube Collaboration, Science 380,
  1338 (2023), arXiv:2307.04427.
* IceCube diffuse astrophysical flux, segmented per-flavour fit (rows with a zero central value
  are upper limits): arXiv:2507.22234, doi:10.7910/DVN/ZBO52I; and the starting-track power law
  Phi(100 TeV) = 1.68e-18 GeV^-1 cm^-2 s^-1 sr^-1 per flavour, index 2.58 (PRD 110, 022001, 2024).
* Fermi-LAT IGRB, foreground models A, B, C: Ackermann et al., ApJ 799, 86 (2015), VizieR
  J/ApJ/799/86 table 3; the cut-off power-law fits (I100 in 1e-7 MeV^-1 cm^-2 s^-1 sr^-1,
  index, cutoff): A 0.95, 2.32, 279 GeV; B 1.12, 2.28, 204 GeV; C 0.78, 2.26, 231 GeV.  The
  cutoff already holds the EBL absorption, so the TeV-PeV extrapolation is the power law times
  exp(-tau_EBL(E, z)) (``ebltable``; energies clipped to the table's range).
"""

from __future__ import annotations

from importlib import resources

import astropy.units as u
import numpy as np
from astropy.table import QTable
from numpy.typing import ArrayLike

__all__ = [
    "INTENSITY",
    "HAWC_SUN",
    "IGRB_FITS",
    "lhaaso_diffuse",
    "hawc_sun",
    "icecube_galactic_plane",
    "icecube_diffuse",
    "icecube_diffuse_powerlaw",
    "fermi_igrb",
    "igrb_fit",
    "ebl_attenuation",
    "igrb_extrapolation",
]

#: Unit of a differential intensity.
INTENSITY = u.Unit("TeV-1 cm-2 s-1 sr-1")

#: HAWC's quiet-Sun fit (PRL 131, 051201, 2023).
HAWC_SUN = {"norm": 1.6e-12, "norm_err": 0.3e-12, "index": 3.62, "index_err": 0.14, "range": (0.5, 2.6),
            "citation": "HAWC Collaboration, PRL 131, 051201 (2023), arXiv:2212.00815"}

#: Ackermann et al. (2015) cut-off power laws: I100 [1e-7 MeV^-1 cm^-2 s^-1 sr^-1], index, cutoff [GeV].
IGRB_FITS = {"A": (0.95, 2.32, 279.0), "B": (1.12, 2.28, 204.0), "C": (0.78, 2.26, 231.0)}

_LHAASO = {
    "inner": ("LHAASO_KM2A_2023_TableS2_inner.txt", (15.0, 125.0), "Table S2"),
    "outer": ("LHAASO_KM2A_2023_TableS3_outer.txt", (125.0, 235.0), "Table S3"),
}


def _data(name: str):
    return resources.files("catalogs").joinpath("data", "observations", name)


def _rows(name: str) -> np.ndarray:
    lines = [ln for ln in _data(name).read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return np.array([[float(x) for x in ln.replace(",", " ").split()] for ln in lines])


def lhaaso_diffuse(region: str) -> QTable:
    """LHAASO-KM2A diffuse intensity of the ``inner`` or ``outer`` Galactic plane (|b| < 5 deg).

    Columns: ``energy`` [TeV], ``intensity``, ``stat_lo``, ``stat_up``, ``sys`` [TeV^-1 cm^-2 s^-1 sr^-1].
    """
    if region not in _LHAASO:
        raise ValueError(f"LHAASO region must be 'inner' or 'outer', got {region!r}")
    fname, l_range, table = _LHAASO[region]
    a = _rows(fname)
    t = QTable()
    t["energy"] = a[:, 2] * u.TeV
    for i, name in enumerate(("intensity", "stat_lo", "stat_up", "sys")):
        t[name] = a[:, 3 + i] * INTENSITY
    t.meta.update(region=region, l=l_range, b=(-5.0, 5.0),
                  citation=f"LHAASO Collaboration, PRL 131, 151001 (2023), arXiv:2305.05372, Suppl. {table}")
    return t


def hawc_sun(E_TeV: ArrayLike) -> u.Quantity:
    """HAWC's quiet-Sun spectrum dN/dE [TeV^-1 cm^-2 s^-1] (fitted over 0.5-2.6 TeV)."""
    E = np.asarray(E_TeV, float)
    return HAWC_SUN["norm"] * E ** (-HAWC_SUN["index"]) * u.Unit("TeV-1 cm-2 s-1")


def icecube_galactic_plane(model: str = "kra5", flavours: str = "all") -> QTable:
    """IceCube's KRA-gamma Galactic-plane neutrino flux, integrated over the sky.

    Parameters
    ----------
    model : {"kra5", "kra50"}
        Cutoff of the KRA-gamma template (5 or 50 PeV).
    flavours : {"all", "per_flavour"}
        ``all`` = nu + anti-nu of the three flavours (3x per flavour, ratio 1:1:1 at Earth).

    Columns: ``energy`` [TeV], ``e2_flux`` (E^2 dN/dE) [TeV cm^-2 s^-1].
    """
    if model not in ("kra5", "kra50") or flavours not in ("all", "per_flavour"):
        raise ValueError(f"model must be kra5 or kra50 and flavours all or per_flavour, got {model!r}, {flavours!r}")
    a = _rows(f"IceCube2023_nus_gp_{model}.txt")
    t = QTable()
    t["energy"] = a[:, 0] / 1e3 * u.TeV
    t["e2_flux"] = a[:, 1] / 1e3 * (3.0 if flavours == "all" else 1.0) * u.Unit("TeV cm-2 s-1")
    t.meta.update(model=model, flavours=flavours,
                  citation="IceCube Collaboration, Science 380, 1338 (2023), arXiv:2307.04427")
    return t


def icecube_diffuse(flavours: str = "all") -> QTable:
    """IceCube's segmented diffuse astrophysical flux (joint track + cascade fit).

    Columns: ``energy``, ``energy_lo``, ``energy_hi`` [TeV], ``e2_intensity``, ``e2_lo``,
    ``e2_hi`` (E^2 dN/dE) [TeV cm^-2 s^-1 sr^-1], ``upper_limit`` (bool: the value is ``e2_hi``).
    """
    a = _rows("IceCube2026_combinedfit.csv")
    f = 3.0 if flavours == "all" else 1.0
    unit = 1e-8 / 1e3 * f * u.Unit("TeV cm-2 s-1 sr-1")  # 1e-8 GeV -> TeV
    t = QTable()
    t["energy"], t["energy_lo"], t["energy_hi"] = (a[:, i] / 1e3 * u.TeV for i in range(3))
    t["e2_intensity"], t["e2_lo"], t["e2_hi"] = (a[:, i] * unit for i in range(3, 6))
    t["upper_limit"] = a[:, 3] == 0.0
    t.meta.update(flavours=flavours, citation="IceCube, arXiv:2507.22234, doi:10.7910/DVN/ZBO52I")
    return t


def icecube_diffuse_powerlaw(E_TeV: ArrayLike, flavours: str = "all") -> u.Quantity:
    """IceCube starting-track diffuse power law dN/dE [TeV^-1 cm^-2 s^-1 sr^-1] (PRD 110, 022001, 2024)."""
    E = np.asarray(E_TeV, float)
    f = 3.0 if flavours == "all" else 1.0
    return f * 1.68e-18 * 1e3 * (E / 100.0) ** (-2.58) * INTENSITY


def fermi_igrb(model: str = "A") -> QTable:
    """Fermi-LAT IGRB band intensities of foreground model A, B or C (Ackermann et al. 2015, table 3).

    Columns: ``energy_lo``, ``energy_hi`` [TeV], ``flux_band`` and its errors ``flux_up``,
    ``flux_lo`` [cm^-2 s^-1 sr^-1] (integrated in the band), and ``energy`` (geometric centre)
    with ``intensity`` [TeV^-1 cm^-2 s^-1 sr^-1]: the band flux spread as a power law of the
    model's fitted index (a [choice] for plotting; the band fluxes are the data).
    """
    if model not in IGRB_FITS:
        raise ValueError(f"IGRB model must be A, B or C, got {model!r}")
    rows = [ln for ln in _data("Fermi_IGRB_2015_table3.dat").read_text().splitlines() if ln[:1] == model]
    lo = np.array([float(r[2:10]) for r in rows]) * 1e-6  # MeV -> TeV
    hi = np.array([float(r[11:19]) for r in rows]) * 1e-6
    F = np.array([float(r[20:29]) for r in rows])
    up = np.array([float(r[30:39]) for r in rows])
    dn = np.array([float(r[40:49]) for r in rows])
    g = IGRB_FITS[model][1]
    Ec = np.sqrt(lo * hi)
    dnde = F * (g - 1.0) / (lo ** (1 - g) - hi ** (1 - g)) * Ec ** (-g)
    t = QTable()
    t["energy_lo"], t["energy_hi"], t["energy"] = lo * u.TeV, hi * u.TeV, Ec * u.TeV
    unit = u.Unit("cm-2 s-1 sr-1")
    t["flux_band"], t["flux_up"], t["flux_lo"] = F * unit, up * unit, dn * unit
    t["intensity"] = dnde * INTENSITY
    t.meta.update(model=model, citation="Ackermann et al., ApJ 799, 86 (2015), VizieR J/ApJ/799/86")
    return t


def igrb_fit(E_TeV: ArrayLike, model: str = "A", cutoff: bool = True) -> u.Quantity:
    """The IGRB fit dN/dE [TeV^-1 cm^-2 s^-1 sr^-1]: I100 (E / 100 MeV)^-index [x exp(-E / E_cut)]."""
    I100, g, Ecut = IGRB_FITS[model]
    E = np.asarray(E_TeV, float)
    val = I100 * 1e-7 * 1e6 * (E / 1e-4) ** (-g)  # MeV^-1 -> TeV^-1; 100 MeV = 1e-4 TeV
    if cutoff:
        val = val * np.exp(-E / (Ecut * 1e-3))
    return val * INTENSITY


def ebl_attenuation(E_TeV: ArrayLike, z: float, ebl_model: str = "dominguez") -> np.ndarray:
    """exp(-tau_EBL(E, z)) from ``ebltable``, energies clipped to the model table's range."""
    from ebltable.tau_from_model import OptDepth

    tau = OptDepth.readmodel(model=ebl_model)
    lo, hi = 10.0 ** (np.min(tau.x) - 3), 10.0 ** (np.max(tau.x) - 3)  # table: log10(E / GeV)
    E = np.clip(np.atleast_1d(np.asarray(E_TeV, float)), lo, hi)
    t = np.atleast_1d(np.squeeze(tau.opt_depth(z, E)))
    return np.exp(-np.maximum(t, 0.0))


def igrb_extrapolation(E_TeV: ArrayLike, model: str = "A", z: float = 0.5, ebl_model: str = "dominguez") -> u.Quantity:
    """The IGRB power law extrapolated to TeV-PeV and attenuated on the EBL at redshift ``z`` [choice]."""
    return igrb_fit(E_TeV, model, cutoff=False) * ebl_attenuation(E_TeV, z, ebl_model)
