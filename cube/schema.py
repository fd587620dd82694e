"""The public contract of every cube: group names, dims, variables, coordinates and units.

This module is the single place where ``docs/design.md``'s cube table lives in code.  It knows
names and units only, nothing about how the numbers are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import xarray as xr

__all__ = [
    "VarSpec",
    "GroupSchema",
    "SCHEMAS",
    "SchemaError",
    "validate",
    "get_schema",
    "apply_metadata",
]


class SchemaError(ValueError):
    """A dataset does not follow its group's schema."""


@dataclass(frozen=True)
class VarSpec:
    """One variable or coordinate of a cube.

    Parameters
    ----------
    dims : tuple of str
        Dimension names, in storage order.
    units : str
        Units string stored in the ``units`` attribute (``"1"`` for dimensionless,
        ``""`` for labels).
    long_name : str
        Human-readable description stored in ``long_name``.
    """

    dims: tuple[str, ...]
    units: str
    long_name: str


@dataclass(frozen=True)
class GroupSchema:
    """Schema of one group: its dims, its data variables and its coordinates."""

    name: str
    dims: tuple[str, ...]
    chunk_dim: str
    data_vars: Mapping[str, VarSpec]
    coords: Mapping[str, VarSpec]
    required_attrs: tuple[str, ...] = field(default=("config", "code_version"))
    optional: tuple[str, ...] = ()  # variables, coordinates and dims that may be absent


_MODEL_COORDS = {
    "mass_init": VarSpec(("model",), "Msun", "initial stellar mass"),
    "metallicity": VarSpec(("model",), "1", "initial metal mass fraction Z"),
    "age": VarSpec(("model",), "yr", "stellar age of the snapshot"),
    "stage": VarSpec(("model",), "", "evolutionary stage (MS, RGB, CHeB, EAGB, TPAGB)"),
    "duration": VarSpec(("model",), "yr", "time span the snapshot stands for"),
    "R_star": VarSpec(("model",), "cm", "photospheric radius"),
    "M_star": VarSpec(("model",), "Msun", "current stellar mass"),
    "L_star": VarSpec(("model",), "Lsun", "luminosity"),
    "Teff": VarSpec(("model",), "K", "effective temperature"),
    "source": VarSpec(("model",), "", "where the model comes from (generator or a MESA LOGS path)"),
    "valid": VarSpec(("model",), "", "the structure model has a solution (False: zero profiles and yields, no weight)"),
    "invalid_reason": VarSpec(("model",), "", "why the model is not valid (empty when valid)"),
}

_ENERGY = VarSpec(("energy",), "TeV", "secondary particle energy")
_SCENARIO = VarSpec(("scenario",), "", "cosmic-ray transport scenario")
_MESSENGER = VarSpec(("messenger",), "", "secondary messenger (nu = all flavours, nu + anti-nu)")


