"""The public contract of every cube: group names, dims, variables, coordinates and units.

It holds the schema types, the check and a registry by group name; each group's schema is
declared beside the stage that writes it (``tasks/stages/<group>.py``), from the shared axes
of :mod:`cube.axes`, and together they are ``docs/design.md``'s cube table in code.  It knows
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
    "SCHEMA_ATTR",
    "SchemaError",
    "register",
    "freeze",
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
    """Schema of one group: its dims, its data variables and its coordinates.

    The pipeline's schemas are declared by the stages that write them (``tasks/stages/``)
    and registered with :func:`register`; every group written also stores its schema in the
    group attribute :data:`SCHEMA_ATTR`, read back by :func:`get_schema` when the group is
    not registered in this process.
    """

    name: str
    dims: tuple[str, ...]
    chunk_dim: str
    data_vars: Mapping[str, VarSpec]
    coords: Mapping[str, VarSpec]
    required_attrs: tuple[str, ...] = field(default=("config", "code_version"))
    optional: tuple[str, ...] = ()  # variables, coordinates and dims that may be absent

    def as_dict(self) -> dict:
        """The schema as plain JSON-able values (the inverse of :meth:`from_dict`)."""
        spec = lambda v: {"dims": list(v.dims), "units": v.units, "long_name": v.long_name}  # noqa: E731
        return {
            "name": self.name,
            "dims": list(self.dims),
            "chunk_dim": self.chunk_dim,
            "data_vars": {k: spec(v) for k, v in self.data_vars.items()},
            "coords": {k: spec(v) for k, v in self.coords.items()},
            "required_attrs": list(self.required_attrs),
            "optional": list(self.optional),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "GroupSchema":
        """The schema :meth:`as_dict` wrote."""
        spec = lambda v: VarSpec(tuple(v["dims"]), v["units"], v["long_name"])  # noqa: E731
        return cls(
            name=d["name"],
            dims=tuple(d["dims"]),
            chunk_dim=d["chunk_dim"],
            data_vars=freeze({k: spec(v) for k, v in d["data_vars"].items()}),
            coords=freeze({k: spec(v) for k, v in d["coords"].items()}),
            required_attrs=tuple(d["required_attrs"]),
            optional=tuple(d["optional"]),
        )


def freeze(d: Mapping) -> Mapping:
    """A read-only copy of ``d`` (schemas are immutable)."""
    return MappingProxyType(dict(d))


#: Schemas of the groups registered in this process, by group name (filled by the pipeline's
#: stage package when it is imported; see :func:`register`).
_REGISTRY: dict[str, GroupSchema] = {}
SCHEMAS: Mapping[str, GroupSchema] = MappingProxyType(_REGISTRY)

#: Group attribute holding the group's own schema, so that a store describes itself.
SCHEMA_ATTR = "schema"


def register(schema: GroupSchema) -> GroupSchema:
    """Make ``schema`` known by its group name to :func:`get_schema`, :func:`validate` and :data:`SCHEMAS`.

    Registering the same schema twice is harmless; another schema under a registered name is
    an error (two stages cannot write one group).
    """
    known = _REGISTRY.get(schema.name)
    if known is not None and known != schema:
        raise SchemaError(f"cube group {schema.name!r} is already registered with another schema")
    _REGISTRY[schema.name] = schema
    return schema


def get_schema(group: str | GroupSchema, ds: xr.Dataset | None = None) -> GroupSchema:
    """The schema of ``group``: registered by that name, else the one ``ds`` stores in its attrs.

    Parameters
    ----------
    group : str or GroupSchema
        A group name, or a schema (returned as is).
    ds : xarray.Dataset, optional
        A group read from a store: its :data:`SCHEMA_ATTR` attribute is used when no schema of
        that name is registered in this process (``import tasks.stages`` registers the pipeline's).

    Raises
    ------
    SchemaError
        If neither knows the group; the message names the known groups.
    """
    if isinstance(group, GroupSchema):
        return group
    known = _REGISTRY.get(group)
    if known is not None:
        return known
    stored = None if ds is None else ds.attrs.get(SCHEMA_ATTR)
    if isinstance(stored, Mapping) and stored.get("name") == group:
        return GroupSchema.from_dict(stored)
    raise SchemaError(
        f"unknown cube group {group!r}; known groups: {', '.join(_REGISTRY) or 'none (import tasks.stages)'}"
    )


def validate(ds: xr.Dataset, group: str | GroupSchema, *, check_attrs: bool = True) -> None:
    """Check that ``ds`` follows the schema of ``group``.

    Every problem found is listed in one :class:`SchemaError`: missing or extra
    variables, wrong dims or dim order, wrong or missing ``units``/``long_name``, and
    missing group attributes.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset to check (lazy or in memory; only metadata is read).
    group : str or GroupSchema
        Group name (see :func:`get_schema`) or its schema.
    check_attrs : bool
        Also require the group attributes (``config``, ``code_version``, ...).
    """
    schema = get_schema(group, ds)
    group = schema.name
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


def apply_metadata(ds: xr.Dataset, group: str | GroupSchema) -> xr.Dataset:
    """Return ``ds`` with the schema's ``units`` and ``long_name`` set on every listed variable."""
    schema = get_schema(group, ds)
    ds = ds.copy()
    for name, spec in list(schema.data_vars.items()) + list(schema.coords.items()):
        if name in ds.variables:
            ds[name].attrs.update(units=spec.units, long_name=spec.long_name)
    return ds

