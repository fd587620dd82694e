"""``stardiffuse export``: the sky maps and region spectra of a store as standard files.

For every scenario and messenger:

* ``sky_<scenario>_<messenger>_gammapy.fits``: a HEALPix map (RING, Galactic) with an
  ``energy_true`` axis at the cube's energy nodes, written by gammapy, which reads it back as a
  diffuse template (``gammapy.maps.Map.read`` then ``TemplateSpatialModel``); gammapy stores
  HEALPix values as float32 (relative precision 6e-8);
* ``sky_<scenario>_<messenger>_healpy.fits``: one column per energy that ``healpy.read_map``
  reads (``field=i``), in float64; the energies [TeV] are in the header (``ENER0001``, ...)
  and the unit in ``TUNITn``;

and ``sed.ecsv``: the region spectra as one tidy table with units in its header (astropy ECSV).
The healpy files and ``sed.ecsv`` need only the core dependencies; the gammapy files need the
``export`` extra (gammapy), and without it they are skipped with one line saying how to get it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cube import store as cstore

__all__ = ["export", "INTENSITY_UNIT"]

INTENSITY_UNIT = "TeV-1 cm-2 s-1 sr-1"


def _gammapy_modules():
    """gammapy's map classes, or ``None`` when the optional ``export`` extra is not installed."""
    try:
        import astropy.units as u
        from gammapy.maps import HpxGeom, Map, MapAxis
    except ImportError:
        return None
    return u, HpxGeom, Map, MapAxis


def _gammapy_map(values: np.ndarray, energy: np.ndarray, nside: int, modules):
    u, HpxGeom, Map, MapAxis = modules
    axis = MapAxis.from_nodes(energy * u.TeV, name="energy_true", interp="log")
    geom = HpxGeom.create(nside=nside, frame="galactic", nest=False, axes=[axis])
    m = Map.from_geom(geom, unit=INTENSITY_UNIT, dtype=np.float64)
    m.data[...] = values.T  # (energy, pixel)
    return m


def export(store, out, console=None) -> list[Path]:
    """Write the maps and spectra of ``store`` into the folder ``out``; returns the files written.

    Raises
    ------
    StoreError
        If the store has no ``sky`` or ``sed`` cube.
    """
    import healpy as hp
    from astropy.table import Table

    sky = cstore.open_group_if_exists(store, "sky")
    sed = cstore.open_group_if_exists(store, "sed")
    if sky is None or sed is None:
        missing = [n for n, d in (("sky", sky), ("sed", sed)) if d is None]
        raise cstore.StoreError(f"store {store} has no {' or '.join(missing)} cube; run `stardiffuse run --stages sky,sed`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nside = int(sky.attrs["nside"])
    energy = sky.energy.values
    written: list[Path] = []
    gammapy = _gammapy_modules()
    for scen in sky.scenario.values.astype(str):
        for msg in sky.messenger.values.astype(str):
            I = sky.intensity.sel(scenario=scen, messenger=msg).transpose("pixel", "energy").values
            if gammapy is not None:
                g = out / f"sky_{scen}_{msg}_gammapy.fits"
                _gammapy_map(I, energy, nside, gammapy).write(g, overwrite=True)
                written.append(g)
            h = out / f"sky_{scen}_{msg}_healpy.fits"
            header = [("ENERUNIT", "TeV", "unit of the ENERnnnn energies")]
            header += [(f"ENER{i + 1:04d}", float(e), f"energy of column {i + 1} [TeV]") for i, e in enumerate(energy)]
            header += [("SCENARIO", scen, "cosmic-ray transport scenario"), ("MESSENGR", msg, "gamma or nu (all flavours)")]
            hp.write_map(
                str(h),
                [I[:, i] for i in range(energy.size)],
                nest=False,
                coord="G",
                column_names=[f"E{i + 1:04d}" for i in range(energy.size)],
                column_units=INTENSITY_UNIT,
                extra_header=header,
                overwrite=True,
                dtype=np.float64,
            )
            written.append(h)
    s = sed.load()
    rows = s[["mean_intensity", "mean_intensity_stderr", "flux"]].to_dataframe().reset_index()
    t = Table.from_pandas(rows)
    t["solid_angle"] = s.solid_angle.sel(region=rows["region"].to_numpy()).values
    t["energy"].unit = "TeV"
    t["mean_intensity"].unit = INTENSITY_UNIT
    t["mean_intensity_stderr"].unit = INTENSITY_UNIT
    t["flux"].unit = "TeV-1 cm-2 s-1"
    t["solid_angle"].unit = "sr"
    t.meta["source"] = f"stardiffuse store {store}"
    t.meta["regions"] = s.attrs.get("config", {}).get("regions", {})
    e = out / "sed.ecsv"
    t.write(e, format="ascii.ecsv", overwrite=True)
    written.append(e)
    if console is not None:
        console.print(f"wrote {len(written)} files to {out}: {', '.join(p.name for p in written)}")
        if gammapy is None:
            console.print(
                "skipped the gammapy maps: gammapy is not installed; from a clone of stardiffuse, "
                "`pip install -e '.[export]'` adds it",
                markup=False,
                soft_wrap=True,
            )
    return written