def _freeze(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


SCHEMAS: Mapping[str, GroupSchema] = _freeze(
    {
        "xsec": GroupSchema(
            name="xsec",
            dims=("E_p", "energy", "messenger"),
            chunk_dim="E_p",
            data_vars=_freeze(
                {
                    "dsigma_dE": VarSpec(
                        ("E_p", "energy", "messenger"),
                        "mb TeV^-1",
                        "differential production cross section of secondaries in pp collisions",
                    ),
                    "sigma_inel": VarSpec(("E_p",), "mb", "total inelastic pp cross section"),
                }
            ),
            coords=_freeze(
                {
                    "E_p": VarSpec(("E_p",), "TeV", "primary proton total energy"),
                    "energy": _ENERGY,
                    "messenger": _MESSENGER,
                }
            ),
        ),
        "templates": GroupSchema(
            name="templates",
            dims=("model", "radius"),
            chunk_dim="model",
            data_vars=_freeze(
                {
                    "rho": VarSpec(("model", "radius"), "g cm^-3", "mass density"),
                    "v_conv": VarSpec(("model", "radius"), "cm s^-1", "convective velocity"),
                    "column": VarSpec(
                        ("model", "radius"), "g cm^-2", "vertical column density from the surface"
                    ),
                }
            ),
            coords=_freeze(
                {
                    "model": VarSpec(("model",), "", "template index"),
                    "radius": VarSpec(("radius",), "1", "r / R_star"),
                    **_MODEL_COORDS,
                }
            ),
        ),
        "yields": GroupSchema(
            name="yields",
            dims=("model", "scenario", "messenger", "energy"),
            chunk_dim="model",
            data_vars=_freeze(
                {
                    "luminosity": VarSpec(
                        ("model", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1",
                        "differential luminosity of secondaries emitted by the star",
                    ),
                }
            ),
            coords=_freeze(
                {
                    "model": VarSpec(("model",), "", "template index"),
                    "scenario": _SCENARIO,
                    "messenger": _MESSENGER,
                    "energy": _ENERGY,
                    **_MODEL_COORDS,
                }
            ),
        ),
        "population": GroupSchema(
            name="population",
            dims=("population", "estimator", "batch", "model"),
            chunk_dim="population",
            data_vars=_freeze(
                {
                    "weight": VarSpec(
                        ("population", "estimator", "model"),
                        "1",
                        "expected number of each template per sampled star (all batches)",
                    ),
                    "weight_batch": VarSpec(
                        ("population", "estimator", "batch", "model"),
                        "1",
                        "expected number of each template per sampled star, per independent batch",
                    ),
                    "yield_fraction": VarSpec(
                        ("population",), "1", "fraction of stars alive and within the template masses"
                    ),
                    "remnant_fraction": VarSpec(("population",), "1", "fraction of stars older than their lifetime"),
                    "heavy_fraction": VarSpec(
                        ("population",), "1", "fraction of stars above max_template_mass (zero yield)"
                    ),
                    "clipped_fraction": VarSpec(
                        ("population",), "1", "fraction of stars whose Z was clipped to the library's range"
                    ),
                    "n_sampled": VarSpec(("population",), "1", "stars sampled"),
                }
            ),
            coords=_freeze(
                {
                    "population": VarSpec(("population",), "", "population index"),
                    "component": VarSpec(("population",), "", "Galactic component (bulge, bulge_young, thin, thick)"),
                    "feh_offset": VarSpec(
                        ("population",), "dex", "[Fe/H] position offset of the thin disk (0 for other components)"
                    ),
                    "estimator": VarSpec(
                        ("estimator",), "", "per-star template estimator: eep (equivalent evolutionary phase), knn (paper Eq. 19)"
                    ),
                    "batch": VarSpec(("batch",), "", "Monte Carlo batch"),
                    "model": VarSpec(("model",), "", "template index"),
                    **_MODEL_COORDS,
                }
            ),
        ),
        "emissivity": GroupSchema(
            name="emissivity",
            dims=("R", "z", "component", "scenario", "messenger", "energy"),
            chunk_dim="R",
            data_vars=_freeze(
                {
                    "emissivity": VarSpec(
                        ("R", "z", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1 cm^-3",
                        "volume emissivity",
                    ),
                    "emissivity_stderr": VarSpec(
                        ("R", "z", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1 cm^-3",
                        "Monte Carlo standard error of the volume emissivity",
                    ),
                    "emissivity_component": VarSpec(
                        ("R", "z", "component", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1 cm^-3",
                        "volume emissivity of each Galactic component",
                    ),
                    "luminosity_mean": VarSpec(
                        ("R", "z", "component", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1",
                        "mean luminosity per star of the component's population at (R, z)",
                    ),
                    "luminosity_mean_stderr": VarSpec(
                        ("R", "z", "component", "scenario", "messenger", "energy"),
                        "TeV^-1 s^-1",
                        "Monte Carlo standard error of the mean luminosity per star",
                    ),
                    "n_stars": VarSpec(("R", "z"), "pc^-3", "stellar number density"),
                    "n_stars_component": VarSpec(("R", "z", "component"), "pc^-3", "stellar number density per component"),
                }
            ),
            coords=_freeze(
                {
                    "R": VarSpec(("R",), "kpc", "galactocentric cylindrical radius"),
                    "z": VarSpec(("z",), "kpc", "height above the Galactic plane (the model is symmetric in z)"),
                    "component": VarSpec(("component",), "", "Galactic component"),
                    "scenario": _SCENARIO,
                    "messenger": _MESSENGER,
                    "energy": _ENERGY,
                }
            ),
        ),
        "sky": GroupSchema(
            name="sky",
            dims=("pixel", "component", "scenario", "messenger", "energy"),
            chunk_dim="pixel",
            data_vars=_freeze(
                {
                    "intensity": VarSpec(
                        ("pixel", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1 sr^-1",
                        "diffuse intensity",
                    ),
                    "intensity_stderr": VarSpec(
                        ("pixel", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1 sr^-1",
                        "Monte Carlo standard error of the diffuse intensity",
                    ),
                    "intensity_component": VarSpec(
                        ("pixel", "component", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1 sr^-1",
                        "diffuse intensity of each Galactic component (sky.components: true)",
                    ),
                }
            ),
            coords=_freeze(
                {
                    "pixel": VarSpec(("pixel",), "", "HEALPix RING index, Galactic frame"),
                    "l": VarSpec(("pixel",), "deg", "Galactic longitude of the pixel centre"),
                    "b": VarSpec(("pixel",), "deg", "Galactic latitude of the pixel centre"),
                    "component": VarSpec(("component",), "", "Galactic component"),
                    "scenario": _SCENARIO,
                    "messenger": _MESSENGER,
                    "energy": _ENERGY,
                }
            ),
            required_attrs=("config", "code_version", "nside", "ordering", "coordsys"),
            optional=("intensity_component", "component"),
        ),
        "sed": GroupSchema(
            name="sed",
            dims=("region", "scenario", "messenger", "energy"),
            chunk_dim="region",
            data_vars=_freeze(
                {
                    "mean_intensity": VarSpec(
                        ("region", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1 sr^-1",
                        "solid-angle weighted mean intensity",
                    ),
                    "mean_intensity_stderr": VarSpec(
                        ("region", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1 sr^-1",
                        "Monte Carlo standard error of the mean intensity",
                    ),
                    "flux": VarSpec(
                        ("region", "scenario", "messenger", "energy"),
                        "TeV^-1 cm^-2 s^-1",
                        "flux integrated over the region",
                    ),
                    "solid_angle": VarSpec(("region",), "sr", "solid angle of the region"),
                }
            ),
            coords=_freeze(
                {
                    "region": VarSpec(("region",), "", "sky region name"),
                    "scenario": _SCENARIO,
                    "messenger": _MESSENGER,
                    "energy": _ENERGY,
                }
            ),
        ),
    }
)


def get_schema(group: str) -> GroupSchema:
    """Return the schema of ``group``; a clear error names the known groups."""
    try:
        return SCHEMAS[group]
    except KeyError:
        raise SchemaError(
            f"unknown cube group {group!r}; known groups: {', '.join(SCHEMAS)}"
        ) from None


def validate(ds: xr.Dataset, group: str, *, check_attrs: bool = True) -> None:
    """Check that ``ds`` follows the schema of ``group``.

    Every problem found is listed in one :class:`SchemaError`: missing or extra
    variables, wrong dims or dim order, wrong or missing ``units``/``long_name``, and
    missing group attributes.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset to check (lazy or in memory; only metadata is read).
    group : str
        Group name from :data:`SCHEMAS`.
    check_attrs : bool
        Also require the group attributes (``config``, ``code_version``, ...).
    """
    schema = get_schema(group)
    problems: list[str] = []
    for name, spec in list(schema.data_vars.items()) + list(schema.coords.items()):
        is_coord = name in schema.coords
        if name not in ds.variables:
            if name not in schema.optional:
                problems.append(f"{'coordinate' if is_coord else 'variable'} {name!r} is missing")
            continue
        var = ds.variables[name]
        if tuple(var.dims) != spec.dims:
            problems.append(f"{name!r} has dims {tuple(var.dims)}, expected {spec.dims}")
        if var.attrs.get("units") != spec.units:
            problems.append(
                f"{name!r} has units {var.attrs.get('units')!r}, expected {spec.units!r}"
            )
        if not var.attrs.get("long_name"):
            problems.append(f"{name!r} has no long_name attribute")
    extra = set(ds.data_vars) - set(schema.data_vars)
    if extra:
        problems.append(f"unexpected variables {sorted(extra)}")
    if set(ds.dims) - set(schema.optional) != set(schema.dims) - set(schema.optional) or not set(ds.dims) <= set(schema.dims):
        problems.append(f"dims are {sorted(ds.dims)}, expected {sorted(schema.dims)}")
    if check_attrs:
        for attr in schema.required_attrs:
            if attr not in ds.attrs:
                problems.append(f"group attribute {attr!r} is missing")
    if problems:
        raise SchemaError(f"cube group {group!r} does not follow its schema: " + "; ".join(problems))


def apply_metadata(ds: xr.Dataset, group: str) -> xr.Dataset:
    """Return ``ds`` with the schema's ``units`` and ``long_name`` set on every listed variable."""
    schema = get_schema(group)
    ds = ds.copy()
    for name, spec in list(schema.data_vars.items()) + list(schema.coords.items()):
        if name in ds.variables:
            ds[name].attrs.update(units=spec.units, long_name=spec.long_name)
    return ds

