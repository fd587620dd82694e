"""The data-cube layer: cube schemas, the Zarr v3 store, region writes, chunk fingerprints, lazy open.

It knows names, dims, units and chunks, and nothing about physics.

Examples
--------
>>> import cube
>>> ds = cube.open("stardiffuse.zarr", "xsec")          # doctest: +SKIP
>>> ds.dsigma_dE.sel(messenger="gamma").isel(E_p=10)     # doctest: +SKIP
"""

from cube.fingerprint import ChunkKey, chunk_keys, combine, fingerprint
from cube.schema import SCHEMAS, GroupSchema, SchemaError, VarSpec, apply_metadata, get_schema, validate
from cube.store import StoreError, StoreLockedError, open, store_lock

__all__ = [
    "ChunkKey",
    "chunk_keys",
    "combine",
    "fingerprint",
    "SCHEMAS",
    "GroupSchema",
    "SchemaError",
    "VarSpec",
    "apply_metadata",
    "get_schema",
    "validate",
    "StoreError",
    "StoreLockedError",
    "open",
    "store_lock",
]
