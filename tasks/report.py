"""``stardiffuse report``: headline numbers of a store next to observations and the paper's claims.

Built so far: the quiet-Sun check (PHYSICS.md P4 calibration anchor).  For the solar template
it gives E^2 dN/dE at 1 AU for both scenarios and both messengers, HAWC's fit
1.6e-12 (E/TeV)^-3.62 TeV^-1 cm^-2 s^-1, and the black-sphere bound (every proton hitting the
disc interacts once, nothing is absorbed), plus the HAWC calibration factor and the
uncalibrated ratio to HAWC.
"""

from __future__ import annotations

import json

import numpy as np
from rich.console import Console
from rich.table import Table

from cube import store as cstore

__all__ = ["SOLAR_ENERGIES", "solar_check", "report"]

#: Energies [TeV] at which the Sun is reported (issue #4).
SOLAR_ENERGIES = (0.5, 1.0, 2.6, 10.0, 100.0)


def _loglog(x_new, x, y):
    y = np.asarray(y, float)
    pos = y > 0
    if pos.sum() < 2:
        return np.zeros_like(np.asarray(x_new, float))
    return np.exp(np.interp(np.log(x_new), np.log(x[pos]), np.log(y[pos]), left=-np.inf, right=-np.inf))


def solar_check(store, energies=SOLAR_ENERGIES) -> dict:
    """The Sun's E^2 dN/dE at 1 AU [TeV cm^-2 s^-1] from the store, with HAWC and the black-sphere bound.

    Returns
    -------
    dict
        ``energy`` [TeV]; ``ballistic``/``mirroring`` -> ``gamma``/``nu`` lists;
        ``hawc`` (gamma, only meaningful 0.5-2.6 TeV); ``black_sphere`` -> ``gamma``/``nu``;
        ``calibration``, ``calibration_mode``, ``ratio_uncalibrated_1TeV``, ``solar_model``.
    """
    from catalogs.cr_spectrum import proton_intensity
    from tasks.kernels.luminosity import AU_CM, flux_at_earth, hawc_flux, yield_matrix
    from tasks.stages.yields import MESSENGERS, solar_index

    y = cstore.open_group_if_exists(store, "yields")
    xs = cstore.open_group_if_exists(store, "xsec")
    tpl = cstore.open_group_if_exists(store, "templates")
    if y is None or xs is None or tpl is None:
        raise cstore.StoreError(f"store {store} has no yields cube yet; run `stardiffuse run --stages yields`")
    cfg = y.attrs["config"]
    cr, mi = cfg["cosmic_rays"], cfg["mirroring"]
    n_nuc = cfg["interactions"]["nuclear_enhancement"]
    sun = solar_index(tpl)
    E = y.energy.values
    E_out = np.asarray(energies, float)
    out: dict = {"energy": E_out.tolist(), "solar_model": sun}
    for scen in ("ballistic", "mirroring"):
        out[scen] = {}
        for msg in MESSENGERS:
            L = y.luminosity.isel(model=sun).sel(scenario=scen, messenger=msg).values
            out[scen][msg] = (E_out**2 * _loglog(E_out, E, flux_at_earth(L, AU_CM))).tolist()
    out["hawc"] = (E_out**2 * hawc_flux(E_out, mi["hawc_norm"], mi["hawc_index"])).tolist()
    E_p = xs.E_p.values
    intensity = proton_intensity(E_p, cr["norm"], cr["indices"], cr["breaks"], cr["norm_energy"])
    dsig = np.moveaxis(xs.dsigma_dE.sel(messenger=list(MESSENGERS)).values, -1, 0)
    K = yield_matrix(E_p, xs.sigma_inel.values, dsig, intensity)
    R = float(tpl.R_star.isel(model=sun))
    L_bs = n_nuc * 4.0 * np.pi**2 * R**2 * K.sum(axis=1)
    out["black_sphere"] = {
        msg: (E_out**2 * _loglog(E_out, E, flux_at_earth(L_bs[i], AU_CM))).tolist() for i, msg in enumerate(MESSENGERS)
    }
    out["calibration"] = float(y.attrs.get("hawc_calibration", 1.0))
    out["calibration_mode"] = y.attrs.get("hawc_calibration_mode", "none")
    out["ratio_uncalibrated_1TeV"] = float(y.attrs.get("hawc_ratio_uncalibrated", np.nan))
    out["F_sur"] = float(y.attrs.get("solar_F_sur", np.nan))
    out["ratio_pure_mirroring_1TeV"] = float(y.attrs.get("hawc_ratio_pure_mirroring", np.nan))
    out["ratio_ballistic_1TeV"] = float(y.attrs.get("hawc_ratio_ballistic", np.nan))
    return out


def report(store, json_mode: bool = False, console: Console | None = None) -> int:
    """Print the report of ``store`` (a rich table, or JSON with ``json_mode``); returns 0."""
    console = console or Console()
    sun = solar_check(store)
    result = {
        "store": str(store),
        "sun": sun,
        "not_built_yet": ["sky maps", "regional spectra"],
    }
    if json_mode:
        print(json.dumps(result))
        return 0
    t = Table(title="Quiet Sun at 1 AU: E^2 dN/dE [TeV cm^-2 s^-1]")
    t.add_column("E [TeV]")
    for e in sun["energy"]:
        t.add_column(f"{e:g}", justify="right")
    rows = [
        ("gamma ballistic", sun["ballistic"]["gamma"]),
        ("gamma mirroring", sun["mirroring"]["gamma"]),
        ("HAWC fit (*extrap.)", sun["hawc"]),
        ("gamma black sphere", sun["black_sphere"]["gamma"]),
        ("nu ballistic", sun["ballistic"]["nu"]),
        ("nu mirroring", sun["mirroring"]["nu"]),
        ("nu black sphere", sun["black_sphere"]["nu"]),
    ]
    for label, values in rows:
        cells = [f"{v:.3g}" for v in values]
        if label.startswith("HAWC"):
            cells = [c + ("" if 0.5 <= e <= 2.6 else "*") for c, e in zip(cells, sun["energy"])]
        t.add_row(label, *cells)
    console.print(t)
    console.print(
        f"HAWC calibration ({sun['calibration_mode']}): L_mirror x {sun['calibration']:.4g}; "
        f"F_sur(Sun) = {sun['F_sur']:.3g}. Flux / HAWC at 1 TeV: ballistic {sun['ratio_ballistic_1TeV']:.3g}, "
        f"uncalibrated mirroring scenario {sun['ratio_uncalibrated_1TeV']:.3g}, "
        f"pure mirroring (F_sur = 1) {sun['ratio_pure_mirroring_1TeV']:.3g}"
    )
    over = [e for i, e in enumerate(sun["energy"]) if sun["mirroring"]["nu"][i] > sun["black_sphere"]["nu"][i] * 1.001]
    if over:
        console.print(
            f"Note: with the calibration the mirroring-scenario neutrino flux exceeds the black-sphere bound "
            f"at {', '.join(f'{e:g}' for e in over)} TeV: the scale factor implies more than one interaction "
            f"per primary (set mirroring.calibration: none for the physical bound)."
        )
    console.print("Not built yet: " + ", ".join(result["not_built_yet"]) + ".")
    return 0
