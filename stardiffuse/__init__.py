"""stardiffuse: the diffuse TeV-PeV gamma rays and neutrinos of cosmic rays hitting the Milky Way's stars.

The one public face of the pipeline (docs/design.md, "Python API")::

    import stardiffuse as sd

    config = sd.load_config(preset="quick", **{"mirroring.f_B_high": 0.5})
    sd.status(config, "stardiffuse.zarr")          # pandas.DataFrame, one row per stage
    summary = sd.run(config, "stardiffuse.zarr")   # only stale chunks are computed
    sky = sd.open("stardiffuse.zarr", "sky")       # lazy xarray.Dataset
    tree = sd.open_tree("stardiffuse.zarr")        # lazy xarray.DataTree, one node per stage
    sd.report("stardiffuse.zarr")["claims"]        # the paper's claims vs this store

Configuration and runs
    :func:`load_config`, :func:`run`, :func:`status`, :func:`sweep` (:func:`parse_sweep`),
    :func:`cluster`,
    :func:`resolve_stages`, :data:`STAGES`.
Reading a store
    :func:`open`, :func:`open_tree`, :func:`validate`, :func:`solar_index`.
Results
    :func:`report`, :func:`solar_check`, :func:`figures`, :func:`export`, and
    :mod:`observations` (the measurements compared with, as astropy tables).
Errors (each message names what is wrong, where and how to fix it)
    :class:`ConfigError`, :class:`StoreError`, :class:`StoreLockedError`, :class:`SchemaError`,
    :class:`UnknownStageError`, :class:`MissingInputError`, :class:`LibraryError`,
    :class:`MesaFormatError`, :class:`ClusterError`; :data:`USER_ERRORS` is all of them.

Importing this package is cheap: numpy, xarray, pandas, dask, distributed, matplotlib, astropy
and healpy are imported by the functions that need them.  ``stardiffuse --help`` is the command
line on top of these functions.
"""

from __future__ import annotations

import importlib
from typing import Any

from stardiffuse.api import (
    cluster,
    export,
    figures,
    load_config,
    open,  # noqa: A004 - the public name, like cube.open
    open_tree,
    parse_sweep,
    report,
    resolve_stages,
    run,
    solar_check,
    solar_index,
    status,
    sweep,
    validate,
)

__version__ = "0.1.0"

__all__ = [
    "STAGES",
    "cluster",
    "export",
    "figures",
    "load_config",
    "open",
    "open_tree",
    "parse_sweep",
    "report",
    "resolve_stages",
    "run",
    "solar_check",
    "solar_index",
    "status",
    "sweep",
    "validate",
    "observations",
    "Config",
    "RunSummary",
    "ConfigError",
    "StoreError",
    "StoreLockedError",
    "SchemaError",
    "UnknownStageError",
    "MissingInputError",
    "LibraryError",
    "MesaFormatError",
    "ClusterError",
    "USER_ERRORS",
]

#: Names resolved on first use (module, attribute), so that importing stardiffuse stays cheap.
_LAZY = {
    "STAGES": ("tasks.stages", "ORDER"),
    "Config": ("tasks.config", "Config"),
    "RunSummary": ("tasks.runner", "RunSummary"),
    "ConfigError": ("tasks.config", "ConfigError"),
    "StoreError": ("cube.store", "StoreError"),
    "StoreLockedError": ("cube.store", "StoreLockedError"),
    "SchemaError": ("cube.schema", "SchemaError"),
    "UnknownStageError": ("tasks.stages", "UnknownStageError"),
    "MissingInputError": ("tasks.stages.base", "MissingInputError"),
    "LibraryError": ("tasks.kernels.population", "LibraryError"),
    "MesaFormatError": ("catalogs.stellar.mesa", "MesaFormatError"),
    "ClusterError": ("tasks.cluster", "ClusterError"),
    "observations": ("catalogs.observations", None),
}


def __getattr__(name: str) -> Any:
    if name == "USER_ERRORS":
        value: Any = tuple(__getattr__(n) for n in __all__ if n.endswith("Error"))
    elif name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        value = mod if attr is None else getattr(mod, attr)
    else:
        raise AttributeError(f"module 'stardiffuse' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
