"""The data-cube layer: cube schemas, the Zarr v3 store, region writes, chunk fingerprints, lazy open.

It knows names, dims, units and chunks, and nothing about physics.  Users read stores through
``stardiffuse`` (``sd.open``, ``sd.open_tree``); the names below are what a user of this layer
needs.  The pipeline's own pieces (region writes, the ledger, fingerprints) are imported from
the submodules ``cube.store``, ``cube.schema`` and ``cube.fingerprint``.

Examples
--------
>>> import cube
>>> ds = cube.open("stardiffuse.zarr", "xsec")          # doctest: +SKIP
>>> cube.validate(ds, "xsec")                            # doctest: +SKIP
>>> cube.get_schema("xsec").dims                         # doctest: +SKIP
"""

from cube.schema import SCHEMAS, SchemaError, get_schema, validate
from cube.store import StoreError, StoreLockedError, open

__all__ = [
    "open",
    "validate",
    "get_schema",
    "SCHEMAS",
    "SchemaError",
    "StoreError",
    "StoreLockedError",
]
